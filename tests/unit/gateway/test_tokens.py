"""Tokens: their form, hashed records as Kafka values, statuses, revocation, the table."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from puente_gateway.tokens import (
    TOKEN_PREFIX,
    TokenError,
    TokenRecord,
    TokenTable,
    new_token,
    revoked,
    well_formed,
)

T0 = 1_800_000_000_000


def test_token_is_random_prefixed_and_kept_only_as_its_digest() -> None:
    record, token = new_token(state="MX", agency="Policía Federal", types=["puente.CaseNotice"])
    assert token.startswith(TOKEN_PREFIX)
    assert len(token) == len(TOKEN_PREFIX) + 43  # 256 bits, base64url
    assert well_formed(token.encode())
    assert new_token(state="MX", agency="Policía Federal")[1] != token
    value = record.value()
    assert token.encode() not in value
    assert token[len(TOKEN_PREFIX) :].encode() not in value
    assert hashlib.sha256(token.encode()).hexdigest().encode() in value
    assert record.types == ("puente.CaseNotice",)


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"pgw_",
        b"pgw_" + b"a" * 42,
        b"pgw_" + b"a" * 44,
        b"pgw_" + b"a" * 42 + b"=",
        b"pgw_" + b"a" * 42 + b"+",
        b"pgx_" + b"a" * 43,
        b"PGW_" + b"a" * 43,
        b"pgw_" + b"a" * 42 + b"\xff",
        b"pgw_" + b"a" * (1 << 20),
    ],
)
def test_anything_but_the_exact_form_is_not_a_token(text: bytes) -> None:
    assert not well_formed(text)
    assert TokenTable().lookup(text) is None


def test_records_round_trip_as_kafka_values() -> None:
    record, _ = new_token(state="GT", agency="PNC", expires_ms=T0 + 5, now=T0)
    again = TokenRecord.from_value(record.value())
    assert again == record
    assert record.key() == b"token:" + record.id.encode()
    gone = revoked(record, now=T0 + 1)
    assert TokenRecord.from_value(gone.value()) == gone


GOOD = {
    "v": 1,
    "id": "0123456789abcdef",
    "digest": "00" * 32,
    "state": "MX",
    "agency": "A",
    "types": [],
    "created_ms": 1,
    "expires_ms": None,
    "revoked_ms": None,
}


def test_a_well_formed_value_is_a_record() -> None:
    assert TokenRecord.from_value(orjson.dumps(GOOD)).id == GOOD["id"]


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b"[]",
        b"{}",
        orjson.dumps(GOOD | {"v": 2}),
        orjson.dumps(GOOD | {"id": "x"}),
        orjson.dumps(GOOD | {"digest": "00"}),
        orjson.dumps(GOOD | {"created_ms": "1"}),
        orjson.dumps(GOOD | {"types": "puente.CaseNotice"}),
        orjson.dumps({k: v for k, v in GOOD.items() if k != "revoked_ms"}),
    ],
)
def test_values_that_are_not_token_records_are_refused(value: bytes) -> None:
    with pytest.raises(ValueError):
        TokenRecord.from_value(value)


def test_statuses_over_time() -> None:
    record, _ = new_token(state="MX", agency="A", now=T0, expires_ms=T0 + 1000)
    assert record.status(T0) == "active"
    assert record.status(T0 + 999) == "active"
    assert record.status(T0 + 1000) == "expired"
    gone = revoked(record, now=T0 + 10)
    assert gone.status(T0 + 9) == "active"
    assert gone.status(T0 + 10) == "revoked"


def test_revocation_is_idempotent_and_keeps_its_first_time() -> None:
    record, _ = new_token(state="MX", agency="A", now=T0)
    first = revoked(record, now=T0 + 5)
    assert revoked(first, now=T0 + 50) is first
    assert first.revoked_ms == T0 + 5


def test_bad_arguments_are_token_errors() -> None:
    with pytest.raises(TokenError):
        new_token(state="MX", agency="   ")
    with pytest.raises(TokenError):
        new_token(state="MX", agency="A", now=T0, expires_ms=T0)


def test_the_table_finds_a_token_by_digest_and_keeps_the_newest_record() -> None:
    table = TokenTable()
    a, token_a = new_token(state="MX", agency="A", now=T0)
    b, token_b = new_token(state="GT", agency="B", now=T0 + 1)
    c, _ = new_token(state="MX", agency="C", now=T0 + 2)
    for r in (c, a, b):
        table.apply(r)
    assert table.lookup(token_a.encode()) == a
    assert table.lookup(new_token(state="MX", agency="A")[1].encode()) is None  # not applied
    assert len(table) == 3
    table.apply(revoked(a, now=T0 + 3))
    found = table.lookup(token_a.encode())
    assert found is not None and found.status(T0 + 3) == "revoked"
    assert table.get(b.id) == b and table.lookup(token_b.encode()) == b
    assert [r.id for r in table.list()] == [a.id, b.id, c.id]
    assert [r.id for r in table.list(state="MX")] == [a.id, c.id]
    assert table.list(state="US") == []
