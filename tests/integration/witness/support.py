"""Helpers for the witnesses' tests on the real broker: a log whose checkpoints the test signs
with the state's node key (forks included), witnesses as their states' principals, and a
second checkpoints topic that shows some witnesses another view (what a cluster operator
serving different records to different readers could do)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace

from aiokafka import TopicPartition

from puente.evidence._time import now_ms
from puente.evidence.finality import FinalityBook
from puente.evidence.log import AuditLog, CheckpointRecord, audit_log_id
from puente.evidence.trust import Usage, node_holder
from puente.kafka.admin import admin_client
from puente.kafka.clients import consumer, producer, start
from puente.kafka.plan import Acl, Operation, Pattern, Resource, Topic
from puente.kafka.provision import apply, diff, read_state
from puente.service.nodekeys import StoreKeys
from puente.topics import CHECKPOINTS, COSIGNATURES, EQUIVOCATIONS
from puente.witness.service import Witness, WitnessConfig
from puente.witness.shared import Reads
from tests.integration.service.support import Deployment


class Log:
    """State ``state``'s audit log partition 0, grown and checkpointed by the test with the
    state's node key (as its node would)."""

    def __init__(self, dep: Deployment, state: str = "MX", log: AuditLog | None = None) -> None:
        self.dep = dep
        self.state = state
        self.log = log or AuditLog(audit_log_id(state, 0, topic_prefix=dep.tenant.naming.prefix))

    def fork(self) -> Log:
        """A copy of the log from here on: the same key, another history."""
        return Log(self.dep, self.state, AuditLog.from_state(self.log.state()))

    def diverging(self) -> tuple[CheckpointRecord, CheckpointRecord, CheckpointRecord]:
        """Checkpoints 4 and a8 of this log and b12 of another history from size 4 on (its
        consistency proof starts at b8, so it does not lead from a8): (a4, a8, b12)."""
        base = self.grow(4)
        forked = self.fork()
        a8 = self.grow(4, tag=b"a")
        forked.grow(4, tag=b"b")
        return base, a8, forked.grow(4, tag=b"b")

    def grow(self, n: int, *, tag: bytes = b"") -> CheckpointRecord:
        for _ in range(n):
            self.log.append(b"record %d %s" % (self.log.size, tag))
        key = self.dep.evidence.store.current(
            node_holder(self.state), usage=Usage.CHECKPOINT, at=now_ms()
        )
        return self.log.checkpoint(key, time_ms=now_ms())

    async def publish(self, *records: CheckpointRecord, topic: str | None = None) -> None:
        """On the checkpoints topic (or ``topic``) as the state's node, keyed by log id."""
        cred = self.dep.tenant.node(self.state)
        p = producer(self.dep.tenant.endpoint, cred)
        await start(p, self.dep.tenant.endpoint, cred)
        try:
            for r in records:
                await p.send_and_wait(
                    topic or self.dep.tenant.topic(CHECKPOINTS),
                    r.encode(self.dep.registry),
                    key=self.log.log_id.encode(),
                )
        finally:
            await p.stop()


def witness(
    dep: Deployment,
    state: str,
    *,
    instance: str = "w1",
    checkpoints_topic: str | None = None,
    config: WitnessConfig | None = None,
    reads: Reads | None = None,
) -> Witness:
    """State ``state``'s witness as its own principal, its key from the deployment's store
    (``reads``: shared with the other witnesses of the test, as ``--all`` hosts them)."""
    return Witness(
        state=state,
        endpoint=dep.tenant.endpoint,
        credential=dep.tenant.witness(state),
        naming=dep.tenant.naming,
        registry=dep.registry,
        key=StoreKeys(dep.evidence.store, state).witness_key,
        trust=dep.trust(),
        config=config or WitnessConfig(poll_s=0.1),
        instance=instance,
        checkpoints_topic=checkpoints_topic,
        reads=reads,
    )


@contextlib.asynccontextmanager
async def running(witnesses: Sequence[Witness]) -> AsyncIterator[Sequence[Witness]]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in witnesses]
    try:
        await asyncio.wait_for(asyncio.gather(*(w.ready.wait() for w in witnesses)), 180)
        yield witnesses
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)


async def until(check: Callable[[], object], what: str, timeout_s: float = 90.0) -> None:
    """Wait for ``check`` (a condition, never a fixed time)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Follower:
    """What a member reads: every cosignature and equivocation report, as they arrive (its own
    principal), counted into a :class:`FinalityBook`."""

    def __init__(self, dep: Deployment, member: str, quorum: int) -> None:
        self.dep = dep
        self.member = member
        self.book = FinalityBook(quorum, all_cosigners=True)  # the tests watch every cosigner
        self.reports: list[bytes] = []
        self.cosignatures: list[tuple[bytes, int]] = []  # note, arrival (monotonic ns)

    @contextlib.asynccontextmanager
    async def following(self) -> AsyncIterator[Follower]:
        cred = self.dep.tenant.member(self.member)
        c = consumer(self.dep.tenant.endpoint, cred)
        await start(c, self.dep.tenant.endpoint, cred)
        verifier = self.dep.verifier()
        topics = [self.dep.tenant.topic(COSIGNATURES), self.dep.tenant.topic(EQUIVOCATIONS)]
        tps = [
            TopicPartition(t.name, p)
            for t in self.dep.tenant.plan.topics
            if t.name in topics
            for p in range(t.partitions)
        ]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        stop = asyncio.Event()

        async def loop() -> None:
            while not stop.is_set():
                got = await c.getmany(timeout_ms=100)
                for tp, ms in got.items():
                    for m in ms:
                        if tp.topic == topics[0]:
                            self.cosignatures.append((m.value or b"", time.monotonic_ns()))
                            self.book.add(m.value or b"", verifier)
                        else:
                            self.reports.append(m.value or b"")

        task = asyncio.create_task(loop())
        try:
            yield self
        finally:
            stop.set()
            await task
            await c.stop()


def add_view(dep: Deployment, name: str, readers: Iterable[str], writer: str) -> str:
    """A second checkpoints topic ``<prefix>.<name>`` that ``readers``' witnesses read and
    ``writer``'s node writes: the view a dishonest cluster could show some witnesses."""
    naming, plan = dep.tenant.naming, dep.tenant.plan
    topic = f"{naming.prefix}.{name}"
    base = next(t for t in plan.topics if t.name == naming.topic(CHECKPOINTS))
    acls = [
        Acl(naming.witness_principal(r), Resource.TOPIC, topic, Pattern.LITERAL, op)
        for r in readers
        for op in (Operation.READ, Operation.DESCRIBE)
    ]
    acls += [
        Acl(naming.node_principal(writer), Resource.TOPIC, topic, Pattern.LITERAL, op)
        for op in (Operation.WRITE, Operation.DESCRIBE)
    ]
    extra = replace(
        plan,
        topics=(*plan.topics, Topic(topic, base.kind, 1, base.replication, base.configs)),
        acls=tuple(sorted({*plan.acls, *acls})),
    )
    with admin_client(dep.tenant.endpoint, dep.kafka.admin) as admin:
        apply(admin, extra, diff(extra, read_state(admin, extra)), dep.tenant.secrets)
    return topic
