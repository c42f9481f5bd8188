"""The ``puente`` command: one Typer app with a sub-command group per area.

Each area owns its own ``cli.py`` exposing ``app``; this module only mounts them, configures
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
    from puente import demo
    from puente.codec.cli import app as schemas_app
    from puente.deploy.cli import app as deploy_app
    from puente.evidence.cli import audit_app, keys_app
    from puente.kafka import auditsource
    from puente.kafka.cli import app as kafka_app
    from puente.policy.cli import app as policy_app
    from puente.service.cli import app as serve_app
    from puente.subscriber.cli import subscribe
    from puente.warnings.cli import mount as mount_warnings
    from puente_gateway.cli import app as gateway_app

    app.add_typer(kafka_app, name="kafka")
    app.add_typer(schemas_app, name="schemas")
    app.add_typer(policy_app, name="policy")
    app.add_typer(keys_app, name="keys")
    app.add_typer(audit_app, name="audit")
    auditsource.register()  # `puente audit verify kafka:` reads the live topics
    app.add_typer(serve_app, name="serve")
    app.add_typer(deploy_app, name="deploy")
    app.command(name="subscribe")(subscribe)
    app.add_typer(gateway_app, name="gateway")
    mount_warnings(app, serve_app)  # `puente warnings …` and `puente serve warnings`
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
