"""Broker-failure tooling for a local 3-broker cluster, shared by the tests here and
``tests/bench/cluster.py``.

- :class:`Probe`: who leads which partition, who is the active KRaft controller, the ISRs, and
  how far the nodes' groups are behind — kafka-python's admin client as the admin,
  blocking, so async callers run it in a thread (:meth:`Probe.call`).
- :class:`Agencies`: every member state's agency publishing notices at a steady rate with
  acks=all and idempotence, recording for each notice whether and where the broker acknowledged
  it, and how long the publisher waited (bounded, as the gateway bounds it).
- :func:`outcomes` / :func:`deliveries` / :func:`check_exactly_once`: read the audit logs and
  every deliver topic back (read_committed, up to their end offsets) and say what is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer, TopicPartition
from kafka import TopicPartition as KTP

from puente.evidence.records import AuditRecord
from puente.kafka.admin import admin_client
from puente.kafka.clients import consumer, producer, start
from puente.kafka.local import LocalCluster
from puente.synth.generator import Generator
from puente.topics import AUDIT, DELIVER, INGRESS
from tests.harness import KafkaHarness
from tests.integration.service.support import ALL_MEMBERS, Deployment, NodeGroup, now_stamped

Groups = str | Callable[[str], str]
"""A consumer group, or each topic's (a node per state reads its own ingress topic)."""

T = TypeVar("T")
Position = tuple[str, int, int]  # (topic, partition, offset)


# --- the cluster ------------------------------------------------------------------------------


