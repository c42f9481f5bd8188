"""A small federation for the receipt tracker's pure core: MX's node key (it signs overdue
reports), receipt keys of GT, HN and US, a trust list of them, and deliveries of MX as its
node's audit records."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

import pytest

from puente.codec.registry import Registry
from puente.config import Settings
from puente.evidence.keys import SigningKey
from puente.evidence.receipt import Acknowledgment, AcknowledgmentDecision, Receipt, ReceiptStatus
from puente.evidence.records import AuditDecision, AuditRecord, DeliveryDeadlines
from puente.evidence.trust import KeyEntry, TrustList, Usage, member_holder, node_holder
from puente.evidence.verify import Verifier, sign_receipt
from puente.receipts.track import Incoming, Track, TrackBook

HOUR = 3_600_000
T0 = 1_790_000_000_000  # the deliveries' decision time (Unix ms, 2026)
RECIPIENTS = ("GT", "HN", "US")


@dataclass
class World:
    registry: Registry
    node_key: SigningKey  # MX's node key
    receipt_keys: dict[str, SigningKey]  # member -> its receipt key
    verifier: Verifier
    stranger: SigningKey = field(default_factory=lambda: SigningKey.generate("puente.stranger"))
    _leaf: int = 0

    def book(self) -> TrackBook:
        return TrackBook("MX", self.registry)

    def delivery(
        self,
        recipient: str = "GT",
        *,
        receive_in: int | None = 2 * HOUR,
        acknowledge_in: int | None = 24 * HOUR,
        decided_at: int = T0,
        origin: str = "MX",
        decision: AuditDecision = AuditDecision.DELIVERED,
    ) -> AuditRecord:
        """MX's node's audit record of a ConsularNotification/DEATH delivery to ``recipient``
        with these deadlines (None: no such clock; both None: no deadlines at all)."""
        notice_id = str(uuid.uuid4())
        self._leaf += 1
        sent = decision in (AuditDecision.DELIVERED, AuditDecision.TRANSFORMED)
        deadlines = None
        if sent and (receive_in is not None or acknowledge_in is not None):
            deadlines = DeliveryDeadlines(
                type="ConsularNotification/DEATH",
                receive_by=None if receive_in is None else decided_at + receive_in,
                acknowledge_by=None if acknowledge_in is None else decided_at + acknowledge_in,
                deadline_ids=("deadline.vccr.37-death",),
                legal_bases=("VCCR Art. 37(a)",),
            )
        return AuditRecord(
            decided_at=decided_at,
            ingress_topic=f"puente.ingress.{origin}",
            ingress_partition=0,
            ingress_offset=self._leaf,
            origin=origin,
            decision=decision,
            original_sha256=hashlib.sha256(notice_id.encode()).digest(),
            notice_id=notice_id,
            notice_schema="puente.ConsularNotification",
            recipient=recipient,
            delivered_sha256=hashlib.sha256(b"p" + notice_id.encode()).digest() if sent else None,
            delivery_id=str(uuid.uuid5(uuid.NAMESPACE_URL, notice_id)) if sent else None,
            delivery_digest=hashlib.sha256(b"d" + notice_id.encode()).digest() if sent else None,
            deadlines=deadlines,
            log_id=f"puente.audit/{origin}/0",
            leaf_index=self._leaf,
        )

    def receipt(
        self,
        track: Track,
        *,
        at: int,
        by: str | None = None,
        answer: AcknowledgmentDecision | None = None,
        reason: str | None = None,
        case_reference: str | None = None,
        topic_state: str | None = None,
        key: SigningKey | None = None,
        signed: bool = True,
        receipt_id: str | None = None,
        notice_id: str | None = None,
        received_at: int | None = None,
        status: ReceiptStatus = ReceiptStatus.VERIFIED,
    ) -> Incoming:
        """A receipt of ``track`` signed by ``by`` (default: its recipient) that reaches
        Puente at ``at`` on ``topic_state``'s receipts topic (default: ``by``'s)."""
        by = by or track.recipient
        ack = (
            None
            if answer is None
            else Acknowledgment(
                decision=answer,
                acknowledged_at=at - 500,
                reason_code=reason,
                case_reference=case_reference,
            )
        )
        rec = Receipt(
            receipt_id=receipt_id or str(uuid.uuid4()),
            notice_id=notice_id or track.notice_id,
            recipient=by,
            delivery_digest=track.delivery_digest.hex(),
            log_id=track.audit_log_id,
            log_index=track.audit_leaf_index,
            received_at=at - 1000 if received_at is None else received_at,
            status=status,
            acknowledgment=ack,
        )
        data = rec.encode(self.registry)
        signer = key or self.receipt_keys.get(by) or self.stranger
        return Incoming(
            topic_state=topic_state or by,
            value=data,
            key_id=signer.key_id if signed else None,
            signature=sign_receipt(signer, data) if signed else None,
            arrival_ms=at,
        )


def make_world() -> World:
    settings = Settings()
    registry = Registry.load(settings.schemas_dir)
    root = SigningKey.generate("puente.operator/root")
    node = SigningKey.generate("puente.node/MX")
    receipt_keys = {m: SigningKey.generate(f"puente.member/{m}") for m in RECIPIENTS}
    since = T0 - 400 * 24 * HOUR
    tl = TrustList(
        1,
        since,
        T0 + 400 * 24 * HOUR,
        (
            KeyEntry(node.public, node_holder("MX"), frozenset({Usage.DELIVERY}), since),
            *(
                KeyEntry(k.public, member_holder(m), frozenset({Usage.RECEIPT}), since)
                for m, k in receipt_keys.items()
            ),
        ),
    )
    opened = TrustList.open(tl.sign(root), [root.public], now=T0)
    return World(registry, node, receipt_keys, Verifier(trust_list=opened, registry=registry))


@pytest.fixture(scope="session")
def world() -> World:
    return make_world()
