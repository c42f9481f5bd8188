"""``puente warnings simulate|list`` and ``puente serve warnings``.

The JSON forms are contracts (docs/early-warning.md): ``puente.warnings.simulate/v1`` and
``puente.warnings.list/v1``.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from puente.config import Settings, get_settings

app = typer.Typer(
    help="Early warning: simulate the triggers, list the warnings.", no_args_is_help=True
)

LIST_CONTRACT = "puente.warnings.list/v1"

PoliciesOpt = Annotated[
    Path | None, typer.Option("--policies", help="policy directory (default: settings)")
]
AnchorOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="trust anchor: the operator's root verifier key or a .vkey file (repeatable; "
        "default: the local key store's root keys)"
    ),
]


def mount(root: typer.Typer, serve: typer.Typer) -> None:
    """Mount ``puente warnings`` and ``puente serve warnings``."""
    root.add_typer(app, name="warnings")
    serve.command(name="warnings")(serve_warnings)


@app.command()
def simulate(
    scenario: Annotated[
        str, typer.Option(help="mass-movement, or background (false alarms)")
    ] = "mass-movement",
    days: Annotated[int, typer.Option(min=1, max=3650, help="days simulated after warm-up")] = 60,
    seed: Annotated[int, typer.Option(help="generator seed")] = 1,
    shards: Annotated[
        int, typer.Option(min=1, max=64, help="counters per origin (today: ingress partitions)")
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="the stable JSON contract")] = False,
    policies: PoliciesOpt = None,
) -> None:
    """Synthetic days through counting, suppression, signing and evaluation: when each trigger
    fires and ends, and what the background alone sets off. Deterministic by seed."""
    from puente.codec.registry import Registry
    from puente.members import load_members
    from puente.warnings.loader import load_triggers
    from puente.warnings.simulate import simulate as run
    from puente.warnings.simulate import summary_lines

    settings = get_settings()
    pdir = policies or settings.policies_dir
    triggers = load_triggers(pdir, settings.schemas_dir)
    try:
        doc = run(
            triggers,
            Registry.load(settings.schemas_dir),
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
) -> None:
    """Every warning on the warnings topic, its signature checked against the trust list, and
    which are in force."""
    doc = asyncio.run(read_warnings(get_settings(), member, anchor or []))
    if trigger is not None:
        doc["warnings"] = [w for w in doc["warnings"] if w.get("trigger_id") == trigger]
        doc["active"] = [w for w in doc["active"] if w.get("trigger_id") == trigger]
    if active:
        doc["warnings"] = doc["active"]
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
            f"{_iso(w['window_start'])}..{_iso(w['window_end'])}  value {w['value']} "
            f"(baseline {w['baseline']:.2f}){mark}"
        )
    typer.echo(f"{len(doc['active'])} warning(s) in force")


def _iso(ms: int) -> str:
    from puente.evidence._time import format_ms

    return format_ms(ms)[:16]


async def read_warnings(
    settings: Settings, member: str | None, anchors: list[str]
) -> dict[str, Any]:
    """The ``puente.warnings.list/v1`` document: every warning on the topic (the first copy of
    each id), its signature checked, and the episodes in force."""
    from aiokafka import TopicPartition

    from puente.codec.registry import Registry
    from puente.evidence.trustsource import TrustTracker
    from puente.kafka.clients import consumer, start
    from puente.kafka.connection import credential, resolve_endpoint
    from puente.kafka.trustfeed import TrustTopicReader
    from puente.subscriber.cli import _anchors
    from puente.topics import WARNINGS, Naming
    from puente.warnings.evaluator import EarlyWarning
    from puente.warnings.signing import WARNING_CONTEXT, Signature, verify

    naming = Naming(settings.kafka.topic_prefix)
    registry = Registry.load(settings.schemas_dir)
    endpoint = resolve_endpoint(settings)
    principal = (
        naming.member_principal(member.upper()) if member else naming.service_principal("warnings")
    )
    cred = credential(settings, principal)
    tracker = TrustTracker(_anchors(settings, anchors), registry)
    async with TrustTopicReader(
        endpoint, cred, naming, timeout_s=settings.kafka.request_timeout_s
    ) as t:
        await tracker.refresh([t.newest])
    c = consumer(endpoint, cred, client_id=f"{principal}-warnings")
    await start(c, endpoint, cred)
    records = []
    try:
        tp = TopicPartition(naming.topic(WARNINGS), 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        end = (await c.end_offsets([tp]))[tp]
        while await c.position(tp) < end:
            batch = await c.getmany(tp, timeout_ms=500)
            records += batch.get(tp, [])
    finally:
        await c.stop()
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    in_force: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.value is None:
            continue
        entry: dict[str, Any]
        try:
            w = EarlyWarning.decode(registry, r.value)
        except Exception as exc:
            out.append(
                {
                    "offset": r.offset,
                    "verified": False,
                    "reason": getattr(exc, "reason", "WARNING_MALFORMED"),
                }
            )
            continue
        if w.warning_id in seen:
            continue  # a second evaluator's copy of the same record
        seen.add(w.warning_id)
        entry = {"offset": r.offset, **w.summary(), "verified": False, "reason": None}
        try:
            sig = Signature.from_headers(r.headers)
            tl = tracker.verifier().trust_list
            found = verify(tl, WARNING_CONTEXT, r.value, sig, holders=None)
            entry |= {"verified": True, "signed_by": found.holder, "key_id": sig.key_id}
        except Exception as exc:  # reported per record, never fatal
            entry["reason"] = getattr(exc, "reason", type(exc).__name__)
        out.append(entry)
        if w.status == "ENDED":
            in_force.pop(w.episode_id, None)
        else:
            in_force[w.episode_id] = entry
    return {"contract": LIST_CONTRACT, "warnings": out, "active": list(in_force.values())}


def serve_warnings(
    instance: Annotated[str, typer.Option(help="a name for this instance (logs)")] = "warnings-1",
    key: Annotated[
        Path | None,
        typer.Option(help="the evaluator's key (.skey, usage early-warning; default: settings)"),
    ] = None,
    anchor: AnchorOpt = None,
    trust_list: Annotated[
        Path | None, typer.Option(help="a signed trust-list file, used when the topic has none")
    ] = None,
) -> None:
    """Evaluate the triggers over every member's signed aggregates and publish signed early
    warnings (and their end) to the warnings topic. SIGTERM or Ctrl-C stops it."""
    from puente.codec.registry import Registry
    from puente.evidence.keys import read_private_key
    from puente.evidence.trustsource import Fetch, TrustTracker, file_fetch
    from puente.kafka.connection import credential, resolve_endpoint
    from puente.kafka.trustfeed import TrustTopicReader
    from puente.subscriber.cli import _anchors
    from puente.topics import Naming
    from puente.warnings.loader import load_triggers
    from puente.warnings.service import WarningsService

    settings = get_settings()
    naming = Naming(settings.kafka.topic_prefix)
    registry = Registry.load(settings.schemas_dir)
    triggers = load_triggers(settings.policies_dir, settings.schemas_dir)
    path = key or settings.warnings.signing_key_file
    signing = read_private_key(path) if path is not None else _local_key(settings)
    endpoint = resolve_endpoint(settings)
    cred = credential(settings, naming.service_principal("warnings"))
    tracker = TrustTracker(_anchors(settings, anchor or []), registry)
    topic = TrustTopicReader(endpoint, cred, naming, timeout_s=settings.kafka.request_timeout_s)
    fetches: list[Fetch] = [topic.newest]
    default_file = settings.state_dir / "keys" / "trust-list.note"
    if trust_list is not None or default_file.is_file():
        fetches.append(file_fetch(trust_list or default_file))
    service = WarningsService(
        endpoint=endpoint,
        credential=cred,
        naming=naming,
        registry=registry,
        triggers=triggers,
        key=signing,
        trust=tracker,
        trust_sources=fetches,
        instance=instance,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with topic:
            await service.run(stop)

    asyncio.run(main())


def _local_key(settings: Settings) -> Any:
    """The embedded default's evaluator key (made, with the trust list, if missing)."""
    from puente.evidence.trust import Usage, service_holder
    from puente.members import load_members
    from puente.service.setup import ensure_evidence

    store = ensure_evidence(settings, load_members(settings.policies_dir).codes).store
    return store.current(service_holder("warnings"), usage=Usage.EARLY_WARNING, at=_now())


def _now() -> int:
    from puente.evidence._time import now_ms

    return now_ms()
