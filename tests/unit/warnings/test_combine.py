"""A node's shards summed before suppression: what one counter over all its notices would
publish, whatever the split; windows complete only when every shard is in (or went past)."""

from __future__ import annotations

import pytest

from puente.warnings.aggregate import AggregateError, ClosedWindow, publish
from puente.warnings.combine import Combiner, Partial, partial_name
from puente.warnings.tables import CONSULAR, Dimension, Key, Table

DAY = 86_400_000
T0 = 20_000 * DAY
DET = Table(CONSULAR, DAY, events=("DETENTION",), by=(Dimension.NATIONALITY,))
RET = Table(CONSULAR, DAY, events=("RETURN",), by=(Dimension.NATIONALITY,))
WEEK = Table(CONSULAR, 7 * DAY, events=("DEATH",), by=(Dimension.PLACE,))
TABLES = {t.id: t for t in (DET, RET, WEEK)}


def _partial(
    shard: int, start: int, cells: dict[Key, int], *, shards: int = 2, table: Table = DET
) -> Partial:
    others: dict[Table, dict[Key, int]] = {
        t: {} for t in TABLES.values() if t.window_ms == table.window_ms and t != table
    }
    counts: dict[Table, dict[Key, int]] = {table: cells, **others}
    return Partial(shard, shards, ClosedWindow(start, table.window_ms, counts))


def test_a_cell_split_over_shards_is_published_as_one_counter_would() -> None:
    """8 VE detentions as 4 + 4 on two shards: each shard alone is under k = 5, the sum is not."""
    c = Combiner()
    assert c.add(_partial(0, T0, {("VE",): 4, ("HN",): 1}), offset=0) == []
    assert c.waiting == 1 and c.low_water() == 0
    [whole] = c.add(_partial(1, T0, {("VE",): 4, ("CO",): 2}), offset=1)
    assert whole.counts[DET] == {("VE",): 8, ("HN",): 1, ("CO",): 2}
    assert whole.counts[RET] == {}  # every table of the window, empty ones too
    [det, ret] = sorted(publish(whole, origin="MX", k=5), key=lambda a: a.table != DET)
    assert (det.shard, det.shards, det.cells) == (0, 1, ((("VE",), 8),))  # HN 1 and CO 2 stay
    assert ret.cells == ()
    assert c.waiting == 0 and c.low_water() is None


def test_a_window_waits_for_every_shard_and_windows_complete_in_order() -> None:
    c = Combiner()
    assert c.add(_partial(0, T0, {("VE",): 1}, shards=3), offset=10) == []
    assert c.add(_partial(0, T0 + DAY, {("VE",): 2}, shards=3), offset=11) == []
    assert c.add(_partial(1, T0 + DAY, {("VE",): 3}, shards=3), offset=12) == []
    assert (c.waiting, c.low_water()) == (2, 10)  # shard 2 has sent nothing yet
    done = c.add(_partial(2, T0 + DAY, {("VE",): 4}, shards=3), offset=13)
    # Shards 1 and 2 went past T0 without sending it (they started counting after it): T0 has
    # shard 0's counts only; T0 + DAY has all three. Oldest first.
    assert [(w.window_start, w.counts[DET]) for w in done] == [
        (T0, {("VE",): 1}),
        (T0 + DAY, {("VE",): 9}),
    ]
    assert (c.waiting, c.low_water()) == (0, None)


def test_shards_that_went_past_a_window_complete_it() -> None:
    c = Combiner()
    assert c.add(_partial(0, T0, {("VE",): 1}), offset=0) == []
    done = c.add(_partial(1, T0 + DAY, {("VE",): 6}), offset=1)
    # Shard 1 never sends T0 (it is past it): T0 completes with shard 0 alone.
    assert [(w.window_start, w.counts[DET]) for w in done] == [(T0, {("VE",): 1})]
    assert c.low_water() == 1  # T0 + DAY still waits for shard 0
    [nxt] = c.add(_partial(0, T0 + DAY, {("VE",): 2}), offset=2)
    assert (nxt.window_start, nxt.counts[DET]) == (T0 + DAY, {("VE",): 8})


def test_window_lengths_are_combined_apart_and_repeats_are_ignored() -> None:
    c = Combiner()
    assert c.add(_partial(0, T0, {("PA/Darién",): 3}, table=WEEK), offset=0) == []
    [day] = c.add(_partial(0, T0, {("VE",): 1}), offset=1) + c.add(
        _partial(1, T0, {("VE",): 1}), offset=2
    )
    assert day.window_ms == DAY and c.low_water() == 0  # the week still waits
    [week] = c.add(_partial(1, T0, {("PA/Darién",): 3}, table=WEEK), offset=3)
    assert week.counts[WEEK] == {("PA/Darién",): 6}
    assert c.add(_partial(1, T0, {("VE",): 9}), offset=4) == []  # a repeat: published once
    assert c.repeats == 1 and c.waiting == 0


def test_a_partial_round_trips_and_is_bound_to_its_name() -> None:
    p = _partial(1, T0, {("VE",): 4, ("HN",): 1})
    assert p.name == partial_name(1, DAY, T0) == f"partial/1/{DAY}/{T0}"
    back = Partial.decode(p.encode(), TABLES, name=p.name)
    assert back == p
    for wrong in (partial_name(0, DAY, T0), partial_name(1, DAY, T0 + DAY)):
        with pytest.raises(AggregateError) as err:
            Partial.decode(p.encode(), TABLES, name=wrong)  # moved to another shard or window
        assert err.value.reason == "PARTIAL_MALFORMED"
    with pytest.raises(AggregateError):
        Partial.decode(b"{not json", TABLES, name=p.name)
    # A table no trigger reads any more is dropped, the rest is kept.
    kept = Partial.decode(p.encode(), {DET.id: DET}, name=p.name)
    assert set(kept.closed.counts) == {DET}
