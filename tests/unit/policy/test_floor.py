"""The protection floor holds whatever the publisher forgets: minors by age as well as by flag,
every protection checked on its own (an exception lifts only the one it names), and the states a
person fears named, with the conservative default when none is.

Most cases run on the small fixture set (members GT, MX, US; MX shares smuggling cases with
everyone for CRIMINAL_INVESTIGATION) with rules added for the case at hand."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest

from puente.policy.engine import Decision, PolicySet
from puente.policy.floor import WARNING_MINOR_FLAG, adult_cutoff, notice_facts
from puente.policy.loader import load_policy_set
from puente.policy.transforms import PseudonymKeys
from puente.synth import Generator
from tests.unit.policy.conftest import FIXTURES, SCHEMAS
from tests.unit.policy.notices import NOW, case_notice, consular, consular_person, person

CN = "CaseNotice"
CONS = "ConsularNotification"
KEYS = PseudonymKeys(b"k" * 32)
MINOR = "FLOOR_MINOR_PROTECTION"
VICTIM = "FLOOR_TRAFFICKING_VICTIM"
ASYLUM = "FLOOR_ASYLUM_CONFIDENTIALITY"
ONWARD = "FLOOR_ASYLUM_ONWARD_RESTRICTED"


def _policy(tmp_path: Path, rules: str = "") -> PolicySet:
    """The fixture set with ``rules`` (YAML list items) placed first among MX's rules."""
    root = tmp_path / "p"
    shutil.copytree(FIXTURES / "base", root)
    mx = root / "states" / "MX.yaml"
    mx.write_text(mx.read_text().replace("rules:\n", "rules:\n" + rules, 1))
    return load_policy_set(root, SCHEMAS)


@pytest.fixture
def base(tmp_path: Path) -> PolicySet:
    return _policy(tmp_path)


def _refs(d: Decision) -> list[str]:
    assert d.payload is not None, d
    return [p["person_ref"] for p in d.payload["persons"]]


def _years_before(years: int) -> dt.date:
    """The date ``years`` years before the fixture notices' creation day."""
    on = NOW.date()
    return on.replace(year=on.year - years)


# ---------------------------------------------------------------------------------- minors by age


def test_a_date_of_birth_under_18_makes_a_minor_without_the_flag(base: PolicySet) -> None:
    child = person("p2", ("GT",), role="VICTIM", minor=False, date_of_birth=_years_before(10))
    notice = case_notice(persons=[person("p1"), child])
    d = base.decide(notice, CN, "US", KEYS)
    assert _refs(d) == ["p1"]
    assert d.person_reasons == (("p2", (MINOR,)),)
    assert MINOR in d.reasons and "floor.minors" in d.rules
    [warning] = base.floor_warnings(notice, CN)
    assert warning.code == WARNING_MINOR_FLAG
    assert warning.fields == ("persons[1].minor", "persons[1].date_of_birth")
    assert "Given p2" not in warning.message and str(child["date_of_birth"]) not in warning.message


@pytest.mark.parametrize(
    ("born", "on", "minor"),
    [
        (dt.date(2007, 3, 1), NOW, True),  # the 18th birthday itself still counts as a minor
        (dt.date(2007, 3, 2), NOW, True),
        (dt.date(2007, 2, 28), NOW, False),  # 18 since yesterday
        # 29 February: of age on 1 March of a common year, the later of the two readings.
        (dt.date(2008, 2, 29), dt.datetime(2026, 2, 28, 12, tzinfo=dt.UTC), True),
        (dt.date(2008, 2, 29), dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC), True),
        (dt.date(2008, 2, 29), dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC), False),
        # The day is taken in UTC: 23:30 on 28 February in UTC-5 is 1 March in UTC.
        (
            dt.date(2007, 2, 28),
            dt.datetime(2025, 2, 28, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            False,
        ),
        (
            dt.date(2007, 3, 1),
            dt.datetime(2025, 2, 28, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            True,
        ),
    ],
)
def test_age_at_created_at(base: PolicySet, born: dt.date, on: dt.datetime, minor: bool) -> None:
    notice = case_notice(created_at=on, persons=[person("p1", date_of_birth=born)])
    d = base.decide(notice, CN, "US", KEYS)
    assert _refs(d) == ([] if minor else ["p1"])
    assert len(base.floor_warnings(notice, CN)) == (1 if minor else 0)  # the flag says adult


