"""A state's receipt tracker on Kafka: deliveries joined with receipts, deadlines run, exactly once.

``puente serve receipts --as CC`` runs CC's tracker: its own principal
(``<prefix>-tracker-cc``) reads CC's audit log (``audit.CC``: every delivery CC's node sent,
with its deadlines) and every recipient's receipts topic, and keeps each delivery's state
(:class:`~puente.receipts.track.TrackBook`). Each turn of its loop is one Kafka transaction:
the tracks it changed (``tracker.CC``, and ``due.<recipient>`` for the recipient to see), the
signed overdue reports of the deliveries that went overdue (``overdue.CC`` and
``overdue.<recipient>``) and its read positions (its consumer group ``<prefix>.tracker.CC``).
A restart reads ``tracker.CC`` back to its end and resumes at the committed positions: no
receipt is counted twice, no escalation sent twice. A second instance fences the first (one
transactional id per state).

Order matters twice. A receipt is judged only once every audit record committed before it was
read (the audit topic is read up to its end offsets sampled after the receipts were fetched),
so a receipt never looks like one for an unknown delivery because its delivery's record was
not read yet. And a deadline is escalated only when every input is read up to end offsets
sampled at that time, so a receipt that arrived in time is never overlooked.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from puente.codec.errors import DecodeError
from puente.codec.registry import Registry
from puente.errors import PuenteError
from puente.evidence.errors import TrustListError
from puente.evidence.records import AuditRecord
from puente.evidence.trustsource import Fetch, TrustTracker
from puente.evidence.verify import Verifier
from puente.kafka.connection import KafkaEndpoint
from puente.kafka.reading import caught_up, read_to_end, resume, topic_partitions
from puente.kafka.session import SessionService
from puente.logs import get_logger
from puente.receipts import metrics
from puente.receipts.clock import Clock
from puente.receipts.track import (
    Escalation,
    Incoming,
    Track,
    TrackBook,
    overdue_reports,
)
from puente.receipts.view import decode_tracks
from puente.secrets import Credential
from puente.service.nodekeys import NodeKeys
from puente.service.outbox import Batches, default_partition, send_batches
from puente.topics import (
    AUDIT,
    DUE,
    OVERDUE,
    RECEIPT_KEY_ID_HEADER,
    RECEIPT_SIGNATURE_HEADER,
    RECEIPTS,
    TRACKER,
    Naming,
)

log = get_logger("receipts.tracker")


@dataclass(frozen=True)
class TrackerConfig:
    """How a tracker polls and recovers (``PUENTE_RECEIPTS__*``)."""

    poll_s: float = 0.2  # longest wait for input: bounds the delay of an escalation
    max_batch: int = 2000  # records per poll
    trust_refresh_s: float = 10.0
    retry_s: float = 2.0  # after a failed transaction, before restoring and resuming
    # How long a delivery no deadline runs for any more (answered, overdue and escalated, or
    # without deadlines) stays in memory after its decision, for late duplicates and replays
    # to be recognised; the tracker topic keeps it for TRACK_RETENTION_MS either way.
    keep_closed_ms: int = 30 * 86_400_000
    forget_every: int = 3000  # turns between two sweeps of the closed ones (10 min at 0.2 s)


class TrackerFenced(PuenteError):
    """Another instance of this state's tracker started: this one stops."""

    reason = "TRACKER_FENCED"


