"""A member state's node on Kafka: exactly-once consume → process → produce, per input partition.

Each member state CC runs its own node (``puente serve node --as CC``): its own principal
(``<prefix>-node-cc``), its own consumer group (``<prefix>.node.CC``) reading only
``<prefix>.ingress.CC``, read_committed, and its own transactional ids. It opens what CC's
agencies sealed to its node key, decides under CC's policy and the regional floor pinned in the
trust list, seals each delivery to its recipient and signs with CC's node key. One transaction
per processed batch covers the consumed offsets and everything produced for them — deliveries,
audit records, checkpoint, rejections and the partition's state (dedupe ids, audit-log state) in
``<prefix>.state.CC``. Several instances of one node share its partitions; one process may host
the nodes of several states (:func:`run_nodes`, the embedded default hosts all twenty).

This module is the loop: poll, process each partition's batch, commit it, checkpoint idle logs,
reload policies. Its rooms: ``takeover.py`` (owning partitions: fence, restore, position, give
up), ``changelog.py`` (a partition's state read back), ``outbox.py`` (a batch's output produced
in one transaction) and ``commit.py`` (what a failed transaction leads to: retry, replace the
producer, or release the partition).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from puente.codec.registry import Registry
from puente.config import CHECKPOINT_EVERY, CHECKPOINT_INTERVAL_S, PolicyServiceSettings
from puente.errors import ConfigError, PuenteError
from puente.evidence.trustsource import Fetch, TrustTracker, follow
from puente.kafka.clients import consumer, start
from puente.kafka.connection import KafkaEndpoint
from puente.logs import get_logger
from puente.policy.engine import PolicySet
from puente.policy.store import PolicyStore
from puente.secrets import Credential
from puente.service import metrics
from puente.service.aggregates import Aggregation
from puente.service.changelog import Changelog, PartitionState
from puente.service.combine import ShardCombiner
from puente.service.commit import Step
from puente.service.nodekeys import NodeKeys, TrustSealer
from puente.service.outbox import Outbox
from puente.service.processor import BatchOutput, IngressRecord, PartitionProcessor, SigningMode
from puente.service.takeover import Listener, Owned, TakeOver
from puente.service.validate import Limits
from puente.topics import INGRESS, Naming

log = get_logger("policy.service")


@dataclass(frozen=True)
class ServiceConfig:
    """How the service batches, signs and checkpoints."""

    mode: SigningMode = SigningMode.BATCH
    max_batch: int = 500
    checkpoint_every: int = CHECKPOINT_EVERY
    checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S
    reload_interval_s: float = 2.0
    takeover_wait_s: float = 30.0  # at shutdown: how long take-overs in flight may finish
    trust_refresh_s: float = 10.0  # how often the trust list (keys, pinned floor) is re-read
    seal: bool = True  # seal deliveries to their recipients (off only to measure its cost)
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
            trust_refresh_s=cfg.trust_refresh_s,
            seal=cfg.seal,
            limits=Limits(max_bytes=cfg.max_notice_bytes),
        )


class Node:
    """One instance of member state ``origin``'s node. Run several; they share its partitions."""

    def __init__(
        self,
        *,
        origin: str,
        endpoint: KafkaEndpoint,
        credential: Credential,
        naming: Naming,
        registry: Registry,
        policies: PolicyStore,
        keys: NodeKeys,
        trust: TrustTracker,
        trust_sources: tuple[Fetch, ...] = (),
        config: ServiceConfig | None = None,
        instance: str = "node",
        aggregation: Aggregation | None = None,
    ) -> None:
        """``trust``: the trust list the node follows (recipients' encryption keys, the pinned
        floor), refreshed every ``config.trust_refresh_s`` from ``trust_sources``.
        ``aggregation``: early warning's counting (None: off)."""
        self.origin = origin
        self.endpoint = endpoint
        self.cred = credential
        self.naming = naming
        self.registry = registry
        self.policies = policies
        self.keys = keys
        self.trust = trust
        self.trust_sources = trust_sources
        self.config = config or ServiceConfig()
        self.instance = instance
        self.aggregation = aggregation
        self.group = naming.node_group(origin)
        self.outbox = Outbox(naming, self.group)
        self._lock = asyncio.Lock()  # one batch, or one ownership change, at a time
        self._consumer: AIOKafkaConsumer | None = None
        self._changelog: Changelog | None = None
        self._takeover: TakeOver | None = None
        self._last_reload = 0.0
        self.ready = asyncio.Event()

    @property
    def owned(self) -> Mapping[TopicPartition, Owned]:
        """The input partitions this instance owns now."""
        return {} if self._takeover is None else self._takeover.owned

    # --- lifecycle ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Process until ``stop`` is set; then finish the current batch and leave cleanly.

        Refuses to start (ConfigError) without a valid trust list, or under a regional floor
        other than the one the trust list pins."""
        if self.trust_sources:
            await self.trust.refresh(self.trust_sources)
        self._reload(force=True)
        self.check_floor()
        following = asyncio.create_task(
            follow(
                self.trust,
                self.trust_sources,
                interval_s=self.config.trust_refresh_s,
                stop=stop,
            )
        )
        tasks = [following]
        if self.aggregation is not None:  # its shards' counts summed (service/combine.py)
            combiner = ShardCombiner(
                self.origin,
                self.aggregation,
                endpoint=self.endpoint,
                credential=self.cred,
                naming=self.naming,
                instance=self.instance,
            )
            tasks.append(asyncio.create_task(combiner.run(stop)))
        try:
            await self._run(stop)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _pinned_floor(self, candidate: PolicySet) -> None:
        """A new policy set is taken only under the floor the trust list pins."""
        self.trust.verifier().trust_list.check_floor(candidate.digests.floor)

    def check_floor(self) -> None:
        """The floor of the policies in force must be the one the trust list pins."""
        floor = self.policies.current.digests.floor
        try:
            tl = self.trust.verifier().trust_list
        except PuenteError as exc:
            raise ConfigError(
                f"node {self.origin} has no valid trust list ({exc.reason})",
                hint="publish a signed trust list (puente keys trust-list …) or give its file",
                reason=exc.reason,
            ) from None
        try:
            tl.check_floor(floor)
        except PuenteError as exc:
            raise ConfigError(
                f"node {self.origin} refuses to decide under regional floor "
                f"{floor.hex()[:16]}…: {exc.message}",
                hint="every node runs the floor the trust list pins (its `floor` line)",
                reason=exc.reason,
            ) from None

    async def _run(self, stop: asyncio.Event) -> None:
        reader = consumer(self.endpoint, self.cred, client_id=f"{self.instance}-restore")
        self._changelog = Changelog(
            reader,
            naming=self.naming,
            registry=self.registry,
            dedupe_horizon_ms=self.config.limits.dedupe_horizon_ms,
        )
        await start(reader, self.endpoint, self.cred)
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
        self._takeover = TakeOver(
            consumer=self._consumer,
            changelog=self._changelog,
            endpoint=self.endpoint,
            credential=self.cred,
            naming=self.naming,
            instance=self.instance,
            lock=self._lock,
            processor=self._processor,
            checkpoint=self._checkpoint_all,
        )
        self._consumer.subscribe(
            [self.naming.topic(INGRESS, self.origin)], listener=Listener(self._takeover)
        )
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
                if self.owned:
                    self.ready.set()
        finally:
            await self._shutdown(self._takeover)

    async def _shutdown(self, takeover: TakeOver) -> None:
        """Leave nothing unsigned: let take-overs in flight finish (a partition restored from a
        killed owner may hold records without a checkpoint), then checkpoint every owned log
        with records waiting, and only then give the partitions up."""
        await takeover.settle(self.config.takeover_wait_s)
        async with self._lock:
            with contextlib.suppress(KafkaError):
                await self._checkpoint_all()
            for owned in list(takeover.owned.values()):
                await takeover.release(owned)
        if self._consumer is not None:
            await self._consumer.stop()
        if self._changelog is not None:
            await self._changelog.reader.stop()
        log.info("policy.stopped", instance=self.instance)

    def _processor(
        self, origin: str, tp: TopicPartition, state: PartitionState
    ) -> PartitionProcessor:
        """The processor of a partition taken over, from its restored state."""
        feed = None
        if self.aggregation is not None and self._consumer is not None:
            shards = len(self._consumer.partitions_for_topic(tp.topic) or ())
            feed = self.aggregation.feed(tp.partition, shards, state.aggregates)
        return PartitionProcessor(
            origin=origin,
            partition=tp.partition,
            naming=self.naming,
            registry=self.registry,
            policies=self.policies,
            keys=self.keys,
            sealer=TrustSealer(self.trust) if self.config.seal else None,
            log_state=state.log_state,
            seen=state.seen,
            mode=self.config.mode,
            limits=self.config.limits,
            checkpoint_every=self.config.checkpoint_every,
            checkpoint_interval_ms=int(self.config.checkpoint_interval_s * 1000),
            aggregates=feed,
        )

    # --- processing --------------------------------------------------------------------------

    def _reload(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_reload < self.config.reload_interval_s:
            return
        self._last_reload = now
        result = self.policies.reload(self._pinned_floor)
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
            owned = self.owned.get(tp)
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
        self, owned: Owned, out: BatchOutput, *, first_offset: int | None
    ) -> BatchOutput | None:
        """Produce ``out`` and the consumed offsets in one transaction; on failure, do what the
        partition's commit policy says (``commit.py``) and return None."""
        try:
            owned.txn.begin()
            await self.outbox.commit(owned.producer, owned.tp, owned.origin, out)
        except Exception as exc:
            await self._failed(owned, exc, first_offset=first_offset)
            return None
        owned.txn.committed()
        metrics.TRANSACTIONS.labels("committed").inc()
        if out.aggregates:
            metrics.AGGREGATES.labels(owned.origin, "published").inc(len(out.aggregates))
        if out.next_offset is not None:
            owned.next_offset = out.next_offset
        return out

    async def _failed(self, owned: Owned, exc: Exception, *, first_offset: int | None) -> None:
        """A transaction failed: abort it if the producer can, roll the processor back, then
        read the batch again (``first_offset``; None: a checkpoint, made again when due) or
        give the partition up and ask the group for a fresh assignment."""
        step = owned.txn.failed(exc)
        if step is Step.ABORT:
            step = owned.txn.aborted(ok=await _abort(owned.producer))
        owned.processor.rollback()
        tp = owned.tp
        if step is Step.RETRY:
            metrics.TRANSACTIONS.labels("aborted").inc()
            log.error(
                "policy.transaction_aborted",
                topic=tp.topic,
                partition=tp.partition,
                error=type(exc).__name__,
            )
            if first_offset is not None and self._consumer is not None:
                self._consumer.seek(tp, first_offset)
            await asyncio.sleep(0.5)
            return
        fenced = step is Step.FENCED
        metrics.TRANSACTIONS.labels("fenced" if fenced else "replaced").inc()
        log.warning(
            "policy.fenced" if fenced else "policy.producer_replaced",
            topic=tp.topic,
            partition=tp.partition,
            error=type(exc).__name__,
            aborts=owned.txn.aborts,
        )
        assert self._takeover is not None
        await self._takeover.release(owned)
        self._takeover.request_rejoin()

    async def _idle_checkpoints(self) -> None:
        """Checkpoint logs whose records have waited the checkpoint interval, even when no
        input arrives. Checked at every turn of the loop (a few comparisons per owned
        partition), so a record waits at most the interval plus one turn."""
        await self._checkpoint_all(only_due=True)

    async def _checkpoint_all(
        self, owned_logs: Iterable[Owned] | None = None, *, only_due: bool = False
    ) -> None:
        """Sign a checkpoint for each given owned log (default: all) with records waiting;
        with ``only_due``, only for those whose interval or record count has been reached.
        A partition whose early-warning windows are due is run too, input or not, so that quiet
        partitions publish their (empty) windows."""
        ts = dt.datetime.now(dt.UTC)
        now_ms = int(ts.timestamp() * 1000)
        work = []
        for owned in list(self.owned.values() if owned_logs is None else owned_logs):
            proc = owned.processor
            windows = proc.windows_due(now_ms)
            if proc.log.size == proc.log.checkpoint_size and not windows:
                continue  # nothing new since the last checkpoint, no window to publish
            if only_due and not windows and not proc.checkpoint_due(now_ms):
                continue
            out = proc.process([], ts, force_checkpoint=True)
            work.append(self._commit(owned, out, first_offset=None))
        await asyncio.gather(*work)

    async def _observe_lag(self) -> None:
        assert self._consumer is not None
        now_ms = time.time() * 1000
        for owned in list(self.owned.values()):
            proc = owned.processor
            pending = proc.log.size > proc.log.checkpoint_size
            age = (now_ms - proc.last_checkpoint_ms) / 1000 if pending else 0.0
            metrics.CHECKPOINT_AGE.labels(proc.log_id).set(max(0.0, age))
        for tp in list(self.owned):
            stable = self._consumer.last_stable_offset(tp)
            if stable is None:
                continue  # nothing fetched yet for this partition
            position = await self._consumer.position(tp)
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, stable - position))


async def _abort(prod: AIOKafkaProducer) -> bool:
    """Abort the open transaction; False if the producer can no longer do so (fenced, fatal)."""
    try:
        await prod.abort_transaction()
    except Exception:  # aiokafka raises assertion errors from a fatal state, not KafkaErrors
        return False
    return True