def test_a_flag_never_weakens_protection(base: PolicySet) -> None:
    flagged = person("p1", minor=True, date_of_birth=_years_before(30))
    notice = case_notice(persons=[flagged])
    assert _refs(base.decide(notice, CN, "US", KEYS)) == []
    [warning] = base.floor_warnings(notice, CN)
    assert warning.fields == ("persons[0].minor", "persons[0].date_of_birth")


def test_without_a_date_of_birth_the_flag_decides(base: PolicySet) -> None:
    adult = case_notice(persons=[person("p1", minor=False, date_of_birth=None)])
    child = case_notice(persons=[person("p1", minor=True, date_of_birth=None)])
    assert _refs(base.decide(adult, CN, "US", KEYS)) == ["p1"]
    assert _refs(base.decide(child, CN, "US", KEYS)) == []
    assert base.floor_warnings(adult, CN) == base.floor_warnings(child, CN) == ()


CONSULAR_TO_US = """\
  - id: mx.cons.to-us
    types: [ConsularNotification]
    to: [US]
    action: share
    purposes: [CONSULAR_ASSISTANCE]
    handling: H2
    retention_days: 365
    legal_basis: test basis
"""


def test_a_consular_subject_s_age_is_taken_at_the_event(tmp_path: Path) -> None:
    ps = _policy(tmp_path, CONSULAR_TO_US)
    born = dt.date(2007, 2, 25)  # 17 on 20 February 2025, 18 by the notice's 1 March
    subject = consular_person(("GT",), minor=False, date_of_birth=born)
    at_event = consular(person=subject, event_time=dt.datetime(2025, 2, 20, tzinfo=dt.UTC))
    d = ps.decide(at_event, CONS, "US", KEYS)  # US is not the child's nationality state
    assert d.action == "withhold" and d.reasons == (MINOR,)
    [warning] = ps.floor_warnings(at_event, CONS)
    assert warning.fields == ("person.minor", "person.date_of_birth")
    later = consular(person=subject, event_time=dt.datetime(2025, 2, 26, tzinfo=dt.UTC))
    assert ps.decide(later, CONS, "US", KEYS).action == "share"
    assert ps.floor_warnings(later, CONS) == ()


def test_an_unaccompanied_child_in_a_return_is_a_minor(tmp_path: Path) -> None:
    ps = _policy(tmp_path, CONSULAR_TO_US)
    details = {
        "destination_country": "GT",
        "itinerary": [],
        "safeguards": {
            "non_refoulement_assessed": True,
            "unaccompanied_minor": True,
            "best_interests_determined": True,
            "safe_reception_confirmed": True,
            "notes": "",
        },
    }
    subject = consular_person(("GT",), minor=False, date_of_birth=None)
    notice = consular(event="REMOVAL_OR_RETURN", person=subject, return_details=details)
    d = ps.decide(notice, CONS, "US", KEYS)
    assert d.action == "withhold" and d.reasons == (MINOR,)
    [warning] = ps.floor_warnings(notice, CONS)
    assert warning.fields == ("person.minor", "return_details.safeguards.unaccompanied_minor")
    # Flagged as unaccompanied but 30 by the date of birth: still a minor, and a warning.
    adult = dict(notice, person=consular_person(("GT",), date_of_birth=_years_before(30)))
    assert ps.decide(adult, CONS, "US", KEYS).reasons == (MINOR,)
    [warning] = ps.floor_warnings(adult, CONS)
    lone = "return_details.safeguards.unaccompanied_minor"
    assert warning.fields == (lone, "person.date_of_birth")


