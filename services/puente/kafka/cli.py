"""``puente kafka``: up, down, status, provision."""

import typer

app = typer.Typer(help="The Kafka broker: up, down, status, provision.", no_args_is_help=True)
