"""The ``puente`` command: one Typer app with a sub-command group per area.

Each command group is a module of :mod:`puente.app.commands` exposing ``app``; this module only
mounts them, configures
logging and turns a :class:`~puente.errors.PuenteError` into a one-line message and exit code 2.
"""

from __future__ import annotations

import sys

import typer

from puente.config import get_settings
from puente.errors import PuenteError
from puente.logs import configure_logging

app = typer.Typer(
    name="puente",
    help="Puente: a multilateral data-exchange broker (Los Angeles Declaration).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _mount() -> None:
    from puente.app import demo
    from puente.app.commands import (
        audit,
        deploy,
        gateway,
        kafka,
        keys,
        policy,
        receipts,
        schemas,
        serve,
        trust,
        warnings,
        witness,
    )
    from puente.app.commands.publish import publish
    from puente.app.commands.subscribe import subscribe
    from puente.kafka import auditsource

    app.add_typer(kafka.app, name="kafka")
    app.add_typer(schemas.app, name="schemas")
    app.add_typer(policy.app, name="policy")
    app.add_typer(keys.app, name="keys")
    app.add_typer(trust.app, name="trust")
    app.add_typer(audit.app, name="audit")
    auditsource.register()  # `puente audit verify kafka:` reads the live topics
    app.add_typer(serve.app, name="serve")
    app.add_typer(receipts.app, name="receipts")
    app.add_typer(deploy.app, name="deploy")
    app.command(name="subscribe")(subscribe)
    app.command(name="publish")(publish)
    app.add_typer(gateway.app, name="gateway")
    app.add_typer(warnings.app, name="warnings")
    app.add_typer(witness.app, name="witness")
    demo.register(app)


@app.callback()
def _root() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)


def main() -> None:
    """Console entry point."""
    _mount()
    try:
        app()
    except PuenteError as exc:
        typer.secho(f"error: {exc.diagnostics()}", err=True, fg=typer.colors.RED)
        sys.exit(2)
