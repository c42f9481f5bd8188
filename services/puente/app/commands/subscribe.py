"""``puente subscribe --as CC``: a partner state's deliveries, verified, as JSON Lines.

A partner-side command: it reads keys, it never makes any. The trust anchors are the operator's
root verifier keys the partner holds out of band (``--anchor``; on the embedded default, the
local key store's root keys); the trust list comes from the trust topic (then ``--trust-list``,
then the embedded default's file) and is refreshed while the command runs; the receipt key is
the member's own.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, TextIO

import orjson
import typer

from puente.app.commands._common import AnchorOpt, TrustListOpt
from puente.app.runtime import Runtime
from puente.errors import ConfigError
from puente.evidence._time import now_ms
from puente.evidence.errors import EvidenceError
from puente.evidence.finality import FinalityBook
from puente.evidence.keys import SigningKey
from puente.evidence.trust import TrustAnchor, member_holder
from puente.subscriber.core import Subscriber
from puente.subscriber.jsonlines import to_json, write_raw


def subscribe(
    member: Annotated[str, typer.Option("--as", help="the receiving member state (ISO code)")],
    out: Annotated[
        Path | None, typer.Option(help="write JSON Lines here (default: stdout)")
    ] = None,
    idle: Annotated[
        float | None, typer.Option(help="stop after this many seconds without a delivery")
    ] = None,
    receipts: Annotated[bool, typer.Option(help="send signed DeliveryReceipts")] = True,
    raw: Annotated[
        Path | None,
        typer.Option(
            help="also write each delivery's exact bytes to DIR/<partition>-<offset>.delivery "
            "(what a third party verifies, docs/evidence.md §4.1)"
        ),
    ] = None,
    anchor: AnchorOpt = None,
    trust_list: TrustListOpt = None,
    trust_refresh: Annotated[
        float, typer.Option(help="seconds between trust-list refreshes", min=1.0)
    ] = 30.0,
) -> None:
    """Consume CC's deliveries as CC's own principal, verify each against the trust list
    (followed while running), decode it, print it as JSON Lines and send a signed receipt.
    Unverified deliveries are printed with ``"verified": false`` and their reason, never with
    their content."""
    member = member.upper()
    runtime = Runtime.from_settings()
    try:
        anchors = runtime.anchors(anchor)
    except ConfigError as exc:
        raise typer.BadParameter(exc.message, param_hint="--anchor") from None
    key = _receipt_key(runtime, member) if receipts else None
    if raw is not None:
        raw.mkdir(parents=True, exist_ok=True)
    sink: TextIO = out.open("a", encoding="utf-8") if out else sys.stdout
    try:
        asyncio.run(_run(runtime, member, anchors, key, sink, idle, raw, trust_list, trust_refresh))
    finally:
        if out:
            sink.close()


async def _run(
    runtime: Runtime,
    member: str,
    anchors: TrustAnchor,
    key: SigningKey | None,
    sink: TextIO,
    idle: float | None,
    raw: Path | None,
    trust_file: Path | None,
    trust_refresh: float,
) -> None:
    cred = runtime.member_credential(member)
    tracker, topic, fetches = runtime.trust_tracker(
        cred,
        anchors=anchors,
        trust_file=trust_file,
        serial_file=runtime.settings.state_dir / "subscriber" / f"{member}.trust-serial",
    )
    sub = Subscriber(
        endpoint=runtime.endpoint,
        credential=cred,
        naming=runtime.naming,
        member=member,
        registry=runtime.registry,
        trust=tracker,
        trust_sources=fetches,
        trust_refresh_s=trust_refresh,
        receipt_key=key,
        keys=runtime.keys.keyring(member_holder(member)),
        finality=FinalityBook(runtime.quorum()),
        finality_lookback_s=runtime.settings.witness.finality_lookback_s,
    )
    async with topic, sub:
        async for received in sub.stream(idle_timeout_s=idle):
            line = to_json(received, runtime.registry)
            if raw is not None:
                line["raw"] = str(write_raw(raw, received))
            sink.write(orjson.dumps(line).decode() + "\n")
            sink.flush()


def _receipt_key(runtime: Runtime, member: str) -> SigningKey:
    try:
        return runtime.receipt_key(member, now_ms())
    except EvidenceError as exc:
        raise typer.BadParameter(
            f"no receipt key of {member} in {runtime.keys.root} ({exc.reason}): make one with "
            f"`puente keys generate --for {member}` and have it added to the trust list, or "
            "run with --no-receipts",
            param_hint="--as",
        ) from None