class Probe:
    """Questions about the cluster, answered by the admin (blocking; see :meth:`call`)."""

    def __init__(self, kafka: KafkaHarness) -> None:
        if kafka.cluster is None:
            raise ValueError("broker-failure tools need a local cluster they can kill")
        self.kafka = kafka
        self.cluster: LocalCluster = kafka.cluster

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking probe off the event loop (the service may share the loop)."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def running(self) -> list[int]:
        return [s.node_id for s in self.cluster.status() if s.running]

    def partitions(self, topics: Iterable[str]) -> dict[tuple[str, int], dict[str, Any]]:
        """``{(topic, partition): {"leader": id, "isr": [...], "replicas": [...]}}``."""
        with admin_client(self.kafka.endpoint, self.kafka.admin) as admin:
            described = admin.describe_topics(list(topics))
        return {
            (t["name"], p["partition_index"]): {
                "leader": p["leader_id"],
                "isr": sorted(p["isr_nodes"]),
                "replicas": sorted(p["replica_nodes"]),
            }
            for t in described
            for p in t["partitions"]
        }

    def controller(self) -> int:
        """The active KRaft controller (the metadata quorum's leader)."""
        with admin_client(self.kafka.endpoint, self.kafka.admin) as admin:
            quorum = admin.describe_metadata_quorum()
        return int(quorum["topics"][0]["partitions"][0]["leader_id"])

    def offsets(self, group: Groups, topics: Sequence[str]) -> dict[KTP, tuple[int, int]]:
        """Per partition of ``topics``: (its group's committed offset or 0, the end offset);
        ``group`` names the group, or gives each topic's (a node per state: one per topic)."""
        from kafka.admin import OffsetSpec

        group_of = group if callable(group) else (lambda _topic: group)
        with admin_client(self.kafka.endpoint, self.kafka.admin) as admin:
            tps = [
                KTP(t["name"], p["partition_index"])
                for t in admin.describe_topics(list(topics))
                for p in t["partitions"]
            ]
            ends = admin.list_partition_offsets(dict.fromkeys(tps, OffsetSpec.LATEST))
            by_group: dict[str, list[KTP]] = {}
            for tp in tps:
                by_group.setdefault(group_of(tp.topic), []).append(tp)
            committed: dict[KTP, Any] = {}
            for g, members in by_group.items():
                committed |= admin.list_group_offsets({g: members}).get(g, {})
        out = {}
        for tp in tps:
            done = committed.get(tp)
            out[tp] = (done.offset if done is not None and done.offset >= 0 else 0, ends[tp].offset)
        return out

    def committed(self, group: Groups, topics: Sequence[str]) -> int:
        """The sum of ``group``'s committed offsets over ``topics`` (progress, not position)."""
        return sum(done for done, _ in self.offsets(group, topics).values())

    def lag(self, group: Groups, topics: Sequence[str]) -> int:
        """Records of ``topics`` the group has not committed past (end offset − committed)."""
        return sum(max(0, end - done) for done, end in self.offsets(group, topics).values())

    def wait_until(
        self, what: str, check: Callable[[], str | None], timeout_s: float, every_s: float = 1.0
    ) -> float:
        """Poll ``check`` (None when satisfied, else why not) for up to ``timeout_s``; the wait."""
        t0 = time.monotonic()
        why = "not checked"
        while True:
            try:
                result = check()
            except Exception as exc:  # the cluster may not answer while it heals
                result = f"{type(exc).__name__}: {exc}"
            if result is None:
                return time.monotonic() - t0
            why = result
            if time.monotonic() - t0 > timeout_s:
                raise AssertionError(f"{what}: not within {timeout_s:.0f} s ({why})")
            time.sleep(every_s)

    def wait_isr(self, topics: Sequence[str], size: int = 3, timeout_s: float = 120.0) -> float:
        """Wait until every partition of ``topics`` has ``size`` in-sync replicas; the wait."""

        def check() -> str | None:
            short = {
                tp: d["isr"] for tp, d in self.partitions(topics).items() if len(d["isr"]) < size
            }
            if not short:
                return None
            example = next(iter(short.items()))
            return f"{len(short)} partitions short, e.g. {example}"

        return self.wait_until(f"ISR {size} for {len(topics)} topics", check, timeout_s)

    def wait_drained(
        self, group: Groups, topics: Sequence[str], timeout_s: float, every_s: float = 0.5
    ) -> float:
        """Wait until ``group`` has committed every record of ``topics``; the wait."""

        def check() -> str | None:
            behind = self.lag(group, topics)
            return None if behind == 0 else f"{behind} records behind"

        return self.wait_until("the groups drained", check, timeout_s, every_s)

    def kill(self, node_id: int) -> float:
        """SIGKILL one broker; the wall-clock time (s) of the kill."""
        self.cluster.kill_node(node_id)
        return time.time()

    def restart(self, *node_ids: int) -> None:
        """Start killed brokers again and wait until the cluster answers with all of them.

        ``LocalCluster.start_node`` waits for *every* node to answer, so with two nodes down it
        cannot bring back the first; ``up`` starts all stopped nodes at once.
        """
        down = {s.node_id for s in self.cluster.status() if not s.running}
        if set(node_ids) == down and len(down) == 1:
            self.cluster.start_node(node_ids[0])
        else:
            assert set(node_ids) <= down, (node_ids, down)
            assert set(node_ids) == down, "up() would also start the other stopped nodes"
            self.cluster.up()


def tenant_topics(dep: Deployment) -> list[str]:
    return [t.name for t in dep.tenant.plan.topics]


def ingress_topics(dep: Deployment, origins: Iterable[str] = ALL_MEMBERS) -> list[str]:
    return [dep.tenant.topic(INGRESS, o) for o in origins]


def busiest_leader(
    layout: dict[tuple[str, int], dict[str, Any]], topics: Iterable[str], *, avoid: int | None
) -> int:
    """The broker leading most partitions of ``topics`` (not ``avoid`` unless it leads all)."""
    wanted = set(topics)
    counts = Counter(int(d["leader"]) for (t, _), d in layout.items() if t in wanted)
    ranked = [b for b, _ in counts.most_common() if b != avoid]
    if ranked:
        return ranked[0]
    assert avoid is not None, "no partition has a leader"
    return avoid


