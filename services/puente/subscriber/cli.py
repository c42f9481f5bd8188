"""``puente subscribe --as CC``: a partner state's deliveries, verified, as JSON Lines.

A partner-side command: it reads keys, it never makes any. The trust anchors are the operator's
root verifier keys the partner holds out of band (``--anchor``; on the embedded default, the
local key store's root keys); the trust list comes from the trust topic (then ``--trust-list``)
and is refreshed while the command runs; the receipt key is the member's own.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any, TextIO

import orjson
import typer

from puente.config import Settings, get_settings
from puente.subscriber.core import Received

RAW_SUFFIX = ".delivery"


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
    anchor: Annotated[
        list[str] | None,
        typer.Option(
            help="trust anchor: the operator's root verifier key or a .vkey file (repeatable; "
            "default: the local key store's root keys)"
        ),
    ] = None,
    trust_list: Annotated[
        Path | None,
        typer.Option(help="a signed trust-list file, used when the trust topic has none"),
    ] = None,
    trust_refresh: Annotated[
        float, typer.Option(help="seconds between trust-list refreshes", min=1.0)
    ] = 30.0,
) -> None:
    """Consume CC's deliveries as CC's own principal, verify each against the trust list
    (followed while running), decode it, print it as JSON Lines and send a signed receipt.
    Unverified deliveries are printed with ``"verified": false`` and their reason, never with
    their content."""
    if raw is not None:
        raw.mkdir(parents=True, exist_ok=True)
    asyncio.run(
        _run(member.upper(), out, idle, receipts, raw, anchor or [], trust_list, trust_refresh)
    )


async def _run(
    member: str,
    out: Path | None,
    idle: float | None,
    receipts: bool,
    raw: Path | None,
    anchor_specs: list[str],
    trust_file: Path | None,
    trust_refresh: float,
) -> None:
    from puente.codec.registry import Registry
    from puente.evidence.trustsource import Fetch, TrustTracker, file_fetch
    from puente.kafka.connection import credential, resolve_endpoint
    from puente.kafka.trustfeed import TrustTopicReader
    from puente.subscriber.core import Subscriber
    from puente.topics import Naming

    settings = get_settings()
    naming = Naming(settings.kafka.topic_prefix)
    registry = Registry.load(settings.schemas_dir)
    endpoint = resolve_endpoint(settings)
    cred = credential(settings, naming.member_principal(member))
    tracker = TrustTracker(
        _anchors(settings, anchor_specs),
        registry,
        serial_file=settings.state_dir / "subscriber" / f"{member}.trust-serial",
    )
    topic = TrustTopicReader(endpoint, cred, naming, timeout_s=settings.kafka.request_timeout_s)
    fetches: list[Fetch] = [topic.newest]
    default_file = settings.state_dir / "keys" / "trust-list.note"
    if trust_file is not None or default_file.is_file():
        fetches.append(file_fetch(trust_file or default_file))
    sub = Subscriber(
        endpoint=endpoint,
        credential=cred,
        naming=naming,
        member=member,
        registry=registry,
        trust=tracker,
        trust_sources=fetches,
        trust_refresh_s=trust_refresh,
        receipt_key=_receipt_key(settings, member) if receipts else None,
    )
    sink: TextIO = out.open("a", encoding="utf-8") if out else sys.stdout
    try:
        async with topic, sub:
            async for received in sub.stream(idle_timeout_s=idle):
                line = to_json(received, registry)
                if raw is not None:
                    line["raw"] = str(write_raw(raw, received))
                sink.write(orjson.dumps(line).decode() + "\n")
                sink.flush()
    finally:
        if out:
            sink.close()


def write_raw(directory: Path, received: Received) -> Path:
    """Write a delivery's exact bytes as ``<partition>-<offset>.delivery``; returns the path."""
    path = directory / f"{received.partition}-{received.offset}{RAW_SUFFIX}"
    path.write_bytes(received.raw)
    return path


def _anchors(settings: Settings, specs: list[str]) -> list[Any]:
    from puente.evidence.keys import PublicKey
    from puente.evidence.keystore import KeyStore
    from puente.evidence.trustsource import read_anchors

    if specs:
        return [
            k
            for spec in specs
            for k in (
                read_anchors(Path(spec)) if Path(spec).is_file() else [PublicKey.from_vkey(spec)]
            )
        ]
    store = KeyStore(settings.state_dir / "keys")
    found = (
        [store.public(m) for m in store.key_metas() if m.holder == "operator:root"]
        if store.root.is_dir()
        else []
    )
    if not found:
        raise typer.BadParameter(
            "no trust anchor: give the operator's root verifier key with --anchor (a vkey or a "
            ".vkey file); the local key store has none",
            param_hint="--anchor",
        )
    return found


def _receipt_key(settings: Settings, member: str) -> Any:
    from puente.evidence.errors import EvidenceError
    from puente.evidence.keystore import KeyStore
    from puente.evidence.trust import Usage, member_holder

    store = KeyStore(settings.state_dir / "keys")
    try:
        return store.current(member_holder(member), usage=Usage.RECEIPT, at=_now())
    except EvidenceError as exc:
        raise typer.BadParameter(
            f"no receipt key of {member} in {store.root} ({exc.reason}): make one with "
            f"`puente keys generate --for {member}` and have it added to the trust list, or "
            "run with --no-receipts",
            param_hint="--as",
        ) from None


def _now() -> int:
    from puente.evidence._time import now_ms

    return now_ms()


def to_json(received: Received, registry: Any) -> dict[str, Any]:
    """The JSON Lines form of one delivery (content only when verified)."""
    from puente.codec.jsonconv import to_json as record_json

    base: dict[str, Any] = {
        "partition": received.partition,
        "offset": received.offset,
        "digest": received.digest.hex(),
        "verified": received.ok,
    }
    if received.verified is None:
        assert received.error is not None
        return base | {"reason": received.error.reason, "error": str(received.error)}
    st = received.verified.statement
    d = st.decision
    return base | {
        "mode": received.verified.mode,
        "delivery_id": st.delivery_id,
        "notice_id": st.notice_id,
        "origin": st.origin,
        "type": st.payload_schema,
        "action": d.action.value,
        "rules": list(d.rule_ids),
        "legal_bases": list(d.legal_bases),
        "purposes": list(d.purposes),
        "handling": d.handling_code,
        "retention_days": d.retention_days,
        "policy_set_version": st.policy_set_version,
        "audit": {"log_id": st.audit_log_id, "leaf_index": st.audit_leaf_index},
        "notice": record_json(registry, st.payload_schema, received.notice or {}),
    }
