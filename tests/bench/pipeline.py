"""Pipeline benchmark: member states' nodes end to end on a real broker, with sealing on and off,
against a pass-through of the same fan-out and Kafka's own ProducerPerformance, in one run on one
broker.

    .venv/bin/python -m tests.bench.pipeline [--notices 2000] [--runs 3] [--partitions 2]
        [--origins MX,US,CO,GT] [--modes sealed,clear] [--rate 500] [--latency-seconds 10]
        [--profile FILE] [--perf-records 200000] [--skip-latency] [--skip-ceiling] [--json FILE]

What it measures (``--runs`` rounds, medians; a fresh tenant per measured run, its topics deleted
after it). Each round runs the pipeline in every mode of ``--modes`` and then the pass-through in
every mode, the modes' order reversed every other round:

- **sealed** (the federation's default): agencies seal each notice to their state's node
  (``seal_for_node``), the node opens sealed ingress with its key store's ring
  (``StoreKeys``) and seals every delivery to its recipient (``ServiceConfig.seal``);
- **clear** (what sealing is measured against): notices in clear, the node takes ingress in
  clear (``FixedKeys(node key, None)``) and delivers in clear (``ServiceConfig(seal=False)``).

1. **Pipeline**: ``--notices`` CaseNotices padded to >= 1 KiB (free text appended to ``summary``;
   the generator's are ~800 B) are pre-loaded into the ingress topics of ``--origins`` (keyed by
   notice id, so spread over the partitions by the default partitioner; sealed in the sealed
   mode); then one node per origin (``puente.service.worker.Node``: its own principal, group and
   transactional ids; shipped policies, batch signatures, transactions), all in this process
   like ``puente serve node --as A --as B``, start; the clock runs from the first batch any node
   processes once every node owns all its partitions to the commit of the transaction holding
   the last input (start-up, group joins and fencing excluded). Counted from the committed
   transactions: notices/s, deliveries/s, audit records/s, output MB/s; checked afterwards:
   each node's committed offsets equal its ingress end offsets.
2. **Pass-through**: the same inputs (sealed in the sealed mode), pre-loaded the same way,
   consumed per origin by the same kind of consumer (the node's principal and group,
   read_committed, ``max_poll_records`` = ``max_batch``) and produced with the node's own
   transactional producers (one per input partition) and outbox (``puente.service.outbox``: one
   transaction per polled partition batch, with ``send_offsets_to_transaction``). What it
   produces for each input is the output the node's own processor made for that notice in that
   mode (computed offline before the runs): the same number of records of the same sizes to the
   same topics and partitions (deliveries, audit records) plus, per transaction, one log-state
   record, one dedupe chunk of its accepted notices' entries, and a checkpoint per
   ``checkpoint_every`` audit records. No opening, decoding, policy, sealing, signing or hashing.
3. **Offline** (no Kafka): the processor alone over the same inputs in each mode, one core —
   its CPU per notice, and with ``--offline-notices`` of them the CPU per stage (exclusive
   thread CPU of each wrapped function: opening, decoding, policy, sealing, signing, ...).
4. **Latency** (sealed): a paced publisher process seals and publishes at ``--rate`` notices/s
   (and first at a rate the pipeline sustains: a quarter of the measured throughput) while a
   subscriber process (one ``puente.subscriber.core.Subscriber`` per member, verifying every
   delivery against the trust list and opening it with the member's keys) records when each
   delivery is verified; latency = verified - published, per delivery, split into publish ->
   batch start, batch processing + commit, commit -> verified.
5. **Ceiling**: ``org.apache.kafka.tools.ProducerPerformance`` (kafka-tools, same version as the
   broker, fetched into the jar cache) with 1 KiB records, acks=all, as the admin principal over
   SASL/SCRAM, plain and with transactions every 100 ms.

``--profile FILE`` adds one sealed pipeline run under pyinstrument (the measured phase only, the
event loop's thread: the processors run in worker threads, which the offline phase measures)
and writes the text report to FILE, and prints where the loop's time went by stage. Results go
to stdout and, as JSON, to ``reports/pipeline-<time>.json`` (git-ignored) or ``--json FILE``.

Kafka: ``PUENTE_KAFKA_BOOTSTRAP`` (+ admin credentials) or the local broker from Maven jars.
``--subscriber-child`` and ``--publisher-child`` are internal (the latency phase's processes).
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
import threading
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
from puente.evidence._time import now_ms
from puente.evidence.records import AuditRecord
from puente.evidence.seal import BatchSealer
from puente.kafka.admin import admin_client
from puente.kafka.clients import consumer, producer, start
from puente.policy.store import PolicyStore
from puente.publisher.core import seal_for_node
from puente.service.dedupe import CHUNK_PREFIX, decode_chunk, encode_chunk
from puente.service.nodekeys import FixedKeys, NodeKeys, StoreKeys, TrustSealer
from puente.service.outbox import Outbox, default_partition
from puente.service.processor import (
    STATE_LOG_KEY,
    BatchOutput,
    IngressRecord,
    PartitionProcessor,
    SigningMode,
)
from puente.service.takeover import Owned, partition_producer
from puente.service.worker import Node, ServiceConfig
from puente.synth.generator import Generator
from puente.synth.notice import CASE_NOTICE
from puente.topics import AUDIT, INGRESS, REJECTED, Naming
from tests.harness import KafkaHarness, Tenant, kafka_harness
from tests.integration.service import support
from tests.integration.service.support import Deployment
from tests.unit.service.conftest import World, make_world

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


Sealer = Callable[[str, bytes], bytes]  # (origin, notice) -> the notice sealed to its node
MODES = ("sealed", "clear")


def is_sealed(mode: str) -> bool:
    """Whether ``mode`` seals (ingress and deliveries); ValueError for an unknown mode."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; the modes are {', '.join(MODES)}")
    return mode == "sealed"


def federation() -> World:
    """Keys of a federation for the offline phases (no Kafka): each member's node signing key
    and encryption keys, each member's own encryption keys, a trust list pinning the floor."""
    return make_world()


