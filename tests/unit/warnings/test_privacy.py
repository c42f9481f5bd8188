"""No published cell lets one person be singled out.

The property, for the cells one origin publishes for one window (docs/early-warning.md):
(1) every count is at least k; (2) for two cells where one refines the other, the difference is
0 or at least k; (3) a cell minus the published cells of another table that refine it is 0, at
least k, or negative (overlapping multi-valued cells), never 1..k-1. Checked on hand-made cases
and on random notices under random (nested) tables."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from puente.warnings.privacy import disclosure_problems, suppress
from puente.warnings.tables import CONSULAR, Dimension, Features, Key, Table

DAY = 86_400_000
TOTAL = Table(CONSULAR, DAY, events=("DETENTION",))
BY_NAT = Table(CONSULAR, DAY, events=("DETENTION",), by=(Dimension.NATIONALITY,))
BY_NAT_MINOR = Table(
    CONSULAR, DAY, events=("DETENTION",), by=(Dimension.NATIONALITY, Dimension.MINOR)
)
MINORS_BY_NAT = Table(CONSULAR, DAY, events=("DETENTION",), minor=True, by=(Dimension.NATIONALITY,))


def test_small_cells_are_suppressed_not_published() -> None:
    out = suppress({BY_NAT: {("VE",): 9, ("CO",): 4, ("HT",): 1}}, 5)
    assert out == {BY_NAT: {("VE",): 9}}


def test_a_small_difference_suppresses_the_finer_cell() -> None:
    # 12 VE detentions, 10 of them adults: publishing both would show 2 VE children.
    raw: dict[Table, dict[Key, int]] = {
        BY_NAT: {("VE",): 12},
        BY_NAT_MINOR: {("VE", "false"): 10, ("VE", "true"): 2},
    }
    assert disclosure_problems({t: dict(c) for t, c in raw.items()}, 5)  # the raw counts leak
    out = suppress(raw, 5)
    assert out[BY_NAT] == {("VE",): 12}
    assert out[BY_NAT_MINOR] == {}
    assert disclosure_problems(out, 5) == []


def test_a_small_remainder_suppresses_one_more_cell() -> None:
    # 20 detentions: 12 VE, 6 CO, 2 HT. Suppressing HT alone would leave 20 - 12 - 6 = 2.
    raw: dict[Table, dict[Key, int]] = {
        TOTAL: {(): 20},
        BY_NAT: {("VE",): 12, ("CO",): 6, ("HT",): 2},
    }
    out = suppress(raw, 5)
    assert out[TOTAL] == {(): 20}
    assert out[BY_NAT] == {("VE",): 12}  # CO, the smallest shown, goes too: remainder 8
    assert disclosure_problems(out, 5) == []


def test_a_filter_and_a_dimension_that_count_the_same_notices_are_equal() -> None:
    raw: dict[Table, dict[Key, int]] = {
        BY_NAT_MINOR: {("VE", "true"): 7, ("VE", "false"): 9},
        MINORS_BY_NAT: {("VE",): 7},
    }
    out = suppress(raw, 5)
    assert out == {
        BY_NAT_MINOR: {("VE", "true"): 7, ("VE", "false"): 9},
        MINORS_BY_NAT: {("VE",): 7},
    }


EVENTS = ("ARREST", "DETENTION", "DEATH")
NATS = ("CO", "HT", "VE", "CU")


def _tables(rng: random.Random) -> list[Table]:
    out = {TOTAL, BY_NAT}
    for _ in range(rng.randint(1, 4)):
        dims = [
            d
            for d in (Dimension.EVENT, Dimension.NATIONALITY, Dimension.PLACE, Dimension.MINOR)
            if rng.random() < 0.5
        ]
        out.add(
            Table(
                CONSULAR,
                DAY,
                events=tuple(sorted(rng.sample(EVENTS, rng.randint(0, 2)))),
                minor=rng.choice([None, None, True, False]),
                by=tuple(dims),
            )
        )
    return sorted(out)


def _notices(rng: random.Random, n: int) -> list[Features]:
    out = []
    for _ in range(n):
        nats = {rng.choice(NATS)} | ({rng.choice(NATS)} if rng.random() < 0.15 else set())
        out.append(
            Features(
                CONSULAR,
                0,
                events=frozenset({rng.choice(EVENTS)}),
                nationalities=frozenset(nats),
                places=frozenset({rng.choice(("MX/Chiapas", "MX/Chihuahua", "MX/unknown"))}),
                minor=rng.random() < 0.25,
            )
        )
    return out


def _count(tables: list[Table], notices: list[Features]) -> dict[Table, dict[Key, int]]:
    counts: dict[Table, Counter[Key]] = {t: Counter() for t in tables}
    for f in notices:
        for t in tables:
            counts[t].update(t.keys(f))
    return {t: dict(c) for t, c in counts.items()}


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(0, 120), k=st.integers(2, 10))
def test_published_cells_never_single_anyone_out(seed: int, n: int, k: int) -> None:
    rng = random.Random(seed)
    tables = _tables(rng)
    raw = _count(tables, _notices(rng, n))
    out = suppress(raw, k)
    assert disclosure_problems(out, k) == []
    for t, cells in out.items():  # only suppression: no cell invented or changed
        assert all(raw[t][key] == n_ for key, n_ in cells.items())


def test_the_check_is_not_vacuous() -> None:
    """On raw counts of random days, the checker finds each kind of problem."""
    found: Counter[str] = Counter()
    for seed in range(200):
        rng = random.Random(seed)
        raw = _count(_tables(rng), _notices(rng, rng.randint(5, 80)))
        for p in disclosure_problems(raw, 5):
            found[
                "small"
                if "< k" in p and "count" in p
                else "remainder"
                if "minus" in p
                else "difference"
            ] += 1
    assert found["small"] and found["difference"] and found["remainder"], found
