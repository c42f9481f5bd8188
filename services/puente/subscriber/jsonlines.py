"""A partner's deliveries as JSON Lines (content only when verified), and their exact bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from puente.codec.jsonconv import to_json as record_json
from puente.codec.registry import Registry
from puente.subscriber.core import Received

RAW_SUFFIX = ".delivery"


def write_raw(directory: Path, received: Received) -> Path:
    """Write a delivery's exact bytes as ``<partition>-<offset>.delivery``; returns the path."""
    path = directory / f"{received.partition}-{received.offset}{RAW_SUFFIX}"
    path.write_bytes(received.raw)
    return path


def to_json(received: Received, registry: Registry) -> dict[str, Any]:
    """The JSON Lines form of one delivery (content only when verified)."""
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
        **({} if received.finality is None else {"finality": received.finality.value}),
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
