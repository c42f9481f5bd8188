"""Pipeline benchmark: the policy service end to end on a real broker, against a pass-through of
the same fan-out and Kafka's own ProducerPerformance, in one run on one broker.

    .venv/bin/python -m tests.bench.pipeline [--notices 4000] [--runs 3] [--partitions 2]
        [--origins MX,US,CO,GT] [--rate 500] [--latency-seconds 15] [--profile FILE]
        [--perf-records 200000] [--skip-latency] [--skip-ceiling] [--json FILE]

What it measures (``--runs`` alternating runs, medians; a fresh tenant per run):

1. **Pipeline**: ``--notices`` CaseNotices padded to >= 1 KiB (free text appended to ``summary``;
   the generator's are ~800 B) are pre-loaded into the ingress topics of ``--origins`` (keyed by
   notice id, so spread over the partitions by the default partitioner); then the policy service
   (``PolicyService``, shipped policies, batch signatures, transactions) starts, and the clock
   runs from its first batch to the commit of the transaction holding the last input (start-up,
   group join and fencing excluded). Counted from the committed transactions: notices/s,
   deliveries/s, audit records/s, output MB/s; checked afterwards: the group's committed offsets
   equal the ingress end offsets.
2. **Pass-through**: the same inputs, pre-loaded the same way, consumed by the same kind of
   consumer (group subscription, read_committed, ``max_poll_records`` = ``max_batch``) and
   produced with the service's own transactional producers (one per input partition) and
   outbox (``puente.service.outbox``: one transaction per polled partition batch, with
   ``send_offsets_to_transaction``). What it produces for each input is the
   output the service's own processor made for that notice (computed offline before the runs):
   the same number of records of the same sizes to the same topics and partitions (deliveries,
   audit records) plus, per transaction, one log-state record, one dedupe chunk of its accepted
   notices' entries, and a checkpoint per ``checkpoint_every`` audit records. No decoding,
   policy, signing or hashing.
3. **Latency**: a paced producer publishes at ``--rate`` notices/s (and first at a rate the
   pipeline sustains: half the measured throughput) while a subscriber process (one
   ``puente.subscriber.core.Subscriber`` per member, verifying every delivery against the trust
   list) records when each delivery is verified; latency = verified - published, per delivery,
   split into publish -> batch start, batch processing + commit, commit -> verified.
4. **Ceiling**: ``org.apache.kafka.tools.ProducerPerformance`` (kafka-tools, same version as the
   broker, fetched into the jar cache) with 1 KiB records, acks=all, as the admin principal over
   SASL/SCRAM, plain and with transactions every 100 ms.

``--profile FILE`` adds one pipeline run under pyinstrument (the measured phase only) and writes
the text report to FILE, and prints where the time went by stage. Results go to stdout and, as
JSON, to ``reports/pipeline-<time>.json`` (git-ignored) or ``--json FILE``.

Kafka: ``PUENTE_KAFKA_BOOTSTRAP`` (+ admin credentials) or the local broker from Maven jars.
``--subscriber-child`` is internal (the latency phase's subscriber process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from puente.codec.registry import Registry
from puente.codec.wire import encode
from puente.config import Settings
from puente.evidence.records import AuditRecord
from puente.kafka.clients import consumer, producer, start
from puente.policy.store import PolicyStore
from puente.service.dedupe import CHUNK_PREFIX, decode_chunk, encode_chunk
from puente.service.outbox import Outbox, default_partition
from puente.service.processor import (
    STATE_LOG_KEY,
    BatchOutput,
    IngressRecord,
    PartitionProcessor,
    SigningMode,
)
from puente.service.takeover import Owned, partition_producer
from puente.service.worker import PolicyService, ServiceConfig
from puente.synth.generator import Generator
from puente.synth.notice import CASE_NOTICE
from puente.topics import AUDIT, INGRESS, REJECTED, Naming
from tests.harness import KafkaHarness, Tenant, kafka_harness

REPO = Path(__file__).resolve().parents[2]
PAD_TO = 1024
KAFKA_TOOLS = "org.apache.kafka:kafka-tools"
PSEUDONYM_SECRET = b"p" * 32  # as the integration tests' service
_REF = Naming("t" + "0" * 10)  # same length as a harness tenant prefix: same record sizes


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


BROKER_PIDS: list[int] = []  # the local broker's JVMs, for CPU accounting (none: external)


def cpu_now() -> tuple[float, float | None]:
    """CPU seconds so far of this process and of the local broker (None when not local)."""
    broker: float | None = None
    if BROKER_PIDS:
        broker = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in BROKER_PIDS:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return time.process_time(), None
            broker += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return time.process_time(), broker


# --- inputs ------------------------------------------------------------------------------------


def padded_notice(registry: Registry, record: dict[str, Any], filler: str, target: int) -> bytes:
    """Encode ``record``; if shorter than ``target`` bytes, lengthen its summary until it is not.

    The filler is other generated free text (the same language), so transformations that keep or
    drop the summary see realistic text.
    """
    data = encode(registry, CASE_NOTICE, record)
    pool = (" " + filler) * 8
    for _ in range(4):
        need = target - len(data)
        if need <= 0:
            break
        add = pool.encode()[:need].decode("utf-8", errors="ignore")
        record["summary"] = record["summary"] + add
        pool = pool[len(add) :] or (" " + filler) * 8
        data = encode(registry, CASE_NOTICE, record)
    return data


def make_notices(
    registry: Registry, origins: Sequence[str], count: int, seed: int, *, created: dt.datetime
) -> dict[str, list[tuple[bytes, bytes]]]:
    """``count`` padded CaseNotices spread evenly over ``origins``: (key = notice id, value)."""
    gen = Generator(seed)
    out: dict[str, list[tuple[bytes, bytes]]] = {o: [] for o in origins}
    for i in range(count):
        origin = origins[i % len(origins)]
        record = gen.case_notice(origin=origin)
        record["created_at"] = created
        filler = gen.case_notice(origin=origin)["summary"]
        out[origin].append(
            (record["notice_id"].encode(), padded_notice(registry, record, filler, PAD_TO))
        )
    return out


def partition_of(key: bytes, partitions: int) -> int:
    """The partition the default partitioner (aiokafka's and Java's murmur2) picks."""
    return default_partition(key, list(range(partitions)))


# --- the fan-out, computed once by the service's own processor (offline) ----------------------


@dataclass(frozen=True)
class OutRecord:
    """One output record of a notice: a delivery (to ``topic``), an audit record or a rejection
    (to the origin's audit or rejected topic, on the input's partition or by key)."""

    kind: str  # deliveries, audit, rejections
    topic: str  # under the reference prefix; renamed per tenant
    key: bytes | None
    value: bytes


@dataclass
class Fanout:
    """What the service produces for each input notice, and per transaction."""

    per_notice: dict[bytes, list[OutRecord]] = field(default_factory=dict)
    # Each accepted notice's dedupe entry; the service writes one chunk record per batch of them.
    dedupe: dict[bytes, tuple[str, bytes, int]] = field(default_factory=dict)
    log_state: dict[tuple[str, int], bytes] = field(default_factory=dict)
    checkpoint: dict[tuple[str, int], tuple[bytes, bytes]] = field(default_factory=dict)
    processor_seconds: float = 0.0
    processor_cpu_seconds: float = 0.0
    notices: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    bytes_by_kind: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def processor_rate(self) -> float:
        return self.notices / self.processor_seconds

    @property
    def processor_cpu_rate(self) -> float:
        return self.notices / self.processor_cpu_seconds

    def per_input(self, kind: str) -> float:
        return self.kinds[kind] / self.notices


def compute_fanout(
    registry: Registry,
    policies: PolicyStore,
    notices: dict[str, list[tuple[bytes, bytes]]],
    *,
    partitions: int,
    batch: int,
    checkpoint_every: int,
) -> Fanout:
    """Run the service's processor over the inputs, partition by partition, ``batch`` at a time
    (as the service would with a full poll), and index its output by notice id."""
    from puente.evidence.keys import SigningKey

    key = SigningKey.generate("bench-service")
    fan = Fanout()
    now = now_utc()
    procs: dict[tuple[str, int], PartitionProcessor] = {}
    total = sum(len(v) for v in notices.values())
    for origin, part, records in _batches(notices, partitions, batch, total):
        proc = procs.get((origin, part))
        if proc is None:
            proc = procs[(origin, part)] = _processor(
                origin, part, registry, policies, key, checkpoint_every
            )
        t0, c0 = time.perf_counter(), time.process_time()
        out = proc.process(records, now)
        fan.processor_seconds += time.perf_counter() - t0
        fan.processor_cpu_seconds += time.process_time() - c0
        fan.notices += len(records)
        _index(fan, registry, origin, part, out)
    return fan


def _processor(
    origin: str,
    part: int,
    registry: Registry,
    policies: PolicyStore,
    key: Any,
    checkpoint_every: int = 1000,
) -> PartitionProcessor:
    """A fresh processor of one input partition, configured as the service's."""
    return PartitionProcessor(
        origin=origin,
        partition=part,
        naming=_REF,
        registry=registry,
        policies=policies,
        key=key,
        mode=SigningMode.BATCH,
        checkpoint_every=checkpoint_every,
    )


