"""The OpenAPI request schemas derived from Avro accept what the codec accepts and refuse what
it refuses, on realistic notices and on mutations of them."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from puente.codec.errors import EncodeError
from puente.codec.jsonconv import from_json, to_json
from puente.codec.registry import Registry
from puente.synth.generator import Generator
from puente_gateway.jsonschema import record_schema

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
NAMES = ("puente.CaseNotice", "puente.ConsularNotification", "puente.DeliveryReceipt")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load(SCHEMAS)


def _validator(registry: Registry, name: str) -> Any:
    return jsonschema_rs.Draft202012Validator(
        record_schema(registry.latest(name)), validate_formats=True
    )


def _samples(registry: Registry, name: str, n: int = 40) -> list[dict[str, Any]]:
    gen = Generator(7)
    return [to_json(registry, name, gen.sample(name)) for _ in range(n)]


@pytest.mark.parametrize("name", NAMES)
def test_codec_valid_json_is_schema_valid(registry: Registry, name: str) -> None:
    validator = _validator(registry, name)
    for sample in _samples(registry, name):
        errors = [e.message for e in validator.iter_errors(sample)]
        assert errors == []


def _mutations(sample: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key in list(sample):
        missing = copy.deepcopy(sample)
        del missing[key]
        out.append(missing)
        wrong = copy.deepcopy(sample)
        wrong[key] = {"not": "this"}
        out.append(wrong)
    extra = copy.deepcopy(sample)
    extra["no_such_field"] = 1
    out.append(extra)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_schema_and_codec_agree_on_mutations(registry: Registry, name: str) -> None:
    validator = _validator(registry, name)
    for sample in _samples(registry, name, 5):
        for mutated in _mutations(sample):
            try:
                from_json(registry, name, mutated)
                codec_ok = True
            except EncodeError:
                codec_ok = False
            assert validator.is_valid(mutated) == codec_ok, sorted(set(sample) ^ set(mutated))


def test_formats_and_ranges(registry: Registry) -> None:
    schema = record_schema(registry.latest("puente.CaseNotice"))
    props = schema["properties"]
    assert props["notice_id"]["format"] == "uuid"
    assert props["created_at"]["format"] == "date-time"
    assert props["retention_days"]["maximum"] == 2**31 - 1
    assert schema["additionalProperties"] is False
    assert "summary" in schema["required"] and "persons" not in schema["required"]
    person = props["persons"]["items"]
    assert person["properties"]["date_of_birth"] == {
        "anyOf": [{"type": "null"}, {"type": "string", "format": "date"}],
        "description": person["properties"]["date_of_birth"]["description"],
    }
    assert set(person["properties"]["sex"]["enum"]) == {"FEMALE", "MALE", "OTHER", "UNKNOWN"}


def test_bad_values_are_refused_by_both(registry: Registry) -> None:
    validator = _validator(registry, "puente.CaseNotice")
    sample = _samples(registry, "puente.CaseNotice", 1)[0]
    for field, value in (
        ("notice_id", "not-a-uuid"),
        ("created_at", "2025-13-45T00:00:00Z"),
        ("retention_days", 2**31),
        ("crime_types", ["NOT_A_CRIME"]),
    ):
        bad = copy.deepcopy(sample) | {field: value}
        assert not validator.is_valid(bad), field
        with pytest.raises(EncodeError):
            from_json(registry, "puente.CaseNotice", bad)
    good = copy.deepcopy(sample) | {"notice_id": str(uuid.uuid4()).upper()}
    assert validator.is_valid(good)


@pytest.mark.parametrize("name", ["puente.CaseNotice", "puente.ConsularNotification"])
def test_the_feared_state_fields_are_documented_and_optional(registry: Registry, name: str) -> None:
    """Version 2 adds feared_states and habitual_residence: the gateway's schema documents them
    and accepts notices written for version 1 (without them), as the codec does."""
    schema = record_schema(registry.latest(name))
    key = "persons" if name == "puente.CaseNotice" else "person"
    node = schema["properties"][key]
    person = node["items"] if key == "persons" else node
    feared = person["properties"]["feared_states"]
    assert feared["type"] == "array" and feared["items"] == {"type": "string"}
    assert "fears" in feared["description"]
    assert "habitual_residence" in person["properties"]
    assert not {"feared_states", "habitual_residence"} & set(person.get("required", []))
    validator = _validator(registry, name)
    for sample in _samples(registry, name, 5):
        persons = sample["persons"] if key == "persons" else [sample["person"]]
        for p in persons:
            del p["feared_states"], p["habitual_residence"]
        assert validator.is_valid(sample)
        from_json(registry, name, sample)
