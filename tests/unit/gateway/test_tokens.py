"""The token ledger: hashed storage, statuses, revocation, listing, file permissions."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from puente_gateway.tokens import TOKEN_PREFIX, TokenError, TokenStore

T0 = 1_800_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "gw" / "tokens.sqlite3")


def test_token_is_random_prefixed_and_stored_only_as_its_digest(
    store: TokenStore, tmp_path: Path
) -> None:
    record, token = store.create(state="MX", agency="Policía Federal", types=["puente.CaseNotice"])
    assert token.startswith(TOKEN_PREFIX)
    assert len(token) == len(TOKEN_PREFIX) + 43  # 256 bits, base64url
    other = store.create(state="MX", agency="Policía Federal")[1]
    assert other != token
    store.close()
    raw = (tmp_path / "gw" / "tokens.sqlite3").read_bytes()
    wal = tmp_path / "gw" / "tokens.sqlite3-wal"
    everything = raw + (wal.read_bytes() if wal.exists() else b"")
    assert token.encode() not in everything
    assert token[len(TOKEN_PREFIX) :].encode() not in everything
    assert hashlib.sha256(token.encode()).digest() in everything
    assert record.types == ("puente.CaseNotice",)


def test_ledger_file_and_folder_are_owner_only(tmp_path: Path) -> None:
    TokenStore(tmp_path / "gw" / "tokens.sqlite3").close()
    assert stat.S_IMODE((tmp_path / "gw" / "tokens.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "gw").stat().st_mode) == 0o700


def test_lookup_finds_the_record_and_nothing_else(store: TokenStore) -> None:
    record, token = store.create(state="GT", agency="PNC")
    assert store.lookup(token) == record
    assert store.lookup(token + "x") is None
    assert store.lookup("not-even-prefixed") is None
    assert store.lookup(TOKEN_PREFIX) is None


def test_statuses_over_time(store: TokenStore) -> None:
    record, _ = store.create(state="MX", agency="A", now=T0, expires_ms=T0 + 1000)
    assert record.status(T0) == "active"
    assert record.status(T0 + 999) == "active"
    assert record.status(T0 + 1000) == "expired"
    revoked = store.revoke(record.id, now=T0 + 10)
    assert revoked.status(T0 + 9) == "active"
    assert revoked.status(T0 + 10) == "revoked"


def test_revocation_is_idempotent_and_keeps_its_first_time(store: TokenStore) -> None:
    record, _ = store.create(state="MX", agency="A", now=T0)
    first = store.revoke(record.id, now=T0 + 5)
    again = store.revoke(record.id, now=T0 + 50)
    assert first.revoked_ms == again.revoked_ms == T0 + 5


def test_unknown_ids_and_bad_arguments_are_token_errors(store: TokenStore) -> None:
    with pytest.raises(TokenError):
        store.revoke("0123456789abcdef")
    with pytest.raises(TokenError):
        store.create(state="MX", agency="   ")
    with pytest.raises(TokenError):
        store.create(state="MX", agency="A", now=T0, expires_ms=T0)


def test_list_in_creation_order_and_by_state(store: TokenStore) -> None:
    a, _ = store.create(state="MX", agency="A", now=T0)
    b, _ = store.create(state="GT", agency="B", now=T0 + 1)
    c, _ = store.create(state="MX", agency="C", now=T0 + 2)
    assert [r.id for r in store.list()] == [a.id, b.id, c.id]
    assert [r.id for r in store.list(state="MX")] == [a.id, c.id]
    assert store.list(state="US") == []