# ------------------------------------------------------------------ every protection on its own


def _exceptions(*floors: str) -> str:
    items = "".join(f"      - {{floor: {f}, legal_basis: exception basis {f}}}\n" for f in floors)
    return f"""\
  - id: mx.case.trafficking-to-us
    types: [CaseNotice]
    to: [US]
    when: "'TRAFFICKING_IN_PERSONS' in notice.crime_types"
    action: share
    purposes: [CRIMINAL_INVESTIGATION]
    handling: H1
    retention_days: 365
{"    floor_exceptions:" + chr(10) + items if floors else ""}    legal_basis: test basis
"""


def _child_victim_case(nationalities: tuple[str, ...] = ("GT",), **kw: Any) -> dict[str, Any]:
    child = person(
        "p2",
        nationalities,
        role="VICTIM",
        minor=True,
        trafficking_victim=True,
        date_of_birth=None,
        **kw,
    )
    return case_notice(crime_types=("TRAFFICKING_IN_PERSONS",), persons=[person("p1"), child])


@pytest.mark.parametrize(
    ("exceptions", "delivered", "person_reasons", "exception_rules"),
    [
        ((), ["p1"], (MINOR, VICTIM), ()),
        # The minors exception does not lift the trafficking-victims protection.
        (("minors",), ["p1"], (VICTIM,), ()),
        (("trafficking_victims",), ["p1"], (MINOR,), ()),
        (
            ("minors", "trafficking_victims"),
            ["p1", "p2"],
            None,
            ("#exception:minors", "#exception:trafficking_victims"),
        ),
    ],
)
def test_a_child_victim_is_protected_twice(
    tmp_path: Path,
    exceptions: tuple[str, ...],
    delivered: list[str],
    person_reasons: tuple[str, ...] | None,
    exception_rules: tuple[str, ...],
) -> None:
    ps = _policy(tmp_path, _exceptions(*exceptions))
    d = ps.decide(_child_victim_case(), CN, "US", KEYS)
    assert d.rules[0] == "mx.case.trafficking-to-us"
    assert _refs(d) == delivered
    if person_reasons is None:
        assert d.person_reasons == () and d.removed_persons == ()
    else:
        assert d.person_reasons == (("p2", person_reasons),)
        assert set(person_reasons) <= set(d.reasons)
    # An exception is cited only when it let someone through, with its own legal basis.
    cited = tuple(r.removeprefix("mx.case.trafficking-to-us") for r in d.rules if "#" in r)
    assert cited == exception_rules
    for r in exception_rules:
        assert f"exception basis {r.rsplit(':', 1)[1]}" in d.legal_bases


def test_an_asylum_seeking_child_is_protected_by_both(tmp_path: Path) -> None:
    ps = _policy(tmp_path, _exceptions("minors"))
    child = _child_victim_case(("US",), protection_status="ASYLUM_SEEKER")
    child["persons"][1]["trafficking_victim"] = False
    d = ps.decide(child, CN, "US", KEYS)  # US is the child's nationality state
    assert _refs(d) == ["p1"]
    # The minors exception lifts the minors protection only; asylum admits none.
    assert d.person_reasons == (("p2", (ASYLUM,)),)
    to_gt = ps.decide(dict(child, crime_types=["MIGRANT_SMUGGLING"]), CN, "GT", KEYS)
    assert to_gt.person_reasons == (("p2", (MINOR,)),)  # GT: not feared, but not protective


# ---------------------------------------------------------------------------- the feared state


def _dual(feared: list[str], **kw: Any) -> dict[str, Any]:
    subject = consular_person(
        ("GT", "US"), protection_status="ASYLUM_SEEKER", feared_states=feared, **kw
    )
    return consular(origin="MX", person=subject)


