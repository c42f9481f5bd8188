"""The evaluator: when a warning starts, changes and ends; when a window is evaluated; and that
its output is the same bytes for anyone who runs it over the same aggregates."""

from __future__ import annotations

import random

import pytest

from puente.codec.registry import Registry
from puente.warnings.aggregate import AggregateRefused
from puente.warnings.evaluator import EarlyWarning, Evaluator, by_digest, recompute
from puente.warnings.signing import SignedAggregate
from puente.warnings.tables import CASE, CONSULAR, Dimension, Gazetteer, Key, Table
from puente.warnings.triggers import Level, Measure, Threshold, Trigger, TriggerSet
from tests.unit.warnings.conftest import DAY, Keys

STATES = ("GT", "MX", "US")
DET = Table(CONSULAR, DAY, events=("DETENTION",), by=(Dimension.NATIONALITY,))
ROUTES = Table(CASE, 7 * DAY, crime_types=("MIGRANT_SMUGGLING",), by=(Dimension.ROUTE,))
KEYS = Keys(STATES)
W0 = 20_000 * DAY


def _trigger(**kw: object) -> Trigger:
    base: dict[str, object] = dict(
        id="detentions",
        description="d",
        purposes=("HUMANITARIAN_ASSISTANCE",),
        legal_basis="LA Declaration",
        table=DET,
        over=STATES,
        over_group="border",
        baseline_windows=3,
        threshold=Threshold(3, 10),
        alert=Threshold(6, 30),
        measure=Measure.COUNT,
        new_only=False,
        clear_after=2,
        notify=("MX", "US"),
    )
    base.update(kw)
    return Trigger(**base)  # type: ignore[arg-type]


def _set(*triggers: Trigger, grace: int = 1) -> TriggerSet:
    return TriggerSet("sha256:test", 1, 5, 0, grace, triggers, Gazetteer())


def _day(
    ev: Evaluator, day: int, counts: dict[str, int], *, skip: tuple[str, ...] = ()
) -> list[EarlyWarning]:
    out: list[EarlyWarning] = []
    for state in STATES:
        if state in skip:
            continue
        n = counts.get(state, 0)
        out += ev.add(KEYS.signed(state, DET, W0 + day * DAY, {("VE",): n} if n >= 5 else {}))
    return out


def test_a_surge_starts_changes_and_ends() -> None:
    ev = Evaluator(_set(_trigger()))
    for day in range(3):  # the baseline: 5 a day in one state
        assert _day(ev, day, {"MX": 5}) == []
    assert ev.evaluated == 0  # no window is judged before three windows of history
    assert _day(ev, 3, {"MX": 5}) == []
    started = _day(ev, 4, {"MX": 8, "US": 9})  # 17 >= 3 x 5 and >= 10
    assert [(w.status, w.level, w.value, w.baseline) for w in started] == [
        ("STARTED", Level.WARNING, 17, 5.0)
    ]
    w = started[0]
    assert w.subject == (("nationality", "VE"),) and w.group == "border" and w.states == STATES
    assert (w.window_start, w.window_end) == (W0 + 4 * DAY, W0 + 5 * DAY)
    assert w.missing == () and w.notify == ("MX", "US")
    assert len(w.inputs) == 3 * 4  # three states, the window and its three baseline windows
    changed = _day(ev, 5, {"MX": 20, "US": 20})  # 40 >= 6 x 5 (the baseline it started with)
    assert [(x.status, x.level, x.episode_id) for x in changed] == [
        ("CHANGED", Level.ALERT, w.episode_id)
    ]
    assert _day(ev, 6, {"MX": 5}) == []  # one quiet window: not yet over (clear_after 2)
    ended = _day(ev, 7, {"MX": 5})
    assert [(x.status, x.level, x.episode_id) for x in ended] == [
        ("ENDED", Level.ALERT, w.episode_id)
    ]
    assert len({x.warning_id for x in started + changed + ended}) == 3


def test_a_missing_member_is_waited_for_one_window_then_listed() -> None:
    ev = Evaluator(_set(_trigger(), grace=1))
    for day in range(4):
        _day(ev, day, {"MX": 5})
    assert _day(ev, 4, {"MX": 9, "US": 9}, skip=("GT",)) == []  # GT's day 4 not in yet
    late = _day(ev, 5, {}, skip=("GT",))  # a later window from the others: evaluate day 4
    assert [(w.status, w.missing, w.window_start) for w in late] == [
        ("STARTED", ("GT",), W0 + 4 * DAY)
    ]