# --- the policy service -----------------------------------------------------------------------


@dataclass
class Serving:
    service: NodeGroup
    task: asyncio.Task[None]
    stopping: asyncio.Event

    def check_alive(self) -> None:
        if self.task.done() and not self.stopping.is_set():
            exc = self.task.exception()
            raise AssertionError(f"a node stopped: {exc!r}") from exc

    async def stop(self, timeout_s: float = 120.0) -> None:
        """Stop as on SIGTERM: the current batch finishes, every log gets its checkpoint."""
        self.check_alive()
        self.stopping.set()
        await asyncio.wait_for(self.task, timeout_s)


@contextlib.asynccontextmanager
async def serving(
    dep: Deployment, instance: str = "node-cluster", ready_s: float = 120.0, **config: Any
) -> AsyncIterator[Serving]:
    """Every member state's node in this process; fails as soon as one dies (not only at
    exit)."""
    service = dep.nodes(*ALL_MEMBERS, instance=instance, **config)
    stop = asyncio.Event()
    handle = Serving(service, asyncio.create_task(service.run(stop)), stop)
    try:
        ready = asyncio.create_task(service.ready())
        done, _ = await asyncio.wait(
            {ready, handle.task}, timeout=ready_s, return_when="FIRST_COMPLETED"
        )
        if ready not in done:
            ready.cancel()
            handle.check_alive()
            raise AssertionError(f"the nodes owned no partition within {ready_s:.0f} s")
        yield handle
    finally:
        if not stop.is_set():
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(handle.task, 120)


# --- agencies ---------------------------------------------------------------------------------


@dataclass
class Sent:
    """One notice an agency published, and what the broker said."""

    notice_id: str
    origin: str
    key: bytes
    value: bytes
    sent_at: float = 0.0  # time.time() when last handed to the producer
    acked_at: float | None = None  # when an acknowledgement arrived within the publisher's bound
    error: str | None = None  # why the publisher gave up on the last attempt
    failed_at: float | None = None  # when it gave up
    attempts: int = 0
    landed: list[tuple[Position, float]] = field(default_factory=list)  # every attempt the
    # broker acknowledged (in time or late), with the time of its acknowledgement
    late: int = 0  # attempts acknowledged after the publisher had given up on them

    @property
    def acked(self) -> bool:
        return self.acked_at is not None

    @property
    def positions(self) -> list[Position]:
        return [p for p, _ in self.landed]


def make_notices(dep: Deployment, count: int, seed: int) -> list[Sent]:
    """``count`` encoded notices from every member's agencies (the generator's traffic mix),
    each sealed to its origin's node."""
    from puente.codec.wire import encode

    out = []
    for n in Generator(seed).notices(count):
        record = now_stamped(n)
        value = dep.seal(record["origin"], encode(dep.registry, n.name, record))
        key = record["notice_id"].encode()
        out.append(Sent(record["notice_id"], record["origin"], key, value))
    return out