def test_a_dual_national_fearing_one_state_gets_help_from_the_other(base: PolicySet) -> None:
    notice = _dual(["GT"])
    gt = base.decide(notice, CONS, "GT", KEYS)
    assert gt.action == "withhold" and gt.reasons == (ASYLUM,)
    us = base.decide(notice, CONS, "US", KEYS)
    assert us.action == "share" and us.rules[0] == "vccr.requested"
    # The helping state may not pass it on without the origin's permission (H2: the rule's
    # own handling already; the floor raises a weaker one, see the next test).
    assert us.handling == "H2"


def test_fear_with_no_state_named_keeps_every_nationality_state_out(base: PolicySet) -> None:
    notice = _dual([], fear_of_return_expressed=True)
    for recipient in ("GT", "US"):
        d = base.decide(notice, CONS, recipient, KEYS)
        assert d.action == "withhold" and d.reasons == (ASYLUM,)


def test_a_named_state_is_itself_an_indication_of_fear(base: PolicySet) -> None:
    subject = consular_person(("GT", "US"), feared_states=["US"])  # status NONE, no flag
    notice = consular(origin="MX", person=subject)
    assert base.decide(notice, CONS, "US", KEYS).reasons == (ASYLUM,)
    assert base.decide(notice, CONS, "GT", KEYS).action == "share"


def test_the_state_of_habitual_residence_counts_when_none_is_named(base: PolicySet) -> None:
    migrant = person("p2", ("GT",), fear_of_return_expressed=True, habitual_residence="US")
    notice = case_notice(persons=[person("p1", ("MX",)), migrant])
    for recipient in ("GT", "US"):
        d = base.decide(notice, CN, recipient, KEYS)
        assert _refs(d) == ["p1"] and d.person_reasons == (("p2", (ASYLUM,)),)


def test_knowing_no_state_at_all_keeps_the_person_from_everyone(base: PolicySet) -> None:
    stateless = person("p2", (), protection_status="REFUGEE")
    notice = case_notice(persons=[person("p1", ("MX",)), stateless])
    for recipient in ("GT", "US"):
        assert _refs(base.decide(notice, CN, recipient, KEYS)) == ["p1"]


def test_a_named_state_need_not_be_a_nationality(base: PolicySet) -> None:
    transit = person("p2", ("GT",), feared_states=["US"], fear_of_return_expressed=True)
    notice = case_notice(persons=[person("p1", ("MX",)), transit])
    assert _refs(base.decide(notice, CN, "US", KEYS)) == ["p1"]
    gt = base.decide(notice, CN, "GT", KEYS)
    assert _refs(gt) == ["p1", "p2"] and gt.handling == "H2" and ONWARD in gt.reasons


def test_shipped_scenario_dual_national_fear_of_one(ps: PolicySet, keys: PseudonymKeys) -> None:
    notice = Generator(3).scenario("dual-national-fear-of-one")
    by = {d.recipient: d for d in ps.decide_all(notice.record, notice.name, keys)}
    assert by["HN"].action == "withhold" and by["HN"].reasons == (ASYLUM,)
    assert by["CR"].action == "share" and by["CR"].rules[0] == "vccr.36-requested"
    assert by["CR"].handling == "H2"
    assert [r for r, d in by.items() if d.shared] == ["CR"]


# ------------------------------------------------------------------------------- the free text


def test_a_removed_person_takes_the_free_text_along(base: PolicySet) -> None:
    child = person("p2", ("GT",), minor=True)
    place = {
        "location_ref": "l1",
        "country": "MX",
        "place": "Tapachula",
        "latitude": None,
        "longitude": None,
        "description": "where Given p2 was found",
    }
    notice = case_notice(persons=[person("p1"), child], locations=[place])
    d = base.decide(notice, CN, "US", KEYS)
    assert d.payload is not None
    assert d.payload["summary"] == "" and d.payload["locations"][0]["description"] == ""
    assert d.payload["locations"][0]["place"] == "Tapachula"
    assert "FLOOR_FREE_TEXT_DROPPED" in d.reasons
    assert notice["locations"][0]["description"] == "where Given p2 was found"  # read-only