class ReceiptTracker(SessionService):
    """State ``origin``'s receipt tracker. Run one per state (a second one fences the first)."""

    fenced = TrackerFenced
    config: TrackerConfig

    def __init__(
        self,
        *,
        origin: str,
        endpoint: KafkaEndpoint,
        credential: Credential,
        naming: Naming,
        registry: Registry,
        members: Sequence[str],
        keys: NodeKeys,
        trust: TrustTracker,
        trust_sources: Sequence[Fetch] = (),
        clock: Clock,
        config: TrackerConfig | None = None,
        instance: str = "tracker",
    ) -> None:
        """``keys``: the origin's node keys (overdue reports are signed as its node);
        ``trust``: the trust list receipts are verified with, refreshed from
        ``trust_sources``; ``clock``: the tracker's now (Unix ms)."""
        self.origin = origin
        self.endpoint = endpoint
        self.cred = credential
        self.naming = naming
        self.registry = registry
        self.members = tuple(members)
        self.keys = keys
        self.trust = trust
        self.trust_sources = tuple(trust_sources)
        self.clock = clock
        self.config = config or TrackerConfig()
        self.instance = instance
        self.client_id = f"{instance}-{origin}"
        self.group = naming.tracker_group(origin)
        self.book = TrackBook(origin, registry)
        self.ready = asyncio.Event()  # restored and caught up with its inputs once
        # A pending escalation check: the inputs' end offsets sampled at a time of the clock.
        self._check: tuple[dict[TopicPartition, int], int] | None = None
        self._partitions: dict[str, list[int]] = {}  # topic -> its partitions (metadata)
        self.commits = 0  # transactions committed
        self.turns = 0  # turns of the loop (each a poll, and a deadline check when one is due)

    # --- lifecycle ---------------------------------------------------------------------------

    def _failed(self, exc: Exception) -> None:
        metrics.TRANSACTIONS.labels(self.origin, "failed").inc()
        log.error(
            "receipts.session_failed",
            origin=self.origin,
            error=type(exc).__name__,
            reason=getattr(exc, "reason", None),
        )

    async def _restore(self, reader: AIOKafkaConsumer) -> None:
        """The book as the last committed transaction left it (``tracker.<origin>``)."""
        own = self.naming.topic(TRACKER, self.origin)
        newest = await read_to_end(reader, await topic_partitions(reader, [own]))
        tracks, bad = decode_tracks(self.registry, (v for _, v, _ in newest.values()))
        self.book = TrackBook(self.origin, self.registry)
        self._check = None
        self.book.restore(tracks)
        self.book.forget_closed(self.clock() - self.config.keep_closed_ms)
        self._publish_gauges()
        log.info(
            "receipts.restored",
            origin=self.origin,
            tracks=len(self.book),
            undecodable=bad,
            overdue=sum(self.book.overdue.values()),
        )

    # --- the loop ----------------------------------------------------------------------------

    async def _loop(self, stop: asyncio.Event, prod: AIOKafkaProducer, c: AIOKafkaConsumer) -> None:
        audit = await topic_partitions(c, [self.naming.topic(AUDIT, self.origin)])
        receipts = await topic_partitions(c, [self.naming.topic(RECEIPTS, m) for m in self.members])
        every = audit + receipts
        await resume(c, every)
        audit_set = set(audit)
        log.info(
            "receipts.started",
            origin=self.origin,
            group=self.group,
            receipts_topics=len(self.members),
        )
        while not stop.is_set():
            fetched = await c.getmany(
                timeout_ms=int(self.config.poll_s * 1000), max_records=self.config.max_batch
            )
            turn = _Turn()
            got_receipts: list[tuple[TopicPartition, ConsumerRecord[bytes, bytes]]] = []
            for tp, messages in fetched.items():
                if tp in audit_set:
                    self._deliveries(tp, messages, turn)
                else:
                    got_receipts += [(tp, m) for m in messages]
            if got_receipts:
                await self._judge(c, audit, got_receipts, turn)
            await self._deadlines(c, every, turn)
            if turn:
                await self._commit(prod, turn)
            if not self.ready.is_set() and await caught_up(c, every):
                self.ready.set()
            self.turns += 1
            if self.turns % self.config.forget_every == 0:
                self.book.forget_closed(self.clock() - self.config.keep_closed_ms)

    def _deliveries(
        self, tp: TopicPartition, messages: list[ConsumerRecord[bytes, bytes]], turn: _Turn
    ) -> None:
        """Start tracking the deliveries the origin's node decided (its audit records)."""
        for m in messages:
            turn.consumed[tp] = m.offset + 1
            try:
                record = AuditRecord.decode(self.registry, m.value or b"")
            except (DecodeError, PuenteError, ValueError, KeyError, TypeError) as exc:
                log.error(
                    "receipts.audit_undecodable",
                    origin=self.origin,
                    partition=tp.partition,
                    offset=m.offset,
                    error=type(exc).__name__,
                )
                continue
            track = self.book.deliver(record)
            if track is not None:
                turn.changed[track.delivery_digest] = track

    async def _judge(
        self,
        c: AIOKafkaConsumer,
        audit: list[TopicPartition],
        got: list[tuple[TopicPartition, ConsumerRecord[bytes, bytes]]],
        turn: _Turn,
    ) -> None:
        """Judge receipts, once every audit record committed before them is read. Without a
        valid trust list nothing is judged: the receipts are read again later."""
        try:
            verifier = self.trust.verifier()
        except TrustListError as exc:
            log.warning("receipts.waiting_for_trust_list", origin=self.origin, reason=exc.reason)
            first: dict[TopicPartition, int] = {}
            for tp, m in got:
                first.setdefault(tp, m.offset)
            for tp, offset in first.items():
                c.seek(tp, offset)
            return
        await self._read_audit_to(c, audit, await c.end_offsets(audit), turn)
        for tp, m in got:
            turn.consumed[tp] = m.offset + 1
            self._one_receipt(tp, m, verifier, turn)

    async def _read_audit_to(
        self,
        c: AIOKafkaConsumer,
        audit: list[TopicPartition],
        ends: dict[TopicPartition, int],
        turn: _Turn,
    ) -> None:
        behind = [tp for tp in audit if await c.position(tp) < ends[tp]]
        while behind:
            got = await c.getmany(*behind, timeout_ms=1000, max_records=self.config.max_batch)
            for tp, messages in got.items():
                self._deliveries(tp, messages, turn)
            behind = [tp for tp in behind if await c.position(tp) < ends[tp]]

    def _one_receipt(
        self,
        tp: TopicPartition,
        m: ConsumerRecord[bytes, bytes],
        verifier: Verifier,
        turn: _Turn,
    ) -> None:
        state = self.naming.member_of(tp.topic, RECEIPTS)
        headers = dict(m.headers or ())
        key_id = headers.get(RECEIPT_KEY_ID_HEADER)
        incoming = Incoming(
            topic_state=state,
            value=m.value or b"",
            key_id=key_id.decode("ascii", "replace") if key_id is not None else None,
            signature=headers.get(RECEIPT_SIGNATURE_HEADER),
            arrival_ms=m.timestamp,
            where=f"{tp.topic}/{tp.partition}/{m.offset}",
        )
        verdict = self.book.judge(incoming, verifier)
        if verdict.track is not None:
            turn.changed[verdict.track.delivery_digest] = verdict.track
            metrics.ACCEPTED.labels(self.origin, state, verdict.kind).inc()
            log.debug(
                "receipts.accepted",
                origin=self.origin,
                recipient=state,
                delivery_id=verdict.track.delivery_id,
                receipt_id=verdict.receipt_id,
                kind=verdict.kind,
                state=verdict.track.state.value,
            )
        elif verdict.reason is not None:
            metrics.REFUSED.labels(self.origin, state, verdict.reason).inc()
            log.warning(
                "receipts.refused",
                origin=self.origin,
                recipient=state,
                receipt_id=verdict.receipt_id,
                reason=verdict.reason,
                error=verdict.message,
                at=incoming.where,
            )

    def _escalate(self, escalations: list[Escalation], now: int, turn: _Turn) -> None:
        """The deliveries that went overdue: their tracks and signed reports, in this turn."""
        if not escalations:
            return
        key = self.keys.signing_key(now)
        for esc in escalations:
            t = esc.track
            turn.changed[t.delivery_digest] = t
            turn.reports += [
                (addressee, t.delivery_id, value)
                for addressee, value in overdue_reports(esc, registry=self.registry, key=key)
            ]
            turn.escalated.append(esc)

    async def _deadlines(self, c: AIOKafkaConsumer, tps: list[TopicPartition], turn: _Turn) -> None:
        """Escalate the deadlines that passed by a time ``t`` once every input is read up to
        the end offsets sampled at ``t``: every receipt that arrived by then was judged. Under
        a steady flow the positions pass those fixed offsets soon, even if never the latest."""
        if self._check is None:
            due = self.book.next_due()
            now = self.clock()
            if due is None or due > now:
                return
            self._check = (await c.end_offsets(tps), now)
        ends, at = self._check
        for tp in tps:
            if await c.position(tp) < ends[tp]:
                return
        self._check = None
        self._escalate(self.book.escalate(at), at, turn)

    async def _commit(self, prod: AIOKafkaProducer, turn: _Turn) -> None:
        """The turn's tracks, reports and read positions, in one transaction."""
        try:
            await prod.begin_transaction()
            await send_batches(prod, await self._batches(prod, turn))
            if turn.consumed:
                offsets = {tp: OffsetAndMetadata(o, "") for tp, o in turn.consumed.items()}
                await prod.send_offsets_to_transaction(offsets, self.group)
            await prod.commit_transaction()
        except ProducerFenced:
            metrics.TRANSACTIONS.labels(self.origin, "fenced").inc()
            log.error("receipts.fenced", origin=self.origin, instance=self.instance)
            raise TrackerFenced(
                f"another instance of {self.origin}'s receipt tracker took over"
            ) from None
        metrics.TRANSACTIONS.labels(self.origin, "committed").inc()
        self.commits += 1
        committed = self.clock()
        for esc in turn.escalated:
            t = esc.track
            metrics.ESCALATIONS.labels(t.origin, t.recipient, t.type).inc()
            metrics.ESCALATION_DELAY.labels(t.origin).observe(
                max(0.0, (committed - esc.deadline) / 1000)
            )
            log.warning(
                "receipts.escalated",
                origin=t.origin,
                recipient=t.recipient,
                delivery_id=t.delivery_id,
                type=t.type,
                missed=esc.missed.value,
            )
        self._publish_gauges()

    async def _batches(self, prod: AIOKafkaProducer, turn: _Turn) -> Batches:
        """The turn's records by (topic, partition): each track to the origin's tracker topic
        and the recipient's due topic, each report to its addressee's overdue topic, all keyed
        by delivery id (Kafka's default partition of the key: compaction keeps one per key)."""
        batches: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = defaultdict(list)
        placed: dict[tuple[int, bytes], int] = {}  # (partition count, key) -> partition

        async def put(topic: str, key: bytes, value: bytes) -> None:
            parts = self._partitions.get(topic)
            if parts is None:
                parts = self._partitions[topic] = sorted(await prod.partitions_for(topic))
            partition = placed.get((len(parts), key))
            if partition is None:
                partition = placed[(len(parts), key)] = default_partition(key, parts)
            batches[(topic, partition)].append((key, value))

        for t in turn.changed.values():
            key, value = t.delivery_id.encode(), t.encode(self.registry)
            await put(self.naming.topic(TRACKER, t.origin), key, value)
            await put(self.naming.topic(DUE, t.recipient), key, value)
        for addressee, delivery_id, value in turn.reports:
            await put(self.naming.topic(OVERDUE, addressee), delivery_id.encode(), value)
        return batches

    def _publish_gauges(self) -> None:
        metrics.TRACKED.labels(self.origin).set(len(self.book))
        for (recipient, type_), n in self.book.overdue.items():
            metrics.OVERDUE.labels(self.origin, recipient, type_).set(n)


class _Turn:
    """What one turn of the loop changed and read."""

    def __init__(self) -> None:
        self.changed: dict[bytes, Track] = {}  # by delivery digest: the newest state
        self.reports: list[tuple[str, str, bytes]] = []  # (addressee, delivery id, report)
        self.escalated: list[Escalation] = []
        self.consumed: dict[TopicPartition, int] = {}  # next offset to read

    def __bool__(self) -> bool:
        return bool(self.changed or self.reports or self.consumed)
