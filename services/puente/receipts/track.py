"""The receipt tracker's pure core: each delivery's state, the receipts judged, the deadlines run.

One :class:`Track` per delivery an origin's node sent (from its audit record), moved by the
receipts its recipient signs and by the tracker's clock (docs/receipts.md)::

    DELIVERED ──machine receipt──> RECEIVED ──acknowledgment──> ACKNOWLEDGED | DECLINED
        │  └────────────acknowledgment─────────────────────────────^
        └──a deadline passes (receive_by, or acknowledge_by)──> OVERDUE ──late answer──^

A deadline that passes makes the delivery OVERDUE exactly once (``escalated_at`` is set then,
and never again); a late answer still moves it to ACKNOWLEDGED or DECLINED with ``missed``
kept, a late machine receipt is recorded on it. A receipt is judged by when it reached Puente
(the broker's append time of its record), never by a time its signer chose.

:class:`TrackBook` holds the tracks of one origin and judges every receipt (:meth:`judge`): it
verifies the signature against the trust list and that it comes from the delivery's recipient
(fails closed), and refuses unknown, replayed, misdirected and duplicate receipts with a reason
code, without changing any state. No I/O: the tracker (``tracker.py``) feeds it and produces
what it returns, in one Kafka transaction.
"""

from __future__ import annotations

import heapq
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, ClassVar

from puente.codec.errors import DecodeError
from puente.codec.registry import Registry
from puente.errors import PuenteError
from puente.evidence._avro import AvroRecord
from puente.evidence._time import (
    from_datetime,
    from_datetime_or_none,
    to_datetime,
    to_datetime_or_none,
)
from puente.evidence.errors import EvidenceError, MalformedError
from puente.evidence.keys import SigningKey
from puente.evidence.log import audit_log_state
from puente.evidence.overdue import (
    MissedDeadline,
    OverdueKind,
    OverdueReport,
    sign_overdue_report,
)
from puente.evidence.receipt import (
    AcknowledgmentDecision,
    Receipt,
    ReceiptStatus,
    receipt_problems,
)
from puente.evidence.records import AuditDecision, AuditRecord
from puente.evidence.verify import Verifier
from puente.notices import short_name

DELIVERY_TRACK = "puente.DeliveryTrack"
CLOCK_SKEW_MS = 5 * 60 * 1000
"""How far a receipt's own time (received_at, acknowledged_at) may lie outside [the delivery's
decision, the receipt's arrival] before it is refused as RECEIPT_TIME_INVALID."""

# Why a receipt is refused (stable codes: metrics, logs, docs/receipts.md).
RECEIPT_MALFORMED = "RECEIPT_MALFORMED"
RECEIPT_UNSIGNED = "RECEIPT_UNSIGNED"
RECEIPT_SIGNATURE_INVALID = "RECEIPT_SIGNATURE_INVALID"
RECIPIENT_MISMATCH = "RECIPIENT_MISMATCH"
RECEIPT_UNKNOWN_DELIVERY = "RECEIPT_UNKNOWN_DELIVERY"
RECEIPT_NOTICE_MISMATCH = "RECEIPT_NOTICE_MISMATCH"
RECEIPT_VERIFICATION_FAILED = "RECEIPT_VERIFICATION_FAILED"
RECEIPT_TIME_INVALID = "RECEIPT_TIME_INVALID"
RECEIPT_REPLAYED = "RECEIPT_REPLAYED"
RECEIPT_DUPLICATE = "RECEIPT_DUPLICATE"
REFUSALS = (
    RECEIPT_MALFORMED,
    RECEIPT_UNSIGNED,
    RECEIPT_SIGNATURE_INVALID,
    RECIPIENT_MISMATCH,
    RECEIPT_UNKNOWN_DELIVERY,
    RECEIPT_NOTICE_MISMATCH,
    RECEIPT_VERIFICATION_FAILED,
    RECEIPT_TIME_INVALID,
    RECEIPT_REPLAYED,
    RECEIPT_DUPLICATE,
)


class TrackState(StrEnum):
    """Where a delivery stands (Avro ``TrackState``)."""

    DELIVERED = "DELIVERED"
    RECEIVED = "RECEIVED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    DECLINED = "DECLINED"
    OVERDUE = "OVERDUE"


ANSWERED = frozenset({TrackState.ACKNOWLEDGED, TrackState.DECLINED})


