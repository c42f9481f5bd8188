"""The idempotency ledger in memory: entries as Kafka values, TTL, the first answer wins."""

from __future__ import annotations

import gc
import tracemalloc
import uuid

import orjson
import pytest

from puente_gateway.ledger import Entry, Ledger

T0 = 1_800_000_000_000
A = Entry("MX", b"d" * 32, b'{"notice_id":"a","offset":7}', T0, "puente.CaseNotice")


def test_entries_round_trip_as_kafka_values_with_the_answer_byte_for_byte() -> None:
    again = Entry.from_value(A.value())
    assert again == A
    receipt = Entry("GT", b"e" * 32, b'{"receipt_id":"r"}', T0)
    assert Entry.from_value(receipt.value()) == receipt


@pytest.mark.parametrize(
    "value",
    [
        b"nope",
        b"{}",
        orjson.dumps(
            {
                "v": 2,
                "state": "MX",
                "digest": "00" * 32,
                "type": None,
                "created_ms": 1,
                "answer": {},
            }
        ),
        orjson.dumps(
            {"v": 1, "state": "MX", "digest": "00", "type": None, "created_ms": 1, "answer": {}}
        ),
        orjson.dumps(
            {"v": 1, "state": 7, "digest": "00" * 32, "type": None, "created_ms": 1, "answer": {}}
        ),
        orjson.dumps(
            {"v": 1, "state": "MX", "digest": "00" * 32, "type": None, "created_ms": 1, "answer": 7}
        ),
        orjson.dumps(
            {
                "v": 1,
                "state": "MX",
                "digest": "zz" * 32,
                "type": None,
                "created_ms": 1,
                "answer": {},
            }
        ),
    ],
)
def test_values_that_are_not_entries_are_refused(value: bytes) -> None:
    with pytest.raises(ValueError):
        Entry.from_value(value)


def test_entries_expire_after_the_ttl_and_are_purged_oldest_first() -> None:
    ledger = Ledger(ttl_s=60)
    ledger.apply("notice:a", A, (0, 1), now_ms=T0)
    later = Entry("MX", b"d" * 32, b"{}", T0 + 30_000)
    ledger.apply("notice:b", later, (0, 2), now_ms=T0 + 30_000)
    assert ledger.get("notice:a", now_ms=T0 + 59_999) == A
    assert ledger.get("notice:a", now_ms=T0 + 60_000) is None
    assert ledger.purge(now_ms=T0 + 60_000) == 1
    assert len(ledger) == 1 and ledger.get("notice:b", now_ms=T0 + 60_000) == later
    assert ledger.purge(now_ms=T0 + 60_000) == 0
    ledger.apply("notice:old", A, (1, 1), now_ms=T0 + 120_000)  # read late: already expired
    assert ledger.get("notice:old", now_ms=T0 + 120_000) is None and len(ledger) == 1


def test_the_entry_at_the_lowest_position_is_the_first_answer_in_any_order() -> None:
    first = Entry("MX", b"d" * 32, b'{"offset":1}', T0)
    second = Entry("MX", b"d" * 32, b'{"offset":2}', T0 + 1)
    one, other = Ledger(ttl_s=60), Ledger(ttl_s=60)
    one.apply("notice:x", first, (3, 10), now_ms=T0)
    one.apply("notice:x", second, (3, 11), now_ms=T0)
    other.apply("notice:x", second, (3, 11), now_ms=T0)  # this replica wrote the second
    other.apply("notice:x", first, (3, 10), now_ms=T0)
    assert one.get("notice:x", now_ms=T0) == other.get("notice:x", now_ms=T0) == first


def test_the_ledger_holds_at_most_its_size_forgetting_the_oldest_first() -> None:
    ledger = Ledger(ttl_s=60, max_entries=3)
    for i in range(5):
        ledger.apply(f"notice:{i}", A, (0, i), now_ms=T0)
    assert len(ledger) == 3
    assert [ledger.get(f"notice:{i}", now_ms=T0) is not None for i in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]


def test_an_answer_held_costs_hundreds_of_bytes_not_orjsons_4_kib_buffer() -> None:
    n = 2000
    values = [(f"notice:{uuid.uuid4()}", A.value()) for _ in range(n)]
    ledger = Ledger(ttl_s=60)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i, (key, value) in enumerate(values):
            ledger.apply(key, Entry.from_value(value), (0, i), now_ms=T0)  # as read from Kafka
        gc.collect()
        per_entry = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()
    assert per_entry < 1024, per_entry
    assert ledger.get(f"notice:{uuid.uuid4()}", now_ms=T0) is None


def test_a_full_ledger_adds_nothing_to_the_garbage_collectors_work() -> None:
    """A full collection visits every object the collector tracks, with the event loop
    stopped: the answers a ledger holds must not be among them (held as objects, 250,000
    answers made each full collection of a busy gateway last ~140 ms)."""
    ledger = Ledger(ttl_s=3600)
    gc.collect()
    before = len(gc.get_objects())
    for i in range(20_000):
        body = orjson.dumps({"notice_id": str(uuid.UUID(int=i)), "offset": i})
        ledger.apply(f"notice:{i}", Entry("MX", b"d" * 32, body, T0, "x"), (0, i), now_ms=T0)
    gc.collect()
    assert len(ledger) == 20_000
    assert len(gc.get_objects()) - before < 100
    assert ledger.get("notice:7", now_ms=T0) == Entry(
        "MX", b"d" * 32, orjson.dumps({"notice_id": str(uuid.UUID(int=7)), "offset": 7}), T0, "x"
    )