def _index(fan: Fanout, registry: Registry, origin: str, part: int, out: BatchOutput) -> None:
    fan.outcomes.update(out.outcomes)

    def add(notice: bytes, rec: OutRecord) -> None:
        fan.per_notice.setdefault(notice, []).append(rec)
        fan.kinds[rec.kind] += 1
        fan.bytes_by_kind[rec.kind] += len(rec.value)

    for topic, key, value in out.deliveries:
        add(key, OutRecord("deliveries", topic, key, value))
    audit_topic = _REF.topic(AUDIT, origin)
    for value in out.audit:
        notice_id = AuditRecord.decode(registry, value).notice_id
        assert notice_id is not None
        add(notice_id.encode(), OutRecord("audit", audit_topic, None, value))
    for key, stored in out.state:
        if key == STATE_LOG_KEY and stored is not None:
            fan.log_state[(origin, part)] = stored
            fan.kinds["log_state"] += 1
            fan.bytes_by_kind["log_state"] += len(stored)
        elif key.startswith(CHUNK_PREFIX) and stored is not None:
            for entry in decode_chunk(stored):
                fan.dedupe[entry[0].encode()] = entry
            fan.kinds["state"] += 1
            fan.bytes_by_kind["state"] += len(stored)
    for key, value in out.rejections:
        add(key, OutRecord("rejections", _REF.topic(REJECTED, origin), key, value))
    for key, value in out.checkpoints:
        fan.checkpoint[(origin, part)] = (key, value)
        fan.kinds["checkpoints"] += 1
        fan.bytes_by_kind["checkpoints"] += len(value)


# --- deployments -------------------------------------------------------------------------------


async def deploy(kafka: KafkaHarness, partitions: int) -> Any:
    from tests.integration.service.support import deploy as _deploy

    return await _deploy(kafka, partitions=partitions)


async def preload(tenant: Tenant, notices: dict[str, list[tuple[bytes, bytes]]]) -> int:
    """Produce every notice to its origin's ingress topic as that origin; returns the count."""
    total = 0
    for origin, values in notices.items():
        cred = tenant.member(origin)
        p = producer(tenant.endpoint, cred, linger_ms=5, max_batch_size=1024 * 1024)
        await start(p, tenant.endpoint, cred)
        try:
            futures = [await p.send(tenant.topic(INGRESS, origin), v, key=k) for k, v in values]
            sent = await asyncio.gather(*futures)
        finally:
            await p.stop()
        topic = tenant.topic(INGRESS, origin)
        parts = next(t.partitions for t in tenant.plan.topics if t.name == topic)
        for (k, _), md in zip(values, sent, strict=True):
            # The fan-out was computed for the partition the default partitioner picks.
            assert md.partition == partition_of(k, parts)
        total += len(sent)
    return total


async def committed_equals_end(tenant: Tenant, group: str, origins: Iterable[str]) -> bool:
    """True when ``group``'s committed offsets are the ingress topics' end offsets."""
    cred = tenant.service("policy")
    c = consumer(tenant.endpoint, cred, group_id=group)
    await start(c, tenant.endpoint, cred)
    try:
        tps = []
        for origin in origins:
            topic = tenant.topic(INGRESS, origin)
            n = next(t.partitions for t in tenant.plan.topics if t.name == topic)
            tps += [TopicPartition(topic, p) for p in range(n)]
        ends = await c.end_offsets(tps)
        for tp in tps:
            if (await c.committed(tp) or 0) != ends[tp]:
                return False
        return True
    finally:
        await c.stop()


# --- measured runs -----------------------------------------------------------------------------


@dataclass
class RunStats:
    """Counters of one measured run, from committed transactions only."""

    expect: int = 0
    inputs: int = 0
    deliveries: int = 0
    audit: int = 0
    records: int = 0
    out_bytes: int = 0
    transactions: int = 0
    polls: int = 0
    t_first: float | None = None
    t_done: float | None = None
    cpu_start: tuple[float, float | None] | None = None
    cpu_end: tuple[float, float | None] | None = None
    process_s: float = 0.0  # processor wall time (pipeline only)
    poll_s: float = 0.0  # between batches: getmany, loop housekeeping
    commit_s: float = 0.0  # wall time of the produce + commit phase of each poll
    complete: bool = False
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def elapsed(self) -> float:
        assert self.t_first is not None and self.t_done is not None
        return self.t_done - self.t_first

    def figures(self) -> dict[str, float]:
        s = self.elapsed
        cpu: dict[str, float] = {}
        if self.cpu_start and self.cpu_end:
            n = max(1, self.inputs)
            cpu["python_cpu_ms_per_notice"] = (self.cpu_end[0] - self.cpu_start[0]) / n * 1e3
            cpu["python_cpu_cores"] = (self.cpu_end[0] - self.cpu_start[0]) / s
            b0, b1 = self.cpu_start[1], self.cpu_end[1]
            if b0 is not None and b1 is not None:
                cpu["broker_cpu_ms_per_notice"] = (b1 - b0) / n * 1e3
                cpu["broker_cpu_cores"] = (b1 - b0) / s
        return cpu | {
            "seconds": s,
            "notices_per_s": self.inputs / s,
            "deliveries_per_s": self.deliveries / s,
            "audit_per_s": self.audit / s,
            "records_per_s": self.records / s,
            "out_mb_per_s": self.out_bytes / s / 1e6,
            "inputs_per_transaction": self.inputs / max(1, self.transactions),
            "process_share": self.process_s / s,
            "commit_share": self.commit_s / s,
            "poll_share": self.poll_s / s,
        }


