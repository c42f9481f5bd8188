"""``puente warnings simulate|list`` (``puente serve warnings`` is in :mod:`.serve`).

The JSON forms are contracts (docs/early-warning.md §6): ``puente.warnings.simulate/v1`` and
``puente.warnings.list/v1``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from puente.app.commands._common import AnchorOpt, TrustListOpt
from puente.app.runtime import Runtime
from puente.evidence._time import format_ms

app = typer.Typer(
    help="Early warning: simulate the triggers, list the warnings.", no_args_is_help=True
)


@app.command()
def simulate(
    scenario: Annotated[
        str, typer.Option(help="mass-movement, or background (false alarms)")
    ] = "mass-movement",
    days: Annotated[int, typer.Option(min=1, max=3650, help="days simulated after warm-up")] = 60,
    seed: Annotated[int, typer.Option(help="generator seed")] = 1,
    shards: Annotated[
        int,
        typer.Option(min=1, max=64, help="counters per origin (a node's ingress partitions)"),
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="the stable JSON contract")] = False,
    policies: Annotated[
        Path | None, typer.Option("--policies", help="policy directory (default: settings)")
    ] = None,
) -> None:
    """Synthetic days through counting, suppression, signing and evaluation: when each trigger
    fires and ends, and what the background alone sets off. Deterministic by seed."""
    from puente.members import load_members
    from puente.warnings.loader import load_triggers
    from puente.warnings.simulate import simulate as run
    from puente.warnings.simulate import summary_lines

    runtime = Runtime.from_settings()
    pdir = policies or runtime.settings.policies_dir
    triggers = load_triggers(pdir, runtime.settings.schemas_dir)
    try:
        doc = run(
            triggers,
            runtime.registry,
            load_members(pdir).codes,
            scenario=scenario,
            days=days,
            seed=seed,
            shards=shards,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        for line in summary_lines(doc):
            typer.echo(line)


@app.command("list")
def list_warnings(
    as_json: Annotated[bool, typer.Option("--json", help="the stable JSON contract")] = False,
    member: Annotated[
        str | None, typer.Option("--as", help="read as this member state (default: the evaluator)")
    ] = None,
    trigger: Annotated[str | None, typer.Option(help="only this trigger")] = None,
    active: Annotated[
        bool, typer.Option(help="only warnings in force (started, not ended)")
    ] = False,
    anchor: AnchorOpt = None,
    trust_list: TrustListOpt = None,
) -> None:
    """Every warning on the warnings topic, its signature checked against the trust list, and
    which are in force."""
    from puente.warnings.listing import select

    runtime = Runtime.from_settings()
    doc = asyncio.run(read_warnings(runtime, member, anchor or [], trust_list))
    doc = select(doc, trigger=trigger, active=active)
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    for w in doc["warnings"]:
        if "status" not in w:  # a record that is not an EarlyWarning
            typer.echo(f"offset {w['offset']}: not a warning ({w['reason']})")
            continue
        subject = ", ".join(f"{k}={v}" for k, v in w["subject"].items())
        mark = "" if w["verified"] else f"  UNVERIFIED ({w['reason']})"
        typer.echo(
            f"{w['status']:<8}{w['level']:<8}{w['trigger_id']}  {subject}  window "
            f"{format_ms(w['window_start'])[:16]}..{format_ms(w['window_end'])[:16]}  value "
            f"{w['value']} (baseline {w['baseline']:.2f}){mark}"
        )
    typer.echo(f"{len(doc['active'])} warning(s) in force")


async def read_warnings(
    runtime: Runtime, member: str | None, anchors: list[str], trust_file: Path | None = None
) -> dict[str, Any]:
    """The ``puente.warnings.list/v1`` document, read as member ``member`` (default: the
    evaluator's principal): every warning on the topic (the first copy of each id), its
    signature checked against the trust list, and the episodes in force."""
    from puente.errors import PuenteError
    from puente.warnings.listing import list_document
    from puente.warnings.service import read_warnings_topic

    cred = (
        runtime.member_credential(member.upper())
        if member
        else runtime.service_credential("warnings")
    )
    tracker, topic, fetches = runtime.trust_tracker(
        cred, anchors=runtime.anchors(anchors or None), trust_file=trust_file
    )
    async with topic:
        await tracker.refresh(fetches)
    records = await read_warnings_topic(runtime.endpoint, cred, runtime.naming)
    try:
        trust = tracker.verifier().trust_list
    except PuenteError:  # every record says TRUST_LIST_MISSING
        trust = None
    return list_document(records, runtime.registry, trust)
