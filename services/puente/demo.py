"""``puente demo``: the whole mission on the embedded default, for a newcomer to watch."""

from __future__ import annotations

import typer
from rich.console import Console

from puente.config import get_settings

console = Console()


def demo() -> None:
    """Start a local Kafka, provision the member states, and show who may do what."""
    from puente.kafka.cli import print_plan, provision_members, up

    settings = get_settings()
    console.rule("[bold]1. A real Apache Kafka broker (KRaft, SASL/SCRAM, ACLs)")
    up(brokers=None)
    console.rule("[bold]2. The member states: principals, topics, least-privilege ACLs")
    plan, changes = provision_members(settings, dry_run=False)
    print_plan(plan, changes)
    console.print(
        f"{len(plan.principals)} principals, {len(plan.topics)} topics, {len(plan.acls)} ACLs"
    )
    console.print(
        "The broker keeps running; stop it with `.venv/bin/puente kafka down`.", style="dim"
    )


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo)