@dataclass(frozen=True, slots=True, kw_only=True)
class Track(AvroRecord):
    """One delivery's state (``puente.DeliveryTrack``; times in Unix ms). Ids, types, states
    and times only."""

    AVRO_NAME: ClassVar[str] = DELIVERY_TRACK

    delivery_id: str
    delivery_digest: bytes
    notice_id: str
    origin: str
    recipient: str
    type: str
    decided_at: int
    receive_by: int | None = None
    acknowledge_by: int | None = None
    deadline_ids: tuple[str, ...] = ()
    legal_bases: tuple[str, ...] = ()
    audit_log_id: str
    audit_leaf_index: int
    state: TrackState = TrackState.DELIVERED
    received_at: int | None = None
    receipt_id: str | None = None
    answered_at: int | None = None
    answer_receipt_id: str | None = None
    decline_reason: str | None = None
    case_reference: str | None = None
    missed: MissedDeadline | None = None
    escalated_at: int | None = None

    def next_deadline(self) -> tuple[int, MissedDeadline] | None:
        """The deadline this delivery waits on now, and which one it is; None when it waits on
        none (answered, escalated already, or no clock runs)."""
        if self.escalated_at is not None or self.state in ANSWERED:
            return None
        found: tuple[int, MissedDeadline] | None = None
        if self.state is TrackState.DELIVERED and self.receive_by is not None:
            found = (self.receive_by, MissedDeadline.RECEIVE)
        if self.acknowledge_by is not None and (found is None or self.acknowledge_by < found[0]):
            found = (self.acknowledge_by, MissedDeadline.ACKNOWLEDGE)
        return found

    @property
    def open(self) -> bool:
        """True while a deadline of this delivery still runs."""
        return self.next_deadline() is not None

    def to_avro(self) -> dict[str, Any]:
        """The record as the Avro codec takes it."""
        return {
            "delivery_id": self.delivery_id,
            "delivery_digest": self.delivery_digest,
            "notice_id": self.notice_id,
            "origin": self.origin,
            "recipient": self.recipient,
            "type": self.type,
            "decided_at": to_datetime(self.decided_at),
            "receive_by": to_datetime_or_none(self.receive_by),
            "acknowledge_by": to_datetime_or_none(self.acknowledge_by),
            "deadline_ids": list(self.deadline_ids),
            "legal_bases": list(self.legal_bases),
            "audit_log_id": self.audit_log_id,
            "audit_leaf_index": self.audit_leaf_index,
            "state": self.state.value,
            "received_at": to_datetime_or_none(self.received_at),
            "receipt_id": self.receipt_id,
            "answered_at": to_datetime_or_none(self.answered_at),
            "answer_receipt_id": self.answer_receipt_id,
            "decline_reason": self.decline_reason,
            "case_reference": self.case_reference,
            "missed": None if self.missed is None else self.missed.value,
            "escalated_at": to_datetime_or_none(self.escalated_at),
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> Track:
        """The inverse of :meth:`to_avro`."""
        return cls(
            delivery_id=d["delivery_id"],
            delivery_digest=d["delivery_digest"],
            notice_id=d["notice_id"],
            origin=d["origin"],
            recipient=d["recipient"],
            type=d["type"],
            decided_at=from_datetime(d["decided_at"]),
            receive_by=from_datetime_or_none(d["receive_by"]),
            acknowledge_by=from_datetime_or_none(d["acknowledge_by"]),
            deadline_ids=tuple(d["deadline_ids"]),
            legal_bases=tuple(d["legal_bases"]),
            audit_log_id=d["audit_log_id"],
            audit_leaf_index=d["audit_leaf_index"],
            state=TrackState(d["state"]),
            received_at=from_datetime_or_none(d["received_at"]),
            receipt_id=d["receipt_id"],
            answered_at=from_datetime_or_none(d["answered_at"]),
            answer_receipt_id=d["answer_receipt_id"],
            decline_reason=d["decline_reason"],
            case_reference=d["case_reference"],
            missed=None if d["missed"] is None else MissedDeadline(d["missed"]),
            escalated_at=from_datetime_or_none(d["escalated_at"]),
        )


def track_of(record: AuditRecord) -> Track | None:
    """The new track of the delivery an audit record decided, or None when the record sent
    nothing (WITHHELD, REJECTED)."""
    if record.decision not in (AuditDecision.DELIVERED, AuditDecision.TRANSFORMED):
        return None
    if record.delivery_id is None or record.delivery_digest is None or record.recipient is None:
        return None  # a record from before deliveries had ids: nothing a receipt could name
    dl = record.deadlines
    return Track(
        delivery_id=record.delivery_id,
        delivery_digest=record.delivery_digest,
        notice_id=record.notice_id or "",
        origin=record.origin,
        recipient=record.recipient,
        type=dl.type if dl is not None else short_name(record.notice_schema or ""),
        decided_at=record.decided_at,
        receive_by=dl.receive_by if dl is not None else None,
        acknowledge_by=dl.acknowledge_by if dl is not None else None,
        deadline_ids=dl.deadline_ids if dl is not None else (),
        legal_bases=dl.legal_bases if dl is not None else (),
        audit_log_id=record.log_id,
        audit_leaf_index=record.leaf_index,
    )


class Refused(PuenteError):
    """A receipt the tracker does not count: its reason code says why (:data:`REFUSALS`)."""

    reason = RECEIPT_MALFORMED


@dataclass(frozen=True, slots=True)
class Incoming:
    """One record of a recipient's receipts topic, as the tracker read it."""

    topic_state: str  # the state whose receipts topic it was on (only it may write there)
    value: bytes
    key_id: str | None  # the signature headers (RECEIPT_KEY_ID_HEADER, ...)
    signature: bytes | None
    arrival_ms: int  # the broker's append time: when the receipt reached Puente
    where: str = ""  # topic/partition/offset, for logs


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a receipt did: moved a track (``track`` is its new state), was refused
    (``reason``), or is another origin's to judge (both None)."""

    track: Track | None = None
    reason: str | None = None
    message: str = ""
    kind: str = ""  # "receipt" (a machine receipt) or the acknowledgment's decision
    receipt_id: str | None = None

    @property
    def accepted(self) -> bool:
        return self.track is not None


NOT_OURS = Verdict()


@dataclass(frozen=True, slots=True)
class Escalation:
    """A delivery that went overdue now (``track`` is its OVERDUE state)."""

    track: Track
    missed: MissedDeadline
    deadline: int


class TrackBook:
    """The tracks of the deliveries one origin's node sent, by delivery digest."""

    def __init__(self, origin: str, registry: Registry) -> None:
        self.origin = origin
        self.registry = registry
        self.tracks: dict[bytes, Track] = {}
        self._due: list[tuple[int, bytes]] = []  # (deadline, digest); stale entries skipped
        self.overdue: Counter[tuple[str, str]] = Counter()  # (recipient, type) -> OVERDUE now
        self._strings: dict[Any, Any] = {}  # repeated values shared (memory per delivery)

    def __len__(self) -> int:
        return len(self.tracks)

    def __iter__(self) -> Iterator[Track]:
        return iter(self.tracks.values())

    @property
    def open_count(self) -> int:
        """Deliveries a deadline of which still runs."""
        return sum(1 for t in self.tracks.values() if t.open)

    # --- state -----------------------------------------------------------------------------

    def restore(self, tracks: Iterable[Track]) -> None:
        """Take tracks as read back from the tracker's compacted topic (newest per delivery)."""
        for t in tracks:
            if t.origin == self.origin:
                self.put(t)

    def put(self, track: Track) -> Track:
        """Record ``track`` as its delivery's state (and its next deadline, if any)."""
        track = self._shared(track)
        old = self.tracks.get(track.delivery_digest)
        if old is not None and old.state is TrackState.OVERDUE:
            self.overdue[(old.recipient, old.type)] -= 1
        if track.state is TrackState.OVERDUE:
            self.overdue[(track.recipient, track.type)] += 1
        self.tracks[track.delivery_digest] = track
        nxt = track.next_deadline()
        if nxt is not None and (old is None or old.next_deadline() != nxt):
            heapq.heappush(self._due, (nxt[0], track.delivery_digest))
        return track

    def _shared(self, track: Track) -> Track:
        """The same track, its repeated values (states, types, log ids, deadline entries)
        shared with the other tracks instead of copied: a million tracks hold a few hundred
        distinct ones."""
        s = self._strings
        shared = (
            s.setdefault(track.origin, track.origin),
            s.setdefault(track.recipient, track.recipient),
            s.setdefault(track.type, track.type),
            s.setdefault(track.audit_log_id, track.audit_log_id),
            s.setdefault(track.deadline_ids, track.deadline_ids),
            s.setdefault(track.legal_bases, track.legal_bases),
        )
        mine = (
            track.origin,
            track.recipient,
            track.type,
            track.audit_log_id,
            track.deadline_ids,
            track.legal_bases,
        )
        if all(a is b for a, b in zip(shared, mine, strict=True)):
            return track  # moved from a track already shared
        origin, recipient, type_, log_id, ids, bases = shared
        return replace(
            track,
            origin=origin,
            recipient=recipient,
            type=type_,
            audit_log_id=log_id,
            deadline_ids=ids,
            legal_bases=bases,
        )

    def deliver(self, record: AuditRecord) -> Track | None:
        """A delivery decided by the origin's node (its audit record): its new track, or None
        when the record sent nothing or the delivery is tracked already (a record read again
        after a restart changes nothing)."""
        if record.origin != self.origin:
            return None
        track = track_of(record)
        if track is None or track.delivery_digest in self.tracks:
            return None
        return self.put(track)

    # --- receipts --------------------------------------------------------------------------

    def judge(self, incoming: Incoming, verifier: Verifier) -> Verdict:
        """Judge one receipt: its verdict, the track moved (and recorded) when accepted.

        Checks, in order, failing closed at the first that fails: it decodes; it is this
        origin's (its log id names this origin, or it names none); it keeps the receipt
        rules; it names a delivery this origin sent; it is signed, by a receipt
        key of the state it names, valid at its time; that state is the one whose receipts
        topic it came on and the one the delivery went to; it names the delivery's notice;
        its own time is plausible; it is not a receipt already counted; and the delivery's
        state can take it."""
        try:
            rec = Receipt.decode(self.registry, incoming.value)
        except (DecodeError, MalformedError, ValueError, KeyError, TypeError) as exc:
            return _refuse(RECEIPT_MALFORMED, f"not a DeliveryReceipt: {exc}")
        named = audit_log_state(rec.log_id) if rec.log_id else None
        if named is not None and named != self.origin:
            return NOT_OURS  # a delivery of another origin: its tracker judges it
        problems = receipt_problems(rec)
        if problems:
            return _refuse(RECEIPT_MALFORMED, "; ".join(f"{p}: {m}" for p, m in problems), rec)
        track = self.tracks.get(bytes.fromhex(rec.delivery_digest))
        if track is None:
            return _refuse(
                RECEIPT_UNKNOWN_DELIVERY,
                f"no delivery of {self.origin} has digest {rec.delivery_digest[:16]}…",
                rec,
            )
        try:
            return self._judge(rec, track, incoming, verifier)
        except Refused as exc:
            return _refuse(exc.reason, exc.message, rec)

    def _judge(self, rec: Receipt, track: Track, incoming: Incoming, verifier: Verifier) -> Verdict:
        problems = receipt_problems(rec)
        if problems:
            raise Refused("; ".join(f"{p}: {m}" for p, m in problems), reason=RECEIPT_MALFORMED)
        if incoming.key_id is None or incoming.signature is None:
            raise Refused("the receipt carries no signature", reason=RECEIPT_UNSIGNED)
        try:
            verifier.verify_signed_receipt(
                incoming.value, key_id=incoming.key_id, signature=incoming.signature
            )
        except EvidenceError as exc:
            raise Refused(
                f"the signature does not verify ({exc.reason}): {exc.message}",
                reason=RECEIPT_SIGNATURE_INVALID,
            ) from None
        if rec.recipient != incoming.topic_state:
            raise Refused(
                f"a receipt signed for {rec.recipient} came on {incoming.topic_state}'s "
                "receipts topic",
                reason=RECIPIENT_MISMATCH,
            )
        if rec.recipient != track.recipient:
            raise Refused(
                f"{rec.recipient} signed a receipt for a delivery to {track.recipient}",
                reason=RECIPIENT_MISMATCH,
            )
        if rec.notice_id != track.notice_id:
            raise Refused(
                "the receipt names another notice than the delivery carries",
                reason=RECEIPT_NOTICE_MISMATCH,
            )
        if rec.status is not ReceiptStatus.VERIFIED:
            raise Refused(
                f"the recipient reports the delivery did not verify ({rec.status.value})",
                reason=RECEIPT_VERIFICATION_FAILED,
            )
        if not (
            track.decided_at - CLOCK_SKEW_MS <= rec.received_at
            and rec.time <= incoming.arrival_ms + CLOCK_SKEW_MS
        ):
            raise Refused(
                "the receipt's times lie before the delivery was decided or after it arrived",
                reason=RECEIPT_TIME_INVALID,
            )
        if rec.receipt_id in (track.receipt_id, track.answer_receipt_id):
            raise Refused("this receipt was counted already", reason=RECEIPT_REPLAYED)
        moved = _move(track, rec, incoming.arrival_ms)
        self.put(moved)
        return Verdict(track=moved, kind=_kind(rec), receipt_id=rec.receipt_id)

    # --- deadlines -------------------------------------------------------------------------

    def next_due(self) -> int | None:
        """The earliest deadline still to check (a stale one may come first)."""
        return self._due[0][0] if self._due else None

    def escalate(self, now_ms: int) -> list[Escalation]:
        """Every delivery whose deadline has passed at ``now_ms`` without the answer it waited
        for, moved to OVERDUE (``escalated_at`` = ``now_ms``): each only ever once."""
        out: list[Escalation] = []
        while self._due and self._due[0][0] <= now_ms:
            _, digest = heapq.heappop(self._due)
            track = self.tracks.get(digest)
            nxt = track.next_deadline() if track is not None else None
            if track is None or nxt is None:
                continue  # answered, or escalated already: a stale entry
            deadline, missed = nxt
            if deadline > now_ms:
                heapq.heappush(self._due, (deadline, digest))  # moved on to a later clock
                continue
            overdue = self.put(
                replace(track, state=TrackState.OVERDUE, missed=missed, escalated_at=now_ms)
            )
            out.append(Escalation(overdue, missed, deadline))
        return out

    def forget_closed(self, before_ms: int) -> int:
        """Drop from memory the tracks decided before ``before_ms`` that wait on nothing (the
        topic keeps them until its retention); how many were dropped."""
        gone = [d for d, t in self.tracks.items() if t.decided_at < before_ms and not t.open]
        for d in gone:
            t = self.tracks.pop(d)
            if t.state is TrackState.OVERDUE:
                self.overdue[(t.recipient, t.type)] -= 1
        return len(gone)


def _move(track: Track, rec: Receipt, arrival: int) -> Track:
    """The delivery's state after an accepted receipt; :class:`Refused` (RECEIPT_DUPLICATE)
    when its state cannot take it."""
    ack = rec.acknowledgment
    if ack is None:  # a machine receipt
        if track.received_at is not None:
            raise Refused(
                f"the delivery was received already (receipt {track.receipt_id})",
                reason=RECEIPT_DUPLICATE,
            )
        state = TrackState.RECEIVED if track.state is TrackState.DELIVERED else track.state
        return replace(track, state=state, received_at=arrival, receipt_id=rec.receipt_id)
    if track.state in ANSWERED:
        raise Refused(
            f"the delivery was answered already ({track.state.value}, receipt "
            f"{track.answer_receipt_id}); the first answer stands",
            reason=RECEIPT_DUPLICATE,
        )
    declined = ack.decision is AcknowledgmentDecision.DECLINED
    return replace(
        track,
        state=TrackState.DECLINED if declined else TrackState.ACKNOWLEDGED,
        received_at=track.received_at if track.received_at is not None else arrival,
        receipt_id=track.receipt_id or rec.receipt_id,
        answered_at=arrival,
        answer_receipt_id=rec.receipt_id,
        decline_reason=ack.reason_code if declined else None,
        case_reference=ack.case_reference,
    )


def _refuse(reason: str, message: str, rec: Receipt | None = None) -> Verdict:
    return Verdict(
        reason=reason,
        message=message,
        receipt_id=rec.receipt_id if rec is not None else None,
        kind=_kind(rec),
    )


def _kind(rec: Receipt | None) -> str:
    """``receipt`` for a machine receipt, else the acknowledgment's decision."""
    if rec is None:
        return ""
    return "receipt" if rec.acknowledgment is None else rec.acknowledgment.decision.value


_REPORT_NS = uuid.UUID("3d0f8a8e-6a55-4b61-9a0e-5b7c2e9d1f40")


def overdue_reports(
    esc: Escalation, *, registry: Registry, key: SigningKey
) -> list[tuple[str, bytes]]:
    """The signed reports of an escalation, as (addressee, SignedOverdueReport bytes): an
    ESCALATION to the origin (its agency must act by other means) and a REMINDER to the
    recipient, each signed with the origin's node key ``key``. Their ids follow from the
    delivery, so a report made again (after an aborted transaction) is the same report."""
    t = esc.track
    assert t.escalated_at is not None
    out = []
    for kind, addressee in (
        (OverdueKind.ESCALATION, t.origin),
        (OverdueKind.REMINDER, t.recipient),
    ):
        report = OverdueReport(
            report_id=str(uuid.uuid5(_REPORT_NS, f"{t.delivery_id}/{kind.value}")),
            kind=kind,
            addressee=addressee,
            delivery_id=t.delivery_id,
            delivery_digest=t.delivery_digest.hex(),
            notice_id=t.notice_id,
            origin=t.origin,
            recipient=t.recipient,
            type=t.type,
            missed=esc.missed,
            deadline=esc.deadline,
            decided_at=t.decided_at,
            received_at=t.received_at,
            reported_at=t.escalated_at,
            deadline_ids=t.deadline_ids,
            legal_bases=t.legal_bases,
            audit_log_id=t.audit_log_id,
            audit_leaf_index=t.audit_leaf_index,
        )
        out.append((addressee, sign_overdue_report(key, registry, report)))
    return out
