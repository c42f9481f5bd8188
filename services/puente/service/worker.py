"""The policy service on Kafka: exactly-once consume → process → produce, per input partition.

One consumer group (``<prefix>.svc.policy``) reads every member's ingress topic, read_committed.
aiokafka has no KIP-447, so each input partition gets its own transactional producer, with the
transactional id ``<prefix>.svc.policy.<ORIGIN>.<partition>``: whoever owns a partition fences
every earlier owner of it when its producer starts. One transaction per processed batch covers
the consumed offsets and everything produced for them — deliveries, audit records, checkpoint,
rejections and the partition's state (dedupe ids, audit-log state) in ``<prefix>.state.<ORIGIN>``.

On assignment the new owner fences, then restores the partition's state from its changelog
(the compact Merkle state, never a replay of the log), then seeks to the committed offset. A
failed transaction is aborted, the processor rolled back and the batch read again; a fenced
producer means another instance owns the partition now, so it is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    InvalidTxnState,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from puente.codec.registry import Registry
from puente.config import CHECKPOINT_EVERY, CHECKPOINT_INTERVAL_S, PolicyServiceSettings
from puente.evidence.keys import SigningKey
from puente.evidence.log import LogState
from puente.kafka.clients import consumer, producer, start
from puente.kafka.connection import KafkaEndpoint
from puente.logs import get_logger
from puente.policy.store import PolicyStore
from puente.secrets import Credential
from puente.service import metrics
from puente.service.aggregates import Aggregation
from puente.service.dedupe import SeenIds
from puente.service.processor import (
    STATE_LOG_KEY,
    BatchOutput,
    IngressRecord,
    PartitionProcessor,
    SigningMode,
)
from puente.service.validate import Limits
from puente.topics import AGGREGATES, AUDIT, CHECKPOINTS, INGRESS, REJECTED, STATE, Naming

log = get_logger("policy.service")
_PARTITIONER = DefaultPartitioner()


@dataclass(frozen=True)
class ServiceConfig:
    """How the service batches, signs and checkpoints."""

    mode: SigningMode = SigningMode.BATCH
    max_batch: int = 500
    checkpoint_every: int = CHECKPOINT_EVERY
    checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S
    reload_interval_s: float = 2.0
    takeover_wait_s: float = 30.0  # at shutdown: how long take-overs in flight may finish
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_settings(
        cls, cfg: PolicyServiceSettings, *, mode: SigningMode | str | None = None
    ) -> ServiceConfig:
        """What ``PUENTE_POLICY__*`` configures (``mode`` overrides its signing mode)."""
        return cls(
            mode=SigningMode(mode or cfg.signing_mode),
            max_batch=cfg.max_batch,
            checkpoint_every=cfg.checkpoint_every,
            checkpoint_interval_s=cfg.checkpoint_interval_s,
            reload_interval_s=cfg.reload_interval_s,
            limits=Limits(max_bytes=cfg.max_notice_bytes),
        )


@dataclass
class _Owned:
    """An input partition this instance owns, with its producer and processor."""

    tp: TopicPartition
    origin: str
    producer: AIOKafkaProducer
    processor: PartitionProcessor
    next_offset: int | None = None  # the first offset not yet processed (None: from the start)
    aborts: int = 0  # consecutive aborted transactions


class PolicyService:
    """One instance of the policy service. Run several; they share the partitions."""

    def __init__(
        self,
        *,
        endpoint: KafkaEndpoint,
        credential: Credential,
        naming: Naming,
        registry: Registry,
        policies: PolicyStore,
        key: SigningKey,
        config: ServiceConfig | None = None,
        instance: str = "policy",
        aggregation: Aggregation | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.cred = credential
        self.naming = naming
        self.registry = registry
        self.policies = policies
        self.key = key
        self.config = config or ServiceConfig()
        self.instance = instance
        self.aggregation = aggregation  # early warning (service/aggregates.py); None: off
        self.group = naming.service_group("policy")
        self._owned: dict[TopicPartition, _Owned] = {}
        self._taking: dict[TopicPartition, int] = {}  # partitions being taken over -> generation
        self._generation = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()  # one batch, or one ownership change, at a time
        self._restore_lock = asyncio.Lock()  # the restore consumer reads one set at a time
        self._partition_cache: dict[tuple[int, bytes], int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._restorer: AIOKafkaConsumer | None = None
        self._last_reload = 0.0
        self.ready = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Process until ``stop`` is set; then finish the current batch and leave cleanly."""
        self._reload(force=True)
        self._restorer = consumer(self.endpoint, self.cred, client_id=f"{self.instance}-restore")
        await start(self._restorer, self.endpoint, self.cred)
        self._consumer = consumer(
            self.endpoint,
            self.cred,
            group_id=self.group,
            client_id=self.instance,
            max_poll_records=self.config.max_batch,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            session_timeout_ms=30_000,
            heartbeat_interval_ms=3_000,
        )
        pattern = f"^{re.escape(self.naming.topic_stem_prefix(INGRESS))}[A-Z]{{2}}$"
        self._consumer.subscribe(pattern=pattern, listener=_Listener(self))
        await start(self._consumer, self.endpoint, self.cred)
        log.info("policy.started", instance=self.instance, group=self.group)
        try:
            while not stop.is_set():
                batches = await self._consumer.getmany(
                    timeout_ms=200, max_records=self.config.max_batch
                )
                async with self._lock:
                    self._reload()
                    if batches:
                        await self._process(batches)
                    await self._idle_checkpoints()
                    await self._observe_lag()
                if self._owned:
                    self.ready.set()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        """Leave nothing unsigned: let take-overs in flight finish (a partition restored from a
        killed owner may hold records without a checkpoint), then checkpoint every owned log
        with records waiting, and only then give the partitions up."""
        pending = list(self._tasks)
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.config.takeover_wait_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        async with self._lock:
            with contextlib.suppress(KafkaError):
                await self._checkpoint_all()
            for owned in list(self._owned.values()):
                await self._release(owned)
        if self._consumer is not None:
            await self._consumer.stop()
        if self._restorer is not None:
            await self._restorer.stop()
        log.info("policy.stopped", instance=self.instance)

    # --- partition ownership -----------------------------------------------------------------

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """The group gave us partitions: pause them and take them over in the background.

        The rebalance callback must return quickly — no heartbeat is sent until it does, and a
        take-over of dozens of partitions (a producer each, the changelogs) can outlast the
        session on a loaded machine. The partitions stay paused until they are ready.
        """
        assert self._consumer is not None
        new = [tp for tp in partitions if tp not in self._owned]
        if not new:
            return
        self._generation += 1
        for tp in new:
            self._taking[tp] = self._generation
        self._consumer.pause(*new)
        task = asyncio.create_task(self._take_over(new, self._generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _take_over(self, new: list[TopicPartition], generation: int) -> None:
        """Fence earlier owners, restore each partition's state, seek to its committed offset."""
        assert self._consumer is not None
        consumer_ = self._consumer
        t0 = time.monotonic()
        origins = {tp: self.naming.member_of(tp.topic, INGRESS) for tp in new}
        producers = {tp: self._producer_for(origins[tp], tp.partition) for tp in new}
        try:
            # Starting a transactional producer runs init_transactions, which fences every
            # earlier owner of the partition (and settles its open transaction) before we read.
            await asyncio.gather(*(start(p, self.endpoint, self.cred) for p in producers.values()))
            t_fenced = time.monotonic()
            async with self._restore_lock:
                states = await self._restore([(origins[tp], tp.partition) for tp in new])
            t_restored = time.monotonic()
            # Committed offsets are read after the fence too, so they match the restored state.
            committed = await asyncio.gather(*(consumer_.committed(tp) for tp in new))
            t_positioned = time.monotonic()
        except asyncio.CancelledError:
            await asyncio.gather(*(_stop_quietly(p) for p in producers.values()))
            raise
        except Exception as exc:
            log.error("policy.takeover_failed", count=len(new), error=type(exc).__name__)
            await asyncio.gather(*(_stop_quietly(p) for p in producers.values()))
            self._request_rejoin()
            return
        taken = 0
        async with self._lock:
            for tp, offset in zip(new, committed, strict=True):
                if self._taking.get(tp) != generation or tp not in consumer_.assignment():
                    await _stop_quietly(producers[tp])  # revoked while we were taking it
                    continue
                del self._taking[tp]
                log_state, seen = states[(origins[tp], tp.partition)]
                processor = self._processor(origins[tp], tp, log_state, seen)
                self._owned[tp] = _Owned(tp, origins[tp], producers[tp], processor, offset)
                if offset is None:
                    await consumer_.seek_to_beginning(tp)
                else:
                    consumer_.seek(tp, offset)
                consumer_.resume(tp)
                taken += 1
            metrics.OWNED_PARTITIONS.set(len(self._owned))
        log.info(
            "policy.partitions_assigned",
            count=taken,
            owned=len(self._owned),
            seconds=round(time.monotonic() - t0, 2),
            fence_s=round(t_fenced - t0, 2),
            restore_s=round(t_restored - t_fenced, 2),
            offsets_s=round(t_positioned - t_restored, 2),
        )

    def _request_rejoin(self) -> None:
        """Ask the group for a new assignment (after a fence or a failed take-over).

        aiokafka has no public call for it; without one, a partition we gave up could stay
        unowned until the next rebalance.
        """
        coordinator = getattr(self._consumer, "_coordinator", None)
        if coordinator is not None:
            coordinator.request_rejoin()

    def _producer_for(self, origin: str, partition: int) -> AIOKafkaProducer:
        txn_id = self.naming.transactional_id_prefix("policy") + f"{origin}.{partition}"
        return producer(
            self.endpoint,
            self.cred,
            transactional_id=txn_id,
            client_id=f"{self.instance}-{origin}-{partition}",
            max_batch_size=1024 * 1024,
            linger_ms=2,
        )

    def _processor(
        self, origin: str, tp: TopicPartition, log_state: LogState | None, seen: SeenIds
    ) -> PartitionProcessor:
        feed = None
        if self.aggregation is not None and self._consumer is not None:
            shards = len(self._consumer.partitions_for_topic(tp.topic) or ())
            feed = self.aggregation.feed_for(origin, tp.partition, shards)
        return PartitionProcessor(
            origin=origin,
            partition=tp.partition,
            naming=self.naming,
            registry=self.registry,
            policies=self.policies,
            key=self.key,
            log_state=log_state,
            seen=seen,
            mode=self.config.mode,
            limits=self.config.limits,
            checkpoint_every=self.config.checkpoint_every,
            checkpoint_interval_ms=int(self.config.checkpoint_interval_s * 1000),
            aggregates=feed,
        )

    async def revoke(self, partitions: Iterable[TopicPartition]) -> None:
        """Give partitions up at a batch boundary (the lock waits for the current batch),
        each log checkpointed first: its next owner may get no input for hours."""
        revoked = list(partitions)
        for tp in revoked:
            self._taking.pop(tp, None)  # a take-over in flight will let it go
        async with self._lock:
            mine = [self._owned[tp] for tp in revoked if tp in self._owned]
            with contextlib.suppress(KafkaError):
                await self._checkpoint_all(mine)
            still = [owned for owned in mine if owned.tp in self._owned]  # not released on failure
            await asyncio.gather(*(self._release(owned) for owned in still))
            if mine:
                log.info("policy.partitions_revoked", count=len(mine), owned=len(self._owned))
            metrics.OWNED_PARTITIONS.set(len(self._owned))

    async def _release(self, owned: _Owned) -> None:
        self._owned.pop(owned.tp, None)
        await _stop_quietly(owned.producer)
        log.debug("policy.partition_released", topic=owned.tp.topic, partition=owned.tp.partition)

    async def _restore(
        self, partitions: list[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[LogState | None, SeenIds]]:
        """Read the partitions' changelogs to their ends (read_committed, after the fence): the
        audit log's state, and the accepted notice ids (tombstoned ones forgotten)."""
        assert self._restorer is not None
        tps = {TopicPartition(self.naming.topic(STATE, o), p): (o, p) for o, p in partitions}
        self._restorer.assign(list(tps))
        await self._restorer.seek_to_beginning(*tps)
        ends = await self._restorer.end_offsets(list(tps))
        horizon = self.config.limits.dedupe_horizon_ms
        out: dict[tuple[str, int], tuple[LogState | None, SeenIds]] = {
            key: (None, SeenIds(horizon)) for key in tps.values()
        }
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            got = await self._restorer.getmany(*remaining, timeout_ms=1000)
            for tp, messages in got.items():
                log_state, seen = out[tps[tp]]
                for msg in messages:
                    key = msg.key or b""
                    if key == STATE_LOG_KEY and msg.value is not None:
                        log_state = LogState.decode(self.registry, msg.value)
                    elif self.aggregation is None or not self.aggregation.restored(
                        *tps[tp], key, msg.value
                    ):
                        seen.restore(key, msg.value, msg.timestamp)
                out[tps[tp]] = (log_state, seen)
            for tp in list(remaining):
                if await self._restorer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        self._restorer.unsubscribe()
        return out

    # --- processing --------------------------------------------------------------------------

    def _reload(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_reload < self.config.reload_interval_s:
            return
        self._last_reload = now
        result = self.policies.reload()
        if result.error is not None:
            metrics.POLICY_RELOADS.labels("refused").inc()
            log.error(
                "policy.reload_refused",
                reason=result.error.reason,
                error=str(result.error),
                active_version=result.version,
            )
        elif result.changed:
            metrics.POLICY_RELOADS.labels("activated").inc()
            metrics.POLICY_SET.info({"version": result.version or ""})
            log.info("policy.reloaded", version=result.version)

    async def _process(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Process each partition's batch in a worker thread, committing each as soon as it is
        ready. The thread keeps the event loop free for heartbeats and in-flight commits: a
        batch can take seconds of CPU, longer than a group session tolerates."""
        t0 = time.perf_counter()
        now = dt.datetime.now(dt.UTC)
        commits = []
        for tp, messages in batches.items():
            owned = self._owned.get(tp)
            if owned is None:
                continue  # not ours, or still being taken over
            records = [
                IngressRecord(tp.topic, tp.partition, m.offset, m.key, m.value)
                for m in messages
                if owned.next_offset is None or m.offset >= owned.next_offset
            ]
            if not records:
                continue  # fetched before our seek: already processed by whoever owned it
            output = await asyncio.to_thread(owned.processor.process, records, now)
            commits.append(
                asyncio.create_task(self._commit(owned, output, first_offset=records[0].offset))
            )
        results = await asyncio.gather(*commits)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - t0)
        for done in results:
            if done is None:
                continue
            for outcome, n in done.outcomes.items():
                metrics.NOTICES.labels(done.origin, outcome).inc(n)
            for (action, reason), n in done.decisions.items():
                metrics.DECISIONS.labels(action, reason).inc(n)

    async def _commit(
        self, owned: _Owned, out: BatchOutput, *, first_offset: int | None
    ) -> BatchOutput | None:
        """Produce ``out`` and the consumed offsets in one transaction.

        On failure the transaction is aborted, the processor rolled back and the batch read
        again. A fenced (or otherwise dead) producer means the partition may belong to another
        instance now: it is released here and the group asked for a fresh assignment.
        """
        prod = owned.producer
        try:
            await prod.begin_transaction()
            await self._produce(owned, out)
            if out.next_offset is not None:
                await prod.send_offsets_to_transaction(
                    {owned.tp: OffsetAndMetadata(out.next_offset, "")}, self.group
                )
            await prod.commit_transaction()
        except Exception as exc:
            unusable = isinstance(exc, _PRODUCER_STATE_ERRORS) or not await _abort(prod)
            owned.processor.rollback()
            owned.aborts += 1
            if unusable or owned.aborts >= MAX_ABORTS:
                # Fenced, or a producer whose epoch or sequence state the brokers no longer
                # accept (aiokafka, unlike the Java client, keeps such a producer "usable" and
                # every retry fails the same way). Release the partition; taking it over again
                # starts a new producer, whose init_transactions bumps the epoch and resets the
                # sequences (or finds that another instance owns the partition now).
                fenced = isinstance(exc, ProducerFenced)
                metrics.TRANSACTIONS.labels("fenced" if fenced else "replaced").inc()
                log.warning(
                    "policy.fenced" if fenced else "policy.producer_replaced",
                    topic=owned.tp.topic,
                    partition=owned.tp.partition,
                    error=type(exc).__name__,
                    aborts=owned.aborts,
                )
                await self._release(owned)
                self._request_rejoin()
                return None
            metrics.TRANSACTIONS.labels("aborted").inc()
            log.error(
                "policy.transaction_aborted",
                topic=owned.tp.topic,
                partition=owned.tp.partition,
                error=type(exc).__name__,
            )
            if first_offset is not None and self._consumer is not None:
                self._consumer.seek(owned.tp, first_offset)
            await asyncio.sleep(0.5)
            return None
        metrics.TRANSACTIONS.labels("committed").inc()
        owned.aborts = 0
        if out.next_offset is not None:
            owned.next_offset = out.next_offset
        return out

    async def _produce(self, owned: _Owned, out: BatchOutput) -> None:
        p = owned.producer
        part = owned.tp.partition
        batches: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = defaultdict(list)
        for dtopic, dkey, dvalue in out.deliveries:
            batches[(dtopic, await self._partition_for(p, dtopic, dkey))].append((dkey, dvalue))
        audit_topic = self.naming.topic(AUDIT, owned.origin)
        batches[(audit_topic, part)].extend((None, v) for v in out.audit)
        state_topic = self.naming.topic(STATE, owned.origin)
        batches[(state_topic, part)].extend(out.state)
        for ckey, cvalue in out.checkpoints:
            topic = self.naming.topic(CHECKPOINTS)
            batches[(topic, await self._partition_for(p, topic, ckey))].append((ckey, cvalue))
        for rkey, rvalue in out.rejections:
            topic = self.naming.topic(REJECTED, owned.origin)
            batches[(topic, await self._partition_for(p, topic, rkey))].append((rkey, rvalue))
        sends = []
        for (topic, partition), items in batches.items():
            if not items:
                continue
            builder = p.create_batch()
            for key, value in items:
                if builder.append(key=key, value=value, timestamp=None) is None:
                    sends.append(await p.send_batch(builder, topic, partition=partition))
                    builder = p.create_batch()
                    builder.append(key=key, value=value, timestamp=None)
            sends.append(await p.send_batch(builder, topic, partition=partition))
        for akey, avalue, headers in out.aggregates:  # early warning: one partition, in order
            topic = self.naming.topic(AGGREGATES)
            sends.append(await p.send(topic, avalue, key=akey, headers=headers, partition=0))
        if sends:
            await asyncio.gather(*sends)

    async def _partition_for(self, p: AIOKafkaProducer, topic: str, key: bytes) -> int:
        """Kafka's default partition for ``key`` (murmur2, as the Java client): the same key
        goes to the same partition of every topic with as many partitions."""
        partitions = sorted(await p.partitions_for(topic))
        cache_key = (len(partitions), key)
        found = self._partition_cache.get(cache_key)
        if found is None:
            found = int(_PARTITIONER(key, partitions, partitions))
            if len(self._partition_cache) > 100_000:
                self._partition_cache.clear()
            self._partition_cache[cache_key] = found
        return found

    async def _idle_checkpoints(self) -> None:
        """Checkpoint logs whose records have waited the checkpoint interval, even when no
        input arrives. Checked at every turn of the loop (a few comparisons per owned
        partition), so a record waits at most the interval plus one turn."""
        await self._checkpoint_all(only_due=True)

    async def _checkpoint_all(
        self, owned_logs: Iterable[_Owned] | None = None, *, only_due: bool = False
    ) -> None:
        """Sign a checkpoint for each given owned log (default: all) with records waiting;
        with ``only_due``, only for those whose interval or record count has been reached."""
        ts = dt.datetime.now(dt.UTC)
        now_ms = int(ts.timestamp() * 1000)
        work = []
        for owned in list(self._owned.values() if owned_logs is None else owned_logs):
            proc = owned.processor
            windows = proc.windows_due(now_ms)  # early-warning windows to publish, even if idle
            if proc.log.size == proc.log.checkpoint_size and not windows:
                continue  # nothing new since the last checkpoint
            if only_due and not windows and not proc.checkpoint_due(now_ms):
                continue
            out = proc.process([], ts, force_checkpoint=True)
            work.append(self._commit(owned, out, first_offset=None))
        await asyncio.gather(*work)

    async def _observe_lag(self) -> None:
        assert self._consumer is not None
        now_ms = time.time() * 1000
        for owned in list(self._owned.values()):
            proc = owned.processor
            pending = proc.log.size > proc.log.checkpoint_size
            age = (now_ms - proc.last_checkpoint_ms) / 1000 if pending else 0.0
            metrics.CHECKPOINT_AGE.labels(proc.log_id).set(max(0.0, age))
        for tp in list(self._owned):
            stable = self._consumer.last_stable_offset(tp)
            if stable is None:
                continue  # nothing fetched yet for this partition
            position = await self._consumer.position(tp)
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, stable - position))


# Errors after which a transactional producer cannot go on: its id, epoch or sequence numbers are
# no longer what the brokers expect (e.g. OutOfOrderSequenceNumber after a leader failover).
_PRODUCER_STATE_ERRORS = (
    ProducerFenced,
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    InvalidTxnState,
)
MAX_ABORTS = 3  # consecutive aborted transactions of one partition before its producer is replaced


async def _abort(prod: AIOKafkaProducer) -> bool:
    """Abort the open transaction; False if the producer can no longer do so (fenced, fatal)."""
    try:
        await prod.abort_transaction()
    except Exception:  # aiokafka raises assertion errors from a fatal state, not KafkaErrors
        return False
    return True


async def _stop_quietly(prod: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        await prod.stop()


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: PolicyService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.service.revoke(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.service.assign(assigned)
