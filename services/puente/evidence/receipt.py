"""Receipts: what a recipient state signs about a delivery (``puente.DeliveryReceipt``).

Two kinds, one record (docs/evidence.md §4.2):

* a **machine receipt** — the recipient's software received the delivery and verified it
  (``acknowledgment`` null, ``status`` VERIFIED); it stops the receive clock;
* a **human acknowledgment** — a consular officer took the case (``ACKNOWLEDGED``) or the post
  does not take it (``DECLINED``, with a reason code), with an optional case reference; it stops
  the acknowledgment clock (and the receive clock, if no machine receipt came first).

A receipt is signed over ``"puente/delivery-receipt/v1" || 0x00 || receipt`` by a ``member:<CC>``
key of usage ``receipt`` valid at the receipt's own time (:attr:`Receipt.time`): the
acknowledgment time on an acknowledgment, ``received_at`` on a machine receipt. What the rules
of an acknowledgment are (reason codes, case references) is :func:`receipt_problems`' to say:
the gateway, ``puente receipts ack`` and the receipt tracker ask it the same question.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from puente.evidence._avro import AvroRecord
from puente.evidence._time import from_datetime, to_datetime
from puente.evidence.errors import MalformedError

DELIVERY_RECEIPT = "puente.DeliveryReceipt"

DECLINE_REASONS = (
    "NOT_A_NATIONAL",  # the person is not a national of the recipient state
    "PERSON_DECLINED_ASSISTANCE",  # the person does not want consular assistance
    "NOT_COMPETENT_POST",  # another post (or state) is competent; the origin must redirect
    "DUPLICATE_CASE",  # the post already handles this case under another notice
    "OTHER",  # any other reason: the origin follows up by other means
)
"""Why a consular post declines a case: codes, never free text (a receipt holds no personal
data). A DECLINED answer tells the origin to act by other means whatever the code."""

CASE_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
_DIGEST_HEX = re.compile(r"^[0-9a-f]{64}$")


class ReceiptStatus(StrEnum):
    """What the recipient's software did with the delivery (Avro ``ReceiptStatus``)."""

    VERIFIED = "VERIFIED"
    VERIFICATION_FAILED = "VERIFICATION_FAILED"
    OTHER = "OTHER"


class AcknowledgmentDecision(StrEnum):
    """A consular officer's answer (Avro ``AcknowledgmentDecision``)."""

    ACKNOWLEDGED = "ACKNOWLEDGED"
    DECLINED = "DECLINED"


@dataclass(frozen=True, kw_only=True)
class Acknowledgment:
    """The human part of a receipt: the officer's answer."""

    decision: AcknowledgmentDecision
    acknowledged_at: int
    reason_code: str | None = None
    case_reference: str | None = None


