"""``puente keys`` and ``puente audit``."""

import typer

keys_app = typer.Typer(help="Ed25519 keys and the signed trust list.", no_args_is_help=True)
audit_app = typer.Typer(help="Audit the signed message log.", no_args_is_help=True)
