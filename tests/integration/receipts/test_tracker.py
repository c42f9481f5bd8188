"""MX's receipt tracker on the real broker, with a clock the test moves: deadlines met and
missed, an escalation exactly once (not once per poll), a restart mid-way (clean and abrupt),
forged, misdirected, replayed and duplicate receipts refused without changing any state."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from puente.errors import PuenteError
from puente.evidence.keys import SigningKey
from puente.evidence.overdue import MissedDeadline, OverdueKind
from puente.evidence.receipt import AcknowledgmentDecision
from puente.kafka.clients import consumer, start
from puente.receipts.track import (
    RECEIPT_DUPLICATE,
    RECEIPT_MALFORMED,
    RECEIPT_REPLAYED,
    RECEIPT_SIGNATURE_INVALID,
    RECEIPT_UNKNOWN_DELIVERY,
    RECEIPT_UNSIGNED,
    RECIPIENT_MISMATCH,
    TrackState,
)
from puente.receipts.view import read_tracks
from puente.topics import DUE, TRACKER
from tests.harness import KafkaHarness
from tests.integration.receipts.support import (
    HOUR,
    Deliveries,
    ManualClock,
    receipt,
    receipt_key,
    refused,
    reports,
    running,
    send_receipt,
    state_of,
    track_of,
    tracker,
    turns,
    until,
)
from tests.integration.service.support import Deployment, deploy

pytestmark = pytest.mark.kafka

ACK = AcknowledgmentDecision.ACKNOWLEDGED


@pytest.fixture
async def dep(kafka: KafkaHarness) -> Deployment:
    """A fresh deployment per test: each test's overdue and tracker topics are its own."""
    return await deploy(kafka, partitions=1)


async def test_deadlines_met_and_missed_and_escalated_once(dep: Deployment) -> None:
    clock = ManualClock()
    mx = Deliveries(dep)
    in_time = mx.make("GT")  # receipt and acknowledgment will come in time
    missed = mx.make("HN")  # nothing will come
    received_only = mx.make("US")  # a machine receipt, never an officer's answer
    await mx.send(in_time, missed, received_only)
    async with running(tracker(dep, clock)) as t:
        await until(lambda: len(t.book) == 3, "the three deliveries tracked")
        await send_receipt(dep, receipt(dep, in_time))
        await send_receipt(dep, receipt(dep, received_only))
        await until(lambda: state_of(t, in_time) is TrackState.RECEIVED, "GT's receipt")
        await send_receipt(dep, receipt(dep, in_time, answer=ACK))
        await until(lambda: state_of(t, in_time) is TrackState.ACKNOWLEDGED, "GT's answer")
        await until(lambda: state_of(t, received_only) is TrackState.RECEIVED, "US's receipt")
        assert state_of(t, missed) is TrackState.DELIVERED
        assert await reports(dep, "MX") == []

        clock.advance(3 * HOUR)  # HN's receive deadline (2 h) has passed
        await until(lambda: state_of(t, missed) is TrackState.OVERDUE, "HN's escalation")
        overdue = track_of(t, missed)
        assert overdue.missed is MissedDeadline.RECEIVE and overdue.escalated_at == clock.now
        await turns(t, 20)  # twenty more polls, every one checks the deadlines
        clock.advance(30 * HOUR)  # past every acknowledgment deadline: US's goes overdue now
        await until(lambda: state_of(t, received_only) is TrackState.OVERDUE, "US's escalation")
        await turns(t, 20)
        assert track_of(t, received_only).missed is MissedDeadline.ACKNOWLEDGE
        assert state_of(t, in_time) is TrackState.ACKNOWLEDGED  # met: never escalated
        assert track_of(t, in_time).escalated_at is None

    to_mx = await reports(dep, "MX")
    assert sorted(r.delivery_id for r in to_mx) == sorted(
        [missed.record.delivery_id or "", received_only.record.delivery_id or ""]
    )
    assert {r.kind for r in to_mx} == {OverdueKind.ESCALATION}
    [to_hn] = await reports(dep, "HN")
    assert (to_hn.kind, to_hn.delivery_id) == (OverdueKind.REMINDER, missed.record.delivery_id)
    assert to_hn.missed is MissedDeadline.RECEIVE
    [to_us] = await reports(dep, "US")
    assert to_us.missed is MissedDeadline.ACKNOWLEDGE
    assert await reports(dep, "GT") == []