class Agencies:
    """One idempotent acks=all producer per origin, as that origin's principal.

    aiokafka's idempotent producer never expires an in-flight batch: it retries until the brokers
    take it. So a publisher bounds its own wait (``ack_timeout_s``), as the gateway does; a send
    not acknowledged by then is reported failed (it may still land later — a retry under the same
    notice id is then refused as a duplicate by the origin's node, never delivered twice).
    """

    def __init__(
        self, dep: Deployment, *, ack_timeout_s: float = 30.0, linger_ms: int = 5, **kw: Any
    ):
        self.dep = dep
        self.ack_timeout_s = ack_timeout_s
        self.linger_ms = linger_ms
        self.kw = kw
        self.producers: dict[str, AIOKafkaProducer] = {}
        self.sent: list[Sent] = []
        self._pending: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Agencies:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._pending:
            t.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        for p in self.producers.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(p.stop(), 10)

    @property
    def late(self) -> list[Sent]:
        """Notices with an attempt acknowledged after the publisher had given up on it."""
        return [s for s in self.sent if s.late]

    async def _producer(self, origin: str) -> AIOKafkaProducer:
        p = self.producers.get(origin)
        if p is None:
            cred = self.dep.tenant.member(origin)
            p = producer(self.dep.tenant.endpoint, cred, linger_ms=self.linger_ms, **self.kw)
            await start(p, self.dep.tenant.endpoint, cred)
            self.producers[origin] = p
        return p

    async def prepare(self, origins: Iterable[str]) -> None:
        await asyncio.gather(*(self._producer(o) for o in set(origins)))

    async def send(self, s: Sent) -> None:
        """Hand one notice to its origin's producer; its acknowledgement is awaited aside."""
        s.attempts += 1
        s.error = s.failed_at = None
        s.sent_at = time.time()
        if s not in self.sent:
            self.sent.append(s)
        topic = self.dep.tenant.topic(INGRESS, s.origin)
        try:
            p = await self._producer(s.origin)
            async with asyncio.timeout(self.ack_timeout_s):
                fut = await p.send(topic, s.value, key=s.key)
        except Exception as exc:  # a refusal is a result here
            s.error, s.failed_at = type(exc).__name__, time.time()
            return
        task = asyncio.create_task(self._await_ack(s, fut))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _await_ack(self, s: Sent, fut: asyncio.Future[Any]) -> None:
        attempt = s.attempts
        try:
            meta = await asyncio.wait_for(asyncio.shield(fut), self.ack_timeout_s)
        except TimeoutError:
            if s.attempts == attempt:
                s.error = f"not acknowledged within {self.ack_timeout_s:.0f} s"
                s.failed_at = time.time()
            with contextlib.suppress(Exception):
                meta = await fut  # keep watching: it may land after all
                s.landed.append(((meta.topic, meta.partition, meta.offset), time.time()))
                s.late += 1
            return
        except Exception as exc:
            if s.attempts == attempt:
                s.error, s.failed_at = type(exc).__name__, time.time()
            return
        now = time.time()
        s.landed.append(((meta.topic, meta.partition, meta.offset), now))
        s.acked_at = now

    async def run(
        self, notices: Sequence[Sent], rate: float, stop: asyncio.Event | None = None
    ) -> int:
        """Publish ``notices`` at ``rate`` per second (until ``stop``); the number handed over."""
        t0 = time.monotonic()
        for i, s in enumerate(notices):
            if stop is not None and stop.is_set():
                return i
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.send(s)
        return len(notices)

    async def settle(self, timeout_s: float | None = None) -> None:
        """Wait for every acknowledgement (or its bounded failure)."""
        limit = (timeout_s or self.ack_timeout_s) + 5
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if all(s.acked or s.error is not None for s in self.sent):
                break
            await asyncio.sleep(0.1)
        unsettled = [s for s in self.sent if not s.acked and s.error is None]
        assert not unsettled, f"{len(unsettled)} sends neither acknowledged nor failed"

    async def quiesce(self, timeout_s: float) -> None:
        """Wait (bounded) for sends still retried after their publisher gave up to land."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout_s)


# --- reading back -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


Marks = dict[tuple[str, int], int]  # (topic, partition) -> offset


def partitions_of(dep: Deployment, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of these tenant topics (from the provisioning plan)."""
    count = {t.name: t.partitions for t in dep.tenant.plan.topics}
    return [TopicPartition(t, p) for t in topics for p in range(count[t])]


async def end_offsets(kafka: KafkaHarness, tps: Sequence[TopicPartition]) -> Marks:
    """The last stable offsets of ``tps`` now: read from here, a check sees only what follows."""
    c = consumer(kafka.endpoint, kafka.admin, client_id="puente-cluster-check")
    await start(c, kafka.endpoint, kafka.admin)
    try:
        ends = await c.end_offsets(list(tps))
    finally:
        await c.stop()
    return {(tp.topic, tp.partition): off for tp, off in ends.items()}


