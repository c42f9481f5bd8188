"""An origin's counts: windows, lateness, state, and what an aggregate may carry (no notice id,
no free text, no date finer than its window)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from puente.codec.registry import Registry
from puente.synth.generator import Generator
from puente.warnings.aggregate import (
    Aggregate,
    AggregateError,
    AggregateRefused,
    Aggregator,
    check_published,
    publish,
)
from puente.warnings.tables import CONSULAR, Dimension, Gazetteer, Table
from puente.warnings.triggers import TriggerSet

DAY = 86_400_000
HOUR = 3_600_000
T0 = 20_000 * DAY  # a day boundary
DET = Table(CONSULAR, DAY, events=("DETENTION",), by=(Dimension.NATIONALITY,))
DEATHS = Table(CONSULAR, 3 * DAY, events=("DEATH",), by=(Dimension.PLACE,))


def _detention(gen: Generator, at_ms: int, nationality: str = "VE") -> dict[str, Any]:
    record = gen.consular_notification("MX", "DETENTION", nationalities=[nationality])
    record["event_time"] = dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC)
    return record


def _aggregator(state: bytes | None = None, tables: tuple[Table, ...] = (DET,)) -> Aggregator:
    return Aggregator("MX", tables, gazetteer=Gazetteer(), lateness_ms=6 * HOUR, state=state)


def test_windows_close_lateness_after_they_end_in_order_empty_ones_too() -> None:
    gen = Generator(1)
    agg = _aggregator()
    # First use, at 07:00: the oldest window still open is today's (yesterday's closed at 06:00).
    agg.feed(_detention(gen, T0 + HOUR), "puente.ConsularNotification", T0 + 7 * HOUR)
    for _ in range(6):
        agg.feed(
            _detention(gen, T0 + DAY + HOUR), "puente.ConsularNotification", T0 + DAY + 2 * HOUR
        )
    assert not agg.due(T0 + DAY + 6 * HOUR - 1)
    assert agg.next_due(T0) == T0 + DAY + 6 * HOUR
    first = agg.close(T0 + DAY + 6 * HOUR)
    assert [(c.window_start, c.window_ms) for c in first] == [(T0, DAY)]
    assert first[0].counts == {DET: {("VE",): 1}}
    later = agg.close(T0 + 4 * DAY + 6 * HOUR)
    assert [(c.window_start, c.window_ms) for c in later] == [
        (T0 + DAY, DAY),
        (T0 + 2 * DAY, DAY),
        (T0 + 3 * DAY, DAY),
    ]
    assert later[0].counts == {DET: {("VE",): 6}}
    assert later[1].counts == {DET: {}}  # a quiet day is published, empty
    assert agg.close(T0 + 4 * DAY + 6 * HOUR) == []


def test_tables_of_one_window_length_close_together() -> None:
    gen = Generator(1)
    agg = _aggregator(tables=(DET, DEATHS))
    death = gen.consular_notification("MX", "DEATH")
    death["event_time"] = dt.datetime.fromtimestamp((T0 + HOUR) / 1000, dt.UTC)
    agg.feed(death, "puente.ConsularNotification", T0 + 7 * HOUR)
    closed = agg.close(T0 + 10 * DAY)
    lengths = {c.window_ms for c in closed}
    assert lengths == {DAY, 3 * DAY}
    assert all(set(c.counts) == ({DET} if c.window_ms == DAY else {DEATHS}) for c in closed)
    assert sum(sum(c.counts[DEATHS].values()) for c in closed if c.window_ms == 3 * DAY) == 1


def test_a_notice_of_a_closed_window_is_late_and_not_counted() -> None:
    gen = Generator(2)
    agg = _aggregator()
    agg.feed(_detention(gen, T0 + HOUR), "puente.ConsularNotification", T0 + 7 * HOUR)
    agg.close(T0 + DAY + 6 * HOUR)
    assert (
        agg.feed(_detention(gen, T0 + 3 * HOUR), "puente.ConsularNotification", T0 + DAY + 7 * HOUR)
        == 0
    )
    assert agg.late == 1
    # A fresh aggregator starts with the oldest window it may still count.
    fresh = _aggregator()
    assert fresh.feed(_detention(gen, T0 - 2 * DAY), "puente.ConsularNotification", T0) == 0
    assert fresh.late == 1


def test_state_round_trip_and_rollback() -> None:
    gen = Generator(3)
    agg = _aggregator()
    agg.feed(_detention(gen, T0 + HOUR), "puente.ConsularNotification", T0 + 7 * HOUR)
    state = agg.state()
    assert not agg.dirty
    again = _aggregator(state)
    assert again.close(T0 + DAY + 6 * HOUR)[0].counts == {DET: {("VE",): 1}}
    agg.begin()
    agg.feed(_detention(gen, T0 + HOUR), "puente.ConsularNotification", T0 + 7 * HOUR)
    agg.close(T0 + DAY + 6 * HOUR)
    agg.rollback()  # the batch's transaction aborted: as before it
    assert agg.state() == state
    with pytest.raises(AggregateError) as err:
        _aggregator(b'{"v": 99}')
    assert err.value.reason == "AGGREGATE_STATE_MALFORMED"
    other = Aggregator("MX", [DET], gazetteer=Gazetteer(), lateness_ms=0, state=state)
    assert [t for t, _ in other.open_windows()] == [DET]  # a table no longer read is dropped


def test_an_aggregate_carries_no_identity(registry: Registry, shipped: TriggerSet) -> None:
    """Published bytes hold none of the notices' ids, names, numbers, places or remarks, and
    the only times in the record are the window's bounds."""
    gen = Generator(4)
    tables = shipped.tables_for("MX")
    agg = Aggregator("MX", tables, gazetteer=shipped.gazetteer, lateness_ms=shipped.lateness_ms)
    texts: set[str] = set()
    now = T0
    for i in range(300):
        record = gen.consular_notification("MX", nationalities=["VE" if i % 3 else "HT"])
        record["event_time"] = dt.datetime.fromtimestamp((T0 + i * 60_000) / 1000, dt.UTC)
        agg.feed(record, "puente.ConsularNotification", now)
        p = record["person"]
        texts |= {record["notice_id"], p["given_names"], p["family_names"], record["remarks"]}
        texts |= {d["number"] for d in p["identity_documents"]}
        texts |= {record["place"]["place"], record["authority"]["contact"]}
    published = [
        a for closed in agg.close(T0 + 8 * DAY) for a in publish(closed, origin="MX", k=shipped.k)
    ]
    assert any(a.cells for a in published)
    for a in published:
        body = a.encode(registry)
        assert not any(t.encode() in body for t in texts if len(t) >= 4)
        assert Aggregate.decode(registry, body) == a
    schema = registry.latest("puente.Aggregate").schema
    times = [f["name"] for f in schema["fields"] if "logicalType" in json.dumps(f["type"])]
    assert times == ["window_start", "window_end"]


def test_published_aggregates_are_checked_by_their_readers() -> None:
    good = Aggregate("MX", 0, 1, DET, T0, 5, ((("VE",), 7),))
    check_published(good, 5)
    for bad, reason in (
        (Aggregate("MX", 0, 1, DET, T0, 5, ((("VE",), 4),)), "AGGREGATE_CELL_TOO_SMALL"),
        (Aggregate("MX", 0, 1, DET, T0, 3, ((("VE",), 4),)), "AGGREGATE_K_TOO_SMALL"),
        (Aggregate("MX", 1, 1, DET, T0, 5, ()), "AGGREGATE_MALFORMED"),
        (Aggregate("MX", 0, 1, DET, T0 + 1, 5, ()), "AGGREGATE_MALFORMED"),
        (Aggregate("MX", 0, 1, DET, T0, 5, ((("VE", "x"), 9),)), "AGGREGATE_MALFORMED"),
    ):
        with pytest.raises(AggregateRefused) as err:
            check_published(bad, 5)
        assert err.value.reason == reason
