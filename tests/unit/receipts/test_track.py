"""The receipt tracker's pure core: the state machine, every refusal, escalation exactly once."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from puente.evidence.keys import SigningKey
from puente.evidence.overdue import MissedDeadline, OverdueKind, OverdueReport
from puente.evidence.receipt import AcknowledgmentDecision, ReceiptStatus
from puente.evidence.records import AuditDecision
from puente.receipts.track import (
    NOT_OURS,
    RECEIPT_DUPLICATE,
    RECEIPT_MALFORMED,
    RECEIPT_NOTICE_MISMATCH,
    RECEIPT_REPLAYED,
    RECEIPT_SIGNATURE_INVALID,
    RECEIPT_TIME_INVALID,
    RECEIPT_UNKNOWN_DELIVERY,
    RECEIPT_UNSIGNED,
    RECEIPT_VERIFICATION_FAILED,
    RECIPIENT_MISMATCH,
    Incoming,
    Track,
    TrackBook,
    TrackState,
    overdue_reports,
    track_of,
)
from tests.unit.receipts.conftest import HOUR, T0, World

ACK = AcknowledgmentDecision.ACKNOWLEDGED
DECLINE = AcknowledgmentDecision.DECLINED


def tracked(
    world: World,
    recipient: str = "GT",
    *,
    receive_in: int | None = 2 * HOUR,
    acknowledge_in: int | None = 24 * HOUR,
) -> tuple[TrackBook, Track]:
    """A book holding one delivery of MX to ``recipient`` with these deadlines."""
    book = world.book()
    record = world.delivery(recipient, receive_in=receive_in, acknowledge_in=acknowledge_in)
    track = book.deliver(record)
    assert track is not None
    return book, track


def test_a_delivery_is_tracked_from_its_audit_record(world: World) -> None:
    record = world.delivery("HN", receive_in=HOUR, acknowledge_in=24 * HOUR)
    track = track_of(record)
    assert track is not None
    assert (track.origin, track.recipient, track.state) == ("MX", "HN", TrackState.DELIVERED)
    assert track.delivery_digest == record.delivery_digest
    assert track.type == "ConsularNotification/DEATH"
    assert (track.receive_by, track.acknowledge_by) == (T0 + HOUR, T0 + 24 * HOUR)
    assert track.deadline_ids == ("deadline.vccr.37-death",)
    assert (track.audit_log_id, track.audit_leaf_index) == (record.log_id, record.leaf_index)
    assert track.next_deadline() == (T0 + HOUR, MissedDeadline.RECEIVE)


def test_withheld_and_rejected_records_track_nothing(world: World) -> None:
    assert track_of(world.delivery(decision=AuditDecision.WITHHELD)) is None
    book = world.book()
    assert book.deliver(world.delivery(decision=AuditDecision.WITHHELD)) is None
    assert book.deliver(world.delivery(origin="GT", recipient="HN")) is None  # not MX's
    assert len(book) == 0


def test_a_case_notice_without_deadlines_is_tracked_but_never_overdue(world: World) -> None:
    book, track = tracked(world, receive_in=None, acknowledge_in=None)
    assert track.type == "ConsularNotification"  # its notice type: no deadline named an event
    assert track.next_deadline() is None
    assert book.escalate(T0 + 1000 * 24 * HOUR) == []


def test_the_same_audit_record_read_again_changes_nothing(world: World) -> None:
    book = world.book()
    record = world.delivery()
    first = book.deliver(record)
    assert first is not None
    v = book.judge(world.receipt(first, at=T0 + 60_000), world.verifier)
    assert v.accepted
    assert book.deliver(record) is None  # a restart reads the audit log again
    assert book.tracks[first.delivery_digest].state is TrackState.RECEIVED


def test_machine_receipt_then_acknowledgment_in_time(world: World) -> None:
    book, track = tracked(world)
    v = book.judge(world.receipt(track, at=T0 + 60_000), world.verifier)
    assert v.accepted and v.kind == "receipt" and v.track is not None
    assert v.track.state is TrackState.RECEIVED
    assert v.track.received_at == T0 + 60_000  # when it reached Puente, not its own claim
    assert v.track.next_deadline() == (T0 + 24 * HOUR, MissedDeadline.ACKNOWLEDGE)
    v = book.judge(
        world.receipt(track, at=T0 + 2 * HOUR, answer=ACK, case_reference="GT-2026/17"),
        world.verifier,
    )
    assert v.accepted and v.kind == "ACKNOWLEDGED" and v.track is not None
    done = v.track
    assert done.state is TrackState.ACKNOWLEDGED
    assert (done.answered_at, done.case_reference) == (T0 + 2 * HOUR, "GT-2026/17")
    assert done.received_at == T0 + 60_000 and done.missed is None
    assert done.next_deadline() is None
    assert book.escalate(T0 + 1000 * HOUR) == []  # answered in time: nothing to escalate


def test_an_acknowledgment_alone_stands_for_the_receipt(world: World) -> None:
    book, track = tracked(world)
    v = book.judge(world.receipt(track, at=T0 + 5000, answer=ACK), world.verifier)
    assert v.track is not None and v.track.state is TrackState.ACKNOWLEDGED
    assert v.track.received_at == v.track.answered_at == T0 + 5000
    assert v.track.receipt_id == v.track.answer_receipt_id == v.receipt_id


def test_a_declined_case_keeps_its_reason(world: World) -> None:
    book, track = tracked(world)
    v = book.judge(
        world.receipt(track, at=T0 + 5000, answer=DECLINE, reason="NOT_A_NATIONAL"),
        world.verifier,
    )
    assert v.track is not None and v.kind == "DECLINED"
    assert (v.track.state, v.track.decline_reason) == (TrackState.DECLINED, "NOT_A_NATIONAL")


def test_a_missed_receive_deadline_is_escalated_once(world: World) -> None:
    book, track = tracked(world)
    assert book.escalate(T0 + 2 * HOUR - 1) == []
    [esc] = book.escalate(T0 + 2 * HOUR)
    assert esc.missed is MissedDeadline.RECEIVE and esc.deadline == T0 + 2 * HOUR
    assert esc.track.state is TrackState.OVERDUE and esc.track.escalated_at == T0 + 2 * HOUR
    assert book.tracks[track.delivery_digest] == esc.track
    assert book.overdue[("GT", "ConsularNotification/DEATH")] == 1
    # Every later poll, past the acknowledgment deadline too: nothing more.
    for now in (T0 + 3 * HOUR, T0 + 25 * HOUR, T0 + 1000 * HOUR):
        assert book.escalate(now) == []


def test_a_missed_acknowledgment_after_a_receipt_is_escalated_once(world: World) -> None:
    book, track = tracked(world)
    assert book.judge(world.receipt(track, at=T0 + HOUR), world.verifier).accepted
    assert book.escalate(T0 + 24 * HOUR - 1) == []
    [esc] = book.escalate(T0 + 30 * HOUR)
    assert esc.missed is MissedDeadline.ACKNOWLEDGE and esc.deadline == T0 + 24 * HOUR
    assert esc.track.received_at == T0 + HOUR
    assert book.escalate(T0 + 31 * HOUR) == []


def test_a_late_answer_closes_an_overdue_delivery_without_a_new_escalation(world: World) -> None:
    book, track = tracked(world)
    [esc] = book.escalate(T0 + 3 * HOUR)  # the receive deadline passed
    late = book.judge(world.receipt(track, at=T0 + 4 * HOUR), world.verifier)
    assert late.track is not None and late.track.state is TrackState.OVERDUE  # received, late
    assert late.track.received_at == T0 + 4 * HOUR
    answered = book.judge(world.receipt(track, at=T0 + 5 * HOUR, answer=ACK), world.verifier)
    assert answered.track is not None
    assert answered.track.state is TrackState.ACKNOWLEDGED
    assert answered.track.missed is MissedDeadline.RECEIVE  # it was late, and stays so
    assert answered.track.escalated_at == esc.track.escalated_at
    assert book.overdue[("GT", "ConsularNotification/DEATH")] == 0
    assert book.escalate(T0 + 1000 * HOUR) == []


def test_the_earlier_deadline_runs_first(world: World) -> None:
    book, _ = tracked(world, receive_in=10 * HOUR, acknowledge_in=3 * HOUR)
    [esc] = book.escalate(T0 + 3 * HOUR)
    assert esc.missed is MissedDeadline.ACKNOWLEDGE


def test_a_restored_book_escalates_what_was_not_escalated_and_nothing_twice(
    world: World,
) -> None:
    book = world.book()
    a = book.deliver(world.delivery(receive_in=2 * HOUR, acknowledge_in=24 * HOUR))
    b = book.deliver(world.delivery(receive_in=None, acknowledge_in=48 * HOUR))
    assert a is not None and b is not None
    [first] = book.escalate(T0 + 3 * HOUR)
    assert first.track.delivery_id == a.delivery_id
    written = [t.encode(world.registry) for t in book]  # what the compacted topic holds
    restored = world.book()
    restored.restore(Track.decode(world.registry, v) for v in written)
    assert {t.delivery_id: t for t in restored} == {t.delivery_id: t for t in book}
    assert restored.overdue == book.overdue
    [second] = restored.escalate(T0 + 1000 * HOUR)
    assert second.track.delivery_id == b.delivery_id
    assert restored.escalate(T0 + 2000 * HOUR) == []


def test_track_round_trips_through_avro(world: World) -> None:
    book, track = tracked(world)
    book.judge(world.receipt(track, at=T0 + 5000, answer=DECLINE, reason="OTHER"), world.verifier)
    for t in book:
        assert Track.decode(world.registry, t.encode(world.registry)) == t


# --- refusals: counted, never a change of state ------------------------------------------------


def refused(book: TrackBook, world: World, incoming: Incoming, reason: str) -> None:
    before = dict(book.tracks)
    v = book.judge(incoming, world.verifier)
    assert (v.reason, v.track) == (reason, None), v.message
    assert book.tracks == before


def test_bytes_that_are_no_receipt_are_malformed(world: World) -> None:
    book, track = tracked(world)
    good = world.receipt(track, at=T0 + 5000)
    refused(book, world, dataclasses.replace(good, value=b"\xc3\x01nonsense"), RECEIPT_MALFORMED)
    refused(book, world, dataclasses.replace(good, value=b""), RECEIPT_MALFORMED)


def test_a_receipt_breaking_the_rules_is_malformed(world: World) -> None:
    book, track = tracked(world)
    refused(
        book,
        world,
        world.receipt(track, at=T0 + 5000, answer=DECLINE, reason="NOT_A_CODE"),
        RECEIPT_MALFORMED,
    )
    refused(
        book,
        world,
        world.receipt(track, at=T0 + 5000, answer=ACK, case_reference="José Pérez"),
        RECEIPT_MALFORMED,
    )


def test_an_unsigned_receipt_is_refused(world: World) -> None:
    book, track = tracked(world)
    refused(book, world, world.receipt(track, at=T0 + 5000, signed=False), RECEIPT_UNSIGNED)


def test_a_forged_receipt_is_refused(world: World) -> None:
    book, track = tracked(world)
    # Signed by a key no trust list names.
    refused(
        book,
        world,
        world.receipt(track, at=T0 + 5000, key=SigningKey.generate("puente.member/GT")),
        RECEIPT_SIGNATURE_INVALID,
    )
    # GT's key and signature, over other bytes than these (a time changed after signing).
    rid = str(uuid.uuid4())
    good = world.receipt(track, at=T0 + 5000, receipt_id=rid)
    other = world.receipt(track, at=T0 + 6000, receipt_id=rid)
    assert other.value != good.value
    refused(book, world, dataclasses.replace(good, value=other.value), RECEIPT_SIGNATURE_INVALID)
    # Claims to be GT's receipt, signed with HN's receipt key.
    refused(
        book,
        world,
        world.receipt(track, at=T0 + 5000, key=world.receipt_keys["HN"]),
        RECEIPT_SIGNATURE_INVALID,
    )
    # MX's node key is not a receipt key.
    refused(
        book,
        world,
        world.receipt(track, at=T0 + 5000, key=world.node_key),
        RECEIPT_SIGNATURE_INVALID,
    )


def test_a_receipt_from_another_state_than_the_recipient_is_refused(world: World) -> None:
    book, track = tracked(world, recipient="GT")
    # HN signs, with its own key, a receipt of a delivery that went to GT.
    refused(book, world, world.receipt(track, at=T0 + 5000, by="HN"), RECIPIENT_MISMATCH)
    refused(
        book, world, world.receipt(track, at=T0 + 5000, by="HN", answer=ACK), RECIPIENT_MISMATCH
    )
    # GT's own receipt, found on HN's receipts topic: not where GT writes.
    refused(book, world, world.receipt(track, at=T0 + 5000, topic_state="HN"), RECIPIENT_MISMATCH)


def test_a_receipt_for_an_unknown_delivery_is_refused(world: World) -> None:
    book = world.book()
    other = track_of(world.delivery())
    assert other is not None
    refused(book, world, world.receipt(other, at=T0 + 5000), RECEIPT_UNKNOWN_DELIVERY)


def test_a_receipt_for_another_origin_s_delivery_is_left_to_its_tracker(world: World) -> None:
    gt_book = TrackBook("GT", world.registry)
    _, track = tracked(world)
    v = gt_book.judge(world.receipt(track, at=T0 + 5000), world.verifier)
    assert v == NOT_OURS and v.reason is None and not v.accepted


def test_a_receipt_naming_another_notice_is_refused(world: World) -> None:
    book, track = tracked(world)
    refused(
        book,
        world,
        world.receipt(track, at=T0 + 5000, notice_id=str(uuid.uuid4())),
        RECEIPT_NOTICE_MISMATCH,
    )


def test_a_receipt_of_a_delivery_that_failed_to_verify_moves_nothing(world: World) -> None:
    book, track = tracked(world)
    refused(
        book,
        world,
        world.receipt(track, at=T0 + 5000, status=ReceiptStatus.VERIFICATION_FAILED),
        RECEIPT_VERIFICATION_FAILED,
    )


def test_a_receipt_with_impossible_times_is_refused(world: World) -> None:
    book, track = tracked(world)
    # Received (it says) a day before the delivery was decided.
    refused(
        book,
        world,
        world.receipt(track, at=T0 + 5000, received_at=T0 - 24 * HOUR),
        RECEIPT_TIME_INVALID,
    )
    # Received (it says) an hour after it reached Puente.
    refused(
        book,
        world,
        world.receipt(track, at=T0 + 5000, received_at=T0 + HOUR),
        RECEIPT_TIME_INVALID,
    )


def test_a_replayed_receipt_is_refused(world: World) -> None:
    book, track = tracked(world)
    first = world.receipt(track, at=T0 + 5000)
    assert book.judge(first, world.verifier).accepted
    refused(book, world, first, RECEIPT_REPLAYED)
    refused(book, world, dataclasses.replace(first, arrival_ms=T0 + HOUR), RECEIPT_REPLAYED)
    answer = world.receipt(track, at=T0 + HOUR, answer=ACK)
    assert book.judge(answer, world.verifier).accepted
    refused(book, world, answer, RECEIPT_REPLAYED)


def test_duplicates_are_refused_and_the_first_answer_stands(world: World) -> None:
    book, track = tracked(world)
    assert book.judge(world.receipt(track, at=T0 + 5000), world.verifier).accepted
    # Another machine receipt (the recipient's software read the delivery again).
    refused(book, world, world.receipt(track, at=T0 + 9000), RECEIPT_DUPLICATE)
    assert book.judge(world.receipt(track, at=T0 + HOUR, answer=ACK), world.verifier).accepted
    # A second answer, even another one, does not replace the first.
    refused(
        book,
        world,
        world.receipt(track, at=T0 + 2 * HOUR, answer=DECLINE, reason="OTHER"),
        RECEIPT_DUPLICATE,
    )
    refused(book, world, world.receipt(track, at=T0 + 3 * HOUR), RECEIPT_DUPLICATE)


# --- the reports of an escalation --------------------------------------------------------------


def test_an_escalation_is_reported_to_the_origin_and_the_recipient_signed(world: World) -> None:
    book, track = tracked(world, recipient="HN")
    [esc] = book.escalate(T0 + 3 * HOUR)
    reports = overdue_reports(esc, registry=world.registry, key=world.node_key)
    assert [addressee for addressee, _ in reports] == ["MX", "HN"]
    got = [world.verifier.verify_overdue_report(data) for _, data in reports]
    assert [r.kind for r in got] == [OverdueKind.ESCALATION, OverdueKind.REMINDER]
    for r, (addressee, _) in zip(got, reports, strict=True):
        assert isinstance(r, OverdueReport)
        assert r.addressee == addressee and (r.origin, r.recipient) == ("MX", "HN")
        assert (r.delivery_id, r.notice_id) == (track.delivery_id, track.notice_id)
        assert r.missed is MissedDeadline.RECEIVE and r.deadline == T0 + 2 * HOUR
        assert r.reported_at == T0 + 3 * HOUR and r.legal_bases == ("VCCR Art. 37(a)",)
    # Made again (a transaction aborted and retried): the same reports, the same ids.
    again = overdue_reports(esc, registry=world.registry, key=world.node_key)
    assert [world.verifier.verify_overdue_report(d).report_id for _, d in again] == [
        r.report_id for r in got
    ]


def test_a_report_signed_by_another_key_does_not_verify(world: World) -> None:
    book, _ = tracked(world)
    [esc] = book.escalate(T0 + 3 * HOUR)
    [(_, data), _] = overdue_reports(esc, registry=world.registry, key=world.receipt_keys["GT"])
    with pytest.raises(Exception) as err:
        world.verifier.verify_overdue_report(data)
    assert getattr(err.value, "reason", "").startswith("KEY_")


def test_closed_tracks_are_forgotten_from_memory_not_open_ones(world: World) -> None:
    book = world.book()
    done = book.deliver(world.delivery())
    open_ = book.deliver(world.delivery(acknowledge_in=100 * 24 * HOUR, receive_in=None))
    assert done is not None and open_ is not None
    book.judge(world.receipt(done, at=T0 + 5000, answer=ACK), world.verifier)
    assert book.forget_closed(T0 + 1) == 1
    assert [t.delivery_id for t in book] == [open_.delivery_id]


# --- any sequence of events ------------------------------------------------------------------

EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["receipt", "ack", "decline", "replay", "forged", "poll"]),
        st.integers(min_value=1, max_value=48),  # hours after the decision
    ),
    max_size=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=EVENTS)
def test_any_sequence_escalates_at_most_once_and_never_goes_back(
    world: World, events: list[tuple[str, int]]
) -> None:
    book, track = tracked(world)
    escalations, last = 0, None
    order = {s: i for i, s in enumerate(TrackState)}
    for kind, hours in sorted(events, key=lambda e: e[1]):
        at = T0 + hours * HOUR
        if kind == "poll":
            escalations += len(book.escalate(at))
        elif kind == "replay" and last is not None:
            before = dict(book.tracks)
            assert book.judge(last, world.verifier).reason == RECEIPT_REPLAYED
            assert book.tracks == before
        elif kind == "forged":
            before = dict(book.tracks)
            bad = world.receipt(track, at=at, key=world.stranger)
            assert book.judge(bad, world.verifier).reason == RECEIPT_SIGNATURE_INVALID
            assert book.tracks == before
        elif kind in ("receipt", "ack", "decline"):
            answer = {"receipt": None, "ack": ACK, "decline": DECLINE}[kind]
            incoming = world.receipt(
                track, at=at, answer=answer, reason="OTHER" if kind == "decline" else None
            )
            old = book.tracks[track.delivery_digest]
            v = book.judge(incoming, world.verifier)
            new = book.tracks[track.delivery_digest]
            if v.accepted:
                last = incoming
                # Answered is final; otherwise the state only moves forward.
                assert old.state not in (TrackState.ACKNOWLEDGED, TrackState.DECLINED)
                assert order[new.state] >= order[old.state] or new.state in (
                    TrackState.ACKNOWLEDGED,
                    TrackState.DECLINED,
                )
            else:
                assert v.reason == RECEIPT_DUPLICATE and new == old
    escalations += len(book.escalate(T0 + 1000 * HOUR))
    final = book.tracks[track.delivery_digest]
    assert escalations <= 1
    assert (escalations == 1) == (final.escalated_at is not None)
    if final.state is TrackState.OVERDUE:
        assert escalations == 1
