"""The partner state's side: receive, verify, decode, acknowledge.

:class:`Subscriber` consumes ``<prefix>.deliver.<CC>`` as CC's own principal (read_committed,
consumer group ``<prefix>.CC.<name>``), verifies every delivery against the trust list (a
signature or an inclusion proof into a signed batch note — one call either way), decodes the
payload, and sends a signed :class:`DeliveryReceipt` to ``<prefix>.receipts.<CC>``. Offsets are
committed only after the receipt is acknowledged by the broker, so a crash means a delivery is
seen again (at least once; the delivery id makes that idempotent), never lost.

A delivery that fails verification is yielded with ``verified=False``, its reason code, and no
decoded content: it is never shown as valid. Every delivery carries its exact bytes
(``Received.raw``) for third parties who check it with their own tools (docs/evidence.md §4.1).

The subscriber follows the trust list (:class:`~puente.evidence.trustsource.TrustTracker`): it
refreshes it from its sources every ``trust_refresh_s`` (a rotated or revoked key is in force
within one interval), refuses an older list, and checks expiry at every delivery. While it has
no usable list it reads nothing — a delivery is never marked failed for want of a trust list.

Given a :class:`~puente.evidence.finality.FinalityBook`, it also reads the witnesses'
cosignatures and says of each delivery whether, when received, it was ``witnessed`` (covered by
a checkpoint a quorum of other states' witnesses cosigned) or only ``signed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from puente.codec.registry import Registry
from puente.codec.wire import decode, encode
from puente.errors import PuenteError
from puente.evidence.enckeys import KeyRing
from puente.evidence.errors import TrustListError
from puente.evidence.finality import Finality, FinalityBook, add_all
from puente.evidence.keys import SigningKey
from puente.evidence.receipt import DELIVERY_RECEIPT
from puente.evidence.trust import member_holder
from puente.evidence.trustsource import Fetch, TrustTracker, follow
from puente.evidence.verify import VerifiedDelivery, open_verified, sign_receipt
from puente.kafka.clients import consumer, producer, start
from puente.kafka.connection import KafkaEndpoint
from puente.kafka.reading import seek_back, topic_partitions
from puente.logs import get_logger
from puente.secrets import Credential
from puente.topics import (
    COSIGNATURES,
    DELIVER,
    RECEIPT_KEY_ID_HEADER,
    RECEIPT_SIGNATURE_HEADER,
    RECEIPTS,
    Naming,
)

log = get_logger("subscriber")


@dataclass(frozen=True)
class Received:
    """One delivery as the recipient saw it."""

    partition: int
    offset: int
    digest: bytes  # SHA-256 of the signed bytes (verified) or of the raw record (not verified)
    verified: VerifiedDelivery | None
    notice: dict[str, Any] | None  # decoded payload; None unless verified
    error: PuenteError | None = None
    raw: bytes = b""  # the record's value exactly as on Kafka (what a third party verifies)
    # signed or witnessed when it was received (docs/evidence.md §5.5); None: not followed
    finality: Finality | None = None

    @property
    def ok(self) -> bool:
        return self.verified is not None


class Subscriber:
    """Receive one member state's deliveries. Use as ``async with``; iterate :meth:`stream`."""

    def __init__(
        self,
        *,
        endpoint: KafkaEndpoint,
        credential: Credential,
        naming: Naming,
        member: str,
        registry: Registry,
        trust: TrustTracker,
        trust_sources: Sequence[Fetch] = (),
        trust_refresh_s: float = 30.0,
        receipt_key: SigningKey | None,
        keys: KeyRing | None = None,
        name: str = "subscriber",
        finality: FinalityBook | None = None,
        finality_lookback_s: float | None = None,
    ) -> None:
        """``trust``: the tracker deliveries are verified with; ``trust_sources``: where it is
        refreshed from every ``trust_refresh_s`` (e.g. the trust topic, then a file);
        ``finality``: the witnesses' cosignatures are counted into it (read from the
        cosignatures topic as they come, from those written ``finality_lookback_s`` ago — a
        final checkpoint covers every record below it — or None: from the beginning) and each
        delivery says whether it is final."""
        self.endpoint = endpoint
        self.cred = credential
        self.naming = naming
        self.member = member
        self.registry = registry
        self.trust = trust
        self.trust_sources = tuple(trust_sources)
        self.trust_refresh_s = trust_refresh_s
        self.receipt_key = receipt_key
        self.keys = keys  # the member's encryption keys: what opens deliveries sealed to it
        self.group = naming.member_group_prefix(member) + name
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._stop = asyncio.Event()
        self._follower: asyncio.Task[None] | None = None
        self.finality = finality
        self.finality_lookback_s = finality_lookback_s
        self._cosignatures: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Subscriber:
        if self.trust_sources:
            await self.trust.refresh(self.trust_sources)
            self._stop.clear()
            self._follower = asyncio.create_task(
                follow(
                    self.trust,
                    self.trust_sources,
                    interval_s=self.trust_refresh_s,
                    stop=self._stop,
                )
            )
        self._consumer = consumer(
            self.endpoint, self.cred, self.naming.topic(DELIVER, self.member), group_id=self.group
        )
        await start(self._consumer, self.endpoint, self.cred)
        if self.finality is not None:
            self._cosignatures = consumer(self.endpoint, self.cred)
            await start(self._cosignatures, self.endpoint, self.cred)
            tps = await topic_partitions(self._cosignatures, [self.naming.topic(COSIGNATURES)])
            await seek_back(self._cosignatures, tps, self.finality_lookback_s)
        if self.receipt_key is not None:
            self._producer = producer(self.endpoint, self.cred)
            await start(self._producer, self.endpoint, self.cred)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._follower is not None:
            with contextlib.suppress(Exception):
                await self._follower
        if self._producer is not None:
            await self._producer.stop()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._cosignatures is not None:
            await self._cosignatures.stop()

    async def stream(self, *, idle_timeout_s: float | None = None) -> AsyncIterator[Received]:
        """Deliveries in order; ends after ``idle_timeout_s`` without any (None: never)."""
        assert self._consumer is not None, "use `async with Subscriber(...)`"
        idle = 0.0
        while idle_timeout_s is None or idle < idle_timeout_s:
            if not await self._trust_usable():
                continue
            batches = await self._consumer.getmany(timeout_ms=500)
            if not batches:
                idle += 0.5
                continue
            idle = 0.0
            await self._count_cosignatures()
            for tp, messages in batches.items():
                for msg in messages:
                    try:
                        received = self.check(msg.partition, msg.offset, msg.value or b"")
                    except TrustListError:
                        # The list expired mid-batch: read this one again once a newer list
                        # is in force (the commit below stops at it).
                        self._consumer.seek(TopicPartition(tp.topic, tp.partition), msg.offset)
                        break
                    await self._acknowledge(received)
                    yield received
            await self._consumer.commit()

    async def _count_cosignatures(self) -> None:
        """Count the cosignatures that arrived since the last time (without waiting)."""
        if self._cosignatures is None or self.finality is None:
            return
        verifier = self.trust.verifier()
        while batches := await self._cosignatures.getmany(timeout_ms=0):
            values = [m.value for ms in batches.values() for m in ms if m.value is not None]
            refused = add_all(self.finality, values, verifier)
            if refused:
                log.warning("subscriber.cosignatures_refused", member=self.member, count=refused)

    async def _trust_usable(self) -> bool:
        """True when a valid trust list is in force; otherwise refresh it, wait, say False."""
        try:
            self.trust.verifier()
            return True
        except TrustListError as exc:
            log.warning("subscriber.waiting_for_trust_list", member=self.member, reason=exc.reason)
            if self.trust_sources:
                await self.trust.refresh(self.trust_sources)
            await asyncio.sleep(min(self.trust_refresh_s, 5.0))
            return False

    def check(self, partition: int, offset: int, value: bytes) -> Received:
        """Verify and decode one delivery record (pure: no I/O).

        Raises :class:`TrustListError` when no valid trust list is in force: that is not the
        delivery's fault, so it is not reported as a failed delivery."""
        verifier = self.trust.verifier()
        try:
            v = verifier.verify_delivery(value, recipient=self.member)
            plain = open_verified(v, self.keys or KeyRing(member_holder(self.member), ()))
            notice = decode(self.registry, plain)
        except PuenteError as exc:
            log.warning(
                "delivery.unverified",
                member=self.member,
                partition=partition,
                offset=offset,
                reason=exc.reason,
            )
            digest = hashlib.sha256(value).digest()
            return Received(partition, offset, digest, None, None, exc, raw=value)
        finality = None
        if self.finality is not None:
            st = v.statement
            finality = self.finality.finality(st.audit_log_id, st.audit_leaf_index)
        return Received(partition, offset, v.digest, v, notice, raw=value, finality=finality)

    def receipt(self, received: Received, *, now: dt.datetime | None = None) -> bytes:
        """The DeliveryReceipt (single-object bytes) for ``received``."""
        st = received.verified.statement if received.verified else None
        record = {
            "receipt_id": str(uuid.uuid4()),
            "notice_id": st.notice_id if st else str(uuid.UUID(int=0)),
            "recipient": self.member,
            "delivery_digest": received.digest.hex(),
            "log_id": st.audit_log_id if st else None,
            "log_index": st.audit_leaf_index if st else None,
            "status": "VERIFIED" if received.ok else "VERIFICATION_FAILED",
            "received_at": now or dt.datetime.now(dt.UTC),
        }
        return encode(self.registry, DELIVERY_RECEIPT, record)

    async def _acknowledge(self, received: Received) -> None:
        if self._producer is None or self.receipt_key is None:
            return
        data = self.receipt(received)
        signature = sign_receipt(self.receipt_key, data)
        key = received.verified.statement.notice_id.encode() if received.verified else None
        await self._producer.send_and_wait(
            self.naming.topic(RECEIPTS, self.member),
            data,
            key=key,
            headers=[
                (RECEIPT_KEY_ID_HEADER, self.receipt_key.key_id.encode()),
                (RECEIPT_SIGNATURE_HEADER, signature),
            ],
        )
