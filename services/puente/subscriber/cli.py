"""``puente subscribe --as CC``: a partner state's deliveries, verified, as JSON Lines."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TextIO

import orjson
import typer

from puente.config import get_settings
from puente.subscriber.core import Received


def subscribe(
    member: Annotated[str, typer.Option("--as", help="the receiving member state (ISO code)")],
    out: Annotated[
        Path | None, typer.Option(help="write JSON Lines here (default: stdout)")
    ] = None,
    idle: Annotated[
        float | None, typer.Option(help="stop after this many seconds without a delivery")
    ] = None,
    receipts: Annotated[bool, typer.Option(help="send signed DeliveryReceipts")] = True,
) -> None:
    """Consume CC's deliveries as CC's own principal, verify each against the trust list, decode
    it, print it as JSON Lines and send a signed receipt. Unverified deliveries are printed with
    ``"verified": false`` and their reason, never with their content."""
    asyncio.run(_run(member.upper(), out, idle, receipts))


async def _run(member: str, out: Path | None, idle: float | None, receipts: bool) -> None:
    from puente.codec.registry import Registry
    from puente.evidence.trust import Usage, member_holder
    from puente.evidence.verify import Verifier
    from puente.kafka.connection import credential, resolve_endpoint
    from puente.members import load_members
    from puente.service.setup import ensure_evidence
    from puente.subscriber.core import Subscriber
    from puente.topics import Naming

    settings = get_settings()
    naming = Naming(settings.kafka.topic_prefix)
    registry = Registry.load(settings.schemas_dir)
    evidence = ensure_evidence(settings, load_members(settings.policies_dir).codes)
    now = int(time.time() * 1000)
    key = (
        evidence.store.current(member_holder(member), usage=Usage.RECEIPT, at=now)
        if receipts
        else None
    )
    sub = Subscriber(
        endpoint=resolve_endpoint(settings),
        credential=credential(settings, naming.member_principal(member)),
        naming=naming,
        member=member,
        registry=registry,
        verifier=Verifier(trust_list=evidence.open_trust_list(now), registry=registry),
        receipt_key=key,
    )
    sink: TextIO = out.open("a", encoding="utf-8") if out else sys.stdout
    try:
        async with sub:
            async for received in sub.stream(idle_timeout_s=idle):
                sink.write(orjson.dumps(to_json(received, registry)).decode() + "\n")
                sink.flush()
    finally:
        if out:
            sink.close()


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
