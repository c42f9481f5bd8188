"""The evolution gate: Apache avro's checker over every kept version, and the fixtures that
prove it passes real evolution and refuses a breaking change with the field named."""

from __future__ import annotations

import pytest

from puente.codec.compat import check_pair, check_registry, field_path
from puente.codec.registry import Registry

from .conftest import FIXTURES, SCHEMAS


def test_shipped_schemas_pass_the_gate() -> None:
    reg = Registry.load(SCHEMAS)
    # The gate is genuine even with one version: each schema is checked against itself and
    # against every earlier version that exists.
    for name in reg.names():
        latest = reg.latest(name)
        assert check_pair(latest.schema, latest.schema) == []
    assert check_registry(reg) == []


def test_compatible_evolution_passes() -> None:
    reg = Registry.load(FIXTURES / "evolution-ok")
    assert [v.version for v in reg.versions("puente.CaseNotice")] == [1, 2]
    assert check_registry(reg) == []


def test_breaking_change_is_refused_with_the_field_named() -> None:
    reg = Registry.load(FIXTURES / "evolution-broken")
    found = {(i.direction, i.field, i.kind) for i in check_registry(reg)}
    assert ("backward", "persons[].photo_ref", "reader_field_missing_default_value") in found
    assert ("backward", "retention_days", "type_mismatch") in found
    assert ("forward", "retention_days", "type_mismatch") in found
    assert len(found) == 3


def test_removing_a_symbol_without_default_is_refused() -> None:
    reg = Registry.load(SCHEMAS)
    old = reg.latest("puente.ConsularNotification").schema
    new = {**old, "fields": [dict(f) for f in old["fields"]]}
    event = next(f for f in new["fields"] if f["name"] == "event")
    event["type"] = {**event["type"], "symbols": event["type"]["symbols"][:-2]}
    del event["type"]["default"]
    problems = check_pair(new, old)
    assert [(p[0], p[1]) for p in problems] == [("event", "missing_enum_symbols")]
    assert check_pair(old, new) == []


@pytest.mark.parametrize(
    ("location", "path"),
    [
        ("/fields/6/type/items/fields/7/type/items", "persons[].nationalities[]"),
        ("/fields/12/type/fields/0/type", "handling.code"),
        (
            "/fields/10/type/fields/1/type/items/fields/1/type",
            "return_details.itinerary[].to_place",
        ),
        ("/", ""),
    ],
)
def test_field_paths(location: str, path: str) -> None:
    reg = Registry.load(SCHEMAS)
    name = "puente.ConsularNotification" if "return_details" in path else "puente.CaseNotice"
    assert field_path(reg.latest(name).schema, location) == path
