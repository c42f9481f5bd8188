"""Deadlines from the policies to an escalation, with every real part: MX's node decides two
death notifications for GT and records their deadlines (Mexico's own 12 h, shorter than the
region's 24 h); GT's subscriber receipts them; GT's officer answers one with ``puente receipts
ack``; ``puente serve receipts --as MX`` with its clock sped up escalates the other; ``puente
receipts status`` shows each state its own pairs."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from typing import Any

import pytest

from puente.evidence.overdue import MissedDeadline, OverdueKind
from puente.evidence.records import AuditRecord
from puente.receipts.track import TrackState
from puente.receipts.tracker import ReceiptTracker
from puente.subscriber.core import Subscriber
from puente.synth.generator import Generator
from puente.topics import AUDIT
from tests.harness import KafkaHarness
from tests.integration.receipts.support import (
    HOUR,
    ManualClock,
    receipt_key,
    reports,
    running,
    tracker,
    until,
)
from tests.integration.service.support import (
    Deployment,
    deploy,
    encoded,
    publish,
    read_topic,
)
from tests.integration.service.support import running as nodes_running

pytestmark = pytest.mark.kafka


@pytest.fixture
async def dep(kafka: KafkaHarness) -> Deployment:
    return await deploy(kafka, partitions=1)


def puente(dep: Deployment, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A ``puente`` command on this deployment, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "puente", *args],
        env=dep.env(**env),
        capture_output=True,
        text=True,
        timeout=180,
    )


def status(dep: Deployment, *args: str) -> dict[str, Any]:
    done = puente(dep, "receipts", "status", "--json", *args)
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


async def test_policy_deadlines_receipts_an_answer_and_an_escalation(dep: Deployment) -> None:
    gen = Generator(11)
    deaths = [gen.scenario("death", origin="MX", nationality="GT") for _ in range(2)]
    async with nodes_running(dep.nodes("MX")):
        await publish(dep, "MX", [encoded(dep, n) for n in deaths])
        # GT's software receives, verifies and opens both, and signs a machine receipt each.
        sub = Subscriber(
            endpoint=dep.tenant.endpoint,
            credential=dep.tenant.member("GT"),
            naming=dep.tenant.naming,
            member="GT",
            registry=dep.registry,
            trust=dep.trust(),
            keys=dep.member_keys("GT"),
            receipt_key=receipt_key(dep, "GT"),
            name="consulate",
        )
        got = []
        async with sub:
            async for r in sub.stream(idle_timeout_s=60):
                assert r.ok, r.error
                got.append(r)
                if len(got) == 2:
                    break
    ids = {n.record["notice_id"] for n in deaths}
    records = [
        AuditRecord.decode(dep.registry, v)
        for _, v in await read_topic(dep, dep.tenant.topic(AUDIT, "MX"), idle_s=2)
    ]
    sent = [a for a in records if a.notice_id in ids and a.recipient == "GT"]
    assert len(sent) == 2
    for a in sent:  # the node recorded the clocks: the region's receive, Mexico's 12 h answer
        assert a.deadlines is not None
        assert a.deadlines.type == "ConsularNotification/DEATH"
        assert a.deadlines.acknowledge_by == a.decided_at + 12 * HOUR
        assert a.deadlines.receive_by == a.decided_at + 2 * HOUR
        assert a.deadlines.deadline_ids == ("deadline.vccr.37-death", "mx.deadline.death")
    answered, ignored = sent

    # MX's tracker sees both received; GT's officer answers one (the tracker tells GT what is
    # due from it: puente receipts ack finds the delivery in due.GT).
    async with running(tracker(dep, ManualClock())) as t:
        await until(
            lambda: all(state_of_id(t, a) is TrackState.RECEIVED for a in sent), "GT's receipts"
        )
    awaited = status(dep, "--as", "GT")
    assert sorted(d["delivery_id"] for d in awaited["deliveries"]) == sorted(
        r.delivery_id or "" for r in sent
    )
    done = puente(
        dep,
        "receipts",
        "ack",
        answered.delivery_id or "",
        "--as",
        "GT",
        "--case-reference",
        "GT/77",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["decision"] == "ACKNOWLEDGED"

    # The tracker as operators run it, its clock sped up: Mexico's 12 h pass in a blink.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "puente", "serve", "receipts", "--as", "MX", "--metrics-port", "0"),
        env=dep.env(PUENTE_RECEIPTS__CLOCK_SCALE="100000"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        deadline = asyncio.get_running_loop().time() + 120
        while not [r for r in await reports(dep, "MX") if r.delivery_id == ignored.delivery_id]:
            assert proc.returncode is None, "puente serve receipts exited"
            assert asyncio.get_running_loop().time() < deadline, "no escalation"
            await asyncio.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()

    [escalation] = await reports(dep, "MX")
    assert escalation.kind is OverdueKind.ESCALATION
    assert escalation.missed is MissedDeadline.ACKNOWLEDGE
    assert escalation.deadline == ignored.decided_at + 12 * HOUR
    [reminder] = await reports(dep, "GT")
    assert (reminder.kind, reminder.delivery_id) == (OverdueKind.REMINDER, ignored.delivery_id)

    gt = status(dep, "--as", "GT", "--all")
    states = {d["delivery_id"]: (d["state"], d["case_reference"]) for d in gt["deliveries"]}
    assert states == {
        answered.delivery_id: ("ACKNOWLEDGED", "GT/77"),
        ignored.delivery_id: ("OVERDUE", None),
    }
    assert {(r["origin"], r["recipient"]) for r in gt["report"]} == {("MX", "GT")}
    assert status(dep, "--as", "US", "--all")["deliveries"] == []
    assert [d["delivery_id"] for d in status(dep, "--as", "MX", "--overdue")["deliveries"]] == [
        ignored.delivery_id
    ]
    # A second answer to the same delivery is refused by the command itself.
    again = puente(dep, "receipts", "ack", answered.delivery_id or "", "--as", "GT")
    assert again.returncode == 2 and "RECEIPT_DUPLICATE" in again.stderr


def state_of_id(t: ReceiptTracker, record: AuditRecord) -> TrackState | None:
    assert record.delivery_digest is not None
    track = t.book.tracks.get(record.delivery_digest)
    return None if track is None else track.state
