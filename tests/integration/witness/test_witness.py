"""The witnesses on the real broker: quorum finality across the twenty members, a forked log
caught from the other witnesses' cosignatures and proven, a restart that loses nothing and never
cosigns backwards."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from prometheus_client import REGISTRY

from puente.evidence.cosignature import cosignatures
from puente.evidence.equivocation import verify_report
from puente.evidence.finality import Finality, default_quorum
from puente.evidence.log import AuditLog
from puente.evidence.note import Note
from puente.evidence.witness import ForkKind
from puente.kafka.clients import consumer, start
from puente.kafka.reading import read_all, topic_partitions
from puente.topics import EQUIVOCATIONS
from puente.witness.service import WitnessConfig
from tests.harness import KafkaHarness
from tests.integration.service.support import ALL_MEMBERS, Deployment, deploy
from tests.integration.witness.support import (
    Follower,
    Log,
    add_view,
    running,
    until,
    witness,
)

pytestmark = pytest.mark.kafka


@pytest.fixture
async def dep(kafka: KafkaHarness) -> Deployment:
    return await deploy(kafka, partitions=1)


def cosigners(f: Follower, log_id: str, size: int) -> list[str]:
    log = f.book.logs.get(log_id)
    return [] if log is None else sorted(log.cosigners.get(size, {}))


def final_size(f: Follower, log_id: str) -> int:
    log = f.book.logs.get(log_id)
    return 0 if log is None else log.final_size


def equivocations(witness_state: str, origin: str, kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "puente_witness_equivocations_total",
        {"witness": witness_state, "origin": origin, "kind": kind},
    )
    return value or 0.0


async def test_quorum_finality_across_the_twenty_members(dep: Deployment) -> None:
    quorum = default_quorum(ALL_MEMBERS)
    assert quorum == 10
    mx, gt = Log(dep, "MX"), Log(dep, "GT")
    follower = Follower(dep, "HN", quorum)
    async with follower.following(), running([witness(dep, s) for s in ALL_MEMBERS]):
        records = [mx.grow(4), mx.grow(5), mx.grow(3)]
        await mx.publish(*records)
        await gt.publish(gt.grow(7))
        others = sorted(set(ALL_MEMBERS) - {"MX"})

        await until(
            lambda: cosigners(follower, mx.log.log_id, 12) == others,
            "every other state's witness cosigning MX's checkpoint of size 12",
        )
        await until(
            lambda: len(cosigners(follower, gt.log.log_id, 7)) == 19,
            "GT's checkpoint cosigned by the 19 others",
        )
    book = follower.book
    assert book.finality(mx.log.log_id, 11) is Finality.WITNESSED
    assert book.finality(mx.log.log_id, 12) is Finality.SIGNED  # no checkpoint covers it yet
    mx_log = book.logs[mx.log.log_id]
    assert "MX" not in mx_log.cosigners[12] and "GT" not in book.logs[gt.log.log_id].cosigners[7]
    # Each cosignature record is the log-signed checkpoint plus one cosignature/v1 line.
    for note, _ in follower.cosignatures:
        parsed = Note.parse(note)
        assert len(parsed.signatures) == 2 and len(cosignatures(parsed)) == 1
    status = {s["log"]: s for s in book.status()}
    assert status[mx.log.log_id]["final"] is True and status[mx.log.log_id]["size"] == 12


async def test_a_split_view_is_caught_from_the_cosignatures_and_proven(dep: Deployment) -> None:
    """MX's node (its key in the test's hands) shows checkpoint b of size 8 on another topic some
    witnesses (view b) are made to read, and, once they cosigned it, a of the same size on the
    checkpoints topic the others (view a) read. No further checkpoint follows: view a's
    witnesses catch the fork from view b's cosignatures alone, and prove it.

    (Which side reports depends on who learns of the other root first: a witness that saw the
    other side's cosignature before the second checkpoint refuses to cosign it and reports, so
    the other side may never see a second root. The order here makes view a the side that
    must report, every time.)"""
    view_a, view_b = ("GT", "HN", "CO"), ("PA", "CR", "SV")
    other_topic = add_view(dep, "checkpoints-view-b", view_b, "MX")
    mx = Log(dep, "MX")
    base = mx.grow(4)
    forked = mx.fork()
    a8, b8 = mx.grow(4, tag=b"a"), forked.grow(4, tag=b"b")
    before = equivocations("GT", "MX", "same-size")
    follower = Follower(dep, "JM", quorum=3)
    witnesses = [witness(dep, s) for s in view_a]
    witnesses += [witness(dep, s, checkpoints_topic=other_topic) for s in view_b]
    log_id = mx.log.log_id
    async with follower.following(), running(witnesses):
        await mx.publish(base)
        await mx.publish(base, topic=other_topic)
        await until(lambda: len(cosigners(follower, log_id, 4)) == 6, "all six cosigning size 4")
        await mx.publish(b8, topic=other_topic)
        await until(lambda: cosigners(follower, log_id, 8) == sorted(view_b), "view b cosigning b")
        await mx.publish(a8)
        verifier = dep.verifier()

        def reporters() -> set[str]:
            return {verify_report(r, verifier).witness for r in list(follower.reports)}

        await until(
            lambda: set(view_a) <= reporters(),
            "equivocation reports from every witness of view a",
            timeout_s=180,
        )
        for data in follower.reports:
            report = verify_report(data, verifier)
            assert report.fork.kind is ForkKind.SAME_SIZE
            assert {report.fork.a, report.fork.b} == {a8.note, b8.note}
        seen = list(follower.reports)
        by = [verify_report(r, verifier).witness for r in seen]
        assert len(seen) == len(set(by))  # each witness reports the fork once
        # The alert's metric counts it (once).
        await until(lambda: equivocations("GT", "MX", "same-size") == before + 1, "GT's metric")
        # Each side stays on what it cosigned: view a never cosigned b.
        for w in witnesses:
            held = w.book.cosigned[log_id].checkpoint
            if w.state in view_b:
                assert held.root == b8.checkpoint.root
            else:
                assert held.root in (base.checkpoint.root, a8.checkpoint.root)
    # Quorum 3: b, counted first at size 8 by the follower, has view b's three; a never adds to it.
    log = follower.book.logs[log_id]
    assert set(log.cosigners[8]) == set(view_b)


async def test_a_history_that_does_not_extend_the_cosigned_one_is_reported(
    dep: Deployment,
) -> None:
    """GT's witness cosigned MX's a (size 8); MX's node then shows b12, of another history from
    size 4 on, with a consistency proof from b8: it does not lead from a8, and GT proves it."""
    mx = Log(dep, "MX")
    base, a8, b12 = mx.diverging()
    follower = Follower(dep, "JM", quorum=1)
    log_id = mx.log.log_id
    async with follower.following(), running([witness(dep, "GT")]):
        await mx.publish(base, a8)
        await until(lambda: cosigners(follower, log_id, 8) == ["GT"], "GT cosigning a8")
        await mx.publish(b12)
        await until(lambda: follower.reports, "a report that b12 does not extend a8")
    verifier = dep.verifier()
    [report] = [verify_report(r, verifier) for r in follower.reports]
    assert report.witness == "GT" and report.fork.kind is ForkKind.INCONSISTENT
    assert {report.fork.a, report.fork.b} == {a8.note, b12.note}
    assert final_size(follower, log_id) == 8  # b12 never cosigned


async def test_a_restart_loses_nothing_and_never_cosigns_backwards(dep: Deployment) -> None:
    mx = Log(dep, "MX")
    first, second = mx.grow(4), mx.grow(5)
    follower = Follower(dep, "HN", quorum=1)
    async with follower.following():
        async with running([witness(dep, "GT", instance="w1")]):
            await mx.publish(first, second)
            await until(
                lambda: final_size(follower, mx.log.log_id) == 9,
                "GT cosigning size 9",
            )
        restarted = witness(dep, "GT", instance="w2")
        async with running([restarted]):
            assert restarted.book.cosigned[mx.log.log_id].checkpoint.size == 9
            other = Log(dep, "MX", AuditLog(mx.log.log_id))  # a whole other tree, same key
            fake = other.grow(9, tag=b"other")
            await mx.publish(first, fake)  # an old checkpoint again, another root at size 9
            await until(lambda: follower.reports, "the fork at size 9 reported")
            third = mx.grow(3)
            await mx.publish(third)
            await until(lambda: final_size(follower, mx.log.log_id) == 12, "GT cosigning 12")
        sizes = [
            Note.parse(n).text.split("\n")[1]
            for n, _ in follower.cosignatures
            if Note.parse(n).text.startswith(mx.log.log_id + "\n")
        ]
        # Each once, in order (4 only when it came in a turn of its own: 9 covers it); never 4
        # again after 9, never the fake.
        assert sizes in (["4", "9", "12"], ["9", "12"])
        report = verify_report(follower.reports[0], dep.verifier())
        assert report.witness == "GT" and report.fork.kind is ForkKind.SAME_SIZE
    # What any member reads: `puente witness status --as HN --json`, as an operator runs it.
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "puente", "witness", "status", "--as", "HN", "--json"],
        env=dep.env(PUENTE_WITNESS__QUORUM="1"),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]  # an equivocation was proven
    doc = json.loads(proc.stdout)
    (mx_status,) = [s for s in doc["logs"] if s["log"] == mx.log.log_id]
    assert mx_status["size"] == 12 and mx_status["cosigners"] == ["GT"]
    assert mx_status["final"] is True and doc["quorum"] == 1
    assert [(e["log"], e["kind"], e["witness"]) for e in doc["equivocations"]] == [
        (mx.log.log_id, "same-size", "GT")
    ]


async def committed_reports(dep: Deployment) -> list[bytes]:
    """Every equivocation report on the topic now (read_committed, as member HN)."""
    cred = dep.tenant.member("HN")
    c = consumer(dep.tenant.endpoint, cred)
    await start(c, dep.tenant.endpoint, cred)
    try:
        return await read_all(c, await topic_partitions(c, [dep.tenant.topic(EQUIVOCATIONS)]))
    finally:
        await c.stop()


async def test_a_restarted_witness_does_not_report_a_fork_it_reported(dep: Deployment) -> None:
    """GT's witness reports MX's fork at size 9 and stops; restarted, it is shown the fork again
    (what a restart reads again since its last commit, gossip or checkpoints, shows it so): it
    reads its committed report back and publishes no second one."""
    mx = Log(dep, "MX")
    nine = mx.grow(9)
    fake = Log(dep, "MX", AuditLog(mx.log.log_id)).grow(9, tag=b"other")
    log_id = mx.log.log_id
    follower = Follower(dep, "HN", quorum=1)
    async with follower.following():
        async with running([witness(dep, "GT", instance="w1")]):
            await mx.publish(nine, fake)
            await until(lambda: follower.reports, "the fork at size 9 reported")
        async with running([witness(dep, "GT", instance="w2")]):
            await mx.publish(fake, mx.grow(3))
            # Decided in order: a second report would be committed with (or before) size 12.
            await until(lambda: final_size(follower, log_id) == 12, "GT cosigning size 12")
    reports = [verify_report(r, dep.verifier()) for r in await committed_reports(dep)]
    assert [(r.witness, r.fork.log_id, r.fork.kind) for r in reports] == [
        ("GT", log_id, ForkKind.SAME_SIZE)
    ]


async def test_a_turn_is_one_transaction_and_gossip_waits_for_the_next(dep: Deployment) -> None:
    """Checkpoints of three logs that arrive within a witness's linger are cosigned in one
    transaction; the other witness's cosignatures (gossip without a fork) open none of their
    own; stopping commits the positions read since, so a restart reads none of it again."""
    logs = [Log(dep, s) for s in ("MX", "HN", "CR")]
    follower = Follower(dep, "JM", quorum=2)
    config = WitnessConfig(poll_s=0.1, linger_s=3.0, idle_commit_s=60.0)
    gt, pa = witness(dep, "GT", config=config), witness(dep, "PA", config=config)
    async with follower.following():
        async with running([gt, pa]):
            assert (gt.commits, pa.commits) == (0, 0)
            for log in logs:
                await log.publish(log.grow(3))
            await until(
                lambda: all(cosigners(follower, log.log.log_id, 3) == ["GT", "PA"] for log in logs),
                "GT and PA cosigning the three logs",
            )
            assert (gt.commits, pa.commits) == (1, 1)
            await until(lambda: gt.gossiped >= 6 and pa.gossiped >= 6, "both reading all six")
            assert (gt.commits, pa.commits) == (1, 1)
        assert (gt.commits, pa.commits) == (2, 2)  # the positions, committed on stopping
        again = witness(dep, "GT", instance="w2", config=config)
        async with running([again]):
            assert again.gossiped == 0
            assert {again.book.cosigned[log.log.log_id].checkpoint.size for log in logs} == {3}