def test_the_worked_example_of_semantics_md(tmp_path: Path) -> None:
    """policies/SEMANTICS.md §3.6, decision by decision."""
    rule = _exceptions("minors").replace("mx.case.trafficking-to-us", "mx.case.trafficking")
    ps = _policy(tmp_path, rule.replace("to: [US]", "to: [ALL]"))
    suspect = person("p1", ("MX",))
    victim = person(
        "p2",
        ("GT",),
        role="VICTIM",
        trafficking_victim=True,
        minor=False,
        date_of_birth=dt.date(2008, 6, 10),
    )
    seeker = person("p3", ("US",), protection_status="ASYLUM_SEEKER", feared_states=["US"])
    notice = case_notice(crime_types=("TRAFFICKING_IN_PERSONS",), persons=[suspect, victim, seeker])
    by = {d.recipient: d for d in ps.decide_all(notice, CN, KEYS)}
    gt, us = by["GT"], by["US"]
    assert _refs(gt) == ["p1", "p3"] and gt.person_reasons == (("p2", (VICTIM,)),)
    assert gt.handling == "H2" and ONWARD in gt.reasons and "FLOOR_FREE_TEXT_DROPPED" in gt.reasons
    assert not any("#exception" in r for r in gt.rules)
    assert _refs(us) == ["p1"]
    assert us.person_reasons == (("p2", (VICTIM,)), ("p3", (ASYLUM,)))
    assert by["MX"].reasons == ("ORIGIN_IS_RECIPIENT",)
    [warning] = ps.floor_warnings(notice, CN)
    assert warning.fields == ("persons[1].minor", "persons[1].date_of_birth")
    both = _policy(
        tmp_path / "both",
        rule.replace("to: [US]", "to: [ALL]").replace(
            "      - {floor: minors",
            "      - {floor: trafficking_victims, legal_basis: b}\n      - {floor: minors",
        ),
    )
    for recipient in ("GT", "US"):
        d = both.decide(notice, CN, recipient, KEYS)
        assert "p2" in _refs(d)
        assert {r for r in d.rules if "#exception" in r} == {
            "mx.case.trafficking#exception:minors",
            "mx.case.trafficking#exception:trafficking_victims",
        }


def test_the_age_cutoff_matches_the_definition_on_every_day() -> None:
    """Born after ``adult_cutoff(day)`` means under 18 on ``day``, the 18th birthday included
    (29 February: 1 March of a common year), for every day of seven years."""

    def birthday_18(born: dt.date) -> dt.date:
        try:
            return born.replace(year=born.year + 18)
        except ValueError:
            return dt.date(born.year + 18, 3, 1)

    day = dt.date(2023, 1, 1)
    while day < dt.date(2030, 1, 1):
        cutoff = adult_cutoff(day)
        assert cutoff is not None
        assert not day <= birthday_18(cutoff), day  # an adult
        assert day <= birthday_18(cutoff + dt.timedelta(days=1)), day  # a minor
        day += dt.timedelta(days=1)


def test_at_the_start_of_the_calendar_everyone_is_a_minor() -> None:
    """Before year 19 nobody with a representable date of birth can be 18: no cutoff (the
    protective answer), never an exception (the fuzz test found OverflowError here)."""
    for day in (dt.date(1, 1, 1), dt.date(18, 12, 31), dt.date(19, 1, 1)):
        assert adult_cutoff(day) is None, day
    assert adult_cutoff(dt.date(19, 1, 2)) == dt.date(1, 1, 1)
    notice = {
        "person": {"minor": False, "date_of_birth": dt.date(1, 1, 1)},
        "event_time": dt.datetime(5, 3, 1, tzinfo=dt.UTC),
        "created_at": dt.datetime(5, 3, 1, tzinfo=dt.UTC),
    }
    facts = notice_facts("ConsularNotification", notice)
    assert facts.persons and facts.persons[0].minor
