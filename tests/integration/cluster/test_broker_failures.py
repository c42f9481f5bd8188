"""Broker failures on a 3-broker cluster (RF 3, min ISR 2) while agencies publish and every
state's node runs: nothing acknowledged is lost, nothing is delivered twice to read_committed
subscribers, the audit log verifies complete, and a killed broker rejoins and catches up; with
2 of 3 brokers down producers fail loudly, and everything recovers when the brokers return.

The tests share one deployment (every member provisioned once); each runs every state's node
afresh, resuming from the committed offsets and changelog the previous test left. A broker
restarted after SIGKILL recovers each partition it hosts, so one tenant with one partition per
topic keeps restarts short on a small machine.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest

from puente.topics import INGRESS
from tests.harness import KafkaHarness
from tests.integration.cluster.chaos import (
    Agencies,
    Marks,
    Probe,
    Serving,
    audit_partitions,
    busiest_leader,
    check_exactly_once,
    deliver_partitions,
    end_offsets,
    ingress_topics,
    make_notices,
    serving,
    tenant_topics,
)
from tests.integration.service.support import ALL_MEMBERS, Deployment, deploy, run_auditor

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RATE = 25.0  # notices/s from all 20 members' agencies, through the whole outage
MAX_NOTICES = 1500  # at most a minute of traffic
KILL_AFTER_S = 5.0
DOWN_AT_LEAST_S = 8.0
AFTER_RETURN_S = 3.0  # traffic continues this long after the broker is back
PROGRESS_S = 60.0  # with one broker down, the service commits outcomes again within this
DRAIN_S = 240.0
ISR_S = 120.0
KILL_ACK_S = 60.0  # an agency's bound on waiting for an acknowledgement (one broker down)
MINORITY_ACK_S = 15.0  # the same bound with 2 of 3 brokers down (the test waits it out)


@pytest.fixture(scope="module")
async def dep(kafka3: KafkaHarness) -> Deployment:
    t0 = time.monotonic()
    d = await deploy(kafka3, partitions=1)
    print(f"\ndeployed in {time.monotonic() - t0:.1f} s")
    return d


@pytest.fixture
async def svc(dep: Deployment) -> AsyncIterator[Serving]:
    """Every state's node (in this process), restarted for each test from its changelog and
    committed offsets; a test stops it (final checkpoints) before the auditor reads the log."""
    t0 = time.monotonic()
    async with serving(dep) as s:
        print(f"nodes ready in {time.monotonic() - t0:.1f} s")
        yield s


@pytest.fixture
async def probe(kafka3: KafkaHarness, dep: Deployment) -> Probe:
    """The cluster, checked whole before each test (3 brokers, every ISR full)."""
    p = Probe(kafka3)
    await p.call(p.wait_isr, [*tenant_topics(dep), "__transaction_state"], 3, ISR_S)
    return p


def _error_name(message: str) -> str:
    """The error class an aiokafka sender warning names."""
    names = re.findall(r"\b(\w+(?:Error|Exception|Timeout))\b", message)
    return names[0] if names else message[:40]


async def _verify(dep: Deployment, svc: Serving, agencies: Agencies, since: Marks) -> None:
    """Exactly once (see ``check_exactly_once``), then the auditor over the whole log, after the
    service stopped: its shutdown checkpoints every log, so no record is left unproven."""
    await svc.stop()
    t0 = time.monotonic()
    verdict = await check_exactly_once(dep, agencies.sent, since)
    print(f"{verdict} (checked in {time.monotonic() - t0:.1f} s)")
    assert not verdict.problems, str(verdict)
    t0 = time.monotonic()
    report = await asyncio.to_thread(run_auditor, dep)
    print(f"auditor: {report.records} records verified in {time.monotonic() - t0:.1f} s")
    assert report.ok, report.to_text()


async def _kill_during_traffic(
    dep: Deployment, probe: Probe, svc: Serving, target: str, seed: int
) -> None:
    ingress = ingress_topics(dep)
    group = _node_group(dep)
    notices = make_notices(dep, MAX_NOTICES, seed=seed)
    since = await end_offsets(dep.kafka, [*audit_partitions(dep), *deliver_partitions(dep)])
    stop = asyncio.Event()
    async with Agencies(dep, ack_timeout_s=KILL_ACK_S) as agencies:
        await agencies.prepare(ALL_MEMBERS)
        publishing = asyncio.create_task(agencies.run(notices, RATE, stop))
        await asyncio.sleep(KILL_AFTER_S)
        layout = await probe.call(probe.partitions, ingress)
        controller = await probe.call(probe.controller)
        if target == "controller":
            victim = controller
        else:
            victim = busiest_leader(layout, ingress, avoid=controller)
        led = [tp for tp, d in layout.items() if d["leader"] == victim]
        assert target == "controller" or led, "the victim leads no ingress partition"
        before = await probe.call(probe.committed, group, ingress)
        killed_at = time.monotonic()
        await probe.call(probe.kill, victim)
        print(
            f"killed broker {victim} ({target}; the controller was {controller}), "
            f"leader of {len(led)} of {len(layout)} ingress partitions"
        )

        # With one broker gone the service keeps committing outcomes (min ISR 2 still holds).
        def progressed() -> str | None:
            svc.check_alive()
            done = probe.committed(group, ingress)
            return None if done > before else f"committed {done}, {before} at the kill"

        await probe.call(probe.wait_until, "progress with a broker down", progressed, PROGRESS_S)
        print(f"outcomes committed again {time.monotonic() - killed_at:.1f} s after the kill")
        await asyncio.sleep(max(0.0, DOWN_AT_LEAST_S - (time.monotonic() - killed_at)))

        t1 = time.monotonic()
        await probe.call(probe.restart, victim)
        print(
            f"broker {victim} back {time.monotonic() - killed_at:.1f} s after the kill "
            f"(its restart took {time.monotonic() - t1:.1f} s)"
        )
        await asyncio.sleep(AFTER_RETURN_S)
        stop.set()
        await publishing
        await agencies.settle()
        t2 = time.monotonic()
        await probe.call(probe.wait_drained, group, ingress, DRAIN_S)
        print(
            f"{len(agencies.sent)} notices; the service drained {time.monotonic() - t2:.1f} s "
            "after the last acknowledgement"
        )
        svc.check_alive()
    t3 = time.monotonic()
    await probe.call(probe.wait_isr, tenant_topics(dep), 3, ISR_S)
    print(f"ISR 3 for all {len(tenant_topics(dep))} topics {time.monotonic() - t3:.1f} s later")

    failed = [s for s in agencies.sent if not s.acked]
    assert not failed, f"{len(failed)} of {len(agencies.sent)} publishes failed: {failed[0].error}"
    await _verify(dep, svc, agencies, since)


async def test_partition_leader_killed(dep: Deployment, probe: Probe, svc: Serving) -> None:
    """SIGKILL the broker leading the most ingress partitions (not the controller)."""
    await _kill_during_traffic(dep, probe, svc, "leader", seed=81)


async def test_active_controller_killed(dep: Deployment, probe: Probe, svc: Serving) -> None:
    """SIGKILL the active KRaft controller (a combined node: it leads partitions too)."""
    await _kill_during_traffic(dep, probe, svc, "controller", seed=82)


async def test_minority_fails_loudly_and_recovers(
    dep: Deployment, probe: Probe, svc: Serving, caplog: pytest.LogCaptureFixture
) -> None:
    """2 of 3 brokers down: no publish is acknowledged, each fails within the publisher's bound
    (never silently); when the brokers return publishing works again, re-sent notices are
    refused as duplicates if their first copy landed after all, and the service drains."""
    ingress = ingress_topics(dep)
    group = _node_group(dep)
    before, during, after = (make_notices(dep, 100, seed=s) for s in (83, 84, 85))
    since = await end_offsets(dep.kafka, [*audit_partitions(dep), *deliver_partitions(dep)])
    async with Agencies(dep, ack_timeout_s=MINORITY_ACK_S) as agencies:
        await agencies.prepare(ALL_MEMBERS)
        await agencies.run(before, RATE)
        await agencies.settle()
        assert all(s.acked for s in before)

        controller = await probe.call(probe.controller)
        others = sorted(set(await probe.call(probe.running)) - {controller})
        victims = [controller, others[0]]
        for v in victims:
            await probe.call(probe.kill, v)
        print(f"killed brokers {victims} (controller {controller}); broker {others[1]} remains")

        caplog.set_level(logging.WARNING, logger="aiokafka.producer.sender")
        await agencies.run(during, 10.0)
        await agencies.settle()
        acked = [s for s in during if s.acked]
        assert not acked, f"{len(acked)} publishes acknowledged with 2 of 3 brokers down"
        assert all(s.error and s.failed_at for s in during), "a publish neither acked nor failed"
        slowest = max((s.failed_at or 0) - s.sent_at for s in during)
        assert slowest <= MINORITY_ACK_S + 5, f"a failure took {slowest:.1f} s to surface"
        errors = Counter(s.error for s in during)
        retried = Counter(_error_name(r.getMessage()) for r in caplog.records)
        print(
            f"publishes with 2 brokers down: {dict(errors)} (at most {slowest:.1f} s after "
            f"sending); the producers' own retries met {dict(retried)}"
        )
        svc.check_alive()

        restart_at = time.time()
        await probe.call(probe.restart, *victims)
        print(f"brokers {victims} back after {time.time() - restart_at:.1f} s")
        early = [s for s in during for _, t in s.landed if t < restart_at]
        assert not early, f"{len(early)} acknowledgements while a majority was down"

        # The agencies re-send what failed (same bytes, same notice id) and publish more.
        t_ok = time.monotonic()
        await agencies.run(during, RATE)
        await agencies.run(after, RATE)
        await agencies.settle(120.0)
        print(
            f"publishing works again: {sum(s.acked for s in during + after)} acknowledged "
            f"{time.monotonic() - t_ok:.1f} s after the brokers returned"
        )
        assert all(s.acked for s in during + after), "a publish failed after the brokers returned"
        await agencies.quiesce(30.0)
        print(f"{len(agencies.late)} of the failed first sends landed after all")

        t_drain = time.monotonic()
        await probe.call(probe.wait_drained, group, ingress, DRAIN_S)
        print(f"the service drained {time.monotonic() - t_drain:.1f} s later")
        svc.check_alive()
    await probe.call(probe.wait_isr, tenant_topics(dep), 3, ISR_S)
    await _verify(dep, svc, agencies, since)


def _node_group(dep: Deployment) -> Callable[[str], str]:
    """Each ingress topic's consumer group: its state's node's."""
    naming = dep.tenant.naming
    return lambda topic: naming.node_group(naming.member_of(topic, INGRESS))
