"""Helpers for the receipt tracker's tests on the real broker: a clock the test moves, MX's
deliveries as its node's audit records, receipts as each recipient's principal sends them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from prometheus_client import REGISTRY

from puente.evidence._time import now_ms
from puente.evidence.keys import SigningKey
from puente.evidence.overdue import OverdueReport
from puente.evidence.receipt import Acknowledgment, AcknowledgmentDecision, Receipt
from puente.evidence.records import AuditDecision, AuditRecord, DeliveryDeadlines
from puente.evidence.trust import Usage, member_holder
from puente.evidence.verify import sign_receipt
from puente.kafka.clients import producer, start
from puente.receipts.track import Track, TrackState
from puente.receipts.tracker import ReceiptTracker, TrackerConfig
from puente.service.nodekeys import StoreKeys
from puente.topics import AUDIT, OVERDUE, RECEIPT_KEY_ID_HEADER, RECEIPT_SIGNATURE_HEADER, RECEIPTS
from tests.integration.service.support import ALL_MEMBERS, Deployment, read_topic

HOUR = 3_600_000


class ManualClock:
    """The tracker's clock, moved by the test (starts at the real time)."""

    def __init__(self) -> None:
        self.now = now_ms()

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


@dataclass
class Sent:
    """A delivery of MX, as its audit record says it was sent."""

    record: AuditRecord

    @property
    def digest(self) -> bytes:
        assert self.record.delivery_digest is not None
        return self.record.delivery_digest

    @property
    def recipient(self) -> str:
        assert self.record.recipient is not None
        return self.record.recipient


class Deliveries:
    """MX's node's audit log, written by the test as MX's node principal (what the tracker
    reads; the node itself is tested elsewhere)."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.leaf = 0

    def make(
        self,
        recipient: str,
        *,
        receive_in: int | None = 2 * HOUR,
        acknowledge_in: int | None = 24 * HOUR,
        decided_at: int | None = None,
    ) -> Sent:
        decided = now_ms() if decided_at is None else decided_at
        notice_id = str(uuid.uuid4())
        self.leaf += 1
        return Sent(
            AuditRecord(
                decided_at=decided,
                ingress_topic=self.dep.tenant.topic(AUDIT, "MX"),
                ingress_partition=0,
                ingress_offset=self.leaf,
                origin="MX",
                decision=AuditDecision.DELIVERED,
                original_sha256=hashlib.sha256(notice_id.encode()).digest(),
                notice_id=notice_id,
                notice_schema="puente.ConsularNotification",
                recipient=recipient,
                delivered_sha256=hashlib.sha256(b"p" + notice_id.encode()).digest(),
                delivery_id=str(uuid.uuid4()),
                delivery_digest=hashlib.sha256(b"d" + notice_id.encode()).digest(),
                deadlines=DeliveryDeadlines(
                    type="ConsularNotification/DEATH",
                    receive_by=None if receive_in is None else decided + receive_in,
                    acknowledge_by=None if acknowledge_in is None else decided + acknowledge_in,
                    deadline_ids=("deadline.vccr.37-death",),
                    legal_bases=("Vienna Convention on Consular Relations (1963), Art. 37(a)",),
                ),
                log_id=f"{self.dep.tenant.naming.prefix}.audit/MX/0",
                leaf_index=self.leaf,
            )
        )

    async def send(self, *sent: Sent) -> None:
        cred = self.dep.tenant.node("MX")
        p = producer(self.dep.tenant.endpoint, cred)
        await start(p, self.dep.tenant.endpoint, cred)
        try:
            topic = self.dep.tenant.topic(AUDIT, "MX")
            for s in sent:
                await p.send_and_wait(topic, s.record.encode(self.dep.registry), partition=0)
        finally:
            await p.stop()


def receipt_key(dep: Deployment, member: str) -> SigningKey:
    return dep.evidence.store.current(member_holder(member), usage=Usage.RECEIPT, at=now_ms())


def receipt(
    dep: Deployment,
    sent: Sent,
    *,
    by: str | None = None,
    answer: AcknowledgmentDecision | None = None,
    reason: str | None = None,
    receipt_id: str | None = None,
) -> Receipt:
    """A receipt of ``sent`` as ``by`` (default: its recipient) makes it now."""
    now = now_ms()
    return Receipt(
        receipt_id=receipt_id or str(uuid.uuid4()),
        notice_id=sent.record.notice_id or "",
        recipient=by or sent.recipient,
        delivery_digest=sent.digest.hex(),
        log_id=sent.record.log_id,
        log_index=sent.record.leaf_index,
        received_at=now - 1000,
        acknowledgment=None
        if answer is None
        else Acknowledgment(decision=answer, acknowledged_at=now, reason_code=reason),
    )


async def send_receipt(
    dep: Deployment,
    rec: Receipt,
    *,
    topic_state: str | None = None,
    key: SigningKey | None = None,
    signed: bool = True,
    data: bytes | None = None,
) -> None:
    """Produce a receipt to ``topic_state``'s receipts topic (default: its recipient's) as that
    state's own principal, signed with ``key`` (default: the state's receipt key)."""
    state = topic_state or rec.recipient
    value = data if data is not None else rec.encode(dep.registry)
    signer = key or receipt_key(dep, rec.recipient)
    headers = (
        [
            (RECEIPT_KEY_ID_HEADER, signer.key_id.encode()),
            (RECEIPT_SIGNATURE_HEADER, sign_receipt(signer, value)),
        ]
        if signed
        else []
    )
    cred = dep.tenant.member(state)
    p = producer(dep.tenant.endpoint, cred)
    await start(p, dep.tenant.endpoint, cred)
    try:
        await p.send_and_wait(
            dep.tenant.topic(RECEIPTS, state), value, key=rec.notice_id.encode(), headers=headers
        )
    finally:
        await p.stop()


def tracker(dep: Deployment, clock: ManualClock, *, instance: str = "t1") -> ReceiptTracker:
    """MX's tracker as MX's tracker principal, its node keys from the deployment's store."""
    return ReceiptTracker(
        origin="MX",
        endpoint=dep.tenant.endpoint,
        credential=dep.tenant.tracker("MX"),
        naming=dep.tenant.naming,
        registry=dep.registry,
        members=ALL_MEMBERS,
        keys=StoreKeys(dep.evidence.store, "MX"),
        trust=dep.trust(),
        clock=clock,
        config=TrackerConfig(poll_s=0.1),
        instance=instance,
    )