async def read_committed(
    kafka: KafkaHarness,
    tps: Sequence[TopicPartition],
    *,
    since: Marks | None = None,
    timeout_s: float = 120.0,
) -> list[Rec]:
    """Every committed record of ``tps`` from ``since`` (default: the beginning) up to their end
    offsets when the read starts, as the admin, read_committed."""
    c = consumer(
        kafka.endpoint,
        kafka.admin,
        client_id="puente-cluster-check",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await start(c, kafka.endpoint, kafka.admin)
    out: list[Rec] = []
    try:
        c.assign(list(tps))
        ends = await c.end_offsets(tps)
        for tp in tps:
            c.seek(tp, (since or {}).get((tp.topic, tp.partition), 0))
        remaining = {tp for tp in tps if await c.position(tp) < ends[tp]}
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise AssertionError(f"reading {len(remaining)} partitions did not finish")
            got = await c.getmany(*remaining, timeout_ms=500, max_records=20_000)
            for tp, msgs in got.items():
                out += [
                    Rec(tp.topic, tp.partition, m.offset, m.key, m.value or b"")
                    for m in msgs
                    if m.offset < ends[tp]
                ]
            remaining = {tp for tp in remaining if await c.position(tp) < ends[tp]}
    finally:
        await c.stop()
    return out


def audit_partitions(dep: Deployment) -> list[TopicPartition]:
    return partitions_of(dep, [dep.tenant.topic(AUDIT, o) for o in ALL_MEMBERS])


def deliver_partitions(dep: Deployment) -> list[TopicPartition]:
    return partitions_of(dep, [dep.tenant.topic(DELIVER, r) for r in ALL_MEMBERS])


async def outcomes(dep: Deployment, since: Marks | None = None) -> list[AuditRecord]:
    """Every committed audit record of every origin's log (from ``since``)."""
    recs = await read_committed(dep.kafka, audit_partitions(dep), since=since)
    return await asyncio.to_thread(
        lambda: [AuditRecord.decode(dep.registry, r.value) for r in recs]
    )


async def deliveries(
    dep: Deployment, notice_ids: set[str], since: Marks | None = None
) -> Counter[tuple[str, str]]:
    """``(notice id, recipient)`` → how many committed deliveries of these notices a subscriber
    reads; each is verified against the trust list as its recipient (signature or proof)."""
    recs = await read_committed(dep.kafka, deliver_partitions(dep), since=since)
    mine = [r for r in recs if (r.key or b"").decode() in notice_ids]

    def verify() -> Counter[tuple[str, str]]:
        verifier = dep.verifier()
        counts: Counter[tuple[str, str]] = Counter()
        for rec in mine:
            recipient = dep.tenant.naming.member_of(rec.topic, DELIVER)
            v = verifier.verify_delivery(rec.value, recipient=recipient)
            assert rec.key == v.statement.notice_id.encode(), (rec, v.statement.notice_id)
            counts[(v.statement.notice_id, recipient)] += 1
        return counts

    return await asyncio.to_thread(verify)


@dataclass
class Verdict:
    """What :func:`check_exactly_once` found."""

    acked: int
    outcomes: Counter[str] = field(default_factory=Counter)  # DELIVERED/WITHHELD/REJECTED
    deliveries: int = 0
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = (
            f"{self.acked} acknowledged notices: {dict(self.outcomes)}, "
            f"{self.deliveries} deliveries"
        )
        if not self.problems:
            return head
        shown = "\n  ".join(self.problems[:20])
        return f"{head}\n{len(self.problems)} problems:\n  {shown}"


async def check_exactly_once(
    dep: Deployment, sent: Sequence[Sent], since: Marks | None = None
) -> Verdict:
    """Every record the brokers acknowledged has its outcome in the audit log, every notice is
    decided at most once (and exactly once when acknowledged) — a re-sent copy may only be
    refused as DUPLICATE_NOTICE — and read_committed subscribers read exactly the deliveries the
    log records, once each. ``since``: where the audit and deliver topics stood before these
    notices were published (their records all follow)."""
    records = await outcomes(dep, since)
    ids = {s.notice_id for s in sent}
    verdict = Verdict(sum(1 for s in sent if s.acked))
    by_position: dict[Position, list[AuditRecord]] = defaultdict(list)
    positions_of: dict[str, set[Position]] = defaultdict(set)
    promised: set[tuple[str, str]] = set()
    for r in records:
        pos = (r.ingress_topic, r.ingress_partition, r.ingress_offset)
        by_position[pos].append(r)
        if r.notice_id in ids:
            positions_of[r.notice_id].add(pos)
            if r.decision in ("DELIVERED", "TRANSFORMED") and r.recipient:
                promised.add((r.notice_id, r.recipient))
    candidates = len(ALL_MEMBERS) - 1
    for s in sent:
        for pos in s.positions:  # acknowledged by the brokers, in time or late
            here = by_position.get(pos, [])
            if not here:
                verdict.problems.append(f"{s.notice_id} acknowledged at {pos}: no outcome (LOST)")
            elif any(r.notice_id != s.notice_id for r in here):
                verdict.problems.append(f"{pos} holds another notice's outcome")
        effective = []
        for pos in positions_of.get(s.notice_id, ()):
            here = by_position[pos]
            rejected = [r for r in here if r.decision == "REJECTED"]
            recipients = Counter(r.recipient for r in here if r.decision != "REJECTED")
            if rejected and (len(rejected) > 1 or recipients):
                verdict.problems.append(f"{s.notice_id} at {pos}: {len(here)} records (DUPLICATED)")
            elif recipients and (len(recipients) != candidates or max(recipients.values()) != 1):
                verdict.problems.append(
                    f"{s.notice_id} at {pos}: {sum(recipients.values())} decisions for "
                    f"{len(recipients)} recipients, not {candidates} once each (DUPLICATED)"
                )
            if rejected and rejected[0].reason_code == "DUPLICATE_NOTICE":
                verdict.outcomes["re-sent copy refused as DUPLICATE_NOTICE"] += 1
                if s.attempts < 2:
                    verdict.problems.append(f"{s.notice_id}: a duplicate it was never sent as")
                continue
            effective.append(pos)
            if rejected:
                verdict.outcomes[f"REJECTED {rejected[0].reason_code}"] += 1
                verdict.problems.append(f"{s.notice_id}: REJECTED {rejected[0].reason_code}")
            elif any(r.decision in ("DELIVERED", "TRANSFORMED") for r in here):
                verdict.outcomes["DELIVERED"] += 1
            else:
                verdict.outcomes["WITHHELD"] += 1
        if len(effective) > 1:
            verdict.problems.append(f"{s.notice_id} decided at {len(effective)} positions")
        elif s.landed and not effective:
            verdict.problems.append(f"{s.notice_id} acknowledged but never decided (LOST)")
    # Deliveries: exactly the ones the log records, once each.
    mine = await deliveries(dep, ids, since)
    verdict.deliveries = sum(mine.values())
    dup = {k: n for k, n in mine.items() if n > 1}
    if dup:
        verdict.problems.append(f"{len(dup)} deliveries read more than once, e.g. {min(dup)}")
    missing = promised - set(mine)
    if missing:
        verdict.problems.append(f"{len(missing)} recorded deliveries missing, e.g. {min(missing)}")
    extra = set(mine) - promised
    if extra:
        verdict.problems.append(f"{len(extra)} deliveries with no audit record, e.g. {min(extra)}")
    return verdict