async def test_a_restart_mid_way_resumes_exactly_where_it_was(dep: Deployment) -> None:
    clock = ManualClock()
    mx = Deliveries(dep)
    a, b, c = mx.make("GT"), mx.make("HN"), mx.make("US")
    await mx.send(a, b)
    async with running(tracker(dep, clock, instance="first")) as t:
        await until(lambda: len(t.book) == 2, "two deliveries")
        await send_receipt(dep, receipt(dep, a))
        await until(lambda: state_of(t, a) is TrackState.RECEIVED, "a received")
        clock.advance(3 * HOUR)  # b's receive deadline passes: escalated
        await until(lambda: state_of(t, b) is TrackState.OVERDUE, "b escalated")
    # While no tracker runs: a third delivery, and an answer for a.
    await mx.send(c)
    await send_receipt(dep, receipt(dep, a, answer=ACK))
    async with running(tracker(dep, clock, instance="second")) as t:
        await until(lambda: len(t.book) == 3, "three deliveries after the restart")
        await until(lambda: state_of(t, a) is TrackState.ACKNOWLEDGED, "a's answer, read late")
        assert state_of(t, b) is TrackState.OVERDUE  # restored, not escalated again
        assert track_of(t, b).escalated_at == clock.now
        await turns(t, 10)
        clock.advance(3 * HOUR)  # c's receive deadline passes too
        await until(lambda: state_of(t, c) is TrackState.OVERDUE, "c escalated")
        await turns(t, 10)
    # An abrupt end (cancelled mid-loop, nothing flushed on purpose), then a third instance.
    third = tracker(dep, clock, instance="third")
    task = asyncio.create_task(third.run(asyncio.Event()))
    await asyncio.wait_for(third.ready.wait(), 120)
    await send_receipt(dep, receipt(dep, c))  # a late receipt of c
    await until(lambda: track_of(third, c).received_at is not None, "c's late receipt")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    async with running(tracker(dep, clock, instance="fourth")) as t:
        await turns(t, 10)
        assert {state_of(t, x) for x in (a, b, c)} == {
            TrackState.ACKNOWLEDGED,
            TrackState.OVERDUE,
        }
        # Committed before the cancel, or read again by this instance: counted once either way.
        assert track_of(t, c).received_at is not None
    escalations = await reports(dep, "MX")
    assert sorted(r.delivery_id for r in escalations) == sorted(
        [b.record.delivery_id or "", c.record.delivery_id or ""]
    )  # each once, over four instances and an abrupt stop


