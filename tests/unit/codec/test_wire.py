from __future__ import annotations

import copy
import datetime as dt
import io
import uuid
from typing import Any

import fastavro
import pytest

from puente.codec.errors import DecodeError, EncodeError
from puente.codec.registry import Registry
from puente.codec.wire import HEADER_SIZE, MAGIC, decode, encode, fingerprint_of
from puente.synth import SCENARIOS, Generator

from .conftest import FIXTURES

CN = "puente.CaseNotice"


def samples(reg: Registry, n: int = 12) -> list[tuple[str, dict[str, Any]]]:
    gen = Generator(7)
    out = [
        (name, gen.sample(name, reg.latest(name).parsed)) for name in reg.names() for _ in range(n)
    ]
    out += [(n.name, n.record) for n in map(gen.scenario, SCENARIOS)]
    return out


def v1_case_notice(gen: Generator) -> dict[str, Any]:
    """A generated CaseNotice in the shape of schemas/CaseNotice/v1.avsc, which the evolution
    fixtures copy (the generator writes the latest version's person fields)."""
    record = gen.case_notice()
    record["persons"] = [
        {k: v for k, v in p.items() if k not in ("feared_states", "habitual_residence")}
        for p in record["persons"]
    ]
    return record


def fastavro_plain(value: Any) -> Any:
    """fastavro reads uuid logical types as uuid.UUID; Puente keeps the string."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: fastavro_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fastavro_plain(v) for v in value]
    return value


def test_round_trip_and_byte_equality_with_fastavro(reg: Registry) -> None:
    for name, record in samples(reg):
        sv = reg.latest(name)
        data = encode(reg, name, record)
        assert data[:2] == MAGIC and data[2:HEADER_SIZE] == sv.fingerprint_bytes
        assert fingerprint_of(data) == sv.fingerprint
        ref = io.BytesIO()
        fastavro.schemaless_writer(ref, sv.parsed, record)
        assert data[HEADER_SIZE:] == ref.getvalue(), name
        assert decode(reg, data, name) == record
        assert decode(reg, data) == record
        theirs = fastavro.schemaless_reader(io.BytesIO(data[HEADER_SIZE:]), sv.parsed, None)
        assert fastavro_plain(theirs) == record


def test_decoded_types(reg: Registry) -> None:
    record = Generator(1).case_notice(origin="MX")
    out = decode(reg, encode(reg, CN, record), CN)
    assert type(out["notice_id"]) is str
    assert out["created_at"].tzinfo is not None and out["created_at"].utcoffset() == dt.timedelta(0)
    dob = next(p["date_of_birth"] for p in out["persons"] if p["date_of_birth"])
    assert type(dob) is dt.date


def test_encode_fills_defaults_and_accepts_uuid_objects(reg: Registry) -> None:
    record = Generator(2).case_notice()
    sparse = copy.deepcopy(record)
    for key in ("organisations", "vehicles", "related_notice_ids"):
        del sparse[key]
    for p in sparse["persons"]:
        del p["aliases"], p["minor"]
    sparse["notice_id"] = uuid.UUID(record["notice_id"])
    out = decode(reg, encode(reg, CN, sparse), CN)
    assert out["organisations"] == [] and out["notice_id"] == record["notice_id"]
    assert all(p["minor"] is False and p["aliases"] == [] for p in out["persons"])


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (
            lambda r: r["persons"][1]["nationalities"].__setitem__(0, 52),
            "persons[1].nationalities[0]",
            "string",
        ),
        (lambda r: r["persons"][0].__setitem__("role", "BOSS"), "persons[0].role", "not one of"),
        (lambda r: r.__setitem__("created_at", dt.datetime(2025, 1, 1)), "created_at", "aware"),
        (lambda r: r.__setitem__("notice_id", "not-a-uuid"), "notice_id", "UUID"),
        (lambda r: r.__setitem__("retention_days", 2**40), "retention_days", "range"),
        (lambda r: r.pop("origin"), "origin", "required"),
        (lambda r: r.__setitem__("nationality", ["MX"]), "nationality", "unknown field"),
        (lambda r: r["persons"][0].__setitem__("minor", None), "persons[0].minor", "boolean"),
        (lambda r: r["handling"].__setitem__("code", None), "handling.code", "not one of"),
    ],
)
def test_encode_errors_name_the_field(reg: Registry, mutate: Any, path: str, words: str) -> None:
    record = Generator(3).case_notice()
    while len(record["persons"]) < 2:
        record = Generator(len(record["persons"]) + 10).case_notice()
    mutate(record)
    with pytest.raises(EncodeError) as err:
        encode(reg, CN, record)
    assert err.value.reason == "INVALID_RECORD"
    assert [p.path for p in err.value.problems] == [path]
    assert words in err.value.problems[0].problem and path in str(err.value)


def good(reg: Registry) -> bytes:
    return encode(reg, CN, Generator(4).case_notice())


@pytest.mark.parametrize("prefix", [b"", b"\xc3", b"\xc3\x01\x00"])
def test_short_input_is_truncated(reg: Registry, prefix: bytes) -> None:
    with pytest.raises(DecodeError) as err:
        decode(reg, prefix)
    assert err.value.reason == "TRUNCATED"


@pytest.mark.parametrize("data", [b"\x00\x01" + bytes(20), b"\xc3\x02" + bytes(20), b"{}", b"\x01"])
def test_bad_magic(reg: Registry, data: bytes) -> None:
    with pytest.raises(DecodeError) as err:
        decode(reg, data)
    assert err.value.reason == "BAD_MAGIC"


def test_unknown_fingerprint(reg: Registry) -> None:
    data = good(reg)
    with pytest.raises(DecodeError) as err:
        decode(reg, data[:2] + bytes(8) + data[10:])
    assert err.value.reason == "UNKNOWN_SCHEMA"


def test_every_truncation_is_reported(reg: Registry) -> None:
    data = good(reg)
    for cut in range(HEADER_SIZE, len(data)):
        with pytest.raises(DecodeError) as err:
            decode(reg, data[:cut])
        assert err.value.reason in {"TRUNCATED", "INVALID_DATA"}, cut
    assert (
        sum(1 for cut in range(HEADER_SIZE, len(data)) if _reason(reg, data[:cut]) == "TRUNCATED")
        > len(data) // 2
    )


def _reason(reg: Registry, data: bytes) -> str:
    try:
        decode(reg, data)
    except DecodeError as exc:
        return exc.reason
    return "OK"


def test_trailing_bytes(reg: Registry) -> None:
    with pytest.raises(DecodeError) as err:
        decode(reg, good(reg) + b"\x00")
    assert err.value.reason == "TRAILING_BYTES"


def receipt(reg: Registry, **fields: Any) -> bytes:
    return encode(reg, "puente.DeliveryReceipt", Generator(5).delivery_receipt(**fields))


def test_invalid_enum_index_including_negative(reg: Registry) -> None:
    # DeliveryReceipt ends with status (enum) then received_at (long): rewrite the enum byte.
    data = receipt(reg, log_id=None, log_index=None)
    received = encode(
        reg, "puente.DeliveryReceipt", Generator(5).delivery_receipt(log_id=None, log_index=None)
    )
    assert data == received
    status_at = len(data) - len(_varint_tail(data)) - 1
    for bad in (0x01, 0x06, 0x7E):  # zig-zag -1, 3, 63
        mutated = data[:status_at] + bytes([bad]) + data[status_at + 1 :]
        with pytest.raises(DecodeError) as err:
            decode(reg, mutated)
        assert err.value.reason == "INVALID_DATA" and err.value.path == "status"


def _varint_tail(data: bytes) -> bytes:
    # The last field is a zig-zag varint: its bytes are the final run ending in a byte < 0x80.
    i = len(data) - 1
    while data[i - 1] & 0x80:
        i -= 1
    return data[i:]


def test_invalid_union_branch_including_negative(reg: Registry) -> None:
    record = Generator(5).delivery_receipt(log_id=None, log_index=None)
    data = encode(reg, "puente.DeliveryReceipt", record)
    # log_id's union index (0 = null) sits right after delivery_digest.
    body = data[HEADER_SIZE:]
    digest = record["delivery_digest"].encode()
    at = HEADER_SIZE + body.index(digest) + len(digest)
    assert data[at] == 0
    for bad in (0x01, 0x04, 0x03):  # -1, 2, -2
        with pytest.raises(DecodeError) as err:
            decode(reg, data[:at] + bytes([bad]) + data[at + 1 :])
        assert err.value.reason == "INVALID_DATA" and err.value.path == "log_id"


def test_invalid_boolean_byte(reg: Registry) -> None:
    record = Generator(6).case_notice()
    record["related_notice_ids"] = []
    data = encode(reg, CN, record)
    record2 = copy.deepcopy(record)
    p = record2["persons"][-1]
    p["trafficking_victim"] = not p["trafficking_victim"]
    other = encode(reg, CN, record2)
    at = next(i for i, (a, b) in enumerate(zip(data, other, strict=True)) if a != b)
    with pytest.raises(DecodeError) as err:
        decode(reg, data[:at] + b"\x02" + data[at + 1 :])
    assert err.value.reason == "INVALID_DATA"
    assert err.value.path == f"persons[{len(record['persons']) - 1}].trafficking_victim"


def test_invalid_utf8_and_negative_length(reg: Registry) -> None:
    record = Generator(5).delivery_receipt(recipient="MX")
    data = encode(reg, "puente.DeliveryReceipt", record)
    at = data.index(b"\x04MX")  # length 2, "MX"
    for patch, reason in ((b"\x04\xff\xfe", "INVALID_DATA"), (b"\x03MX", "INVALID_DATA")):
        with pytest.raises(DecodeError) as err:
            decode(reg, data[:at] + patch + data[at + 3 :])
        assert err.value.reason == reason


def test_reading_another_record_type_is_a_mismatch(reg: Registry) -> None:
    with pytest.raises(DecodeError) as err:
        decode(reg, receipt(reg), reader=CN)
    assert err.value.reason == "SCHEMA_MISMATCH"


def test_schema_resolution_old_writer_new_reader_and_back() -> None:
    reg = Registry.load(FIXTURES / "evolution-ok")
    v1, v2 = reg.versions(CN)
    gen = Generator(8)
    for _ in range(20):
        record = v1_case_notice(gen)
        old = io.BytesIO()
        fastavro.schemaless_writer(old, v1.parsed, record)
        data = v1.header + old.getvalue()
        new = decode(reg, data, CN)  # read as v2
        expected = fastavro.schemaless_reader(io.BytesIO(old.getvalue()), v1.parsed, v2.parsed)
        assert new == fastavro_plain(expected)
        assert new["case_reference"] is None
        assert all(p["languages"] == [] for p in new["persons"])
        assert decode(reg, data) == record  # as written
        # forward: v2 data with a symbol v1 does not know, read by a v1-only registry
        new["crime_types"].append("ENVIRONMENTAL_CRIME")
        v2_bytes = encode(reg, CN, new)
        only_v1 = Registry([v1], FIXTURES)
        with pytest.raises(DecodeError) as err:
            decode(only_v1, v2_bytes, CN)
        assert err.value.reason == "UNKNOWN_SCHEMA"
        back = reg.plan(v2.fingerprint_bytes, None)(v2_bytes, HEADER_SIZE)[0]
        assert back["crime_types"][-1] == "ENVIRONMENTAL_CRIME"


def test_old_reader_resolves_new_symbol_to_enum_default() -> None:
    from puente.codec._reader import compile_reader

    reg = Registry.load(FIXTURES / "evolution-ok")
    v1, v2 = reg.versions(CN)
    record = v1_case_notice(Generator(9))
    record.update(case_reference="X-1", crime_types=["ENVIRONMENTAL_CRIME", "MIGRANT_SMUGGLING"])
    data = encode(reg, CN, record)
    old, end = compile_reader(v2.parsed, v1.parsed)(data, HEADER_SIZE)
    assert end == len(data)
    assert old["crime_types"] == ["OTHER", "MIGRANT_SMUGGLING"]
    assert "case_reference" not in old
