"""Fuzzing the policy service's decoder and core: whatever an origin publishes, the answer is a
typed refusal (a :class:`Refusal` with a known reason code and a message) or a valid notice —
never another exception — and the processor turns every record into an outcome without an
``INTERNAL_ERROR`` (its catch-all for a bug) and without raising.

Inputs: random bytes; random bodies behind every notice schema's header; valid notices with
bytes flipped, cut or inserted; and valid notices with one field anywhere in the record (a
leaf of the schema, found by walking it) replaced by an arbitrary value of its Avro type —
timestamps from year 1 to 9999, dates, 32/64-bit extremes, NaN and infinities, any Unicode,
empty and long arrays, every enum symbol — then encoded, so the checks after decoding (origin,
key, clock, meaning, dedupe, policy, transformations, signing) are reached.

``PUENTE_FUZZ_EXAMPLES`` (default 300) sets the examples per test; the inputs tried, the answers
and the failed tests are printed at the end of the module (``pytest -s``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from puente.codec.errors import EncodeError
from puente.codec.wire import encode
from puente.notices import NOTICE_TYPES
from puente.service.processor import IngressRecord
from puente.service.validate import Limits, Refusal, ValidNotice, validate
from puente.synth.generator import Generator
from puente.topics import INGRESS
from tests.unit.service.conftest import NOW, World

EXAMPLES = int(os.environ.get("PUENTE_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
LIMITS = Limits()
# Every reason validate() may give: its own, and the codec's.
REASONS = {
    "EMPTY_RECORD",
    "TOO_LARGE",
    "NOT_A_NOTICE",
    "ORIGIN_MISMATCH",
    "KEY_NOT_NOTICE_ID",
    "INVALID_FIELD",
    "CREATED_IN_FUTURE",
    "TOO_OLD",
    "BAD_MAGIC",
    "UNKNOWN_SCHEMA",
    "SCHEMA_MISMATCH",
    "TRUNCATED",
    "TRAILING_BYTES",
    "INVALID_DATA",
}
TRIED: Counter[str] = Counter()
ANSWERS: Counter[str] = Counter()  # refusal reasons, and VALID


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Iterator[None]:
    failed = request.session.testsfailed
    yield
    total = sum(TRIED.values())
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(TRIED.items()))
    answers = ", ".join(f"{k} {n}" for k, n in ANSWERS.most_common())
    failures = request.session.testsfailed - failed
    print(f"\nservice fuzz: {total} inputs tried ({kinds}); failed tests: {failures}")
    print(f"answers: {answers}")


def check(world: World, value: bytes | None, key: bytes | None, kind: str) -> ValidNotice | None:
    """validate() gives a typed refusal or a valid notice; nothing else."""
    TRIED[kind] += 1
    try:
        valid = validate(world.registry, value, key=key, origin="MX", now=NOW, limits=LIMITS)
    except Refusal as refusal:
        assert refusal.reason in REASONS, refusal.reason
        assert refusal.message
        ANSWERS[refusal.reason] += 1
        return None
    assert isinstance(valid, ValidNotice)
    ANSWERS["VALID"] += 1
    assert valid.notice_type in NOTICE_TYPES
    return valid


def process(world: World, value: bytes | None, key: bytes | None) -> None:
    """The whole core on one record: exactly one outcome, none an INTERNAL_ERROR."""
    proc = world.processor("MX")
    record = IngressRecord(world.naming.topic(INGRESS, "MX"), 0, 0, key, value)
    out = proc.process([record], NOW)
    assert sum(out.outcomes.values()) == 1
    assert ("REJECTED", "INTERNAL_ERROR") not in out.decisions, "the processor caught a bug"


@pytest.fixture(scope="module")
def samples(world: World) -> list[tuple[str, dict[str, Any], bytes]]:
    """Valid notices of MX (both types), as records and encoded."""
    gen = Generator(101)
    out = []
    for _ in range(4):
        for name, record in (
            ("puente.CaseNotice", gen.case_notice(origin="MX")),
            ("puente.ConsularNotification", gen.consular_notification("MX")),
        ):
            out.append((name, record, encode(world.registry, name, record)))
    return out


# --- bytes -----------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=400), key=st.one_of(st.none(), st.binary(max_size=40)))
def test_random_bytes(world: World, data: bytes, key: bytes | None) -> None:
    check(world, data, key, "random bytes")


@FUZZ
@given(data=st.data())
def test_random_bodies_behind_notice_headers(world: World, data: st.DataObject) -> None:
    headers = [sv.header for name in NOTICE_TYPES for sv in world.registry.versions(name)]
    value = data.draw(st.sampled_from(headers)) + data.draw(st.binary(max_size=600))
    if check(world, value, None, "random bodies") is not None:
        process(world, value, None)


@FUZZ
@given(data=st.data())
def test_mutated_bytes(
    world: World, samples: list[tuple[str, dict[str, Any], bytes]], data: st.DataObject
) -> None:
    _, record, original = data.draw(st.sampled_from(samples))
    value = bytearray(original)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        at = 10 + data.draw(st.integers(min_value=0, max_value=len(value) - 11))
        how = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if how == "flip":
            value[at] = data.draw(st.integers(min_value=0, max_value=255))
        elif how == "cut":
            del value[at : at + data.draw(st.integers(min_value=1, max_value=8))]
        else:
            value[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        if len(value) <= 11:
            break
    key = str(record["notice_id"]).encode()
    if check(world, bytes(value), key, "mutated bytes") is not None:
        process(world, bytes(value), key)


# --- fields ----------------------------------------------------------------------------------


def _named_types(schema: Any, names: dict[str, Any]) -> dict[str, Any]:
    """Every named type of a parsed schema by full name (later references use the name)."""
    if isinstance(schema, list):
        for branch in schema:
            _named_types(branch, names)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed") and "name" in schema:
            names[schema["name"]] = schema
        for f in schema.get("fields", []):
            _named_types(f["type"], names)
        for part in ("items", "values"):
            if part in schema:
                _named_types(schema[part], names)
    return names


def _arbitrary(schema: Any, names: dict[str, Any], data: st.DataObject, depth: int = 0) -> Any:
    """Any value of an Avro type, extremes included."""
    if isinstance(schema, str) and schema in names:
        schema = names[schema]
    if isinstance(schema, list):
        return _arbitrary(data.draw(st.sampled_from(schema)), names, data, depth)
    kind = schema.get("type") if isinstance(schema, dict) else schema
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical == "timestamp-millis":
        moment = st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59))
        return data.draw(moment).replace(microsecond=0, tzinfo=dt.UTC)
    if logical == "date":
        return data.draw(st.dates())
    if logical == "uuid":
        return str(data.draw(st.uuids()))
    simple = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "float": st.floats(width=32),
        "double": st.floats(),
        "string": st.text(max_size=200),
        "bytes": st.binary(max_size=64),
    }
    if kind in simple:
        return data.draw(simple[kind])
    if kind == "enum":
        return data.draw(st.sampled_from(schema["symbols"]))
    if kind == "fixed":
        return data.draw(st.binary(min_size=schema["size"], max_size=schema["size"]))
    if kind == "array":
        size = data.draw(st.integers(min_value=0, max_value=3 if depth < 3 else 0))
        return [_arbitrary(schema["items"], names, data, depth + 1) for _ in range(size)]
    if kind == "map":
        keys = data.draw(st.lists(st.text(max_size=10), max_size=2 if depth < 3 else 0))
        return {k: _arbitrary(schema["values"], names, data, depth + 1) for k in keys}
    assert kind == "record", schema
    return {f["name"]: _arbitrary(f["type"], names, data, depth + 1) for f in schema["fields"]}


def _replace_a_leaf(
    record: Any, schema: Any, names: dict[str, Any], data: st.DataObject, top: bool = True
) -> Any:
    """``record`` with one value somewhere inside it replaced (mostly a leaf: a nested record or
    array is replaced whole one time in four)."""
    if isinstance(schema, str) and schema in names:
        schema = names[schema]
    if isinstance(schema, list):  # a union: the branch the value has, or any
        branches = [b for b in schema if (b == "null") == (record is None)]
        schema = branches[0] if len(branches) == 1 else data.draw(st.sampled_from(schema))
        if record is None:
            return _arbitrary(schema, names, data)
    kind = schema.get("type") if isinstance(schema, dict) else schema
    descend = top or data.draw(st.integers(min_value=0, max_value=3)) > 0
    if kind == "record" and isinstance(record, dict) and descend:
        field = data.draw(st.sampled_from(schema["fields"]))
        inner = _replace_a_leaf(record.get(field["name"]), field["type"], names, data, False)
        return record | {field["name"]: inner}
    if kind == "array" and isinstance(record, list) and record and descend:
        at = data.draw(st.integers(min_value=0, max_value=len(record) - 1))
        inner = _replace_a_leaf(record[at], schema["items"], names, data, False)
        return [*record[:at], inner, *record[at + 1 :]]
    return _arbitrary(schema, names, data)


@FUZZ
@given(data=st.data())
def test_notices_with_a_field_replaced(
    world: World, samples: list[tuple[str, dict[str, Any], bytes]], data: st.DataObject
) -> None:
    name, record, _ = data.draw(st.sampled_from(samples))
    schema = world.registry.latest(name).parsed
    names = _named_types(schema, {})
    mutated = record
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        mutated = _replace_a_leaf(mutated, schema, names, data)
    if data.draw(st.integers(min_value=0, max_value=3)) > 0:
        # Mostly the publisher's own identity, so the checks after it are reached.
        mutated = mutated | {"origin": "MX", "notice_id": record["notice_id"]}
    try:
        value = encode(world.registry, name, mutated)
    except EncodeError:
        TRIED["unencodable field values"] += 1
        assume(False)
        return
    key = str(mutated.get("notice_id", "")).encode()
    if check(world, value, key, "field replaced") is not None:
        process(world, value, key)
