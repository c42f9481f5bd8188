"""Overdue reports: a consular delivery went past a deadline without the answer it waited for.

The origin's receipt tracker sends one report per overdue delivery to each side — an
``ESCALATION`` to the origin (its agency must act by other means) and a ``REMINDER`` to the
recipient — on ``overdue.<ADDRESSEE>``. Each is a ``puente.SignedOverdueReport``: the
``puente.OverdueReport`` bytes and an Ed25519 signature by the origin's node key over

    "puente/overdue-report/v1" || 0x00 || report

(usage ``delivery``: what a node sends; valid at ``reported_at``). The context string keeps the
signature from passing for any other Puente signature. Ids, types and times only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from puente.codec.registry import Registry
from puente.evidence._avro import AvroRecord
from puente.evidence._time import (
    from_datetime,
    from_datetime_or_none,
    to_datetime,
    to_datetime_or_none,
)
from puente.evidence.keys import SigningKey

OVERDUE_REPORT = "puente.OverdueReport"
SIGNED_OVERDUE_REPORT = "puente.SignedOverdueReport"
OVERDUE_CONTEXT = b"puente/overdue-report/v1\x00"


class OverdueKind(StrEnum):
    """Whom a report is for: the origin (``ESCALATION``) or the recipient (``REMINDER``)."""

    ESCALATION = "ESCALATION"
    REMINDER = "REMINDER"


class MissedDeadline(StrEnum):
    """Which clock ran out: the receive deadline, or the acknowledgment deadline."""

    RECEIVE = "RECEIVE"
    ACKNOWLEDGE = "ACKNOWLEDGE"


@dataclass(frozen=True, kw_only=True)
class OverdueReport(AvroRecord):
    """One ``puente.OverdueReport`` (times in Unix ms)."""

    AVRO_NAME: ClassVar[str] = OVERDUE_REPORT

    report_id: str
    kind: OverdueKind
    addressee: str
    delivery_id: str
    delivery_digest: str
    notice_id: str
    origin: str
    recipient: str
    type: str
    missed: MissedDeadline
    deadline: int
    decided_at: int
    reported_at: int
    audit_log_id: str
    audit_leaf_index: int
    received_at: int | None = None
    deadline_ids: tuple[str, ...] = ()
    legal_bases: tuple[str, ...] = ()

    def to_avro(self) -> dict[str, Any]:
        """The record as the Avro codec takes it."""
        return {
            "report_id": self.report_id,
            "kind": self.kind.value,
            "addressee": self.addressee,
            "delivery_id": self.delivery_id,
            "delivery_digest": self.delivery_digest,
            "notice_id": self.notice_id,
            "origin": self.origin,
            "recipient": self.recipient,
            "type": self.type,
            "missed": self.missed.value,
            "deadline": to_datetime(self.deadline),
            "decided_at": to_datetime(self.decided_at),
            "received_at": to_datetime_or_none(self.received_at),
            "reported_at": to_datetime(self.reported_at),
            "deadline_ids": list(self.deadline_ids),
            "legal_bases": list(self.legal_bases),
            "audit_log_id": self.audit_log_id,
            "audit_leaf_index": self.audit_leaf_index,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> OverdueReport:
        """The inverse of :meth:`to_avro`."""
        return cls(
            report_id=d["report_id"],
            kind=OverdueKind(d["kind"]),
            addressee=d["addressee"],
            delivery_id=d["delivery_id"],
            delivery_digest=d["delivery_digest"],
            notice_id=d["notice_id"],
            origin=d["origin"],
            recipient=d["recipient"],
            type=d["type"],
            missed=MissedDeadline(d["missed"]),
            deadline=from_datetime(d["deadline"]),
            decided_at=from_datetime(d["decided_at"]),
            received_at=from_datetime_or_none(d["received_at"]),
            reported_at=from_datetime(d["reported_at"]),
            deadline_ids=tuple(d["deadline_ids"]),
            legal_bases=tuple(d["legal_bases"]),
            audit_log_id=d["audit_log_id"],
            audit_leaf_index=d["audit_leaf_index"],
        )


@dataclass(frozen=True, kw_only=True)
class SignedOverdueReport(AvroRecord):
    """A report's exact bytes and the node signature over them."""

    AVRO_NAME: ClassVar[str] = SIGNED_OVERDUE_REPORT

    report: bytes
    key_id: str
    signature: bytes

    def to_avro(self) -> dict[str, Any]:
        """The record as the Avro codec takes it."""
        return {"report": self.report, "key_id": self.key_id, "signature": self.signature}

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> SignedOverdueReport:
        """The inverse of :meth:`to_avro`."""
        return cls(report=d["report"], key_id=d["key_id"], signature=d["signature"])


def sign_overdue_report(key: SigningKey, registry: Registry, report: OverdueReport) -> bytes:
    """``report`` encoded and signed with ``key`` (the origin's node key): the record that goes
    on ``overdue.<addressee>``."""
    body = report.encode(registry)
    signed = SignedOverdueReport(
        report=body, key_id=key.key_id, signature=key.sign(OVERDUE_CONTEXT + body)
    )
    return signed.encode(registry)
