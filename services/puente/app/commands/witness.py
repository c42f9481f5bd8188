"""``puente witness status --as CC``: every audit log's latest checkpoint, the states whose
witnesses cosigned it and whether it is final (docs/evidence.md §5.5), and the equivocation
reports that verify — read as member CC's principal."""

from __future__ import annotations

import asyncio
from typing import Annotated

import orjson
import typer
from rich.table import Table

from puente.app.commands._common import out
from puente.app.runtime import Runtime
from puente.kafka.clients import consumer, start
from puente.witness.status import WitnessStatus, read_status

app = typer.Typer(help="Witnesses: cosigned checkpoints, finality, equivocations.")


async def _status(runtime: Runtime, member: str) -> WitnessStatus:
    cred = runtime.member_credential(member)
    tracker, topic, fetches = runtime.trust_tracker(cred)
    async with topic:
        await tracker.refresh(fetches)
    c = consumer(runtime.endpoint, cred)
    await start(c, runtime.endpoint, cred)
    try:
        return await read_status(c, runtime.naming, tracker.verifier(), quorum=runtime.quorum())
    finally:
        await c.stop()


@app.command()
def status(
    member: Annotated[str, typer.Option("--as", help="the member state reading")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List every log: its latest checkpoint, its cosigners, final or not; then the
    equivocation reports. Exit status 1 when a report proves a fork."""
    runtime = Runtime.from_settings()
    code = member.upper()
    if code not in runtime.members:
        raise typer.BadParameter(f"{code} is not a member state", param_hint="--as")
    result = asyncio.run(_status(runtime, code))
    doc = result.document()
    if as_json:
        out.print_json(orjson.dumps(doc).decode())
    else:
        table = Table("log", "size", "cosigners", "final")
        for log in result.book.status():
            cosigners = log["cosigners"]
            assert isinstance(cosigners, list)
            table.add_row(
                str(log["log"]),
                str(log["size"]),
                " ".join(cosigners),
                "yes" if log["final"] else "no",
            )
        out.print(table)
        for r in result.reports:
            out.print(
                f"EQUIVOCATION {r.fork.kind.value} in {r.fork.log_id}, reported by {r.witness}"
            )
    if result.reports:
        raise typer.Exit(1)
