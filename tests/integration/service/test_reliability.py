"""Exactly once under failure: instances SIGKILLed mid-processing, partitions handed over.

Two processes, each hosting the nodes of four states (``puente serve node --as MX --as US
--as GT --as CO``), share those nodes' four partitions per ingress topic while agencies
publish 10,000 notices; a random instance is SIGKILLed (and restarted) each time processing
passes a mark (15, 35, 55, 75 % of the inputs committed). Afterwards every input has exactly
one outcome in the audit log, every delivery reached its read_committed recipient exactly once,
and the auditor verifies every record covered by a signed checkpoint.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import IO

import pytest
from kafka.errors import CoordinatorNotAvailableError

from puente.codec.wire import encode
from puente.evidence.delivery import Delivery, DeliveryStatement
from puente.evidence.records import AuditRecord
from puente.kafka.clients import producer, start
from puente.synth.generator import Generator
from puente.synth.notice import Notice
from puente.topics import AUDIT, DELIVER, INGRESS
from tests.harness import KafkaHarness
from tests.integration.service.support import (
    ALL_MEMBERS,
    REPO,
    Deployment,
    checkpoint_waits,
    committed_offsets,
    deploy,
    now_stamped,
    read_topic,
    run_auditor,
    wait_committed,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
NOTICES = 10_000
KILL_SHARES = (0.15, 0.35, 0.55, 0.75)  # of the inputs committed when each kill happens
KILLS = len(KILL_SHARES)
ORIGINS = ("MX", "US", "GT", "CO")


class Instance:
    """One ``puente serve node`` process hosting the nodes of ORIGINS."""

    def __init__(self, dep: Deployment, name: str, logs: Path) -> None:
        self.dep = dep
        self.name = name
        self.log: IO[bytes] = (logs / f"{name}.log").open("ab")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "puente",
                "serve",
                "node",
                *(arg for origin in ORIGINS for arg in ("--as", origin)),
                "--instance",
                self.name,
            ],
            env=self.dep.env(),
            cwd=REPO,
            stdout=self.log,
            stderr=self.log,
        )

    def owns_partitions(self) -> bool:
        """True once this instance has logged a take-over (it is processing)."""
        return b"policy.partitions_assigned" in Path(self.log.name).read_bytes()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.returncode


def _notices(dep: Deployment, n: int) -> dict[str, list[tuple[bytes, bytes]]]:
    """``n`` encoded notices from a few origins: a pool of synthetic notices, new ids each."""
    gen = Generator(21)
    pool = {o: [gen.case_notice(origin=o) for _ in range(20)] for o in ORIGINS}
    pool["MX"] += [gen.consular_notification("MX") for _ in range(20)]
    out: dict[str, list[tuple[bytes, bytes]]] = {o: [] for o in ORIGINS}
    for i in range(n):
        origin = ORIGINS[i % len(ORIGINS)]
        base = pool[origin][i % len(pool[origin])]
        name = "puente.CaseNotice" if "crime_types" in base else "puente.ConsularNotification"
        record = now_stamped(Notice(name, base))
        record["notice_id"] = str(uuid.UUID(int=random.getrandbits(128), version=4))
        sealed = dep.seal(origin, encode(dep.registry, name, record))  # as its agencies do
        out[origin].append((record["notice_id"].encode(), sealed))
    return out


@pytest.fixture(scope="module")
async def dep(kafka: KafkaHarness) -> Deployment:
    return await deploy(kafka, partitions=4)


@pytest.mark.timeout(1800)
async def test_sigkill_at_random_points_keeps_exactly_once(dep: Deployment, tmp_path: Path) -> None:
    rng = random.Random(1234)
    per_origin = _notices(dep, NOTICES)
    instances = [Instance(dep, f"policy-{i}", tmp_path) for i in range(2)]
    for inst in instances:
        inst.start()
    positions: list[tuple[str, int, int]] = []
    # The kills are driven by progress, not by the clock: the k-th kill happens once a share
    # of the inputs is committed, and the last tenth of the notices is published only after
    # the last kill, so every kill lands while notices are still being processed, however
    # fast or slow the machine is.
    kill_at = [round(NOTICES * share) for share in KILL_SHARES]
    kills: list[int] = []  # committed inputs at each kill
    kills_done = asyncio.Event()

    async def publisher() -> None:
        """Each origin publishes as itself, a chunk at a time, for the length of the test."""
        producers = {o: producer(dep.tenant.endpoint, dep.tenant.member(o)) for o in ORIGINS}
        for o, p in producers.items():
            await start(p, dep.tenant.endpoint, dep.tenant.member(o))
        try:
            chunk = 250
            per = NOTICES // len(ORIGINS)
            for first in range(0, per, chunk):
                if first >= per * 9 // 10:
                    await kills_done.wait()
                for origin in ORIGINS:
                    topic = dep.tenant.topic(INGRESS, origin)
                    futures = [
                        await producers[origin].send(topic, value, key=key)
                        for key, value in per_origin[origin][first : first + chunk]
                    ]
                    for md in await asyncio.gather(*futures):
                        positions.append((topic, md.partition, md.offset))
                await asyncio.sleep(0.3)
        finally:
            for p in producers.values():
                await p.stop()

    async def killer() -> None:
        """SIGKILL a random instance each time progress passes the next mark; restart it."""
        try:
            for mark in kill_at:
                while (done := await _progress(dep)) < mark:
                    await asyncio.sleep(0.25)
                victim = rng.choice(instances)
                victim.kill()
                kills.append(done)
                await asyncio.sleep(rng.uniform(0, 3))
                victim.start()
        finally:
            kills_done.set()

    publishing = asyncio.ensure_future(publisher())
    try:
        await asyncio.gather(publishing, killer())
        assert len(positions) == NOTICES
        ends: dict[tuple[str, int], int] = {}
        for topic, partition, offset in positions:
            ends[(topic, partition)] = max(ends.get((topic, partition), 0), offset + 1)
        await wait_committed(dep, ends, timeout_s=1200)
    finally:
        codes = [inst.stop() for inst in instances]
    assert len(kills) == KILLS and all(done < NOTICES for done in kills), kills
    assert all(code == 0 for code in codes), codes  # SIGTERM: a clean, graceful exit
    audit = []
    for origin in ORIGINS:
        audit += await read_topic(dep, dep.tenant.topic(AUDIT, origin), idle_s=3, timeout_s=300)

    # Every input has exactly one outcome: one record per candidate recipient, or one REJECTED.
    per_input: Counter[tuple[str, int, int]] = Counter()
    per_pair: Counter[tuple[str | None, str | None]] = Counter()
    delivered: set[tuple[str, str]] = set()
    for _, value in audit:
        r = AuditRecord.decode(dep.registry, value)
        per_input[(r.ingress_topic, r.ingress_partition, r.ingress_offset)] += 1
        per_pair[(r.notice_id, r.recipient)] += 1
        if r.delivery_id is not None:
            delivered.add((str(r.notice_id), str(r.recipient)))
    assert set(per_input) == set(positions)
    assert set(per_input.values()) == {len(ALL_MEMBERS) - 1}  # nothing rejected, nothing twice
    assert max(per_pair.values()) == 1

    # Each delivery reached its recipient exactly once (read_committed).
    seen: Counter[tuple[str, str]] = Counter()
    for recipient in sorted({r for _, r in delivered}):
        expected = sum(1 for _, r in delivered if r == recipient)
        for _, value in await read_topic(
            dep, dep.tenant.topic(DELIVER, recipient), recipient, expect=expected, timeout_s=120
        ):
            st = DeliveryStatement.decode(
                dep.registry, Delivery.decode(dep.registry, value).statement
            )
            seen[(st.notice_id, recipient)] += 1
    assert set(seen) == delivered
    assert max(seen.values()) == 1

    # Both instances stopped cleanly: every log was checkpointed on the way out, nothing is
    # left pending, and the auditor verifies every record.
    report = run_auditor(dep)
    assert report.complete, report.to_text()[:3000]
    assert report.records == len(audit)
    waits = await checkpoint_waits(dep, ORIGINS)
    assert waits.uncovered == 0
    print(
        f"kills at {kills} committed inputs; checkpoint wait per record: max {waits.max_s:.1f} s, "
        f"p99 {waits.quantile_s(0.99):.1f} s, p50 {waits.quantile_s(0.5):.1f} s"
    )


async def _progress(dep: Deployment) -> int:
    """Inputs the nodes have committed so far (its outputs are then visible): 0
    while the group has no coordinator yet: on a fresh broker the first to ask for one (often
    this poll, before the instances have started) has ``__consumer_offsets`` created and is
    told to ask again."""
    try:
        return sum((await asyncio.to_thread(committed_offsets, dep, ORIGINS)).values())
    except CoordinatorNotAvailableError:
        return 0
