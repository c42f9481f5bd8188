"""No unsigned log tail: a writer checkpoints waiting records when its interval passes although
no new input arrives, when it gives partitions up, and when it shuts down."""

from __future__ import annotations

import asyncio
import time

import pytest

from puente.config import CHECKPOINT_SLACK_S
from puente.synth.generator import Generator
from puente.synth.notice import Notice
from puente.topics import INGRESS
from tests.harness import KafkaHarness
from tests.integration.service.support import (
    Deployment,
    checkpoint_waits,
    deploy,
    encoded,
    publish,
    run_auditor,
    running,
    wait_committed,
)

pytestmark = pytest.mark.kafka
ORIGIN = "MX"
NEVER = 3600.0  # an interval no test waits for: only a release or a shutdown can sign


@pytest.fixture(scope="module")
async def dep(kafka: KafkaHarness) -> Deployment:
    return await deploy(kafka, partitions=2)


async def _publish(dep: Deployment, n: int, seed: int) -> dict[tuple[str, int], int]:
    gen = Generator(seed)
    sent = await publish(
        dep,
        ORIGIN,
        [
            encoded(dep, Notice("puente.CaseNotice", gen.case_notice(origin=ORIGIN)))
            for _ in range(n)
        ],
    )
    topic = dep.tenant.topic(INGRESS, ORIGIN)
    ends: dict[tuple[str, int], int] = {}
    for partition, offset in sent:
        ends[(topic, partition)] = max(ends.get((topic, partition), 0), offset + 1)
    return ends


async def _leave_a_tail(dep: Deployment, seed: int) -> None:
    """Records without a checkpoint: a new log is checkpointed at its first batch, so publish
    twice; with the interval at NEVER the second batch stays unsigned."""
    for n in (5, 30):
        await wait_committed(dep, await _publish(dep, n, seed=seed + n), timeout_s=120)
    assert (await checkpoint_waits(dep, [ORIGIN])).uncovered > 0


async def _covered(dep: Deployment, *, timeout_s: float) -> None:
    """Wait (without a time assertion) until no audit record lacks a checkpoint."""
    deadline = time.monotonic() + timeout_s
    while (waits := await checkpoint_waits(dep, [ORIGIN])).uncovered:
        assert time.monotonic() < deadline, f"{waits.uncovered} records never checkpointed"
        await asyncio.sleep(0.5)


async def test_an_idle_log_is_checkpointed_within_its_interval(dep: Deployment) -> None:
    interval = 1.0
    async with running(dep.nodes("MX", instance="idle", checkpoint_interval_s=interval)):
        ends = await _publish(dep, 40, seed=1)
        await wait_committed(dep, ends, timeout_s=120)
        # No more input from here on: only the idle timer can sign the tail.
        await _covered(dep, timeout_s=120)
        waits = await checkpoint_waits(dep, [ORIGIN])
    print(f"idle log: max wait {waits.max_s:.2f} s over {len(waits.waits_ms)} records")
    assert waits.max_s <= interval + CHECKPOINT_SLACK_S, waits.max_s
    report = run_auditor(dep)
    assert report.complete, report.to_text()[:2000]


async def test_a_graceful_shutdown_signs_the_tail(dep: Deployment) -> None:
    async with running(
        dep.nodes("MX", instance="stop", checkpoint_interval_s=NEVER, checkpoint_every=10**6)
    ):
        await _leave_a_tail(dep, seed=2)
    # The service has stopped: its shutdown signed every log it owned.
    assert (await checkpoint_waits(dep, [ORIGIN])).uncovered == 0
    assert run_auditor(dep).complete


async def test_giving_partitions_up_signs_their_tails(dep: Deployment) -> None:
    """A rebalance moves partitions to a new instance that may get no input for hours: the
    instance giving them up signs what it wrote before it lets go."""
    quiet = {"checkpoint_interval_s": NEVER, "checkpoint_every": 10**6}
    async with running(dep.nodes("MX", instance="first", **quiet)) as first:
        await _leave_a_tail(dep, seed=3)
        owned_before = len(first.owned)
        async with running(dep.nodes("MX", instance="second", **quiet)):
            # The rebalance revoked every partition of the first instance (eager protocol),
            # which checkpointed them before releasing; nothing is waiting any more although
            # both instances still run and neither interval can have passed.
            assert owned_before > 0
            await _covered(dep, timeout_s=120)
    assert run_auditor(dep).complete
