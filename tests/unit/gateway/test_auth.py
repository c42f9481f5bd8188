"""Resolving credentials to callers: tokens, client certificates, and what is refused before
any lookup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from puente_gateway.auth import Authenticator, Caller
from puente_gateway.errors import Forbidden, Unauthenticated, Unavailable
from puente_gateway.mtls import ClientCertificates
from puente_gateway.tokens import TokenTable, new_token, revoked

MEMBERS = ("MX", "GT")
SUBJECT = "CN=gw.sre.mx,O=SRE,C=MX"


def _scope(auth: bytes | None = None, subject: str | None = None) -> dict[str, Any]:
    headers = [(b"host", b"x")] + ([(b"authorization", auth)] if auth is not None else [])
    scope: dict[str, Any] = {"type": "http", "headers": headers}
    if subject is not None:
        scope["extensions"] = {"tls": {"client_cert_name": subject}}
    return scope


@pytest.fixture
def clients(tmp_path: Path) -> ClientCertificates:
    path = tmp_path / "clients.yaml"
    path.write_text(
        "clients:\n"
        f"  - subject: '{SUBJECT}'\n    state: MX\n    agency: SRE\n"
        "    types: [ConsularNotification]\n"
        "  - subject: 'CN=x,C=ZZ'\n    state: ZZ\n    agency: not a member\n"
    )
    return ClientCertificates(path)


class Current:
    """Whether the shared state is current, as the test says."""

    def __init__(self) -> None:
        self.value = True

    def __call__(self) -> bool:
        return self.value


def _auth(
    table: TokenTable, clients: ClientCertificates | None = None, current: Current | None = None
) -> Authenticator:
    return Authenticator(
        table, current=current or Current(), members=MEMBERS, clients=clients, retry_after_s=3
    )


def _issue(table: TokenTable, **kwargs: Any) -> tuple[str, bytes]:
    record, token = new_token(**kwargs)
    table.apply(record)
    return record.id, b"Bearer " + token.encode()


def test_bearer_token_resolves_to_its_agency() -> None:
    table = TokenTable()
    tid, header = _issue(table, state="GT", agency="PNC", types=["puente.CaseNotice"])
    caller = _auth(table).authenticate(_scope(header))
    assert caller == Caller(tid, "GT", "PNC", frozenset({"puente.CaseNotice"}), "token")
    assert caller.may_use("puente.CaseNotice") and not caller.may_use("puente.ConsularNotification")
    assert caller.restricted
    assert _auth(table).authenticate(_scope(b"bearer " + header[7:])).id == tid


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "AUTH_REQUIRED"),
        (b"Bearer", "AUTH_INVALID"),
        (b"Basic dXNlcjpwYXNz", "AUTH_INVALID"),
        (b"Bearer pgw_unknown", "AUTH_INVALID"),
        (b"Bearer \xff\xfe", "AUTH_INVALID"),
        (b"Bearer pgw_" + b"A" * 43, "AUTH_INVALID"),  # well formed, unknown
        (b"Bearer pgw_" + b"A" * (1 << 20), "AUTH_INVALID"),
    ],
)
def test_refusals(header: bytes | None, reason: str) -> None:
    with pytest.raises(Unauthenticated) as info:
        _auth(TokenTable()).authenticate(_scope(header))
    assert info.value.reason == reason
    assert info.value.status == 401
    assert info.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_replica_not_known_to_be_current_refuses_tokens_with_503_and_garbage_with_401() -> None:
    table, current = TokenTable(), Current()
    _, header = _issue(table, state="MX", agency="A")
    auth = _auth(table, current=current)
    caller = auth.authenticate(_scope(header))
    current.value = False
    with pytest.raises(Unavailable) as info:
        auth.authenticate(_scope(header))
    assert info.value.status == 503 and info.value.headers["Retry-After"] == "3"
    with pytest.raises(Unavailable):  # an open stream ends with 503, not "invalid token"
        auth.recheck(caller)
    with pytest.raises(Unauthenticated):  # not a token at all: no need to know anything
        auth.authenticate(_scope(b"Bearer pgw_short"))


def test_a_revocation_applies_to_the_next_request_and_to_open_streams() -> None:
    table = TokenTable()
    tid, header = _issue(table, state="MX", agency="A")
    auth = _auth(table)
    caller = auth.authenticate(_scope(header))
    auth.recheck(caller)
    record = table.get(tid)
    assert record is not None
    table.apply(revoked(record))
    with pytest.raises(Unauthenticated):
        auth.recheck(caller)
    with pytest.raises(Unauthenticated):
        auth.authenticate(_scope(header))


def test_a_token_of_a_state_no_longer_a_member_is_refused() -> None:
    table = TokenTable()
    _, header = _issue(table, state="CA", agency="RCMP")
    with pytest.raises(Unauthenticated):
        _auth(table).authenticate(_scope(header))


def test_client_certificates_by_subject(clients: ClientCertificates) -> None:
    auth = _auth(TokenTable(), clients)
    caller = auth.authenticate(_scope(subject=SUBJECT))
    assert caller.state == "MX" and caller.method == "mtls"
    assert caller.types == frozenset({"puente.ConsularNotification"})
    assert caller.id.startswith("cert:") and SUBJECT not in caller.id
    auth.recheck(caller)
    for subject in ("CN=gw.sre.mx,O=SRE,C=GT", "CN=x,C=ZZ"):
        with pytest.raises(Unauthenticated):
            auth.authenticate(_scope(subject=subject))
    with pytest.raises(Unauthenticated):  # no client map: no certificate caller
        _auth(TokenTable()).authenticate(_scope(subject=SUBJECT))


def test_a_token_wins_over_a_certificate(clients: ClientCertificates) -> None:
    table = TokenTable()
    tid, header = _issue(table, state="GT", agency="PNC")
    caller = _auth(table, clients).authenticate(_scope(header, SUBJECT))
    assert caller.id == tid and caller.state == "GT"


def test_a_gateway_of_some_states_refuses_callers_of_the_others(
    clients: ClientCertificates,
) -> None:
    """A state's own gateway (``served``) answers 403 STATE_NOT_SERVED to a valid token or
    certificate of another member state, and serves its own state's callers."""
    table = TokenTable()
    _, gt = _issue(table, state="GT", agency="PNC")
    mx_id, mx = _issue(table, state="MX", agency="SRE")
    edge = Authenticator(table, current=Current(), members=MEMBERS, served=["GT"], clients=clients)
    assert edge.authenticate(_scope(gt)).state == "GT"
    for scope in (_scope(mx), _scope(subject=SUBJECT)):
        with pytest.raises(Forbidden) as refused:
            edge.authenticate(scope)
        assert refused.value.reason == "STATE_NOT_SERVED"
        assert refused.value.status == 403
    assert _auth(table).authenticate(_scope(mx)).id == mx_id  # every member state by default