@dataclass(frozen=True, kw_only=True)
class Receipt(AvroRecord):
    """One ``puente.DeliveryReceipt`` (times in Unix ms)."""

    AVRO_NAME: ClassVar[str] = DELIVERY_RECEIPT

    receipt_id: str
    notice_id: str
    recipient: str
    delivery_digest: str
    received_at: int
    status: ReceiptStatus = ReceiptStatus.VERIFIED
    log_id: str | None = None
    log_index: int | None = None
    acknowledgment: Acknowledgment | None = None

    @property
    def time(self) -> int:
        """The receipt's own time: when the officer answered, else when the delivery arrived.
        The signing key must be valid then, and the clock the receipt stops is judged by it."""
        ack = self.acknowledgment
        return ack.acknowledged_at if ack is not None else self.received_at

    def to_avro(self) -> dict[str, Any]:
        """The record as the Avro codec takes it."""
        ack = self.acknowledgment
        return {
            "receipt_id": self.receipt_id,
            "notice_id": self.notice_id,
            "recipient": self.recipient,
            "delivery_digest": self.delivery_digest,
            "log_id": self.log_id,
            "log_index": self.log_index,
            "status": self.status.value,
            "received_at": to_datetime(self.received_at),
            "acknowledgment": None
            if ack is None
            else {
                "decision": ack.decision.value,
                "reason_code": ack.reason_code,
                "case_reference": ack.case_reference,
                "acknowledged_at": to_datetime(ack.acknowledged_at),
            },
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> Receipt:
        """The inverse of :meth:`to_avro` (a v1 receipt has no acknowledgment)."""
        a = d.get("acknowledgment")
        return cls(
            receipt_id=d["receipt_id"],
            notice_id=d["notice_id"],
            recipient=d["recipient"],
            delivery_digest=d["delivery_digest"],
            log_id=d["log_id"],
            log_index=d["log_index"],
            status=ReceiptStatus(d["status"]),
            received_at=from_datetime(d["received_at"]),
            acknowledgment=None
            if a is None
            else Acknowledgment(
                decision=AcknowledgmentDecision(a["decision"]),
                reason_code=a["reason_code"],
                case_reference=a["case_reference"],
                acknowledged_at=from_datetime(a["acknowledged_at"]),
            ),
        )


def receipt_problems(record: dict[str, Any] | Receipt) -> list[tuple[str, str]]:
    """What makes a receipt break the rules its schema cannot express, as (field path,
    message) pairs; empty when it keeps them. ``record`` is a decoded receipt (the Avro dict,
    as the codec or the JSON converter give it) or a :class:`Receipt`.

    The rules: the recipient is a state code; the digest is 64 lowercase hex digits; ids are
    UUIDs; an acknowledgment answers a VERIFIED delivery; one that DECLINES gives a reason from
    :data:`DECLINE_REASONS`, one that ACKNOWLEDGES gives none; a case reference is 1-64
    characters of letters, digits and ``. _ / -`` (an id, never a name); the officer cannot
    answer before the delivery arrived.
    """
    rec = record if isinstance(record, Receipt) else Receipt.from_avro(record)
    out: list[tuple[str, str]] = []
    if not re.fullmatch(r"[A-Z]{2}", rec.recipient):
        out.append(("recipient", "expected an ISO 3166-1 alpha-2 code"))
    if not _DIGEST_HEX.match(rec.delivery_digest):
        out.append(("delivery_digest", "expected 64 lowercase hex digits"))
    for name in ("receipt_id", "notice_id"):
        if not _is_uuid(getattr(rec, name)):
            out.append((name, "expected a UUID"))
    ack = rec.acknowledgment
    if ack is None:
        return out
    if rec.status is not ReceiptStatus.VERIFIED:
        out.append(("status", "an acknowledgment answers a delivery that verified (VERIFIED)"))
    if ack.decision is AcknowledgmentDecision.DECLINED:
        if ack.reason_code not in DECLINE_REASONS:
            out.append(
                (
                    "acknowledgment.reason_code",
                    f"a DECLINED answer gives one of {', '.join(DECLINE_REASONS)}",
                )
            )
    elif ack.reason_code is not None:
        out.append(("acknowledgment.reason_code", "only a DECLINED answer gives a reason"))
    if ack.case_reference is not None and not CASE_REFERENCE.match(ack.case_reference):
        out.append(
            (
                "acknowledgment.case_reference",
                "1-64 characters: letters, digits and . _ / - (an id, never a name)",
            )
        )
    if ack.acknowledged_at < rec.received_at:
        out.append(("acknowledgment.acknowledged_at", "before received_at"))
    return out


def check_receipt(record: dict[str, Any] | Receipt) -> Receipt:
    """The receipt, if it keeps :func:`receipt_problems`' rules; else ``RECEIPT_MALFORMED``."""
    rec = record if isinstance(record, Receipt) else Receipt.from_avro(record)
    problems = receipt_problems(rec)
    if problems:
        raise MalformedError(
            "; ".join(f"{path}: {message}" for path, message in problems),
            reason="RECEIPT_MALFORMED",
        )
    return rec


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
