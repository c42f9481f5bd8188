"""``puente schemas``: list and check the schemas in schemas/."""

import typer

app = typer.Typer(help="Avro schemas: list, show, check.", no_args_is_help=True)