def _output_size(out: BatchOutput) -> tuple[int, int]:
    records = len(out.deliveries) + len(out.audit) + len(out.state)
    records += len(out.checkpoints) + len(out.rejections)
    size = sum(len(v) for _, _, v in out.deliveries) + sum(len(v) for v in out.audit)
    # A state record may be a tombstone (a pruned dedupe chunk): no value, no bytes.
    size += sum(len(v or b"") for _, v in out.state) + sum(len(v) for _, v in out.checkpoints)
    size += sum(len(v) for _, v in out.rejections)
    return records, size


class TimedService(PolicyService):
    """The policy service, unchanged, with clocks and counters around its batch methods."""

    def __init__(self, *args: Any, expect: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stats = RunStats(expect=expect)
        self.finished = asyncio.Event()
        self.trace: dict[bytes, tuple[float, float]] | None = None  # key -> (start, committed)
        self.on_first: Callable[[], None] | None = None
        self.on_done: Callable[[], None] | None = None
        self._last_exit: float | None = None

    def _processor(self, *args: Any, **kwargs: Any) -> PartitionProcessor:
        proc = super()._processor(*args, **kwargs)
        inner = proc.process
        stats = self.stats

        def timed(
            records: Sequence[IngressRecord], now: dt.datetime, *, force_checkpoint: bool = False
        ) -> BatchOutput:
            t0 = time.perf_counter()
            try:
                return inner(records, now, force_checkpoint=force_checkpoint)
            finally:
                stats.process_s += time.perf_counter() - t0

        # The service builds its processors: this one's batches are timed by shadowing the
        # method on the instance, which mypy refuses for any method.
        proc.process = timed  # type: ignore[method-assign]
        return proc

    async def _process(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        st = self.stats
        t0 = time.perf_counter()
        if st.t_first is None:
            st.t_first = t0
            st.cpu_start = cpu_now()
            if self.on_first:
                self.on_first()
        elif self._last_exit is not None and not self.finished.is_set():
            st.poll_s += t0 - self._last_exit
        wall0 = time.time()
        before = st.process_s
        await super()._process(batches)
        t1 = time.perf_counter()
        if not self.finished.is_set():
            st.polls += 1
            st.commit_s += (t1 - t0) - (st.process_s - before)
        self._last_exit = t1
        if self.trace is not None:
            wall1 = time.time()
            for messages in batches.values():
                for m in messages:
                    if m.key is not None:
                        self.trace[m.key] = (wall0, wall1)

    async def _commit(
        self, owned: Owned, out: BatchOutput, *, first_offset: int | None
    ) -> BatchOutput | None:
        done = await super()._commit(owned, out, first_offset=first_offset)
        st = self.stats
        if done is not None and not self.finished.is_set():
            st.transactions += 1
            st.inputs += sum(done.outcomes.values())
            for outcome, count in done.outcomes.items():
                st.outcomes[outcome] = st.outcomes.get(outcome, 0) + count
            st.deliveries += len(done.deliveries)
            st.audit += len(done.audit)
            records, size = _output_size(done)
            st.records += records
            st.out_bytes += size
            if st.expect and st.inputs >= st.expect:
                st.t_done = time.perf_counter()
                st.cpu_end = cpu_now()
                if self.on_done:
                    self.on_done()
                self.finished.set()
        return done


def make_service(dep: Any, *, expect: int = 0, instance: str = "bench") -> TimedService:
    return TimedService(
        endpoint=dep.tenant.endpoint,
        credential=dep.tenant.service("policy"),
        naming=dep.tenant.naming,
        registry=dep.registry,
        policies=PolicyStore(
            dep.settings.policies_dir, dep.settings.schemas_dir, secret=PSEUDONYM_SECRET
        ),
        key=dep.evidence.service_key,
        config=ServiceConfig.from_settings(dep.settings.policy, mode=SigningMode.BATCH),
        instance=instance,
        expect=expect,
    )


async def pipeline_run(
    kafka: KafkaHarness,
    notices: dict[str, list[tuple[bytes, bytes]]],
    args: argparse.Namespace,
    *,
    profiler: Any = None,
) -> RunStats:
    dep = await deploy(kafka, args.partitions)
    total = await preload(dep.tenant, notices)
    service = make_service(dep, expect=total)
    if profiler is not None:
        service.on_first = profiler.start
        service.on_done = profiler.stop
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(service.finished.wait(), args.timeout)
    finally:
        stop.set()
        await asyncio.wait_for(task, 120)
    service.stats.complete = await committed_equals_end(dep.tenant, service.group, notices)
    return service.stats


class PassThrough:
    """Consume -> produce of a precomputed fan-out, shaped like the service's worker: its
    producers (one per input partition) and its outbox, without the processor."""

    def __init__(self, tenant: Tenant, fan: Fanout, *, max_batch: int, checkpoint_every: int):
        self.tenant = tenant
        self.naming = tenant.naming
        self.max_batch = max_batch
        self.checkpoint_every = checkpoint_every
        self.cred = tenant.service("policy")
        self.group = self.naming.service_group("policy")
        self.stats = RunStats()
        self.producers: dict[TopicPartition, AIOKafkaProducer] = {}
        self.outbox = Outbox(self.naming, self.group)
        self._since_cp: Counter[TopicPartition] = Counter()
        rename = self._rename
        self.dedupe = fan.dedupe
        self.per_notice = {
            k: [replace(r, topic=rename(r.topic)) for r in recs]
            for k, recs in fan.per_notice.items()
        }
        self.log_state = fan.log_state
        self.checkpoint = fan.checkpoint
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        # The next offset to process per partition. Fetching starts while the rebalance
        # listener still sets a partition up, so a poll can return records that the listener's
        # seek then fetches again: skip what was done (the service has no such guard).
        self.next: dict[TopicPartition, int] = {}

    def _rename(self, topic: str) -> str:
        return self.naming.prefix + topic[len(_REF.prefix) :]

    async def assign(self, tps: Iterable[TopicPartition]) -> None:
        assert self._consumer is not None
        new = [tp for tp in tps if tp not in self.producers]
        made = {}
        for tp in new:
            origin = self.naming.member_of(tp.topic, INGRESS)
            made[tp] = partition_producer(
                self.tenant.endpoint,
                self.cred,
                self.naming,
                origin,
                tp.partition,
                client_id=f"passthrough-{origin}-{tp.partition}",
            )
        async with self._lock:
            await asyncio.gather(
                *(start(p, self.tenant.endpoint, self.cred) for p in made.values())
            )
            self.producers.update(made)
            for tp in new:
                committed = await self._consumer.committed(tp)
                if committed is None:
                    await self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, committed)
                self.next[tp] = await self._consumer.position(tp)

    async def run(self, expect: int, limit_s: float) -> RunStats:
        st = self.stats
        st.expect = expect
        c = consumer(
            self.tenant.endpoint,
            self.cred,
            group_id=self.group,
            client_id="passthrough",
            max_poll_records=self.max_batch,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            session_timeout_ms=30_000,
            heartbeat_interval_ms=3_000,
        )
        self._consumer = c
        pattern = f"^{re.escape(self.naming.topic_stem_prefix(INGRESS))}[A-Z]{{2}}$"
        c.subscribe(pattern=pattern, listener=_PassListener(self))
        await start(c, self.tenant.endpoint, self.cred)
        deadline = time.monotonic() + limit_s
        last_exit: float | None = None
        try:
            while st.inputs < expect and time.monotonic() < deadline:
                batches = await c.getmany(timeout_ms=200, max_records=self.max_batch)
                if not batches:
                    continue
                async with self._lock:
                    t0 = time.perf_counter()
                    todo = {}
                    for tp, msgs in batches.items():
                        if tp in self.next:
                            todo[tp] = [m for m in msgs if m.offset >= self.next[tp]]
                    todo = {tp: msgs for tp, msgs in todo.items() if msgs}
                    if not todo:
                        continue
                    if st.t_first is None:
                        st.t_first = t0
                        st.cpu_start = cpu_now()
                    elif last_exit is not None:
                        st.poll_s += t0 - last_exit
                    await asyncio.gather(*(self._commit(tp, msgs) for tp, msgs in todo.items()))
                last_exit = time.perf_counter()
                st.commit_s += last_exit - t0
                st.polls += 1
            st.t_done = time.perf_counter()
            st.cpu_end = cpu_now()
        finally:
            await c.stop()
            for p in self.producers.values():
                await p.stop()
        return st

    async def _commit(self, tp: TopicPartition, msgs: list[ConsumerRecord[bytes, bytes]]) -> None:
        """What the service would commit for ``msgs``, from the precomputed fan-out, through
        the service's outbox."""
        origin = self.naming.member_of(tp.topic, INGRESS)
        out = BatchOutput(next_offset=msgs[-1].offset + 1, origin=origin)
        for m in msgs:
            for rec in self.per_notice[m.key or b""]:
                if rec.kind == "audit":
                    out.audit.append(rec.value)
                else:
                    assert rec.key is not None
                    if rec.kind == "deliveries":
                        out.deliveries.append((rec.topic, rec.key, rec.value))
                    else:
                        out.rejections.append((rec.key, rec.value))
        out.state.append((STATE_LOG_KEY, self.log_state[(origin, tp.partition)]))
        accepted = [self.dedupe[m.key] for m in msgs if m.key in self.dedupe]
        if accepted:  # one dedupe chunk per transaction, as the service writes per batch
            key = CHUNK_PREFIX + str(msgs[0].offset).encode()
            out.state.append((key, encode_chunk(accepted)))
        self._since_cp[tp] += len(out.audit)
        if self._since_cp[tp] >= self.checkpoint_every:
            self._since_cp[tp] = 0
            out.checkpoints.append(self.checkpoint[(origin, tp.partition)])
        p = self.producers[tp]
        try:
            await self.outbox.commit(p, tp, origin, out)
        except BaseException:
            with contextlib.suppress(Exception):
                await p.abort_transaction()
            raise
        assert out.next_offset is not None
        self.next[tp] = out.next_offset
        records, size = _output_size(out)
        st = self.stats
        st.transactions += 1
        st.inputs += len(msgs)
        st.audit += len(out.audit)
        st.deliveries += len(out.deliveries)
        st.records += records
        st.out_bytes += size


class _PassListener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka has no types
    def __init__(self, pt: PassThrough) -> None:
        self.pt = pt

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.pt.assign(assigned)


async def passthrough_run(
    kafka: KafkaHarness,
    notices: dict[str, list[tuple[bytes, bytes]]],
    fan: Fanout,
    args: argparse.Namespace,
    settings: Settings,
) -> RunStats:
    dep = await deploy(kafka, args.partitions)
    total = 0
    for _ in range(args.baseline_repeat):  # the same inputs again: a longer measured phase
        total += await preload(dep.tenant, notices)
    pt = PassThrough(
        dep.tenant,
        fan,
        max_batch=settings.policy.max_batch,
        checkpoint_every=settings.policy.checkpoint_every,
    )
    stats = await pt.run(total, args.timeout)
    stats.complete = stats.inputs == total and await committed_equals_end(
        dep.tenant, pt.group, notices
    )
    return stats


# --- latency -----------------------------------------------------------------------------------


@dataclass
class Latency:
    rate: float
    published: int
    measured_notices: int
    deliveries: int
    verified: int
    unverified: int
    missing: int
    achieved_rate: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    stages_p50_ms: dict[str, float]
    stages_p99_ms: dict[str, float]


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Child:
    """A helper process of the latency phase (publisher or subscriber), reporting on stdout."""

    def __init__(self, dep: Any, *args: str) -> None:
        self.dep = dep
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None
        self.verified: dict[tuple[str, str], float] = {}  # (notice id, member) -> time
        self.published: dict[str, float] = {}  # notice id -> time (measured phase only)
        self.warmup = 0
        self.sent_rate = 0.0
        self.failed = 0
        self.ready = asyncio.Event()
        self.done = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    def publisher(
        cls, dep: Any, origins: Sequence[str], rate: float, seconds: float, seed: int
    ) -> Child:
        """A paced publisher process: ``rate`` notices/s from ``origins`` for ``seconds``."""
        return cls(
            dep,
            "--publisher-child",
            "--origins",
            ",".join(origins),
            "--rate",
            str(rate),
            "--latency-seconds",
            str(seconds),
            "--seed",
            str(seed),
        )

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bench.pipeline",
            *self.args,
            env=self.dep.env(),
            cwd=str(REPO),
            stdout=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        ready = asyncio.create_task(self.ready.wait())
        ended = asyncio.create_task(self.proc.wait())
        await asyncio.wait({ready, ended}, timeout=300, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        ended.cancel()
        if not self.ready.is_set():
            raise RuntimeError(f"helper process {self.args[0]} did not start")

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode().split()
            if not line:
                continue
            tag = line[0]
            if tag == "V":
                self.verified[(line[1], line[2])] = float(line[3])
            elif tag == "P":
                self.published[line[1]] = float(line[2])
            elif tag == "W":
                self.warmup += 1
            elif tag == "F":
                self.failed += 1
            elif tag == "ready":
                self.ready.set()
            elif tag == "done":
                self.sent_rate = float(line[1])
                self.done.set()
        self.done.set()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 30)
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 10)