async def test_forged_misdirected_replayed_and_duplicate_receipts_change_nothing(
    dep: Deployment,
) -> None:
    clock = ManualClock()
    mx = Deliveries(dep)
    to_gt = mx.make("GT")
    await mx.send(to_gt)
    reasons = (
        RECEIPT_SIGNATURE_INVALID,
        RECIPIENT_MISMATCH,
        RECEIPT_UNSIGNED,
        RECEIPT_UNKNOWN_DELIVERY,
        RECEIPT_MALFORMED,
        RECEIPT_REPLAYED,
        RECEIPT_DUPLICATE,
    )
    gt_before = {r: refused("MX", "GT", r) for r in reasons}
    hn_before = {r: refused("MX", "HN", r) for r in reasons}
    async with running(tracker(dep, clock)) as t:
        await until(lambda: len(t.book) == 1, "the delivery to GT")
        untouched = track_of(t, to_gt)
        # Forged: GT's receipt signed by a key no trust list holds.
        await send_receipt(dep, receipt(dep, to_gt), key=SigningKey.generate("puente.member/GT"))
        # Forged: claims GT, signed with HN's receipt key, sent on GT's topic.
        await send_receipt(dep, receipt(dep, to_gt), key=receipt_key(dep, "HN"), topic_state="GT")
        # Misdirected: HN, with its own key, acknowledges the delivery that went to GT.
        await send_receipt(dep, receipt(dep, to_gt, by="HN", answer=ACK))
        # Unsigned.
        await send_receipt(dep, receipt(dep, to_gt), signed=False)
        # For a delivery MX never sent (naming MX's log).
        await send_receipt(dep, receipt(dep, mx.make("GT")))
        # Not a receipt at all.
        await send_receipt(dep, receipt(dep, to_gt), data=b"\xc3\x01 not avro")
        await until(
            lambda: refused("MX", "GT", RECEIPT_MALFORMED) > gt_before[RECEIPT_MALFORMED],
            "the six refusals",
        )
        assert track_of(t, to_gt) == untouched  # none of them changed anything
        assert refused("MX", "GT", RECEIPT_SIGNATURE_INVALID) == (
            gt_before[RECEIPT_SIGNATURE_INVALID] + 2
        )
        assert refused("MX", "HN", RECIPIENT_MISMATCH) == hn_before[RECIPIENT_MISMATCH] + 1
        assert refused("MX", "GT", RECEIPT_UNSIGNED) == gt_before[RECEIPT_UNSIGNED] + 1
        assert (
            refused("MX", "GT", RECEIPT_UNKNOWN_DELIVERY) == gt_before[RECEIPT_UNKNOWN_DELIVERY] + 1
        )

        # The genuine receipt counts; sent again (replayed), and another one (a duplicate),
        # they do not.
        genuine = receipt(dep, to_gt, receipt_id=str(uuid.uuid4()))
        await send_receipt(dep, genuine)
        await until(lambda: state_of(t, to_gt) is TrackState.RECEIVED, "the genuine receipt")
        counted = track_of(t, to_gt)
        await send_receipt(dep, genuine)
        await send_receipt(dep, receipt(dep, to_gt))
        await until(
            lambda: refused("MX", "GT", RECEIPT_DUPLICATE) > gt_before[RECEIPT_DUPLICATE],
            "the duplicate",
        )
        assert refused("MX", "GT", RECEIPT_REPLAYED) == gt_before[RECEIPT_REPLAYED] + 1
        assert track_of(t, to_gt) == counted
    # What GT sees of it: its own pair, in due.GT, as the tracker left it.
    c = consumer(dep.tenant.endpoint, dep.tenant.member("GT"))
    await start(c, dep.tenant.endpoint, dep.tenant.member("GT"))
    try:
        seen = await read_tracks(c, dep.registry, [dep.tenant.topic(DUE, "GT")])
    finally:
        await c.stop()
    assert [(s.delivery_id, s.state) for s in seen] == [
        (to_gt.record.delivery_id, TrackState.RECEIVED)
    ]


async def test_a_state_cannot_read_another_pair_s_tracks(dep: Deployment) -> None:
    """GT's principal reads its own tracker and due topics, never MX's tracker topic."""
    c = consumer(dep.tenant.endpoint, dep.tenant.member("GT"))
    await start(c, dep.tenant.endpoint, dep.tenant.member("GT"))
    try:
        with pytest.raises(PuenteError) as err:
            await read_tracks(c, dep.registry, [dep.tenant.topic(TRACKER, "MX")])
        assert err.value.reason == "TOPIC_UNAVAILABLE"
        assert await read_tracks(c, dep.registry, [dep.tenant.topic(TRACKER, "GT")]) == []
    finally:
        await c.stop()
