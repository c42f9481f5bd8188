"""``puente policy``: check, explain, simulate, diff."""

import typer

app = typer.Typer(
    help="Data-sharing policies: check, explain, simulate, diff.", no_args_is_help=True
)
