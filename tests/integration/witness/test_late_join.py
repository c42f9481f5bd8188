"""A witness that joins late checks the logs' whole history, not only what comes after it
joined: the checkpoints topic keeps every checkpoint with its consistency proof, and a new
witness's group starts at its beginning."""

from __future__ import annotations

import pytest

from puente.evidence.equivocation import verify_report
from puente.evidence.witness import ForkKind
from tests.harness import KafkaHarness
from tests.integration.service.support import Deployment, deploy
from tests.integration.witness.support import Follower, Log, running, until, witness

pytestmark = pytest.mark.kafka


@pytest.fixture
async def dep(kafka: KafkaHarness) -> Deployment:
    return await deploy(kafka, partitions=1)


async def test_a_late_witness_checks_the_history_before_it_joined(dep: Deployment) -> None:
    """MX's node published a4, a8 and then b12 — another history from size 4 on, whose proof
    starts at b8 — before any witness ran. A witness started afterwards cosigns a4 and a8 from
    their proofs and proves that b12 does not extend a8: it did not take the newest checkpoint
    on trust."""
    mx = Log(dep, "MX")
    base, a8, b12 = mx.diverging()
    await mx.publish(base, a8, b12)
    follower = Follower(dep, "JM", quorum=1)
    log_id = mx.log.log_id
    async with follower.following(), running([witness(dep, "GT")]) as (gt,):
        await until(lambda: follower.reports, "the late witness's report that b12 forks")
        assert gt.book.cosigned[log_id].checkpoint.size == 8
    [report] = [verify_report(r, dep.verifier()) for r in follower.reports]
    assert report.witness == "GT" and report.fork.kind is ForkKind.INCONSISTENT
    assert {report.fork.a, report.fork.b} == {a8.note, b12.note}
    sizes = [int(n.split(b"\n")[1]) for n, _ in follower.cosignatures]
    assert sizes[-1] == 8 and 12 not in sizes  # the history it checked; never b12


async def test_a_witness_catching_up_publishes_the_newest_checkpoint_of_each_turn(
    dep: Deployment,
) -> None:
    """Forty checkpoints of MX's log wait when GT's witness starts: it checks each against the
    one before but publishes far fewer cosignatures (one per log and turn), the newest among
    them, which covers every record of the others."""
    mx = Log(dep, "MX")
    await mx.publish(*[mx.grow(2) for _ in range(40)])
    follower = Follower(dep, "JM", quorum=1)
    log_id = mx.log.log_id
    async with follower.following(), running([witness(dep, "GT")]) as (gt,):
        await until(
            lambda: (
                follower.book.logs.get(log_id) is not None
                and follower.book.logs[log_id].final_size == 80
            ),
            "GT cosigning size 80",
        )
        assert gt.book.cosigned[log_id].checkpoint.size == 80
    sizes = [int(n.split(b"\n")[1]) for n, _ in follower.cosignatures]
    assert sizes == sorted(set(sizes)) and sizes[-1] == 80
    assert len(sizes) < 10, sizes
