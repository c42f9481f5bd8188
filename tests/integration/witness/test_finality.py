"""Finality end to end on the real broker: MX's node delivers and checkpoints, other states'
witnesses cosign, and GT's subscriber says of each delivery whether it was only signed or
witnessed when it read it."""

from __future__ import annotations

import pytest

from puente.evidence.finality import Finality, FinalityBook
from puente.subscriber.core import Received, Subscriber
from puente.subscriber.jsonlines import to_json
from puente.synth.generator import Generator
from tests.harness import KafkaHarness
from tests.integration.service.support import Deployment, deploy, encoded, publish, run_auditor
from tests.integration.service.support import running as nodes_running
from tests.integration.witness.support import Follower, running, until, witness

pytestmark = pytest.mark.kafka


@pytest.fixture
async def dep(kafka: KafkaHarness) -> Deployment:
    return await deploy(kafka, partitions=1)


def subscriber(dep: Deployment, member: str, name: str, quorum: int) -> Subscriber:
    return dep.subscriber(member, name, finality=FinalityBook(quorum))


async def read(sub: Subscriber, n: int) -> list[Received]:
    got: list[Received] = []
    async with sub:
        async for r in sub.stream(idle_timeout_s=30):
            got.append(r)
            if len(got) >= n:
                break
    return got


async def test_a_subscriber_tells_signed_from_witnessed(dep: Deployment) -> None:
    gen = Generator(7)
    notices = [
        gen.scenario("dual-national-arrest", origin="MX", nationalities=("GT", "HN"))
        for _ in range(3)
    ]
    quorum = 2
    follower = Follower(dep, "JM", quorum)
    async with follower.following():
        # MX's node decides and checkpoints; no witness runs yet: signed only.
        async with nodes_running(dep.nodes("MX", checkpoint_interval_s=0.5)):
            await publish(dep, "MX", [encoded(dep, n) for n in notices])
            first = await read(subscriber(dep, "GT", "first", quorum), 3)
            assert [r.finality for r in first] == [Finality.SIGNED] * 3
            assert all(to_json(r, dep.registry)["finality"] == "signed" for r in first)
            log_id = first[0].verified.statement.audit_log_id if first[0].verified else ""
            top = max(r.verified.statement.audit_leaf_index for r in first if r.verified)

            # Two other states' witnesses cosign MX's checkpoints (GT's own does not count
            # for MX's log either way, but it is not needed).
            async with running([witness(dep, "CR"), witness(dep, "PA")]):
                await until(
                    lambda: follower.book.finality(log_id, top) is Finality.WITNESSED,
                    "MX's checkpoint covering the deliveries cosigned by CR and PA",
                    timeout_s=120,
                )
        again = await read(subscriber(dep, "GT", "second", quorum), 3)
    assert [r.finality for r in again] == [Finality.WITNESSED] * 3
    assert all(to_json(r, dep.registry)["finality"] == "witnessed" for r in again)
    # A stricter quorum than the cosigners present: signed only.
    strict = await read(subscriber(dep, "GT", "third", 3), 3)
    assert [r.finality for r in strict] == [Finality.SIGNED] * 3
    # The auditor, reading the same topics as its own principal, counts the same quorum.
    report = run_auditor(dep, quorum=quorum)
    assert report.ok, report.to_text()
    summary = report.logs[log_id]
    assert summary.witnessed_size > top and set(summary.witnessed_by) == {"CR", "PA"}
    assert run_auditor(dep, quorum=3).logs[log_id].witnessed_size == 0
