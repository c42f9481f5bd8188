"""The feared-state fields came in through the evolution gate: CaseNotice and ConsularNotification
v2 (and Rejection v2's severity) read what v1 writers wrote, and v1 readers read what v2 writes.
The JSON forms follow: v1-shaped JSON still converts, with the new fields at their defaults."""

from __future__ import annotations

from typing import Any

import pytest

from puente.codec._reader import compile_reader
from puente.codec.compat import check_versions
from puente.codec.errors import EncodeError
from puente.codec.jsonconv import from_json, to_json
from puente.codec.registry import Registry
from puente.codec.wire import HEADER_SIZE, decode, encode
from puente.synth import Generator

NEW_PERSON_FIELDS = ("feared_states", "habitual_residence")
NOTICES = ("puente.CaseNotice", "puente.ConsularNotification")


def _persons(name: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    return record["persons"] if name == "puente.CaseNotice" else [record["person"]]


def _v1_shaped(name: str, record: dict[str, Any]) -> dict[str, Any]:
    for p in _persons(name, record):
        for field in NEW_PERSON_FIELDS:
            p.pop(field)
    return record


@pytest.mark.parametrize("name", [*NOTICES, "puente.Rejection"])
def test_v2_and_v1_are_compatible_both_ways(reg: Registry, name: str) -> None:
    v1, v2 = reg.versions(name)
    assert (v1.version, v2.version) == (1, 2)
    assert check_versions(v2, v1) == []


@pytest.mark.parametrize("name", NOTICES)
def test_what_an_old_publisher_writes_is_read_with_the_defaults(reg: Registry, name: str) -> None:
    v1 = reg.get(name, 1)
    record = _v1_shaped(name, Generator(3).sample(name))
    old = bytearray(v1.header)
    v1.writer(record, old)
    read = decode(reg, bytes(old), name)  # as the policy service reads it: the latest version
    for p in _persons(name, read):
        assert p["feared_states"] == [] and p["habitual_residence"] is None
    assert _v1_shaped(name, read) == record


@pytest.mark.parametrize("name", NOTICES)
def test_what_v2_writes_an_old_reader_reads(reg: Registry, name: str) -> None:
    v1, v2 = reg.versions(name)
    record = Generator(4).sample(name)
    for p in _persons(name, record):
        p.update(feared_states=["HN"], habitual_residence="GT")
    data = encode(reg, name, record)
    assert data[2:HEADER_SIZE] == v2.fingerprint_bytes
    old, end = compile_reader(v2.parsed, v1.parsed)(data, HEADER_SIZE)
    assert end == len(data)
    assert old == _v1_shaped(name, decode(reg, data))


@pytest.mark.parametrize("name", NOTICES)
def test_json_without_the_new_fields_still_converts(reg: Registry, name: str) -> None:
    record = Generator(5).sample(name)
    v1_json = to_json(reg, name, _v1_shaped(name, dict(record)), version=1)
    latest = from_json(reg, name, v1_json)
    for p in _persons(name, latest):
        assert p["feared_states"] == [] and p["habitual_residence"] is None
    # The fields exist only from version 2 on: a v1 JSON form cannot carry them.
    with_fields = to_json(reg, name, latest)
    with pytest.raises(EncodeError) as err:
        from_json(reg, name, with_fields, version=1)
    assert "feared_states: unknown field" in str(err.value)
