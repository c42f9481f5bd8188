from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from puente.codec.jsonconv import validate
from puente.codec.registry import Registry
from puente.codec.wire import encode
from puente.members import load_members
from puente.resources import project_root
from puente.synth import SCENARIOS, Generator
from puente.synth.countries import PROFILES

ROOT = project_root() or Path.cwd()
REG = Registry.load(ROOT / "schemas")


def test_deterministic_by_seed() -> None:
    a, b, c = Generator(5), Generator(5), Generator(6)
    assert list(a.notices(20)) == list(b.notices(20))
    assert list(Generator(5).notices(20)) != list(c.notices(20))


def test_every_member_has_a_profile_and_publishes() -> None:
    members = load_members(ROOT / "policies").codes
    assert set(members) == set(PROFILES)
    gen = Generator(1, members=members)
    for code in members:
        assert gen.case_notice(origin=code)["origin"] == code
        assert gen.consular_notification(origin=code)["origin"] == code


def test_unknown_member_gets_a_generic_profile() -> None:
    record = Generator(1, members=["ZZ", "MX"]).case_notice(origin="ZZ")
    assert record["origin"] == "ZZ" and validate(REG, "puente.CaseNotice", record) == []


def test_records_are_valid_and_case_notices_are_about_a_kibibyte() -> None:
    gen = Generator(2)
    sizes = []
    for name, record in gen.notices(300):
        assert validate(REG, name, record) == [], name
        data = encode(REG, name, record)
        if name == "puente.CaseNotice":
            sizes.append(len(data))
    assert 700 <= statistics.median(sizes) <= 1300
    assert max(sizes) < 4096


def test_realistic_mix() -> None:
    gen = Generator(3)
    persons = [p for _ in range(400) for p in gen.case_notice()["persons"]]

    def share(pred: Callable[[Any], object]) -> float:
        return sum(1 for p in persons if pred(p)) / len(persons)

    assert 0.03 < share(lambda p: p["minor"]) < 0.3
    assert 0.02 < share(lambda p: len(p["nationalities"]) > 1) < 0.2
    assert 0.03 < share(lambda p: p["protection_status"] in {"ASYLUM_SEEKER", "REFUGEE"}) < 0.25
    assert 0.02 < share(lambda p: p["fear_of_return_expressed"]) < 0.3
    assert share(lambda p: p["trafficking_victim"]) > 0.02
    events = {gen.consular_notification()["event"] for _ in range(300)}
    assert events >= {
        "ARREST",
        "DETENTION",
        "DEATH",
        "SERIOUS_INJURY",
        "HOSPITALISATION",
        "GUARDIANSHIP_OF_MINOR",
        "REMOVAL_OR_RETURN",
        "RELEASE",
    }


def test_names_follow_the_nationality() -> None:
    gen = Generator(4)
    record = gen.consular_notification("US", "ARREST", nationalities=["BR"])
    assert len(record["person"]["family_names"].split()) >= 2  # Brazilian compound surname
    assert record["person"]["nationalities"] == ["BR"]


def test_returns_carry_itinerary_and_safeguards() -> None:
    gen = Generator(5)
    for _ in range(20):
        record = gen.consular_notification(event="REMOVAL_OR_RETURN")
        details = record["return_details"]
        assert details["destination_country"] == record["person"]["nationalities"][0]
        assert details["itinerary"] and all(
            leg["departure_at"] > record["event_time"] for leg in details["itinerary"]
        )
    assert gen.consular_notification(event="ARREST")["return_details"] is None


def test_scenarios_fix_the_protection_facts() -> None:
    gen = Generator(6)
    for name, scenario in SCENARIOS.items():
        notice = scenario.build(gen)
        assert validate(REG, notice.name, notice.record) == [], name
    person = gen.scenario("asylum-seeker-detention").record["person"]
    assert person["protection_status"] == "ASYLUM_SEEKER" and person["nationalities"] == ["HN"]
    assert gen.scenario("minor-guardianship").record["person"]["minor"] is True
    dual = gen.scenario("dual-national-arrest").record
    assert dual["person"]["nationalities"] == ["MX", "CA"]
    assert gen.scenario("death").record["event"] == "DEATH"
    mandatory = gen.scenario("mandatory-notification-detention").record["person"]
    assert mandatory["requested_consular_notification"] is False
    ret = gen.scenario("unaccompanied-minor-return").record["return_details"]["safeguards"]
    assert ret["unaccompanied_minor"] and ret["safe_reception_confirmed"]
    tip = gen.scenario("trafficking-victims").record
    victims = [p for p in tip["persons"] if p["trafficking_victim"]]
    assert len(victims) == 2 and any(v["minor"] for v in victims)
    fear_of_one = gen.scenario("dual-national-fear-of-one").record["person"]
    assert fear_of_one["nationalities"] == ["HN", "CR"] and fear_of_one["feared_states"] == ["HN"]
    assert fear_of_one["requested_consular_notification"] is True


def test_flags_agree_with_ages_and_feared_states_are_nationalities() -> None:
    """A generated minor flag never contradicts the date of birth (the floor would warn the
    origin); a person who fears return mostly names one of their nationality states."""
    gen = Generator(8)
    named = unnamed = 0
    for notice in gen.notices(400):
        record = notice.record
        if notice.name == "puente.CaseNotice":
            on, persons = record["created_at"].date(), record["persons"]
        else:
            on, persons = record["event_time"].date(), [record["person"]]
        for p in persons:
            born = p["date_of_birth"]
            if born is not None:
                age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
                assert (age < 18) == p["minor"], (born, on, p["minor"])
            assert set(p["feared_states"]) <= set(p["nationalities"])
            if p["fear_of_return_expressed"] or p["protection_status"] in (
                "ASYLUM_SEEKER",
                "REFUGEE",
            ):
                named += bool(p["feared_states"])
                unnamed += not p["feared_states"]
            else:
                assert p["feared_states"] == []
    assert named > unnamed > 0


def test_generic_records_for_other_schemas() -> None:
    gen = Generator(7)
    for name in REG.names():
        record = gen.sample(name, REG.latest(name).parsed)
        assert validate(REG, name, record) == [], name