def test_shards_are_summed_and_awaited() -> None:
    ev = Evaluator(_set(_trigger(over=("MX",), baseline_windows=1)))
    ev.add(KEYS.signed("MX", DET, W0, {}, shard=0, shards=2))
    ev.add(KEYS.signed("MX", DET, W0, {}, shard=1, shards=2))
    assert ev.add(KEYS.signed("MX", DET, W0 + DAY, {("VE",): 6}, shard=0, shards=2)) == []
    out = ev.add(KEYS.signed("MX", DET, W0 + DAY, {("VE",): 6}, shard=1, shards=2))
    assert [(w.status, w.value) for w in out] == [("STARTED", 12)]


def test_a_second_different_aggregate_of_a_window_is_refused() -> None:
    ev = Evaluator(_set(_trigger()))
    first = KEYS.signed("MX", DET, W0, {("VE",): 5})
    ev.add(first)
    assert ev.add(first) == []  # the same bytes again: a duplicate, ignored
    assert ev.ignored["AGGREGATE_DUPLICATE"] == 1
    with pytest.raises(AggregateRefused) as err:
        ev.add(KEYS.signed("MX", DET, W0, {("VE",): 7}))
    assert err.value.reason == "AGGREGATE_CONFLICT"
    assert ev.add(KEYS.signed("MX", ROUTES, W0, {})) == []  # counts no trigger reads
    assert ev.ignored["AGGREGATE_NOT_READ"] == 1


def test_a_new_only_trigger_counts_states_and_starts_once() -> None:
    routes = _trigger(
        id="routes",
        table=ROUTES,
        measure=Measure.STATES,
        new_only=True,
        threshold=Threshold(1, 2),
        alert=None,
        baseline_windows=2,
        clear_after=1,
    )
    ev = Evaluator(_set(routes))
    week = 7 * DAY
    route = ("VE>NI>HN",)

    def week_of(i: int, states: tuple[str, ...]) -> list[EarlyWarning]:
        out: list[EarlyWarning] = []
        for s in STATES:
            out += ev.add(
                KEYS.signed(s, ROUTES, W0 - W0 % week + i * week, {route: 5} if s in states else {})
            )
        return out

    week_of(0, ())
    week_of(1, ("GT",))  # named by one state: below the minimum of two
    started = week_of(2, ("GT", "MX"))
    assert [(w.status, w.value, w.measure) for w in started] == [("STARTED", 2, Measure.STATES)]
    assert week_of(3, ("GT", "MX", "US")) == []  # holds
    assert [w.status for w in week_of(4, ())] == ["ENDED"]
    assert week_of(5, ("GT", "MX")) == []  # reached two states a window ago: not new


def _stream(seed: int) -> list[SignedAggregate]:
    rng = random.Random(seed)
    out = []
    for day in range(30):
        surge = 8 if 15 <= day < 20 else 0
        for state in rng.sample(STATES, len(STATES)):
            cells: dict[Key, int] = {}
            for nat in ("CO", "HT", "VE"):
                n = rng.randint(0, 7) + (surge if nat == "VE" and state != "GT" else 0)
                if n >= 5:
                    cells[(nat,)] = n
            out.append(KEYS.signed(state, DET, W0 + day * DAY, cells))
    return out


def test_two_evaluators_write_the_same_bytes_and_anyone_can_recompute(registry: Registry) -> None:
    triggers = _set(_trigger())
    stream = _stream(7)
    first = [w.encode(registry) for w in recompute(triggers, stream)]
    second = [w.encode(registry) for w in recompute(triggers, list(stream))]
    assert first and first == second
    # One warning, re-derived from exactly the aggregates it names.
    w = EarlyWarning.decode(registry, first[0])
    named = by_digest(stream)
    used = [named[ref["sha256"]] for ref in w.inputs]
    assert all(ref["signature"] == named[ref["sha256"]].signature.signature for ref in w.inputs)
    again = [x for x in recompute(triggers, used) if x.warning_id == w.warning_id]
    assert [x.encode(registry) for x in again] == [first[0]]