def _child_context() -> tuple[Settings, Naming, Registry, Any]:
    from puente.kafka.connection import resolve_endpoint

    settings = Settings()
    return (
        settings,
        Naming(settings.kafka.topic_prefix),
        Registry.load(settings.schemas_dir),
        resolve_endpoint(settings),
    )


async def subscriber_child(members: Sequence[str]) -> None:
    """Run one Subscriber per member; print a line per verified delivery with its time."""
    from puente.app.operator import ensure_evidence
    from puente.evidence.trustsource import TrustTracker
    from puente.kafka.connection import credential
    from puente.members import load_members
    from puente.subscriber.core import Subscriber

    settings, naming, registry, endpoint = _child_context()
    evidence = ensure_evidence(settings, load_members(settings.policies_dir).codes)
    trust = TrustTracker.with_list(evidence.trust_list, evidence.anchors, registry)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    out = sys.stdout

    async def follow(sub: Subscriber) -> None:
        async for r in sub.stream():
            t = time.time()
            if r.verified is not None:
                out.write(f"V {r.verified.statement.notice_id} {sub.member} {t:.6f}\n")
            else:
                out.write(f"F {sub.member}\n")
            out.flush()

    async with contextlib.AsyncExitStack() as stack:
        subs = [
            await stack.enter_async_context(
                Subscriber(
                    endpoint=endpoint,
                    credential=credential(settings, naming.member_principal(m)),
                    naming=naming,
                    member=m,
                    registry=registry,
                    trust=trust,
                    receipt_key=None,
                    name="bench",
                )
            )
            for m in members
        ]
        tasks = [asyncio.create_task(follow(s)) for s in subs]
        while not all(s._consumer and s._consumer.assignment() for s in subs):
            await asyncio.sleep(0.1)
        out.write("ready\n")
        out.flush()
        await stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def publisher_child(
    origins: Sequence[str], rate: float, seconds: float, warmup: float, seed: int
) -> None:
    """Publish ``rate`` notices/s, round-robin over ``origins``, as each origin; print the send
    time of each (``W`` during the warm-up, ``P`` after). Notices are a pool of generated,
    padded CaseNotices, each sent with a fresh notice id (generating one takes ~10 ms)."""
    from puente.kafka.connection import credential

    settings, naming, registry, endpoint = _child_context()
    gen = Generator(seed)
    pool: dict[str, list[dict[str, Any]]] = {o: [] for o in origins}
    for origin in origins:
        for _ in range(100):
            record = gen.case_notice(origin=origin)
            record["created_at"] = now_utc()
            filler = gen.case_notice(origin=origin)["summary"]
            padded_notice(registry, record, filler, PAD_TO)
            pool[origin].append(record)
    producers = {}
    for o in origins:
        cred = credential(settings, naming.member_principal(o))
        producers[o] = producer(endpoint, cred)
        await start(producers[o], endpoint, cred)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    futures = []
    try:
        n = int(rate * (warmup + seconds))
        t_start = time.perf_counter()
        for i in range(n):
            origin = origins[i % len(origins)]
            record = dict(pool[origin][(i // len(origins)) % len(pool[origin])])
            record["notice_id"] = str(uuid.uuid4())
            record["created_at"] = now_utc() - dt.timedelta(seconds=1)
            value = encode(registry, CASE_NOTICE, record)
            delay = t_start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            t = time.time()
            futures.append(
                await producers[origin].send(
                    naming.topic(INGRESS, origin), value, key=record["notice_id"].encode()
                )
            )
            tag = "W" if i < rate * warmup else "P"
            out.write(f"{tag} {record['notice_id']} {t:.6f}\n")
        sending = time.perf_counter() - t_start  # the send calls, paced
        await asyncio.gather(*futures)
        out.write(f"done {n / sending:.1f}\n")
        out.flush()
    finally:
        for p in producers.values():
            await p.stop()


async def latency_phase(
    dep: Any,
    service: TimedService,
    subs: Child,
    args: argparse.Namespace,
    rate: float,
) -> Latency:
    service.trace = {}
    subs.verified.clear()
    deliveries_before = service.stats.deliveries
    inputs_before = service.stats.inputs
    pub = Child.publisher(dep, args.origins, rate, args.latency_seconds, args.seed + int(rate))
    await pub.start()
    await asyncio.wait_for(pub.done.wait(), args.latency_seconds + 600)
    achieved = pub.sent_rate
    await pub.stop()
    total = len(pub.published) + pub.warmup
    deadline = time.monotonic() + args.drain_timeout
    while time.monotonic() < deadline:
        if service.stats.inputs - inputs_before >= total:
            expected = service.stats.deliveries - deliveries_before
            if len(subs.verified) >= expected:
                break
        await asyncio.sleep(0.2)
    trace = service.trace
    service.trace = None
    lat: list[float] = []
    stage: dict[str, list[float]] = defaultdict(list)
    for (notice_id, _member), t_ver in subs.verified.items():
        t_pub = pub.published.get(notice_id)
        if t_pub is None:
            continue  # a warm-up notice
        lat.append((t_ver - t_pub) * 1000)
        span = trace.get(notice_id.encode())
        if span is not None:
            b0, b1 = span
            stage["publish -> batch start"].append((b0 - t_pub) * 1000)
            stage["process + commit"].append((b1 - b0) * 1000)
            stage["commit -> verified"].append((t_ver - b1) * 1000)
    expected_deliveries = service.stats.deliveries - deliveries_before
    return Latency(
        rate=rate,
        published=len(pub.published),
        measured_notices=len({n for n, _ in subs.verified if n in pub.published}),
        deliveries=expected_deliveries,
        verified=len(lat),
        unverified=subs.failed,
        missing=max(0, expected_deliveries - len(subs.verified)),
        achieved_rate=achieved,
        p50_ms=pct(lat, 0.5),
        p90_ms=pct(lat, 0.9),
        p99_ms=pct(lat, 0.99),
        max_ms=max(lat) if lat else float("nan"),
        stages_p50_ms={k: pct(v, 0.5) for k, v in stage.items()},
        stages_p99_ms={k: pct(v, 0.99) for k, v in stage.items()},
    )


async def latency_runs(
    kafka: KafkaHarness, args: argparse.Namespace, rates: Sequence[float]
) -> list[Latency]:
    from tests.integration.service.support import ALL_MEMBERS

    dep = await deploy(kafka, args.partitions)
    service = make_service(dep)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    subs = Child(dep, "--subscriber-child", "--origins", ",".join(ALL_MEMBERS))
    results = []
    try:
        await asyncio.wait_for(service.ready.wait(), 120)
        await subs.start()
        for rate in rates:
            results.append(await latency_phase(dep, service, subs, args, rate))
            print(
                f"latency at {rate:.0f}/s: p50 {results[-1].p50_ms:.0f} ms, "
                f"p99 {results[-1].p99_ms:.0f} ms",
                flush=True,
            )
    finally:
        stop.set()
        await asyncio.wait_for(task, 120)
        await subs.stop()
    return results


# --- the ceiling: Kafka's ProducerPerformance ---------------------------------------------------

_PERF = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th"
)


def producer_performance(
    kafka: KafkaHarness, *, records: int, runs: int, partitions: int, transactional: bool
) -> list[dict[str, float]]:
    from kafka.admin import NewTopic

    from puente.kafka.admin import admin_client
    from puente.maven import classpath, fetch_jars

    settings = Settings()
    version = settings.kafka.version
    libs = fetch_jars(f"kafka-tools-{version}", [f"{KAFKA_TOOLS}:{version}"], settings.cache_dir)
    topic = f"bench-{uuid.uuid4().hex[:8]}.perf"
    with admin_client(kafka.endpoint, kafka.admin) as admin:
        admin.create_topics([NewTopic(topic, partitions, min(3, kafka.brokers))], timeout_ms=30_000)
    ep = kafka.endpoint
    lines = [
        f"bootstrap.servers={ep.bootstrap}",
        f"security.protocol={ep.security_protocol}",
        f"sasl.mechanism={ep.sasl_mechanism}",
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{kafka.admin.username}" password="{kafka.admin.password}";',
        "acks=all",
    ]
    out = []
    with tempfile.TemporaryDirectory(prefix="puente-perf-") as tmp:
        config = Path(tmp) / "client.properties"
        config.touch(mode=0o600)
        config.write_text("\n".join(lines) + "\n")
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else "java"
        for _ in range(runs):
            cmd = [
                java,
                "-Xmx512m",
                "-cp",
                classpath(libs),
                "org.apache.kafka.tools.ProducerPerformance",
                "--topic",
                topic,
                "--num-records",
                str(records),
                "--record-size",
                "1024",
                "--throughput",
                "-1",
                "--producer.config",
                str(config),
            ]
            if transactional:
                cmd += ["--transaction-duration-ms", "100"]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            match = None
            for line in proc.stdout.splitlines():
                match = _PERF.search(line) or match
            if match is None:
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
                raise RuntimeError("ProducerPerformance failed: " + " | ".join(tail))
            out.append(
                {
                    "records_per_s": float(match.group(2)),
                    "mb_per_s": float(match.group(3)),
                    "avg_latency_ms": float(match.group(4)),
                    "p99_latency_ms": float(match.group(8)),
                }
            )
    return out


# --- profile -----------------------------------------------------------------------------------

# (class name or None, function, file fragment) -> stage; the outermost match wins.
_STAGES: list[tuple[str | None, str, str, str]] = [
    (None, "validate", "service/validate.py", "decode + validate"),
    ("PolicySet", "decide_all", "policy/engine.py", "policy decide_all"),
    ("AuditLog", "append_record", "evidence/log.py", "audit record encode + Merkle append"),
    ("DeliveryStatement", "encode", "evidence/_avro.py", "delivery statement encode"),
    ("DeliveryBatch", "seal", "evidence/delivery.py", "batch sealing (proofs, note, signature)"),
    ("Delivery", "encode", "evidence/_avro.py", "delivery envelope encode"),
    ("AuditLog", "checkpoint", "evidence/log.py", "checkpoint signing"),
    ("LogState", "encode", "evidence/_avro.py", "log state encode"),
    (None, "partition_for", "service/outbox.py", "outbox: partition per record (murmur2)"),
    (None, "replace", "dataclasses.py", "records: dataclasses.replace (re-validates)"),
    ("AuditRecord", "__init__", "<string>", "records: construct + validate"),
    ("DeliveryStatement", "__init__", "<string>", "records: construct + validate"),
    (None, "uuid5", "uuid.py", "uuid5 (delivery ids)"),
    (None, "getmany", "aiokafka/consumer", "aiokafka consumer (fetch, record decode)"),
    (None, "select", "selectors.py", "idle: waiting on the broker (I/O)"),
]


def _stage_of(frame: Any, parent: Any) -> str | None:
    fn, cls, path = frame.function, frame.class_name, frame.file_path or ""
    if (
        fn == "encode"
        and path.endswith("codec/wire.py")
        and getattr(parent, "function", "") == "_deliver"
    ):
        return "transform + payload encode"
    for want_cls, want_fn, fragment, stage in _STAGES:
        if fn == want_fn and fragment in path and (want_cls is None or cls == want_cls):
            return stage
    return None


def _context_of(frame: Any, context: str) -> str:
    path = frame.file_path or ""
    if frame.class_name == "PartitionProcessor" and frame.function == "process":
        return "processor: other (records, replace, uuid, hashing)"
    if path.endswith("service/outbox.py"):
        if frame.function == "commit":
            return "outbox: transaction calls"
        if frame.function in ("batches", "send_batches"):
            return "outbox: build produce batches"
    if "aiokafka/producer" in path or "aiokafka/record" in path:
        return "aiokafka producer (sender, batches)" if context == "other" else context
    if "aiokafka/conn" in path or "aiokafka/protocol" in path or "aiokafka/client" in path:
        return "aiokafka network + protocol" if context == "other" else context
    if "aiokafka/consumer" in path:
        return "aiokafka consumer (fetch, record decode)" if context == "other" else context
    return context


def profile_stages(session: Any) -> dict[str, float]:
    """Seconds per stage from a pyinstrument session (wall-clock samples of the loop thread)."""
    totals: defaultdict[str, float] = defaultdict(float)
    root = session.root_frame(trim_stem=False)
    if root is None:
        return {}
    stack: list[tuple[Any, Any, str]] = [(root, None, "other")]
    while stack:
        frame, parent, context = stack.pop()
        stage = _stage_of(frame, parent)
        if stage is not None:
            totals[stage] += frame.time
            continue
        context = _context_of(frame, context)
        # Self time without the children's (total_self_time would count synthetic self-time
        # children twice, as they are visited too).
        totals[context] += frame.time - sum(child.time for child in frame.children)
        stack.extend((child, frame, context) for child in frame.children)
    return _largest_first(totals)


def _largest_first(totals: dict[str, float]) -> dict[str, float]:
    """``totals`` by value, largest first (as ``Counter.most_common``, for seconds)."""
    return dict(sorted(totals.items(), key=lambda kv: kv[1], reverse=True))


# --- offline: CPU per stage -----------------------------------------------------------------------


class StageClock:
    """Exclusive CPU time (this thread) per named function, by wrapping the functions."""

    def __init__(self) -> None:
        self.totals: defaultdict[str, float] = defaultdict(float)
        self._stack: list[float] = []

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        clock = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.thread_time()
            clock._stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.thread_time() - t0
                inner = clock._stack.pop()
                clock.totals[name] += elapsed - inner
                if clock._stack:
                    clock._stack[-1] += elapsed

        return timed


@contextlib.contextmanager
def patched(targets: Iterable[tuple[Any, str, Callable[[Any], Any]]]) -> Any:
    """Replace ``owner.attr`` by ``make(original)`` for each target; restore on exit."""
    saved: list[tuple[Any, str, Any]] = []
    missing = object()  # an inherited method: delete ours on exit
    try:
        for owner, attr, make in targets:
            own = owner.__dict__.get(attr, missing) if isinstance(owner, type) else missing
            saved.append((owner, attr, own if isinstance(owner, type) else getattr(owner, attr)))
            setattr(owner, attr, make(getattr(owner, attr)))
        yield
    finally:
        for owner, attr, original in reversed(saved):
            if original is missing:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)


def _batches(
    notices: dict[str, list[tuple[bytes, bytes]]], partitions: int, batch: int, limit: int
) -> list[tuple[str, int, list[IngressRecord]]]:
    """Inputs as the service's processors see them: per (origin, partition), ``batch`` at a time."""
    out = []
    for origin, values in notices.items():
        by_part: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        for k, v in values[: max(1, limit // len(notices))]:
            by_part[partition_of(k, partitions)].append((k, v))
        topic = _REF.topic(INGRESS, origin)
        for part, items in sorted(by_part.items()):
            for at in range(0, len(items), batch):
                chunk = items[at : at + batch]
                recs = [IngressRecord(topic, part, at + i, k, v) for i, (k, v) in enumerate(chunk)]
                out.append((origin, part, recs))
    return out


def _process_all(
    registry: Registry,
    policies: PolicyStore,
    key: Any,
    work: list[tuple[str, int, list[IngressRecord]]],
    now: dt.datetime,
) -> tuple[float, list[BatchOutput]]:
    """Thread CPU seconds to process ``work`` with fresh processors, and the outputs."""
    procs: dict[tuple[str, int], PartitionProcessor] = {}
    outs = []
    t0 = time.thread_time()
    for origin, part, records in work:
        proc = procs.get((origin, part))
        if proc is None:
            proc = procs[(origin, part)] = _processor(origin, part, registry, policies, key)
        outs.append(proc.process(records, now))
    return time.thread_time() - t0, outs


def stage_breakdown(
    registry: Registry,
    policies: PolicyStore,
    work: list[tuple[str, int, list[IngressRecord]]],
) -> dict[str, float]:
    """CPU microseconds per notice in each stage of the processor (exclusive times)."""
    import uuid as uuid_module

    import puente.evidence.log as log_module
    import puente.service.processor as proc_module
    from puente.evidence.delivery import Delivery, DeliveryBatch, DeliveryStatement
    from puente.evidence.keys import SigningKey
    from puente.evidence.log import AuditLog, LogState
    from puente.policy.engine import PolicySet

    key = SigningKey.generate("bench-service")
    now = now_utc()
    _process_all(registry, policies, key, work[:2], now)  # warm caches
    clock = StageClock()

    def w(name: str) -> Callable[[Any], Any]:
        return lambda fn: clock.wrap(name, fn)

    targets = [
        (proc_module, "validate", w("decode + validate")),
        (PolicySet, "decide_all", w("policy decide_all")),
        (proc_module, "encode", w("transform: payload encode")),
        (log_module, "replace", w("audit record: dataclasses.replace")),
        (AuditLog, "append_record", w("audit record: encode + Merkle append")),
        (DeliveryStatement, "encode", w("delivery statement encode (x2)")),
        (DeliveryBatch, "add", w("batch sealing: leaves, proofs, note, envelopes")),
        (DeliveryBatch, "seal", w("batch sealing: leaves, proofs, note, envelopes")),
        (Delivery, "encode", w("batch sealing: leaves, proofs, note, envelopes")),
        (AuditLog, "checkpoint", w("checkpoint + log state")),
        (LogState, "encode", w("checkpoint + log state")),
        (uuid_module, "uuid5", w("processor: other (uuid5, hashing, records)")),
        (PartitionProcessor, "process", w("processor: other (uuid5, hashing, records)")),
    ]
    with patched(targets):
        _process_all(registry, policies, key, work, now)
    n = sum(len(r) for _, _, r in work)
    return {k: v / n * 1e6 for k, v in _largest_first(clock.totals).items()}


# --- report ------------------------------------------------------------------------------------


def _median(runs: list[RunStats], key: str) -> float:
    return statistics.median(r.figures()[key] for r in runs)


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
    }


def print_report(result: dict[str, Any]) -> None:
    m = result["machine"]
    print()
    print(f"== Puente pipeline benchmark ({result['started']}) ==")
    print(f"machine: {m['python']}, {m['cpu']}, {m['cores']} cores (shared)")
    print(f"load average at start {result['load_start'][0]:.2f}, at end {m['load_average'][0]:.2f}")
    inp = result["inputs"]
    print(
        f"kafka: {result['kafka']}; inputs: {inp['notices']} CaseNotices per run, "
        f"{inp['median_bytes']} B median ({inp['min_bytes']}-{inp['max_bytes']}), padded to "
        f">= {PAD_TO} B; origins {','.join(inp['origins'])} x {inp['partitions']} partitions"
    )
    fo = result["fanout"]
    print(
        f"fan-out per input: {fo['deliveries']:.2f} deliveries ({fo['delivery_bytes']:.0f} B), "
        f"{fo['audit']:.2f} audit records ({fo['audit_bytes']:.0f} B), {fo['state']:.2f} state; "
        f"per transaction: 1 log state, a checkpoint per {result['checkpoint_every']} audit records"
    )
    print()
    head = f"{'':<38}{'runs':>5}{'notices/s':>11}{'deliv/s':>10}{'audit/s':>10}{'MB/s out':>9}"
    print(head + f"{'in/txn':>8}")
    for name, key in (
        ("pipeline (policy service)", "pipeline"),
        ("pass-through, same fan-out", "passthrough"),
    ):
        r = result[key]
        print(
            f"{name:<38}{r['runs']:>5}{r['notices_per_s']:>11,.0f}{r['deliveries_per_s']:>10,.0f}"
            f"{r['audit_per_s']:>10,.0f}{r['out_mb_per_s']:>9.1f}{r['inputs_per_transaction']:>8.0f}"
        )
        print(
            f"{'  each run (notices/s)':<38}{'':>5}  " + ", ".join(f"{x:,.0f}" for x in r["each"])
        )
    ratio = result["ratio"]
    print(f"{'ratio pipeline / pass-through':<38}{'':>5}{ratio:>11.3f}   (target >= 0.5)")
    print(
        f"{'processor alone, offline, 1 core':<38}{1:>5}{fo['processor_rate']:>11,.0f}"
        "   (no Kafka: the pipeline's CPU bound)"
    )
    met = result["pipeline"]["notices_per_s"] >= 5000
    print(f"target: >= 5,000 notices/s -> {'met' if met else 'MISSED'}")
    p = result["pipeline"]
    for name, key in (("pipeline", "pipeline"), ("pass-through", "passthrough")):
        r = result[key]
        if "python_cpu_ms_per_notice" in r:
            broker = r.get("broker_cpu_ms_per_notice")
            print(
                f"{name} CPU per notice: Python {r['python_cpu_ms_per_notice']:.2f} ms "
                f"({r['python_cpu_cores']:.2f} cores busy)"
                + (
                    f", broker {broker:.2f} ms ({r['broker_cpu_cores']:.2f} cores busy)"
                    if broker is not None
                    else ""
                )
            )
    outcomes = [r["outcomes"] for r in result["pipeline"]["raw"]]
    print(f"pipeline outcomes per run: {outcomes}")
    print(
        f"pipeline loop, share of wall time: processor {p['process_share']:.0%}, produce + commit "
        f"{p['commit_share']:.0%}, poll/other {p['poll_share']:.0%}"
    )
    if not all(result["complete"]):
        print("WARNING: a run ended without every input committed (see 'complete' in the JSON)")
    for name, key in (
        ("ProducerPerformance 1 KiB, acks=all", "ceiling"),
        ("  same, transactions every 100 ms", "ceiling_txn"),
    ):
        c = result.get(key)
        if c:
            print(
                f"{name:<38}{c['runs']:>5}{c['records_per_s']:>11,.0f} records/s, "
                f"{c['mb_per_s']:.1f} MB/s, p99 {c['p99_latency_ms']:.0f} ms"
            )
    if result.get("ceiling"):
        mbps = result["ceiling"]["mb_per_s"]
        print(
            f"pipeline output {p['out_mb_per_s']:.1f} MB/s = {p['out_mb_per_s'] / mbps:.1%} of the "
            f"broker ceiling; pass-through {result['passthrough']['out_mb_per_s'] / mbps:.1%}"
        )
    off = result.get("offline") or {}
    if off:
        print()
        print(f"processor CPU per notice by stage (offline, {off['notices']} notices, thread CPU):")
        for stage, us in off["stages_cpu_us_per_notice"].items():
            print(f"    {stage:<48}{us:>9.0f} us")
    for lat in result.get("latency", []):
        print()
        print(
            f"latency at {lat['rate']:.0f} notices/s offered ({lat['achieved_rate']:.0f}/s sent, "
            f"{lat['published']} notices, {lat['verified']} deliveries verified, "
            f"{lat['missing']} not verified before the drain timeout): p50 {lat['p50_ms']:.0f} ms, "
            f"p90 {lat['p90_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, max {lat['max_ms']:.0f} ms "
            "(targets 50 / 250 ms at 500/s)"
        )
        for stage, v in lat["stages_p50_ms"].items():
            print(f"    {stage:<28} p50 {v:>8.1f} ms   p99 {lat['stages_p99_ms'][stage]:>8.1f} ms")
    for key in ("latency_error", "ceiling_error", "ceiling_txn_error"):
        if key in result:
            print(f"{key}: {result[key]}")
    prof = result.get("profile")
    if prof:
        print()
        print(f"profile of one pipeline run ({prof['notices']} notices, {prof['seconds']:.1f} s):")
        total = sum(prof["stages"].values())
        for stage, s in prof["stages"].items():
            if s / total < 0.003:
                continue
            us = s / prof["notices"] * 1e6
            print(f"    {stage:<48}{s / total:>6.1%}{us:>9.0f} us/notice")


async def bench(kafka: KafkaHarness, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    registry = Registry.load(settings.schemas_dir)
    policies = PolicyStore(settings.policies_dir, settings.schemas_dir, secret=PSEUDONYM_SECRET)
    policies.reload()
    created = now_utc() - dt.timedelta(minutes=1)
    notices = make_notices(registry, args.origins, args.notices, args.seed, created=created)
    sizes = sorted(len(v) for vs in notices.values() for _, v in vs)
    print(f"inputs: {len(sizes)} notices, median {statistics.median(sizes):.0f} B", flush=True)
    fan = compute_fanout(
        registry,
        policies,
        notices,
        partitions=args.partitions,
        batch=settings.policy.max_batch,
        checkpoint_every=settings.policy.checkpoint_every,
    )
    print(
        f"fan-out computed offline: processor alone {fan.processor_rate:,.0f} notices/s "
        f"({fan.processor_cpu_rate:,.0f}/CPU-s); "
        f"{fan.per_input('deliveries'):.2f} deliveries, {fan.per_input('audit'):.2f} audit "
        f"records per notice; outcomes {dict(fan.outcomes)}",
        flush=True,
    )
    offline: dict[str, Any] = {}
    if not args.skip_offline:
        work = _batches(notices, args.partitions, settings.policy.max_batch, args.offline_notices)
        offline["stages_cpu_us_per_notice"] = stage_breakdown(registry, policies, work)
        offline["notices"] = sum(len(r) for _, _, r in work)
        print("offline stage breakdown done", flush=True)
    pipe: list[RunStats] = []
    base: list[RunStats] = []
    for i in range(args.runs):
        pipe.append(await pipeline_run(kafka, notices, args))
        print(
            f"run {i + 1}: pipeline {pipe[-1].figures()['notices_per_s']:,.0f} notices/s",
            flush=True,
        )
        base.append(await passthrough_run(kafka, notices, fan, args, settings))
        print(
            f"run {i + 1}: pass-through {base[-1].figures()['notices_per_s']:,.0f} notices/s",
            flush=True,
        )

    def summary(runs: list[RunStats]) -> dict[str, Any]:
        keys = runs[0].figures().keys()
        out: dict[str, Any] = {k: _median(runs, k) for k in keys}
        out["runs"] = len(runs)
        out["each"] = [r.figures()["notices_per_s"] for r in runs]
        out["raw"] = [asdict(r) for r in runs]
        return out

    result: dict[str, Any] = {
        "kafka": f"{kafka.source}, {kafka.brokers} broker(s), {kafka.endpoint.bootstrap}",
        "inputs": {
            "notices": len(sizes),
            "origins": list(args.origins),
            "partitions": args.partitions,
            "median_bytes": int(statistics.median(sizes)),
            "min_bytes": sizes[0],
            "max_bytes": sizes[-1],
        },
        "checkpoint_every": settings.policy.checkpoint_every,
        "max_batch": settings.policy.max_batch,
        "fanout": {
            "deliveries": fan.per_input("deliveries"),
            "audit": fan.per_input("audit"),
            "state": fan.per_input("state"),
            "delivery_bytes": fan.bytes_by_kind["deliveries"] / max(1, fan.kinds["deliveries"]),
            "audit_bytes": fan.bytes_by_kind["audit"] / max(1, fan.kinds["audit"]),
            "processor_rate": fan.processor_rate,
            "processor_cpu_rate": fan.processor_cpu_rate,
            "outcomes": dict(fan.outcomes),
        },
        "pipeline": summary(pipe),
        "passthrough": summary(base),
        "complete": [r.complete for r in pipe + base],
    }
    result["offline"] = offline
    result["ratio"] = result["pipeline"]["notices_per_s"] / result["passthrough"]["notices_per_s"]
    result["ratio_each"] = [
        p.figures()["notices_per_s"] / b.figures()["notices_per_s"]
        for p, b in zip(pipe, base, strict=True)
    ]
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001, async_mode="disabled")
        stats = await pipeline_run(kafka, notices, args, profiler=profiler)
        args.profile.parent.mkdir(parents=True, exist_ok=True)
        args.profile.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
        result["profile"] = {
            "notices": stats.inputs,
            "seconds": stats.elapsed,
            "notices_per_s_under_profiler": stats.figures()["notices_per_s"],
            "stages": profile_stages(profiler.last_session),
            "file": str(args.profile),
        }
    if not args.skip_latency:
        # First a rate the pipeline sustains (a quarter of its throughput: small batches cost
        # more per notice), then the target's rate.
        sustained = round(result["pipeline"]["notices_per_s"] * 0.25) or 5
        rates = [min(sustained, args.rate), args.rate] if sustained < args.rate else [args.rate]
        try:
            result["latency"] = [asdict(x) for x in await latency_runs(kafka, args, rates)]
        except Exception as exc:  # keep the figures measured so far
            result["latency_error"] = repr(exc)
    if not args.skip_ceiling:
        for key, txn in (("ceiling", False), ("ceiling_txn", True)):
            try:
                runs = await asyncio.to_thread(
                    producer_performance,
                    kafka,
                    records=args.perf_records,
                    runs=args.runs,
                    partitions=args.partitions,
                    transactional=txn,
                )
            except Exception as exc:  # keep the figures measured so far
                result[f"{key}_error"] = repr(exc)
                continue
            result[key] = {k: statistics.median(r[k] for r in runs) for k in runs[0]} | {
                "runs": len(runs),
                "each": runs,
            }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notices", type=int, default=2000, help="inputs per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=2, help="partitions per topic")
    parser.add_argument("--origins", type=lambda s: s.split(","), default=["MX", "US", "CO", "GT"])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--rate", type=float, default=500.0, help="latency: notices/s offered")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--timeout", type=float, default=900.0, help="per measured run")
    parser.add_argument(
        "--baseline-repeat",
        type=int,
        default=3,
        help="pass-through: each input is pre-loaded this many times (same fan-out each time)",
    )
    parser.add_argument("--perf-records", type=int, default=200_000)
    parser.add_argument("--profile", type=Path, help="pyinstrument text report of one run")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-offline", action="store_true", help="no CPU stage breakdown")
    parser.add_argument("--offline-notices", type=int, default=400)
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument("--json", type=Path, help="where to write the JSON (default reports/)")
    parser.add_argument("--subscriber-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--publisher-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from puente.logs import configure_logging

    configure_logging("warning")
    if args.subscriber_child:
        asyncio.run(subscriber_child(args.origins))
        return
    if args.publisher_child:
        asyncio.run(publisher_child(args.origins, args.rate, args.latency_seconds, 2.0, args.seed))
        return
    started = now_utc().strftime("%Y-%m-%dT%H:%M:%SZ")
    load_start = os.getloadavg()
    with kafka_harness() as kafka:
        if kafka.cluster is not None:
            info = kafka.cluster.info()
            BROKER_PIDS.extend(n.pid for n in (info.nodes if info else []) if n.pid)
        result = asyncio.run(bench(kafka, args))
    result |= {"started": started, "load_start": load_start, "machine": machine()}
    print_report(result)
    save_report(result, args.json or REPO / "reports" / f"pipeline-{started.replace(':', '')}.json")


def save_report(result: dict[str, Any], path: Path) -> None:
    """Write a benchmark's result as JSON (``reports/`` is git-ignored) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nJSON: {path}")


if __name__ == "__main__":
    main()
