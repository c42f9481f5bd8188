"""The audit record: one decision, one leaf of a per-partition Merkle log.

An audit record is encoded with the project's wire standard, Avro single-object encoding
(``puente.AuditRecord``), and those exact bytes are the Merkle leaf. It carries no personal data:
ids, codes, rule ids, legal bases and SHA-256 digests only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from puente.evidence._avro import AvroRecord
from puente.evidence._time import from_datetime, to_datetime
from puente.evidence.errors import MalformedError

AUDIT_RECORD = "puente.AuditRecord"
_DIGEST = 32


class AuditDecision(StrEnum):
    """The outcome recorded for a (notice, recipient) pair, or for a refused notice — the one
    vocabulary of outcomes: audit records, delivery statements (DELIVERED, TRANSFORMED) and the
    ``decision`` label of the policy service's metrics use it."""

    DELIVERED = "DELIVERED"
    TRANSFORMED = "TRANSFORMED"
    WITHHELD = "WITHHELD"
    REJECTED = "REJECTED"


@dataclass(frozen=True, kw_only=True)
class AuditRecord(AvroRecord):
    """One audit-log record. Position fields (``log_id``, ``leaf_index``,
    ``previous_leaf_hash``) are filled by :meth:`puente.evidence.log.AuditLog.append_record`."""

    AVRO_NAME: ClassVar[str] = AUDIT_RECORD

    decided_at: int
    ingress_topic: str
    ingress_partition: int
    ingress_offset: int
    origin: str
    decision: AuditDecision
    original_sha256: bytes
    notice_id: str | None = None
    notice_schema: str | None = None
    schema_fingerprint: bytes | None = None
    recipient: str | None = None
    reason_code: str | None = None
    rule_ids: tuple[str, ...] = ()
    legal_bases: tuple[str, ...] = ()
    policy_set_version: str | None = None
    delivered_sha256: bytes | None = None
    delivery_id: str | None = None
    delivery_digest: bytes | None = None
    floor_digest: bytes | None = None
    policy_digest: bytes | None = None
    log_id: str = ""
    leaf_index: int = -1
    previous_leaf_hash: bytes | None = None

    def __post_init__(self) -> None:
        for name in (
            "original_sha256",
            "delivered_sha256",
            "delivery_digest",
            "floor_digest",
            "policy_digest",
        ):
            value = getattr(self, name)
            if value is not None and len(value) != _DIGEST:
                raise MalformedError(f"audit record {name} must be 32 bytes")
        if self.schema_fingerprint is not None and len(self.schema_fingerprint) != 8:
            raise MalformedError("audit record schema_fingerprint must be 8 bytes")
        sent = self.decision in (AuditDecision.DELIVERED, AuditDecision.TRANSFORMED)
        if sent != (self.delivered_sha256 is not None):
            raise MalformedError(
                "delivered_sha256 is set exactly when the decision is DELIVERED or TRANSFORMED"
            )
        if self.decision is AuditDecision.REJECTED and self.recipient is not None:
            raise MalformedError("a REJECTED record has no recipient")
        if self.decision is not AuditDecision.REJECTED and self.recipient is None:
            raise MalformedError(f"a {self.decision.value} record names its recipient")

    def to_avro(self) -> dict[str, Any]:
        """The record as the Avro codec takes it."""
        return {
            "log_id": self.log_id,
            "leaf_index": self.leaf_index,
            "previous_leaf_hash": self.previous_leaf_hash,
            "decided_at": to_datetime(self.decided_at),
            "ingress_topic": self.ingress_topic,
            "ingress_partition": self.ingress_partition,
            "ingress_offset": self.ingress_offset,
            "notice_id": self.notice_id,
            "notice_schema": self.notice_schema,
            "schema_fingerprint": self.schema_fingerprint,
            "origin": self.origin,
            "recipient": self.recipient,
            "decision": self.decision.value,
            "reason_code": self.reason_code,
            "rule_ids": list(self.rule_ids),
            "legal_bases": list(self.legal_bases),
            "policy_set_version": self.policy_set_version,
            "original_sha256": self.original_sha256,
            "delivered_sha256": self.delivered_sha256,
            "delivery_id": self.delivery_id,
            "delivery_digest": self.delivery_digest,
            "floor_digest": self.floor_digest,
            "policy_digest": self.policy_digest,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> AuditRecord:
        """The inverse of :meth:`to_avro`."""
        return cls(
            log_id=d["log_id"],
            leaf_index=d["leaf_index"],
            previous_leaf_hash=d["previous_leaf_hash"],
            decided_at=from_datetime(d["decided_at"]),
            ingress_topic=d["ingress_topic"],
            ingress_partition=d["ingress_partition"],
            ingress_offset=d["ingress_offset"],
            notice_id=d["notice_id"],
            notice_schema=d["notice_schema"],
            schema_fingerprint=d["schema_fingerprint"],
            origin=d["origin"],
            recipient=d["recipient"],
            decision=AuditDecision(d["decision"]),
            reason_code=d["reason_code"],
            rule_ids=tuple(d["rule_ids"]),
            legal_bases=tuple(d["legal_bases"]),
            policy_set_version=d["policy_set_version"],
            original_sha256=d["original_sha256"],
            delivered_sha256=d["delivered_sha256"],
            delivery_id=d["delivery_id"],
            delivery_digest=d["delivery_digest"],
            floor_digest=d.get("floor_digest"),
            policy_digest=d.get("policy_digest"),
        )
