"""``python -m puente_gateway ...``: the gateway CLI (``puente gateway`` when mounted)."""

from __future__ import annotations

import sys

import typer

from puente.config import get_settings
from puente.errors import PuenteError
from puente.logs import configure_logging
from puente_gateway.cli import app


def main() -> None:
    """Entry point: configure logging, run the CLI, print PuenteErrors as one line."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        app()
    except PuenteError as exc:
        typer.secho(f"error: {exc.diagnostics()}", err=True, fg=typer.colors.RED)
        sys.exit(2)


if __name__ == "__main__":
    main()
