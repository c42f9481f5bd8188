"""Resolving credentials to callers: tokens, client certificates, and what is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from puente.errors import ConfigError
from puente_gateway.auth import Authenticator, Caller, load_clients
from puente_gateway.errors import Unauthenticated
from puente_gateway.tokens import TokenStore

MEMBERS = ("MX", "GT")
TYPES = ("puente.CaseNotice", "puente.ConsularNotification")
SUBJECT = "CN=gw.sre.mx,O=SRE,C=MX"


def _scope(auth: bytes | None = None, subject: str | None = None) -> dict[str, Any]:
    headers = [(b"host", b"x")] + ([(b"authorization", auth)] if auth is not None else [])
    scope: dict[str, Any] = {"type": "http", "headers": headers}
    if subject is not None:
        scope["extensions"] = {"tls": {"client_cert_name": subject}}
    return scope


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "tokens.sqlite3")


@pytest.fixture
def clients(tmp_path: Path) -> Path:
    path = tmp_path / "clients.yaml"
    path.write_text(
        "clients:\n"
        f"  - subject: '{SUBJECT}'\n    state: MX\n    agency: SRE\n"
        "    types: [ConsularNotification]\n"
        "  - subject: 'CN=x,C=ZZ'\n    state: ZZ\n    agency: not a member\n"
    )
    return path


def _auth(store: TokenStore, clients: Path | None = None, cache_s: float = 0.0) -> Authenticator:
    return Authenticator(
        store,
        members=MEMBERS,
        notice_types=TYPES,
        clients=load_clients(clients) if clients else None,
        cache_s=cache_s,
    )


def test_bearer_token_resolves_to_its_agency(store: TokenStore) -> None:
    record, token = store.create(state="GT", agency="PNC", types=["puente.CaseNotice"])
    caller = _auth(store).authenticate(_scope(b"Bearer " + token.encode()))
    assert caller == Caller(record.id, "GT", "PNC", frozenset({"puente.CaseNotice"}), "token")
    assert caller.may_use("puente.CaseNotice") and not caller.may_use("puente.ConsularNotification")
    assert _auth(store).authenticate(_scope(b"bearer " + token.encode())).id == record.id


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "AUTH_REQUIRED"),
        (b"Bearer", "AUTH_INVALID"),
        (b"Basic dXNlcjpwYXNz", "AUTH_INVALID"),
        (b"Bearer pgw_unknown", "AUTH_INVALID"),
        (b"Bearer \xff\xfe", "AUTH_INVALID"),
    ],
)
def test_refusals(store: TokenStore, header: bytes | None, reason: str) -> None:
    with pytest.raises(Unauthenticated) as info:
        _auth(store).authenticate(_scope(header))
    assert info.value.reason == reason
    assert info.value.status == 401
    assert info.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_revocation_takes_effect_after_the_cache_delay(store: TokenStore) -> None:
    record, token = store.create(state="MX", agency="A")
    auth = _auth(store, cache_s=3600)
    scope = _scope(b"Bearer " + token.encode())
    caller = auth.authenticate(scope)
    store.revoke(record.id)
    assert auth.authenticate(scope) == caller  # cached
    assert not auth.still_valid(caller)  # long streams ask the ledger itself
    with pytest.raises(Unauthenticated):
        _auth(store, cache_s=0).authenticate(scope)


def test_a_token_of_a_state_no_longer_a_member_is_refused(store: TokenStore) -> None:
    _, token = store.create(state="CA", agency="RCMP")
    with pytest.raises(Unauthenticated):
        _auth(store).authenticate(_scope(b"Bearer " + token.encode()))


def test_client_certificates_by_subject(store: TokenStore, clients: Path) -> None:
    auth = _auth(store, clients)
    caller = auth.authenticate(_scope(subject=SUBJECT))
    assert caller.state == "MX" and caller.method == "mtls"
    assert caller.types == frozenset({"puente.ConsularNotification"})
    assert caller.id.startswith("cert:") and SUBJECT not in caller.id
    assert auth.still_valid(caller)
    for subject in ("CN=gw.sre.mx,O=SRE,C=GT", "CN=x,C=ZZ"):
        with pytest.raises(Unauthenticated):
            auth.authenticate(_scope(subject=subject))


def test_a_token_wins_over_a_certificate(store: TokenStore, clients: Path) -> None:
    record, token = store.create(state="GT", agency="PNC")
    caller = _auth(store, clients).authenticate(_scope(b"Bearer " + token.encode(), SUBJECT))
    assert caller.id == record.id and caller.state == "GT"


def test_malformed_client_maps_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    for text in (
        "clients: [{subject: x}]",
        "clients: [",
        "clients:\n  - {subject: a, state: MX, agency: b}\n"
        "  - {subject: a, state: GT, agency: c}\n",
    ):
        bad.write_text(text)
        with pytest.raises(ConfigError):
            load_clients(bad)
    with pytest.raises(ConfigError):
        load_clients(tmp_path / "missing.yaml")
