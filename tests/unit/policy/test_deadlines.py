"""Deadlines as data: the regional clocks, a state's shortening, a return's departure (pure)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from puente.policy.deadlines import ANY_EVENT, DeadlineEntry, DeadlineTable, duration_ms
from puente.policy.loader import load_policy_set
from tests.unit.policy.conftest import FIXTURES, POLICIES, SCHEMAS

H = 3_600_000
T0 = 1_790_000_000_000


def table() -> DeadlineTable:
    return DeadlineTable(
        {
            ("ConsularNotification", "DEATH"): DeadlineEntry("r.death", 2 * H, 24 * H, "VCCR 37"),
            ("ConsularNotification", "REMOVAL_OR_RETURN"): DeadlineEntry(
                "r.return", 2 * H, 72 * H, "LAD", before_departure=True
            ),
            ("ConsularNotification", ANY_EVENT): DeadlineEntry("r.any", None, 168 * H, "VCCR 5"),
        },
        {
            ("MX", "ConsularNotification", "DEATH"): DeadlineEntry("mx.death", None, 12 * H, "MX"),
            # A state entry longer than the region's (the loader refuses it): never lengthens.
            ("US", "ConsularNotification", "DEATH"): DeadlineEntry("us.death", 9 * H, 99 * H, "US"),
        },
    )


def test_durations() -> None:
    assert duration_ms("90m") == 90 * 60_000
    assert duration_ms("72h") == 72 * H
    assert duration_ms("7d") == 7 * 24 * H


def test_the_regional_clock_counts_from_the_decision() -> None:
    d = table().deadlines("puente.ConsularNotification", {"event": "DEATH"}, "GT", T0)
    assert d is not None
    assert (d.type, d.receive_by, d.acknowledge_by) == (
        "ConsularNotification/DEATH",
        T0 + 2 * H,
        T0 + 24 * H,
    )
    assert (d.deadline_ids, d.legal_bases) == (("r.death",), ("VCCR 37",))


def test_a_state_shortens_never_lengthens() -> None:
    mx = table().deadlines("ConsularNotification", {"event": "DEATH"}, "MX", T0)
    assert mx is not None
    assert (mx.receive_by, mx.acknowledge_by) == (T0 + 2 * H, T0 + 12 * H)
    assert mx.deadline_ids == ("r.death", "mx.death")
    us = table().deadlines("ConsularNotification", {"event": "DEATH"}, "US", T0)
    assert us is not None and (us.receive_by, us.acknowledge_by) == (T0 + 2 * H, T0 + 24 * H)


def test_an_event_without_its_own_entry_takes_the_type_s() -> None:
    d = table().deadlines("ConsularNotification", {"event": "RELEASE"}, "GT", T0)
    assert d is not None and d.deadline_ids == ("r.any",)
    assert (d.receive_by, d.acknowledge_by) == (None, T0 + 168 * H)
    assert table().deadlines("CaseNotice", {}, "GT", T0) is None


def test_a_return_is_acknowledged_before_its_departure() -> None:
    leg = {"departure_at": dt.datetime.fromtimestamp((T0 + 5 * H) / 1000, dt.UTC)}
    later = {"departure_at": dt.datetime.fromtimestamp((T0 + 1 * H) / 1000, dt.UTC)}
    notice = {"event": "REMOVAL_OR_RETURN", "return_details": {"itinerary": [leg, later]}}
    d = table().deadlines("ConsularNotification", notice, "GT", T0)
    assert d is not None  # the first departure caps both clocks
    assert (d.receive_by, d.acknowledge_by) == (T0 + 1 * H, T0 + 1 * H)
    far = {
        "event": "REMOVAL_OR_RETURN",
        "return_details": {
            "itinerary": [
                {"departure_at": dt.datetime.fromtimestamp((T0 + 500 * H) / 1000, dt.UTC)}
            ]
        },
    }
    d = table().deadlines("ConsularNotification", far, "GT", T0)
    assert d is not None and d.acknowledge_by == T0 + 72 * H
    no_itinerary = table().deadlines(
        "ConsularNotification", {"event": "REMOVAL_OR_RETURN", "return_details": None}, "GT", T0
    )
    assert no_itinerary is not None and no_itinerary.acknowledge_by == T0 + 72 * H


def test_the_shipped_deadlines() -> None:
    ps = load_policy_set(POLICIES, SCHEMAS)
    dl = ps.deadlines
    death = dl.deadlines("ConsularNotification", {"event": "DEATH"}, "GT", T0)
    arrest = dl.deadlines("ConsularNotification", {"event": "ARREST"}, "GT", T0)
    assert death is not None and death.acknowledge_by == T0 + 24 * H
    assert arrest is not None and arrest.acknowledge_by == T0 + 72 * H
    assert all(e.legal_basis for e in dl.regional.values())
    # Mexico holds its death notifications to 12 h.
    mx = dl.deadlines("ConsularNotification", {"event": "DEATH"}, "MX", T0)
    assert mx is not None and mx.acknowledge_by == T0 + 12 * H
    assert not [w for w in ps.warnings if "POLICY_DEADLINE" in w]


def test_the_base_fixture_s_deadlines(tmp_path: Path) -> None:
    ps = load_policy_set(FIXTURES / "base", SCHEMAS)
    assert ("ConsularNotification", "DEATH") in ps.deadlines.regional
    assert ps.deadlines.regional[("ConsularNotification", "REMOVAL_OR_RETURN")].before_departure
