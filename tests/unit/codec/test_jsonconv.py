from __future__ import annotations

import datetime as dt

import orjson
import pytest

from puente.codec.errors import EncodeError
from puente.codec.jsonconv import from_json, to_json, validate
from puente.codec.registry import Registry
from puente.codec.wire import decode, encode
from puente.synth import SCENARIOS, Generator

CN = "puente.CaseNotice"
CONS = "puente.ConsularNotification"


def test_round_trip_through_json_text(reg: Registry) -> None:
    gen = Generator(21)
    records = [(n, gen.sample(n, reg.latest(n).parsed)) for n in reg.names() for _ in range(5)]
    records += [(n.name, n.record) for n in map(gen.scenario, SCENARIOS)]
    for name, record in records:
        text = orjson.dumps(to_json(reg, name, record))
        back = from_json(reg, name, orjson.loads(text))
        assert back == record
        assert decode(reg, encode(reg, name, back), name) == record


def test_json_form_of_logical_types(reg: Registry) -> None:
    record = Generator(22).case_notice()
    record["created_at"] = dt.datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=dt.UTC)
    record["persons"][0]["date_of_birth"] = dt.date(1990, 1, 2)
    out = to_json(reg, CN, record)
    assert out["created_at"] == "2025-03-04T05:06:07.890Z"
    assert out["persons"][0]["date_of_birth"] == "1990-01-02"
    assert out["notice_id"] == record["notice_id"]


def test_timestamps_with_offsets_become_utc_and_uuid_is_lowercased(reg: Registry) -> None:
    data = to_json(reg, CN, Generator(23).case_notice())
    data["created_at"] = "2025-03-04T00:06:07.123456-05:00"
    data["notice_id"] = data["notice_id"].upper()
    rec = from_json(reg, CN, data)
    assert rec["created_at"] == dt.datetime(2025, 3, 4, 5, 6, 7, 123000, tzinfo=dt.UTC)
    assert rec["notice_id"] == data["notice_id"].lower()


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59.999-01:00"])
def test_timestamps_outside_the_utc_range_are_field_problems(reg: Registry, text: str) -> None:
    data = to_json(reg, CN, Generator(23).case_notice())
    data["created_at"] = text
    with pytest.raises(EncodeError) as info:
        from_json(reg, CN, data)
    assert [p.path for p in info.value.problems] == ["created_at"]
    assert "out of range" in info.value.problems[0].problem
    data["created_at"] = "0001-01-01T00:00:00Z"  # the earliest instant still is one
    assert decode(reg, encode(reg, CN, from_json(reg, CN, data)), CN)["created_at"].year == 1


def test_defaults_fill_missing_fields(reg: Registry) -> None:
    data = to_json(reg, CN, Generator(24).case_notice())
    del data["vehicles"], data["persons"][0]["sex"]
    rec = from_json(reg, CN, data)
    assert rec["vehicles"] == [] and rec["persons"][0]["sex"] == "UNKNOWN"


def test_every_problem_is_named_with_its_path(reg: Registry) -> None:
    gen = Generator(25)
    record = gen.case_notice()
    while len(record["persons"]) < 3:
        record = gen.case_notice()
    data = to_json(reg, CN, record)
    data["persons"][2]["nationalities"] = ["MX", 7]
    data["persons"][1]["date_of_birth"] = "01/02/1990"
    data["created_at"] = "2025-03-04T05:06:07"  # no time zone
    data["handling"]["code"] = "H9"
    data["colour"] = "red"
    del data["origin"]
    with pytest.raises(EncodeError) as err:
        from_json(reg, CN, data)
    found = {p.path: p.problem for p in err.value.problems}
    assert set(found) == {
        "persons[2].nationalities[1]",
        "persons[1].date_of_birth",
        "created_at",
        "handling.code",
        "colour",
        "origin",
    }
    assert "expected a string" in found["persons[2].nationalities[1]"]
    assert "time zone" in found["created_at"]
    assert found["colour"] == "unknown field" and found["origin"] == "required field missing"
    assert "persons[2].nationalities[1]" in str(err.value)


def test_union_and_type_errors(reg: Registry) -> None:
    data = to_json(reg, CONS, Generator(26).consular_notification(event="REMOVAL_OR_RETURN"))
    data["return_details"]["itinerary"][0]["departure_at"] = 5
    data["consular_contact"] = "Consulate"
    data["person"] = []
    with pytest.raises(EncodeError) as err:
        from_json(reg, CONS, data)
    paths = {p.path for p in err.value.problems}
    assert paths == {"return_details.itinerary[0].departure_at", "consular_contact", "person"}


def test_validate_lists_problems_of_python_records(reg: Registry) -> None:
    record = Generator(27).case_notice()
    assert validate(reg, CN, record) == []
    record["persons"][0]["date_of_birth"] = "1990-01-01"  # a str where a date belongs
    assert [p.path for p in validate(reg, CN, record)] == ["persons[0].date_of_birth"]


def test_not_an_object(reg: Registry) -> None:
    with pytest.raises(EncodeError) as err:
        from_json(reg, CN, ["not", "a", "notice"])
    assert err.value.problems[0].path == "" and "object" in err.value.problems[0].problem