def sealer_of(fed: World) -> Sealer:
    """What an agency of ``origin`` does before publishing: seal the notice to its node."""
    trust_list = fed.trust.verifier().trust_list
    return lambda origin, value: seal_for_node(trust_list, origin, value, at=now_ms())


def compute_fanout(
    registry: Registry,
    policies: PolicyStore,
    notices: dict[str, list[tuple[bytes, bytes]]],
    fed: World,
    *,
    sealed: bool,
    partitions: int,
    batch: int,
    checkpoint_every: int,
) -> Fanout:
    """Run a node's processor over the inputs (sealed to the node first when ``sealed``),
    partition by partition, ``batch`` at a time (as a node would with a full poll), and index
    its output by notice id. The inputs are sealed before the clocks run."""
    fan = Fanout()
    now = now_utc()
    procs: dict[tuple[str, int], PartitionProcessor] = {}
    total = sum(len(v) for v in notices.values())
    work = _batches(notices, partitions, batch, total, seal=sealer_of(fed) if sealed else None)
    for origin, part, records in work:
        proc = procs.get((origin, part))
        if proc is None:
            proc = procs[(origin, part)] = _processor(
                origin,
                part,
                registry,
                policies,
                fed,
                sealed=sealed,
                checkpoint_every=checkpoint_every,
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
    fed: World,
    *,
    sealed: bool,
    checkpoint_every: int = 1000,
) -> PartitionProcessor:
    """A fresh processor of one input partition, configured as a node's (``Node._processor``):
    sealed, it opens ingress with the node's ring and seals deliveries to recipients' keys from
    the trust list; clear, neither."""
    return PartitionProcessor(
        origin=origin,
        partition=part,
        naming=_REF,
        registry=registry,
        policies=policies,
        keys=FixedKeys(fed.node_keys[origin], fed.node_rings[origin] if sealed else None),
        sealer=TrustSealer(fed.trust) if sealed else None,
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


async def deploy(kafka: KafkaHarness, partitions: int) -> Deployment:
    """A fresh tenant: every member provisioned, keys made, the trust list published."""
    return await support.deploy(kafka, partitions=partitions)


def retire(dep: Deployment) -> None:
    """Delete a measured run's topics: every run meets a broker of the same size (twelve
    tenants of twenty members would otherwise pile up thousands of partitions)."""
    with admin_client(dep.kafka.endpoint, dep.kafka.admin) as admin:
        existing = set(admin.list_topics())
        doomed = [t.name for t in dep.tenant.plan.topics if t.name in existing]
        if doomed:
            with contextlib.suppress(Exception):  # a leftover topic only costs broker memory
                admin.delete_topics(doomed)


async def preload(
    dep: Deployment, notices: dict[str, list[tuple[bytes, bytes]]], *, sealed: bool
) -> int:
    """Produce every notice to its origin's ingress topic as that origin (sealed to its node
    first when ``sealed``, as its agencies do); returns the count."""
    tenant = dep.tenant
    total = 0
    for origin, values in notices.items():
        if sealed:
            values = [(k, dep.seal(origin, v)) for k, v in values]
        cred = tenant.member(origin)
        p = producer(tenant.endpoint, cred, linger_ms=5, max_batch_size=1024 * 1024)
        await start(p, tenant.endpoint, cred)
        try:
            futures = [await p.send(tenant.topic(INGRESS, origin), v, key=k) for k, v in values]
            sent = await asyncio.gather(*futures)
        finally:
            await p.stop()
        parts = ingress_partitions(tenant, origin)
        for (k, _), md in zip(values, sent, strict=True):
            # The fan-out was computed for the partition the default partitioner picks.
            assert md.partition == partition_of(k, parts)
        total += len(sent)
    return total


def ingress_partitions(tenant: Tenant, origin: str) -> int:
    topic = tenant.topic(INGRESS, origin)
    return next(t.partitions for t in tenant.plan.topics if t.name == topic)


async def committed_equals_end(tenant: Tenant, origins: Iterable[str]) -> bool:
    """True when each origin's node group has committed its ingress topic's end offsets."""
    for origin in origins:
        cred = tenant.node(origin)
        c = consumer(tenant.endpoint, cred, group_id=tenant.naming.node_group(origin))
        await start(c, tenant.endpoint, cred)
        try:
            topic = tenant.topic(INGRESS, origin)
            tps = [TopicPartition(topic, p) for p in range(ingress_partitions(tenant, origin))]
            ends = await c.end_offsets(tps)
            for tp in tps:
                if (await c.committed(tp) or 0) != ends[tp]:
                    return False
        finally:
            await c.stop()
    return True


def node_keys(dep: Deployment, origin: str, *, sealed: bool) -> NodeKeys:
    """The node's keys as it runs sealed (its key store: signing key and the ring that opens
    sealed ingress) or in clear (its signing key only: ingress taken in clear)."""
    if sealed:
        return StoreKeys(dep.evidence.store, origin)
    return FixedKeys(dep.evidence.node_key(origin), None)


# --- measured runs -----------------------------------------------------------------------------


@dataclass
class RunStats:
    """Counters of one measured run, from committed transactions only (every node's)."""

    mode: str = "sealed"
    expect: int = 0
    inputs: int = 0
    deliveries: int = 0
    audit: int = 0
    records: int = 0
    out_bytes: int = 0
    transactions: int = 0
    polls: int = 0
    nodes: int = 1
    t_first: float | None = None
    t_done: float | None = None
    cpu_start: tuple[float, float | None] | None = None
    cpu_end: tuple[float, float | None] | None = None
    # Summed over the nodes (node-seconds), each node's loop split into:
    process_s: float = 0.0  # processor wall time, in its worker thread (pipeline only)
    process_cpu_s: float = 0.0  # processor thread CPU (pipeline only)
    poll_s: float = 0.0  # between batches: getmany, loop housekeeping
    commit_s: float = 0.0  # the rest of a batch: produce + commit
    complete: bool = False
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def elapsed(self) -> float:
        assert self.t_first is not None and self.t_done is not None
        return self.t_done - self.t_first

    def figures(self) -> dict[str, float]:
        s = self.elapsed
        n = max(1, self.inputs)
        cpu: dict[str, float] = {}
        if self.cpu_start and self.cpu_end:
            cpu["python_cpu_ms_per_notice"] = (self.cpu_end[0] - self.cpu_start[0]) / n * 1e3
            cpu["python_cpu_cores"] = (self.cpu_end[0] - self.cpu_start[0]) / s
            b0, b1 = self.cpu_start[1], self.cpu_end[1]
            if b0 is not None and b1 is not None:
                cpu["broker_cpu_ms_per_notice"] = (b1 - b0) / n * 1e3
                cpu["broker_cpu_cores"] = (b1 - b0) / s
        node_s = s * self.nodes
        return cpu | {
            "seconds": s,
            "notices_per_s": self.inputs / s,
            "deliveries_per_s": self.deliveries / s,
            "audit_per_s": self.audit / s,
            "records_per_s": self.records / s,
            "out_mb_per_s": self.out_bytes / s / 1e6,
            "inputs_per_transaction": self.inputs / max(1, self.transactions),
            "processor_cpu_ms_per_notice": self.process_cpu_s / n * 1e3,
            "processor_cores": self.process_cpu_s / s,
            "process_share": self.process_s / node_s,
            "commit_share": self.commit_s / node_s,
            "poll_share": self.poll_s / node_s,
        }


def _output_size(out: BatchOutput) -> tuple[int, int]:
    records = len(out.deliveries) + len(out.audit) + len(out.state)
    records += len(out.checkpoints) + len(out.rejections)
    size = sum(len(v) for _, _, v in out.deliveries) + sum(len(v) for v in out.audit)
    # A state record may be a tombstone (a pruned dedupe chunk): no value, no bytes.
    size += sum(len(v or b"") for _, v in out.state) + sum(len(v) for _, v in out.checkpoints)
    size += sum(len(v) for _, v in out.rejections)
    return records, size


class Gate:
    """Opens when every member of a group owns all its input partitions: the clock of a run
    starts at its first batch after that, so no node's start-up (group join, fencing) is
    measured while another already processes."""

    def __init__(self, want: int, owned: Callable[[], int], timeout_s: float = 300.0) -> None:
        self.want = want  # input partitions of the whole group
        self.owned = owned
        self.timeout_s = timeout_s
        self.open = asyncio.Event()

    async def wait(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self.open.is_set():
            if self.owned() >= self.want or time.monotonic() > deadline:
                self.open.set()
            else:
                await asyncio.sleep(0.02)


class TimedRun:
    """What the nodes of one run share: counters, the gate, the end, the latency trace."""

    def __init__(self, stats: RunStats) -> None:
        self.stats = stats
        self.finished = asyncio.Event()
        self.trace: dict[bytes, tuple[float, float]] | None = None  # key -> (start, committed)
        self.on_first: Callable[[], None] | None = None
        self.on_done: Callable[[], None] | None = None
        self.gate: Gate | None = None
        self.lock = threading.Lock()


class TimedNode(Node):
    """A member state's node, unchanged, with clocks and counters around its batch methods."""

    def __init__(self, *args: Any, run: TimedRun, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run_ = run
        self._last_exit: float | None = None
        self._process_s = 0.0  # this node's processors' wall time (one batch at a time)

    def _processor(self, *args: Any, **kwargs: Any) -> PartitionProcessor:
        proc = super()._processor(*args, **kwargs)
        inner = proc.process
        stats, lock = self.run_.stats, self.run_.lock

        def timed(
            records: Sequence[IngressRecord], now: dt.datetime, *, force_checkpoint: bool = False
        ) -> BatchOutput:
            t0, c0 = time.perf_counter(), time.thread_time()  # in the worker thread
            try:
                return inner(records, now, force_checkpoint=force_checkpoint)
            finally:
                if records:  # not an idle checkpoint
                    wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
                    self._process_s += wall
                    with lock:  # several nodes' worker threads
                        stats.process_s += wall
                        stats.process_cpu_s += cpu

        # The service builds its processors: this one's batches are timed by shadowing the
        # method on the instance, which mypy refuses for any method.
        proc.process = timed  # type: ignore[method-assign]
        return proc

    async def _process(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        run = self.run_
        if run.gate is not None:
            await run.gate.wait()
        st = run.stats
        t0 = time.perf_counter()
        if st.t_first is None:
            st.t_first = t0
            st.cpu_start = cpu_now()
            if run.on_first:
                run.on_first()
        elif self._last_exit is not None and not run.finished.is_set():
            st.poll_s += t0 - self._last_exit
        wall0 = time.time()
        before = self._process_s
        await super()._process(batches)
        t1 = time.perf_counter()
        if not run.finished.is_set():
            st.polls += 1
            st.commit_s += (t1 - t0) - (self._process_s - before)
        self._last_exit = t1
        if run.trace is not None:
            wall1 = time.time()
            for messages in batches.values():
                for m in messages:
                    if m.key is not None:
                        run.trace[m.key] = (wall0, wall1)

    async def _commit(
        self, owned: Owned, out: BatchOutput, *, first_offset: int | None
    ) -> BatchOutput | None:
        done = await super()._commit(owned, out, first_offset=first_offset)
        run = self.run_
        st = run.stats
        if done is not None and not run.finished.is_set():
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
                if run.on_done:
                    run.on_done()
                run.finished.set()
        return done


class TimedNodes:
    """The nodes of ``origins`` in this process (as ``puente serve node --as A --as B``), each
    its state's principal, keys, consumer group and transactional ids, sharing one TimedRun."""

    def __init__(
        self,
        dep: Deployment,
        origins: Sequence[str],
        *,
        sealed: bool,
        expect: int = 0,
        instance: str = "bench",
        node: type[TimedNode] = TimedNode,
    ) -> None:
        self.run = TimedRun(RunStats(mode="sealed" if sealed else "clear", expect=expect))
        self.run.stats.nodes = len(origins)
        policies = PolicyStore(
            dep.settings.policies_dir, dep.settings.schemas_dir, secret=PSEUDONYM_SECRET
        )
        config = replace(
            ServiceConfig.from_settings(dep.settings.policy, mode=SigningMode.BATCH), seal=sealed
        )
        self.nodes = [
            node(
                origin=origin,
                endpoint=dep.tenant.endpoint,
                credential=dep.tenant.node(origin),
                naming=dep.tenant.naming,
                registry=dep.registry,
                policies=policies,
                keys=node_keys(dep, origin, sealed=sealed),
                trust=dep.trust(),
                config=config,
                instance=f"{instance}-{origin}",
                run=self.run,
            )
            for origin in origins
        ]
        want = sum(ingress_partitions(dep.tenant, o) for o in origins)
        self.run.gate = Gate(want, lambda: sum(len(n.owned) for n in self.nodes))

    @property
    def stats(self) -> RunStats:
        return self.run.stats

    async def run_all(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(n.run(stop) for n in self.nodes))

    async def ready(self) -> None:
        """Until every node owns all its partitions."""
        assert self.run.gate is not None
        await self.run.gate.wait()


async def pipeline_run(
    kafka: KafkaHarness,
    notices: dict[str, list[tuple[bytes, bytes]]],
    args: argparse.Namespace,
    *,
    sealed: bool = True,
    profiler: Any = None,
) -> RunStats:
    dep = await deploy(kafka, args.partitions)
    try:
        total = await preload(dep, notices, sealed=sealed)
        group = TimedNodes(dep, list(notices), sealed=sealed, expect=total)
        if profiler is not None:
            group.run.on_first = profiler.start
            group.run.on_done = profiler.stop
        stop = asyncio.Event()
        task = asyncio.create_task(group.run_all(stop))
        try:
            finished = asyncio.create_task(group.run.finished.wait())
            await asyncio.wait(
                {finished, task}, timeout=args.timeout, return_when="FIRST_COMPLETED"
            )
            finished.cancel()
            if not group.run.finished.is_set():
                raise RuntimeError(
                    f"{group.stats.mode} pipeline run: {group.stats.inputs} of {total} inputs "
                    f"committed after {args.timeout:.0f} s"
                    + (f"; a node stopped: {task.exception()!r}" if task.done() else "")
                )
        finally:
            stop.set()
            await asyncio.wait_for(task, 120)
        group.stats.complete = await committed_equals_end(dep.tenant, notices)
        return group.stats
    finally:
        await asyncio.to_thread(retire, dep)


class PassThrough:
    """Consume -> produce of a precomputed fan-out, shaped like one origin's node: its
    principal, consumer group, producers (one per input partition, the node's transactional
    ids) and outbox, without the processor."""

    def __init__(
        self,
        tenant: Tenant,
        origin: str,
        fan: Fanout,
        stats: RunStats,
        *,
        max_batch: int,
        checkpoint_every: int,
    ) -> None:
        self.tenant = tenant
        self.origin = origin
        self.naming = tenant.naming
        self.max_batch = max_batch
        self.checkpoint_every = checkpoint_every
        self.cred = tenant.node(origin)
        self.group = self.naming.node_group(origin)
        self.stats = stats
        self.gate: Gate | None = None
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
        # seek then fetches again: skip what was done (the node has no such guard).
        self.next: dict[TopicPartition, int] = {}

    def _rename(self, topic: str) -> str:
        return self.naming.prefix + topic[len(_REF.prefix) :]

    async def assign(self, tps: Iterable[TopicPartition]) -> None:
        assert self._consumer is not None
        new = [tp for tp in tps if tp not in self.producers]
        made = {
            tp: partition_producer(
                self.tenant.endpoint,
                self.cred,
                self.naming,
                self.origin,
                tp.partition,
                client_id=f"passthrough-{self.origin}-{tp.partition}",
            )
            for tp in new
        }
        async with self._lock:
            await asyncio.gather(
                *(start(p, self.tenant.endpoint, self.cred) for p in made.values())
            )
            for tp in new:
                committed = await self._consumer.committed(tp)
                if committed is None:
                    await self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, committed)
                self.next[tp] = await self._consumer.position(tp)
            self.producers.update(made)

    async def run(self, expect: int, limit_s: float, done: asyncio.Event) -> None:
        """Until ``expect`` inputs of the whole group are committed (``done`` then set)."""
        st = self.stats
        c = consumer(
            self.tenant.endpoint,
            self.cred,
            group_id=self.group,
            client_id=f"passthrough-{self.origin}",
            max_poll_records=self.max_batch,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            session_timeout_ms=30_000,
            heartbeat_interval_ms=3_000,
        )
        self._consumer = c
        c.subscribe([self.naming.topic(INGRESS, self.origin)], listener=_PassListener(self))
        await start(c, self.tenant.endpoint, self.cred)
        deadline = time.monotonic() + limit_s
        last_exit: float | None = None
        try:
            while not done.is_set() and time.monotonic() < deadline:
                batches = await c.getmany(timeout_ms=200, max_records=self.max_batch)
                if not batches or done.is_set():
                    continue
                if self.gate is not None:
                    await self.gate.wait()
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
                if st.inputs >= expect and not done.is_set():
                    st.t_done = time.perf_counter()
                    st.cpu_end = cpu_now()
                    done.set()
        finally:
            await c.stop()
            for p in self.producers.values():
                await p.stop()

    async def _commit(self, tp: TopicPartition, msgs: list[ConsumerRecord[bytes, bytes]]) -> None:
        """What the node would commit for ``msgs``, from the precomputed fan-out, through
        the node's outbox."""
        origin = self.origin
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
        if accepted:  # one dedupe chunk per transaction, as the node writes per batch
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
    *,
    sealed: bool,
) -> RunStats:
    dep = await deploy(kafka, args.partitions)
    try:
        total = 0
        for _ in range(args.baseline_repeat):  # the same inputs again: a longer measured phase
            total += await preload(dep, notices, sealed=sealed)
        stats = RunStats(mode="sealed" if sealed else "clear", expect=total, nodes=len(notices))
        pts = [
            PassThrough(
                dep.tenant,
                origin,
                fan,
                stats,
                max_batch=settings.policy.max_batch,
                checkpoint_every=settings.policy.checkpoint_every,
            )
            for origin in notices
        ]
        want = sum(ingress_partitions(dep.tenant, o) for o in notices)
        gate = Gate(want, lambda: sum(len(pt.producers) for pt in pts))
        for pt in pts:
            pt.gate = gate
        done = asyncio.Event()
        await asyncio.gather(*(pt.run(total, args.timeout, done) for pt in pts))
        if stats.t_done is None:
            stats.t_done, stats.cpu_end = time.perf_counter(), cpu_now()
        stats.complete = stats.inputs == total and await committed_equals_end(dep.tenant, notices)
        return stats
    finally:
        await asyncio.to_thread(retire, dep)


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

    def __init__(self, dep: Deployment, *args: str) -> None:
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
        cls, dep: Deployment, origins: Sequence[str], rate: float, seconds: float, seed: int
    ) -> Child:
        """A paced publisher process: ``rate`` notices/s from ``origins`` for ``seconds``, each
        notice sealed to its origin's node."""
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


def _child_evidence(settings: Settings, registry: Registry) -> tuple[Any, Any]:
    """The deployment's evidence (keys and trust list, made by the benchmark) and a tracker."""
    from puente.app.operator import ensure_evidence
    from puente.evidence.trustsource import TrustTracker
    from puente.members import load_members

    evidence = ensure_evidence(settings, load_members(settings.policies_dir).codes)
    return evidence, TrustTracker.with_list(evidence.trust_list, evidence.anchors, registry)


async def subscriber_child(members: Sequence[str]) -> None:
    """Run one Subscriber per member, each opening its deliveries with that member's own
    encryption keys; print a line per verified and opened delivery with its time."""
    from puente.evidence.keystore import KeyStore
    from puente.evidence.trust import member_holder
    from puente.kafka.connection import credential
    from puente.subscriber.core import Subscriber

    settings, naming, registry, endpoint = _child_context()
    _, trust = _child_evidence(settings, registry)
    store = KeyStore(settings.keys_dir)
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
                    keys=store.keyring(member_holder(m)),
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
    padded CaseNotices, each sent with a fresh notice id (generating one takes ~10 ms) and
    sealed to its origin's node just before it is sent, as an agency does."""
    from puente.kafka.connection import credential

    settings, naming, registry, endpoint = _child_context()
    evidence, _ = _child_evidence(settings, registry)
    trust_list = evidence.open_trust_list()
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
            value = seal_for_node(trust_list, origin, value, at=now_ms())
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
    dep: Deployment,
    group: TimedNodes,
    subs: Child,
    args: argparse.Namespace,
    rate: float,
) -> Latency:
    run = group.run
    run.trace = {}
    subs.verified.clear()
    deliveries_before = run.stats.deliveries
    inputs_before = run.stats.inputs
    pub = Child.publisher(dep, args.origins, rate, args.latency_seconds, args.seed + int(rate))
    await pub.start()
    await asyncio.wait_for(pub.done.wait(), args.latency_seconds + 600)
    achieved = pub.sent_rate
    await pub.stop()
    total = len(pub.published) + pub.warmup
    deadline = time.monotonic() + args.drain_timeout
    while time.monotonic() < deadline:
        if run.stats.inputs - inputs_before >= total:
            expected = run.stats.deliveries - deliveries_before
            if len(subs.verified) >= expected:
                break
        await asyncio.sleep(0.2)
    trace = run.trace
    run.trace = None
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
    expected_deliveries = run.stats.deliveries - deliveries_before
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
    """The nodes of ``args.origins``, sealed, fed by the paced publisher; every member's
    subscriber verifies and opens what it receives."""
    dep = await deploy(kafka, args.partitions)
    group = TimedNodes(dep, args.origins, sealed=True, instance="bench-latency")
    stop = asyncio.Event()
    task = asyncio.create_task(group.run_all(stop))
    subs = Child(dep, "--subscriber-child", "--origins", ",".join(support.ALL_MEMBERS))
    results = []
    try:
        await asyncio.wait_for(group.ready(), 300)
        await subs.start()
        for rate in rates:
            results.append(await latency_phase(dep, group, subs, args, rate))
            print(
                f"latency at {rate:.0f}/s: p50 {results[-1].p50_ms:.0f} ms, "
                f"p99 {results[-1].p99_ms:.0f} ms",
                flush=True,
            )
    finally:
        stop.set()
        await asyncio.wait_for(task, 120)
        await subs.stop()
        await asyncio.to_thread(retire, dep)
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


