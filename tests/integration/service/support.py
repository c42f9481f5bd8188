"""Helpers for tests that run the policy service against the real broker."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from kafka.errors import KafkaError as KafkaPythonError

from puente.app.operator import Evidence, ensure_evidence, publish_trust_list
from puente.codec.registry import Registry
from puente.codec.wire import encode
from puente.config import Settings
from puente.evidence._time import now_ms
from puente.evidence.audit.auditor import AuditOptions, Auditor
from puente.evidence.audit.report import AuditReport
from puente.evidence.enckeys import KeyRing
from puente.evidence.finality import FinalityBook
from puente.evidence.keystore import KeyStore
from puente.evidence.log import CheckpointRecord
from puente.evidence.records import AuditRecord
from puente.evidence.trust import Usage, member_holder
from puente.evidence.trustsource import TrustTracker
from puente.evidence.verify import Verifier
from puente.kafka.admin import admin_client
from puente.kafka.auditsource import KafkaAuditSource
from puente.kafka.clients import consumer, producer, start
from puente.members import load_members
from puente.policy.store import PolicyStore
from puente.publisher.core import seal_for_node
from puente.service.nodekeys import StoreKeys
from puente.service.processor import SigningMode
from puente.service.worker import Node, ServiceConfig
from puente.subscriber.core import Subscriber
from puente.synth.notice import Notice
from puente.topics import AUDIT, CHECKPOINTS, INGRESS
from tests.harness import KafkaHarness, Tenant

REPO = Path(__file__).resolve().parents[3]
ALL_MEMBERS = load_members(Settings().policies_dir).codes


@dataclass
class Deployment:
    """A tenant with every member provisioned, its settings, registry and evidence."""

    kafka: KafkaHarness
    tenant: Tenant
    settings: Settings
    registry: Registry
    evidence: Evidence

    def verifier(self) -> Verifier:
        return Verifier(trust_list=self.evidence.open_trust_list(), registry=self.registry)

    def trust(self) -> TrustTracker:
        return TrustTracker.with_list(
            self.evidence.trust_list, self.evidence.anchors, self.registry
        )

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a ``puente`` subprocess on this tenant."""
        k = self.settings.kafka
        env = dict(
            os.environ,
            PUENTE_STATE_DIR=str(self.settings.state_dir),
            PUENTE_SECRETS_DIR=str(self.settings.secrets_dir),
            PUENTE_KAFKA_BOOTSTRAP=k.bootstrap or "",
            PUENTE_KAFKA_TOPIC_PREFIX=k.topic_prefix,
            PUENTE_POLICY__METRICS_PORT="0",
            PUENTE_LOG_FORMAT="json",
        )
        env.pop("PUENTE_KAFKA_USERNAME", None)
        env.pop("PUENTE_KAFKA_PASSWORD", None)
        env.update(extra)
        return env

    async def puente(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``puente ARGS`` as a subprocess on this tenant (in a thread: the loop keeps running)."""
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "puente", *args],
            env=self.env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def nodes(self, *origins: str, instance: str = "node-test", **config: Any) -> NodeGroup:
        """In-process nodes of ``origins`` (default MX), each its state's principal, keys
        (from the deployment's key store) and consumer group."""
        store = KeyStore(self.settings.keys_dir)
        policies = PolicyStore(
            self.settings.policies_dir, self.settings.schemas_dir, secret=b"p" * 32
        )
        return NodeGroup(
            [
                Node(
                    origin=origin,
                    endpoint=self.tenant.endpoint,
                    credential=self.tenant.node(origin),
                    naming=self.tenant.naming,
                    registry=self.registry,
                    policies=policies,
                    keys=StoreKeys(store, origin),
                    trust=self.trust(),
                    config=ServiceConfig(**{"mode": SigningMode.BATCH, **config}),
                    instance=f"{instance}-{origin}",
                )
                for origin in origins or ("MX",)
            ]
        )

    def seal(self, origin: str, notice: bytes) -> bytes:
        """``notice`` sealed by an agency of ``origin`` to its node."""
        return seal_for_node(self.evidence.open_trust_list(), origin, notice, at=now_ms())

    def subscriber(
        self, member: str, name: str, *, finality: FinalityBook | None = None
    ) -> Subscriber:
        """Member ``member``'s subscriber (consumer group ``<prefix>.CC.<name>``), verifying
        with the deployment's trust list, opening with its keys, signing receipts."""
        return Subscriber(
            endpoint=self.tenant.endpoint,
            credential=self.tenant.member(member),
            naming=self.tenant.naming,
            member=member,
            registry=self.registry,
            trust=self.trust(),
            keys=self.member_keys(member),
            receipt_key=self.evidence.store.current(
                member_holder(member), usage=Usage.RECEIPT, at=now_ms()
            ),
            name=name,
            finality=finality,
        )

    def member_keys(self, member: str) -> KeyRing:
        """Member ``member``'s encryption keys (what opens the deliveries sealed to it)."""
        return self.evidence.store.keyring(member_holder(member))


class NodeGroup:
    """Nodes run together in one event loop (as ``puente serve node --as A --as B``)."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes

    @property
    def owned(self) -> dict[TopicPartition, Any]:
        """Every partition any of them owns."""
        return {tp: o for n in self.nodes for tp, o in n.owned.items()}

    @property
    def policies(self) -> PolicyStore:
        return self.nodes[0].policies

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(n.run(stop) for n in self.nodes))

    async def ready(self) -> None:
        """Until every node owns partitions."""
        await asyncio.gather(*(n.ready.wait() for n in self.nodes))


async def deploy(kafka: KafkaHarness, *, partitions: int = 2, **settings: Any) -> Deployment:
    """Every member provisioned under a fresh prefix, keys made, the trust list published."""
    tenant = kafka.provision(ALL_MEMBERS, partitions=partitions)
    s = kafka.settings_for(tenant, **settings)
    registry = Registry.load(s.schemas_dir)
    evidence = ensure_evidence(s, ALL_MEMBERS)
    await publish_trust_list(
        tenant.endpoint, tenant.service("operator"), tenant.naming, evidence.trust_list
    )
    return Deployment(kafka, tenant, s, registry, evidence)


def run_auditor(dep: Deployment, **options: Any) -> AuditReport:
    """Run the auditor over the live audit, checkpoints, cosignatures and trust topics."""
    source = KafkaAuditSource(dep.tenant.endpoint, dep.tenant.service("auditor"), dep.tenant.naming)
    auditor = Auditor(
        registry=dep.registry,
        anchors=dep.evidence.anchors,
        options=AuditOptions(naming=dep.tenant.naming, **options),
    )
    return auditor.run(source)


def now_stamped(notice: Notice, now: dt.datetime | None = None) -> dict[str, Any]:
    """The synthetic generator dates notices in 2025; the service checks their age."""
    now = now or dt.datetime.now(dt.UTC)
    record = dict(notice.record)
    record["created_at"] = now - dt.timedelta(minutes=1)
    if "event_time" in record:
        record["event_time"] = now - dt.timedelta(minutes=5)
    return record


async def publish(
    dep: Deployment,
    origin: str,
    values: Iterable[tuple[bytes, bytes | None]],
    *,
    sealed: bool = True,
) -> list[tuple[int, int]]:
    """Produce (key, value) pairs to ``origin``'s ingress topic as ``origin``, each value sealed
    to ``origin``'s node as its agencies do (``sealed=False``: as given); the positions."""
    cred = dep.tenant.member(origin)
    p = producer(dep.tenant.endpoint, cred, linger_ms=5)
    await start(p, dep.tenant.endpoint, cred)
    try:
        futures = [
            await p.send(
                dep.tenant.topic(INGRESS, origin),
                dep.seal(origin, value) if sealed and value else value,
                key=key,
            )
            for key, value in values
        ]
        sent = await asyncio.gather(*futures)
    finally:
        await p.stop()
    return [(m.partition, m.offset) for m in sent]


def encoded(dep: Deployment, notice: Notice) -> tuple[bytes, bytes]:
    """(key, encoded notice) for :func:`publish`, which seals it."""
    record = now_stamped(notice)
    return record["notice_id"].encode(), encode(dep.registry, notice.name, record)


async def read_topic(
    dep: Deployment,
    topic: str,
    cred_member: str | None = None,
    *,
    idle_s: float = 3.0,
    expect: int | None = None,
    timeout_s: float = 60.0,
    as_node: str | None = None,
) -> list[tuple[bytes | None, bytes]]:
    """Every committed record of ``topic`` (read_committed) as a member, a node (``as_node``)
    or the auditor."""
    if as_node is not None:
        cred = dep.tenant.node(as_node)
    else:
        cred = dep.tenant.member(cred_member) if cred_member else dep.tenant.service("auditor")
    c = consumer(dep.tenant.endpoint, cred)
    await start(c, dep.tenant.endpoint, cred)
    out: list[tuple[bytes | None, bytes]] = []
    try:
        partitions = next(t.partitions for t in dep.tenant.plan.topics if t.name == topic)
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            got = await c.getmany(timeout_ms=300)
            for batch in got.values():
                out += [(m.key, m.value) for m in batch]
                last_new = time.monotonic()
            if expect is not None and len(out) >= expect:
                break
            if expect is None and time.monotonic() - last_new > idle_s:
                break
    finally:
        await c.stop()
    return out


def committed_offsets(dep: Deployment, origins: Iterable[str]) -> dict[tuple[str, int], int]:
    """The committed offsets of ``origins``' nodes (each its own group), by ingress (topic,
    partition)."""
    out: dict[tuple[str, int], int] = {}
    with admin_client(dep.kafka.endpoint, dep.kafka.admin) as admin:
        for origin in origins:
            group = dep.tenant.naming.node_group(origin)
            try:
                offsets = admin.list_group_offsets(group).get(group, {})
            except KafkaPythonError as exc:
                if not exc.retriable:
                    raise
                continue  # the group's coordinator is not there yet: nothing committed so far
            out |= {
                (tp.topic, tp.partition): om.offset for tp, om in offsets.items() if om.offset >= 0
            }
    return out


async def wait_committed(
    dep: Deployment, ends: dict[tuple[str, int], int], *, timeout_s: float
) -> None:
    """Wait until the service has committed every input up to ``ends`` (topic, partition ->
    next offset): its outputs are then visible read_committed (same transaction)."""
    deadline = time.monotonic() + timeout_s
    while True:
        origins = {dep.tenant.naming.member_of(topic, INGRESS) for topic, _ in ends}
        done = await asyncio.to_thread(committed_offsets, dep, origins)
        behind = {tp: end for tp, end in ends.items() if done.get(tp, 0) < end}
        if not behind:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"inputs not committed after {timeout_s} s: {sorted(behind)}")
        await asyncio.sleep(1)


@dataclass(frozen=True)
class CheckpointWaits:
    """How long each audit record waited for the first checkpoint covering it."""

    waits_ms: list[int]
    uncovered: int  # records no checkpoint covers (yet)

    @property
    def max_s(self) -> float:
        return max(self.waits_ms, default=0) / 1000

    def quantile_s(self, q: float) -> float:
        if not self.waits_ms:
            return 0.0
        ordered = sorted(self.waits_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


async def checkpoint_waits(dep: Deployment, origins: Iterable[str]) -> CheckpointWaits:
    """Every audit record of ``origins`` matched with the first checkpoint of its log whose
    size covers its leaf index: the wait is the checkpoint's signed time minus decided_at."""
    sizes: dict[str, list[tuple[int, int]]] = {}
    for _, value in await read_topic(dep, dep.tenant.topic(CHECKPOINTS), idle_s=2):
        cp = CheckpointRecord.decode(dep.registry, value).checkpoint
        sizes.setdefault(cp.log_origin, []).append((cp.size, cp.time_ms or 0))
    for known in sizes.values():
        known.sort()
    waits: list[int] = []
    uncovered = 0
    for origin in origins:
        for _, value in await read_topic(dep, dep.tenant.topic(AUDIT, origin), idle_s=2):
            r = AuditRecord.decode(dep.registry, value)
            known = sizes.get(r.log_id, [])
            at = bisect.bisect_right(known, (r.leaf_index, 1 << 62))
            if at == len(known):
                uncovered += 1
            else:
                waits.append(known[at][1] - r.decided_at)
    return CheckpointWaits(waits, uncovered)


@contextlib.asynccontextmanager
async def running(group: NodeGroup) -> AsyncIterator[NodeGroup]:
    stop = asyncio.Event()
    task = asyncio.create_task(group.run(stop))
    try:
        await asyncio.wait_for(group.ready(), 120)
        yield group
    finally:
        stop.set()
        await asyncio.wait_for(task, 120)
