"""``puente receipts``: a consular officer's acknowledgment (``ack``), and who sees what
(``status``) of the receipt trackers' view (docs/receipts.md).

``ack --as GT DELIVERY`` signs, with GT's own receipt key, a DeliveryReceipt carrying the
officer's answer — ACKNOWLEDGED, or DECLINED with a reason code — for a delivery GT received
(named by its delivery id or notice id, as ``status --as GT`` lists them), and sends it to
GT's receipts topic as GT's principal. ``status --as CC`` reads, as CC's principal, exactly
the topics of the pairs CC is part of (``tracker.CC``, ``due.CC``); without ``--as`` the
operator reads every state's ``tracker`` topic.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from puente.app.commands._common import err, out
from puente.app.runtime import Runtime
from puente.errors import PuenteError
from puente.evidence._time import format_ms, now_ms
from puente.evidence.receipt import DECLINE_REASONS
from puente.kafka.clients import consumer, start
from puente.receipts.answer import acknowledgment, send_receipt
from puente.receipts.report import PERIODS, Period, Show, status_document
from puente.receipts.track import ANSWERED, RECEIPT_DUPLICATE, RECEIPT_UNKNOWN_DELIVERY, Track
from puente.receipts.view import read_tracks, status_topics
from puente.secrets import Credential
from puente.topics import DUE, TRACKER

app = typer.Typer(
    help="Receipts: a consular officer's acknowledgment; the status of deliveries and deadlines.",
    no_args_is_help=True,
)


def _member(runtime: Runtime, member: str) -> str:
    code = member.upper()
    if code not in runtime.members:
        raise typer.BadParameter(f"{code} is not a member state", param_hint="--as")
    return code


async def _tracks(runtime: Runtime, cred: Credential, topics: list[str]) -> list[Track]:
    c = consumer(runtime.endpoint, cred)
    await start(c, runtime.endpoint, cred)
    try:
        return await read_tracks(c, runtime.registry, topics)
    finally:
        await c.stop()


@app.command()
def ack(
    delivery: Annotated[str, typer.Argument(help="the delivery id (or notice id) answered")],
    member: Annotated[str, typer.Option("--as", help="the receiving state answering")],
    decline: Annotated[
        str | None,
        typer.Option(help=f"decline the case, with a reason: {', '.join(DECLINE_REASONS)}"),
    ] = None,
    case_reference: Annotated[
        str | None,
        typer.Option(help="the post's own case number (letters, digits, . _ / -; never a name)"),
    ] = None,
) -> None:
    """A consular officer of the receiving state has taken the case (ACKNOWLEDGED) or declines
    it (--decline REASON): sign that answer with the state's receipt key and send it.

    The delivery is looked up in the state's ``due`` topic (what its origins' trackers say it
    received); prints the receipt sent as JSON."""
    runtime = Runtime.from_settings()
    code = _member(runtime, member)
    if decline is not None and decline not in DECLINE_REASONS:
        raise typer.BadParameter(f"one of {', '.join(DECLINE_REASONS)}", param_hint="--decline")
    cred = runtime.member_credential(code)
    due = asyncio.run(_tracks(runtime, cred, [runtime.naming.topic(DUE, code)]))
    found = [t for t in due if t.recipient == code and delivery in (t.delivery_id, t.notice_id)]
    if not found:
        raise PuenteError(
            f"no delivery to {code} with id {delivery} in {runtime.naming.topic(DUE, code)}",
            hint="list them with `puente receipts status --as "
            f"{code}`; a delivery appears there once its origin's tracker has read it",
            reason=RECEIPT_UNKNOWN_DELIVERY,
        )
    track = found[0]
    if track.state in ANSWERED:
        raise PuenteError(
            f"delivery {track.delivery_id} was answered already ({track.state.value}); the "
            "first answer stands",
            reason=RECEIPT_DUPLICATE,
        )
    now = now_ms()
    receipt = acknowledgment(
        recipient=code,
        notice_id=track.notice_id,
        delivery_digest=track.delivery_digest,
        log_id=track.audit_log_id,
        log_index=track.audit_leaf_index,
        now=now,
        received_at=track.received_at,
        decline=decline,
        case_reference=case_reference,
    )
    sent = asyncio.run(
        send_receipt(
            endpoint=runtime.endpoint,
            credential=cred,
            naming=runtime.naming,
            registry=runtime.registry,
            key=runtime.receipt_key(code, now),
            receipt=receipt,
        )
    )
    ack_ = receipt.acknowledgment
    assert ack_ is not None
    answer = {
        "receipt_id": receipt.receipt_id,
        "delivery_id": track.delivery_id,
        "notice_id": receipt.notice_id,
        "recipient": code,
        "decision": ack_.decision.value,
        "reason_code": ack_.reason_code,
        "case_reference": ack_.case_reference,
        "acknowledged_at": format_ms(ack_.acknowledged_at),
    }
    out.print_json(orjson.dumps(answer | sent).decode())


@app.command()
def status(
    member: Annotated[
        str | None,
        typer.Option("--as", help="the state whose pairs to show (default: every pair)"),
    ] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="list only the deliveries overdue now")
    ] = False,
    all_deliveries: Annotated[
        bool, typer.Option("--all", help="list every delivery, not only those awaited")
    ] = False,
    period: Annotated[
        str, typer.Option(help=f"the report's period: {', '.join(PERIODS)}")
    ] = "month",
    as_json: Annotated[
        bool, typer.Option("--json", help="the document (contract puente.receipts.status/v1)")
    ] = False,
) -> None:
    """The receipt status a state may see (the deliveries it sent and received, never another
    pair): per pair and period, how many deliveries, received, acknowledged, declined and
    overdue, and the median and p95 time to receipt and to acknowledgment; then the
    deliveries still awaited (or only the overdue ones). Ids, types, states and times only."""
    if period not in PERIODS:
        raise typer.BadParameter(f"one of {', '.join(PERIODS)}", param_hint="--period")
    if overdue and all_deliveries:
        raise typer.BadParameter("give --overdue or --all, not both", param_hint="--overdue")
    runtime = Runtime.from_settings()
    if member is None:
        viewer = None
        cred = runtime.admin_credential()
        topics = [runtime.naming.topic(TRACKER, m) for m in runtime.members]
    else:
        viewer = _member(runtime, member)
        cred = runtime.member_credential(viewer)
        topics = status_topics(runtime.naming, [viewer])
    tracks = asyncio.run(_tracks(runtime, cred, topics))
    show: Show = "overdue" if overdue else "all" if all_deliveries else "awaiting"
    doc = status_document(tracks, viewer=viewer, now_ms=now_ms(), period=_period(period), show=show)
    if as_json:
        typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    _print(doc)


def _period(text: str) -> Period:
    for p in PERIODS:
        if p == text:
            return p
    raise typer.BadParameter(f"one of {', '.join(PERIODS)}", param_hint="--period")


def _print(doc: dict[str, Any]) -> None:
    report = Table(
        "origin",
        "recipient",
        "period",
        "deliveries",
        "received",
        "acknowledged",
        "declined",
        "overdue",
        "awaiting",
        "to receipt (median / p95)",
        "to acknowledgment (median / p95)",
        title=f"Receipts of {doc['as'] or 'every pair'} (by {doc['period']})",
    )
    for row in doc["report"]:
        report.add_row(
            row["origin"],
            row["recipient"],
            row["period"],
            str(row["deliveries"]),
            str(row["received"]),
            str(row["acknowledged"]),
            str(row["declined"]),
            str(row["overdue"]),
            str(row["awaiting"]),
            _pair(row["time_to_receipt_ms"]),
            _pair(row["time_to_acknowledgment_ms"]),
        )
    out.print(report)
    listed = Table(
        "delivery",
        "pair",
        "type",
        "state",
        "decided",
        "acknowledge by",
        "missed",
        title=f"Deliveries ({doc['show']})",
    )
    for d in doc["deliveries"]:
        listed.add_row(
            d["delivery_id"],
            f"{d['origin']}→{d['recipient']}",
            d["type"],
            d["state"],
            d["decided_at"],
            d["acknowledge_by"] or "-",
            d["missed"] or "-",
        )
    out.print(listed)
    if not doc["deliveries"]:
        err.print("no delivery listed", style="dim")


def _pair(q: dict[str, int | None]) -> str:
    if q["median"] is None:
        return "-"
    return f"{_duration(q['median'])} / {_duration(q['p95'])}"


def _duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    s = ms / 1000
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