Work = list[tuple[str, int, list[IngressRecord]]]  # (origin, partition, one batch)


def _batches(
    notices: dict[str, list[tuple[bytes, bytes]]],
    partitions: int,
    batch: int,
    limit: int,
    *,
    seal: Sealer | None = None,
) -> Work:
    """Inputs as the nodes' processors see them: per (origin, partition), ``batch`` at a time;
    each value sealed to its origin's node by ``seal`` when given (as its agency would)."""
    out = []
    for origin, values in notices.items():
        by_part: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        for k, v in values[: max(1, limit // len(notices))]:
            by_part[partition_of(k, partitions)].append((k, v if seal is None else seal(origin, v)))
        topic = _REF.topic(INGRESS, origin)
        for part, items in sorted(by_part.items()):
            for at in range(0, len(items), batch):
                chunk = items[at : at + batch]
                recs = [IngressRecord(topic, part, i, k, v) for i, (k, v) in enumerate(chunk, at)]
                out.append((origin, part, recs))
    return out


def offline_work(
    notices: dict[str, list[tuple[bytes, bytes]]],
    fed: World,
    *,
    sealed: bool,
    partitions: int,
    batch: int,
    limit: int,
) -> Work:
    """The offline phases' inputs in one mode: sealed to the nodes of ``fed`` when ``sealed``."""
    return _batches(notices, partitions, batch, limit, seal=sealer_of(fed) if sealed else None)


def _process_all(
    registry: Registry,
    policies: PolicyStore,
    fed: World,
    work: Work,
    now: dt.datetime,
    *,
    sealed: bool,
) -> tuple[float, list[BatchOutput]]:
    """Thread CPU seconds to process ``work`` with fresh processors, and the outputs."""
    procs: dict[tuple[str, int], PartitionProcessor] = {}
    outs = []
    t0 = time.thread_time()
    for origin, part, records in work:
        proc = procs.get((origin, part))
        if proc is None:
            proc = procs[(origin, part)] = _processor(
                origin, part, registry, policies, fed, sealed=sealed
            )
        outs.append(proc.process(records, now))
    return time.thread_time() - t0, outs


# Stages of the sealed path only: a clear run has none of them.
SEAL_STAGES = (
    "ingress: open the sealed notice (HPKE)",
    "delivery: data key sealed to the recipient (HPKE, once per batch and recipient)",
    "delivery: payload sealed under the data key (AES-256-GCM)",
    "delivery: recipient's key from the trust list (once per batch and recipient)",
)


def stage_breakdown(
    registry: Registry, policies: PolicyStore, fed: World, work: Work, *, sealed: bool
) -> dict[str, float]:
    """CPU microseconds per notice in each stage of a node's processor (exclusive times), and
    ``total``: the thread CPU per notice of the same pass (the wrappers' own cost included)."""
    import puente.evidence.log as log_module
    import puente.service.processor as proc_module
    from puente.evidence.delivery import Delivery, DeliveryBatch, DeliveryStatement
    from puente.evidence.log import AuditLog, LogState
    from puente.policy.engine import PolicySet

    now = now_utc()
    _process_all(registry, policies, fed, work[:2], now, sealed=sealed)  # warm caches
    clock = StageClock()

    def w(name: str) -> Callable[[Any], Any]:
        return lambda fn: clock.wrap(name, fn)

    batch_signature = "batch signature: leaves, proofs, note, envelopes"
    other = "processor: other (uuid5, hashing, records)"
    targets = [
        (proc_module, "open_notice", w(SEAL_STAGES[0])),
        (proc_module, "validate", w("decode + validate")),
        (PolicySet, "decide_all", w("policy decide_all")),
        (proc_module, "encode", w("transform: payload encode")),
        (BatchSealer, "__init__", w(SEAL_STAGES[1])),
        (BatchSealer, "seal", w(SEAL_STAGES[2])),
        (TrustSealer, "recipient_key", w(SEAL_STAGES[3])),
        (log_module, "replace", w("audit record: dataclasses.replace")),
        (AuditLog, "append_record", w("audit record: encode + Merkle append")),
        (DeliveryStatement, "encode", w("delivery statement encode (x2)")),
        (DeliveryBatch, "add", w(batch_signature)),
        (DeliveryBatch, "seal", w(batch_signature)),
        (Delivery, "encode", w(batch_signature)),
        (AuditLog, "checkpoint", w("checkpoint + log state")),
        (LogState, "encode", w("checkpoint + log state")),
        (uuid, "uuid5", w(other)),
        (PartitionProcessor, "process", w(other)),
    ]
    with patched(targets):
        total, _ = _process_all(registry, policies, fed, work, now, sealed=sealed)
    n = sum(len(r) for _, _, r in work)
    stages = {k: v / n * 1e6 for k, v in _largest_first(clock.totals).items()}
    return stages | {"total": total / n * 1e6}


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


SEALING_TARGET = 0.25  # issue 16: sealing costs under 25 % of throughput (Kroxylicious ~26 %)


def print_report(result: dict[str, Any]) -> None:
    m = result["machine"]
    modes: list[str] = result["modes"]
    print()
    print(f"== Puente pipeline benchmark, nodes ({result['started']}) ==")
    print(f"machine: {m['python']}, {m['cpu']}, {m['cores']} cores (shared)")
    loads = ", ".join(f"{x[0]:.2f}" for x in result["loads"])
    print(
        f"load average (1 min) at start {result['load_start'][0]:.2f}, after each round "
        f"{loads}, at end {m['load_average'][0]:.2f}"
    )
    inp = result["inputs"]
    print(
        f"kafka: {result['kafka']}; inputs: {inp['notices']} CaseNotices per run, "
        f"{inp['median_bytes']} B median ({inp['min_bytes']}-{inp['max_bytes']}), padded to "
        f">= {PAD_TO} B; origins {','.join(inp['origins'])} x {inp['partitions']} partitions, "
        f"a node per origin"
    )
    for mode in modes:
        fo = result["fanout"][mode]
        print(
            f"fan-out per input, {mode}: {fo['deliveries']:.2f} deliveries "
            f"({fo['delivery_bytes']:.0f} B), {fo['audit']:.2f} audit records "
            f"({fo['audit_bytes']:.0f} B), {fo['state']:.2f} state; per transaction: 1 log "
            f"state, a checkpoint per {result['checkpoint_every']} audit records"
        )
    print()
    head = f"{'':<40}{'runs':>5}{'notices/s':>11}{'deliv/s':>10}{'audit/s':>10}{'MB/s out':>9}"
    print(head + f"{'in/txn':>8}")
    for mode in modes:
        for name, key in (
            ("pipeline (nodes)", "pipeline"),
            ("pass-through, same fan-out", "passthrough"),
        ):
            r = result[key][mode]
            print(
                f"{name + ', ' + mode:<40}{r['runs']:>5}{r['notices_per_s']:>11,.0f}"
                f"{r['deliveries_per_s']:>10,.0f}{r['audit_per_s']:>10,.0f}"
                f"{r['out_mb_per_s']:>9.1f}{r['inputs_per_transaction']:>8.0f}"
            )
            print(f"{'  each run (notices/s)':<45}  " + ", ".join(f"{x:,.0f}" for x in r["each"]))
        print(
            f"{'ratio pipeline / pass-through, ' + mode:<45}{result['ratio'][mode]:>11.3f}   "
            f"(target >= 0.5, stretch 0.8; each run "
            + ", ".join(f"{x:.2f}" for x in result["ratio_each"][mode])
            + ")"
        )
    sealing = result.get("sealing")
    if sealing:
        cost = sealing["throughput_cost"]
        print(
            f"\nsealing on / off, pipeline notices/s: {sealing['on_off']:.3f} (median of the "
            f"rounds' ratios; each "
            + ", ".join(f"{x:.2f}" for x in sealing["on_off_each"])
            + f"; ratio of the medians {sealing['on_off_of_medians']:.3f})"
        )
        verdict = "met" if cost < SEALING_TARGET else "MISSED"
        print(
            f"sealing costs {cost:.1%} of throughput -> target < {SEALING_TARGET:.0%}: {verdict} "
            "(Kroxylicious record encryption: ~26 %)"
        )
        print(
            f"same from CPU time (a shared machine disturbs it less): this process's CPU per "
            f"notice clear / sealed {sealing['cpu_on_off']:.3f}, i.e. sealing costs "
            f"{1 - sealing['cpu_on_off']:.1%} of a CPU-bound node's throughput"
        )
        if "passthrough_on_off" in sealing:
            print(
                f"pass-through sealed / clear (bigger records only): "
                f"{sealing['passthrough_on_off']:.3f}"
            )
    print()
    for mode in modes:
        fo = result["fanout"][mode]
        print(
            f"processor alone, offline, 1 core, {mode}: {fo['processor_cpu_rate']:,.0f} "
            f"notices/CPU-s ({1e3 / fo['processor_cpu_rate']:.2f} ms CPU per notice)"
        )
    if sealing and "processor_cpu_on_off" in sealing:
        print(
            f"processor CPU per notice sealed / clear (offline): "
            f"{sealing['processor_cpu_on_off']:.2f}x"
        )
    for mode in modes:
        for name, key in (("pipeline", "pipeline"), ("pass-through", "passthrough")):
            r = result[key][mode]
            if "python_cpu_ms_per_notice" not in r:
                continue
            broker = r.get("broker_cpu_ms_per_notice")
            line = (
                f"{name}, {mode}, CPU per notice: Python {r['python_cpu_ms_per_notice']:.2f} ms "
                f"({r['python_cpu_cores']:.2f} cores busy)"
            )
            if key == "pipeline":
                line += (
                    f", of it processors {r['processor_cpu_ms_per_notice']:.2f} ms "
                    f"({r['processor_cores']:.2f} cores)"
                )
            if broker is not None:
                line += f"; broker {broker:.2f} ms ({r['broker_cpu_cores']:.2f} cores busy)"
            print(line)
    for mode in modes:
        p = result["pipeline"][mode]
        print(
            f"pipeline, {mode}, each node's loop: processor {p['process_share']:.0%}, produce + "
            f"commit {p['commit_share']:.0%}, poll/other {p['poll_share']:.0%}; outcomes "
            f"{[r['outcomes'] for r in p['raw']]}"
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
                f"{name:<40}{c['runs']:>5}{c['records_per_s']:>11,.0f} records/s, "
                f"{c['mb_per_s']:.1f} MB/s, p99 {c['p99_latency_ms']:.0f} ms"
            )
    if result.get("ceiling"):
        mbps = result["ceiling"]["mb_per_s"]
        for mode in modes:
            p, b = result["pipeline"][mode], result["passthrough"][mode]
            print(
                f"{mode}: pipeline output {p['out_mb_per_s']:.1f} MB/s = "
                f"{p['out_mb_per_s'] / mbps:.1%} of the broker ceiling; pass-through "
                f"{b['out_mb_per_s'] / mbps:.1%}"
            )
    off = result.get("offline") or {}
    if off:
        print()
        print(
            f"processor CPU per notice by stage (offline, {off['notices']} notices, thread CPU, "
            "microseconds):"
        )
        names = list(dict.fromkeys(k for mode in modes for k in off["stages"][mode]))
        names = [n for n in names if n != "total"] + ["total"]
        print(f"    {'':<56}" + "".join(f"{mode:>10}" for mode in modes))
        for stage in names:
            cells = "".join(f"{off['stages'][mode].get(stage, 0.0):>10.0f}" for mode in modes)
            print(f"    {stage:<56}{cells}")
    for lat in result.get("latency", []):
        print()
        print(
            f"latency, sealed, at {lat['rate']:.0f} notices/s offered "
            f"({lat['achieved_rate']:.0f}/s sent, {lat['published']} notices, "
            f"{lat['verified']} deliveries verified and opened, "
            f"{lat['missing']} not verified before the drain timeout): p50 {lat['p50_ms']:.0f} ms, "
            f"p90 {lat['p90_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, max {lat['max_ms']:.0f} ms "
            "(targets 50 / 250 ms at half the capacity)"
        )
        for stage, v in lat["stages_p50_ms"].items():
            print(f"    {stage:<28} p50 {v:>8.1f} ms   p99 {lat['stages_p99_ms'][stage]:>8.1f} ms")
    for key in ("latency_error", "ceiling_error", "ceiling_txn_error", "profile_error"):
        if key in result:
            print(f"{key}: {result[key]}")
    prof = result.get("profile")
    if prof:
        print()
        print(
            f"profile of one sealed pipeline run, event loop thread ({prof['notices']} notices, "
            f"{prof['seconds']:.1f} s):"
        )
        total = sum(prof["stages"].values())
        for stage, s in prof["stages"].items():
            if s / total < 0.003:
                continue
            us = s / prof["notices"] * 1e6
            print(f"    {stage:<48}{s / total:>6.1%}{us:>9.0f} us/notice")


def _summary(runs: list[RunStats]) -> dict[str, Any]:
    keys = runs[0].figures().keys()
    out: dict[str, Any] = {k: _median(runs, k) for k in keys}
    out["runs"] = len(runs)
    out["each"] = [r.figures()["notices_per_s"] for r in runs]
    out["raw"] = [asdict(r) for r in runs]
    return out


def _rate(r: RunStats) -> float:
    return r.figures()["notices_per_s"]


async def bench(kafka: KafkaHarness, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    registry = Registry.load(settings.schemas_dir)
    policies = PolicyStore(settings.policies_dir, settings.schemas_dir, secret=PSEUDONYM_SECRET)
    policies.reload()
    modes = list(dict.fromkeys(args.modes))
    for mode in modes:
        is_sealed(mode)  # an unknown mode fails here, before any run
    fed = federation()
    created = now_utc() - dt.timedelta(minutes=1)
    notices = make_notices(registry, args.origins, args.notices, args.seed, created=created)
    sizes = sorted(len(v) for vs in notices.values() for _, v in vs)
    print(f"inputs: {len(sizes)} notices, median {statistics.median(sizes):.0f} B", flush=True)
    fans: dict[str, Fanout] = {}
    offline: dict[str, Any] = {"stages": {}}
    for mode in modes:
        fan = fans[mode] = compute_fanout(
            registry,
            policies,
            notices,
            fed,
            sealed=is_sealed(mode),
            partitions=args.partitions,
            batch=settings.policy.max_batch,
            checkpoint_every=settings.policy.checkpoint_every,
        )
        print(
            f"fan-out computed offline, {mode}: processor alone {fan.processor_rate:,.0f} "
            f"notices/s ({fan.processor_cpu_rate:,.0f}/CPU-s); "
            f"{fan.per_input('deliveries'):.2f} deliveries, {fan.per_input('audit'):.2f} audit "
            f"records per notice; outcomes {dict(fan.outcomes)}",
            flush=True,
        )
        if not args.skip_offline:
            work = offline_work(
                notices,
                fed,
                sealed=is_sealed(mode),
                partitions=args.partitions,
                batch=settings.policy.max_batch,
                limit=args.offline_notices,
            )
            offline["stages"][mode] = stage_breakdown(
                registry, policies, fed, work, sealed=is_sealed(mode)
            )
            offline["notices"] = sum(len(r) for _, _, r in work)
            print(f"offline stage breakdown done, {mode}", flush=True)
    pipe: dict[str, list[RunStats]] = {m: [] for m in modes}
    base: dict[str, list[RunStats]] = {m: [] for m in modes}
    loads = []
    for i in range(args.runs):
        order = modes if i % 2 == 0 else modes[::-1]
        for mode in order:
            pipe[mode].append(await pipeline_run(kafka, notices, args, sealed=is_sealed(mode)))
            print(
                f"run {i + 1}: pipeline, {mode}, {_rate(pipe[mode][-1]):,.0f} notices/s", flush=True
            )
        for mode in order:
            base[mode].append(
                await passthrough_run(
                    kafka, notices, fans[mode], args, settings, sealed=is_sealed(mode)
                )
            )
            print(
                f"run {i + 1}: pass-through, {mode}, {_rate(base[mode][-1]):,.0f} notices/s",
                flush=True,
            )
        loads.append(os.getloadavg())
        print(f"run {i + 1}: load average {loads[-1]}", flush=True)

    result: dict[str, Any] = {
        "kafka": f"{kafka.source}, {kafka.brokers} broker(s), {kafka.endpoint.bootstrap}",
        "modes": modes,
        "loads": loads,
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
            mode: {
                "deliveries": fan.per_input("deliveries"),
                "audit": fan.per_input("audit"),
                "state": fan.per_input("state"),
                "delivery_bytes": fan.bytes_by_kind["deliveries"] / max(1, fan.kinds["deliveries"]),
                "audit_bytes": fan.bytes_by_kind["audit"] / max(1, fan.kinds["audit"]),
                "processor_rate": fan.processor_rate,
                "processor_cpu_rate": fan.processor_cpu_rate,
                "outcomes": dict(fan.outcomes),
            }
            for mode, fan in fans.items()
        },
        "pipeline": {mode: _summary(runs) for mode, runs in pipe.items()},
        "passthrough": {mode: _summary(runs) for mode, runs in base.items()},
        "complete": [r.complete for runs in (*pipe.values(), *base.values()) for r in runs],
        "offline": offline if offline["stages"] else {},
    }
    result["ratio"] = {
        m: result["pipeline"][m]["notices_per_s"] / result["passthrough"][m]["notices_per_s"]
        for m in modes
    }
    result["ratio_each"] = {
        m: [_rate(p) / _rate(b) for p, b in zip(pipe[m], base[m], strict=True)] for m in modes
    }
    if set(MODES) <= set(modes):
        on_off = [_rate(s) / _rate(c) for s, c in zip(pipe["sealed"], pipe["clear"], strict=True)]
        medians = (
            result["pipeline"]["sealed"]["notices_per_s"]
            / result["pipeline"]["clear"]["notices_per_s"]
        )
        sealing: dict[str, Any] = {
            "on_off": statistics.median(on_off),
            "on_off_each": on_off,
            "on_off_of_medians": medians,
            "throughput_cost": 1 - statistics.median(on_off),
            # The same question asked of CPU time, which a busy shared machine disturbs less:
            # this process's CPU per notice (nodes, clients, processors) in clear / sealed.
            "cpu_on_off": statistics.median(
                c.figures()["python_cpu_ms_per_notice"] / s.figures()["python_cpu_ms_per_notice"]
                for s, c in zip(pipe["sealed"], pipe["clear"], strict=True)
            ),
            "passthrough_on_off": result["passthrough"]["sealed"]["notices_per_s"]
            / result["passthrough"]["clear"]["notices_per_s"],
            "processor_cpu_on_off": fans["clear"].processor_cpu_rate
            / fans["sealed"].processor_cpu_rate,
        }
        result["sealing"] = sealing
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001, async_mode="disabled")
        try:
            stats = await pipeline_run(kafka, notices, args, sealed=True, profiler=profiler)
        except Exception as exc:  # keep the figures measured so far
            result["profile_error"] = repr(exc)
        else:
            args.profile.parent.mkdir(parents=True, exist_ok=True)
            args.profile.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
            result["profile"] = {
                "notices": stats.inputs,
                "seconds": stats.elapsed,
                "notices_per_s_under_profiler": _rate(stats),
                "stages": profile_stages(profiler.last_session),
                "file": str(args.profile),
            }
    if not args.skip_latency:
        # First a rate the pipeline sustains (a quarter of its throughput: small batches cost
        # more per notice), then the target's rate.
        first = "sealed" if "sealed" in modes else modes[0]
        sustained = round(result["pipeline"][first]["notices_per_s"] * 0.25) or 5
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
    parser.add_argument(
        "--modes",
        type=lambda s: s.split(","),
        default=list(MODES),
        help="comma-separated: sealed (ingress and deliveries sealed), clear (neither)",
    )
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
