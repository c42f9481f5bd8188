"""The idempotency ledger in memory: entries as Kafka values, TTL, the first answer wins."""

from __future__ import annotations

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