@contextlib.asynccontextmanager
async def running(t: ReceiptTracker) -> AsyncIterator[ReceiptTracker]:
    stop = asyncio.Event()
    task = asyncio.create_task(t.run(stop))
    try:
        await asyncio.wait_for(t.ready.wait(), 120)
        yield t
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def until(check: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Wait for ``check`` (a condition, never a fixed time)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def turns(t: ReceiptTracker, n: int) -> None:
    """Let the tracker's loop turn ``n`` more times (each a poll, and a deadline check)."""
    target = t.turns + n
    await until(lambda: t.turns >= target, f"{n} turns of the tracker")


def state_of(t: ReceiptTracker, sent: Sent) -> TrackState | None:
    track = t.book.tracks.get(sent.digest)
    return None if track is None else track.state


def track_of(t: ReceiptTracker, sent: Sent) -> Track:
    return t.book.tracks[sent.digest]


async def reports(dep: Deployment, addressee: str) -> list[OverdueReport]:
    """Every overdue report on ``addressee``'s overdue topic (read as that state), verified."""
    verifier = dep.verifier()
    values = await read_topic(dep, dep.tenant.topic(OVERDUE, addressee), addressee, idle_s=1.5)
    return [verifier.verify_overdue_report(v) for _, v in values]


def refused(origin: str, recipient: str, reason: str) -> float:
    """The tracker's refusal counter (process-wide, so tests compare before and after)."""
    value = REGISTRY.get_sample_value(
        "puente_receipts_refused_total",
        {"origin": origin, "recipient": recipient, "reason": reason},
    )
    return value or 0.0
