"""POST /v1/notices against a real server and broker: acknowledged records, idempotency, and
every refusal — each with its status, reason code and nothing produced."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import threading
from typing import Any

import httpx
import orjson
import pytest

from puente.codec.wire import decode
from puente.evidence.seal import open_notice
from puente.evidence.trust import node_holder
from puente.topics import INGRESS
from puente_gateway.clock import now_ms
from tests.integration.gateway.conftest import Gateway
from tests.integration.gateway.support import (
    end_offsets,
    notice_json,
    read_records,
    run,
)

pytestmark = pytest.mark.kafka


def _post(gateway: Gateway, token: str, body: Any, **kw: Any) -> httpx.Response:
    with gateway.client(token) as c:
        return c.post("/v1/notices", json=body, **kw)


def _ingress(gateway: Gateway, state: str) -> dict[int, int]:
    return run(end_offsets(gateway.tenant, gateway.tenant.topic(INGRESS, state)))


def test_notice_is_produced_after_ack_and_decodes_to_what_was_sent(gateway: Gateway) -> None:
    token = gateway.token("MX")
    notice = notice_json(gateway.registry, "MX")
    r = _post(gateway, token, {"type": "CaseNotice", "notice": notice})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["notice_id"] == notice["notice_id"]
    assert body["type"] == "puente.CaseNotice"
    assert body["origin"] == "MX"
    assert body["topic"] == gateway.tenant.topic(INGRESS, "MX")
    assert "Idempotent-Replay" not in r.headers
    # The acknowledged record is there, readable by MX's node, keyed by notice id, sealed to
    # the node: only its key opens it, to the notice whose digest the answer gives.
    [rec] = run(
        read_records(
            gateway.tenant,
            gateway.tenant.node("MX"),
            body["topic"],
            body["partition"],
            body["offset"],
        )
    )
    assert rec.key == notice["notice_id"].encode()
    assert hashlib.sha256(rec.value).hexdigest() == body["sealed_sha256"]
    assert rec.value[:2] == b"PS" and notice["summary"].encode() not in rec.value
    ring = gateway.keys.store.keyring(node_holder("MX"))
    opened = open_notice(rec.value, keys=ring, origin="MX").plaintext
    assert hashlib.sha256(opened).hexdigest() == body["sha256"]
    headers = dict(rec.headers)
    assert headers["puente.via"] == b"gateway"
    assert headers["puente.type"] == b"puente.CaseNotice"
    decoded = decode(gateway.registry, opened, reader="puente.CaseNotice")
    assert decoded["notice_id"] == notice["notice_id"]
    assert decoded["origin"] == "MX"
    assert decoded["summary"] == notice["summary"]


def test_consular_notification_by_full_type_name(gateway: Gateway) -> None:
    token = gateway.token("GT")
    notice = notice_json(gateway.registry, "GT", consular=True)
    r = _post(gateway, token, {"type": "puente.ConsularNotification", "notice": notice})
    assert r.status_code == 202, r.text
    assert r.json()["type"] == "puente.ConsularNotification"


def test_retry_returns_the_first_answer_and_produces_nothing(gateway: Gateway) -> None:
    token = gateway.token("MX")
    body: dict[str, Any] = {"type": "CaseNotice", "notice": notice_json(gateway.registry, "MX")}
    first = _post(gateway, token, body)
    assert first.status_code == 202
    before = _ingress(gateway, "MX")
    # Same content, different JSON spelling (key order, whitespace): still the same notice.
    reordered = dict(reversed(list(body["notice"].items())))
    again = _post(
        gateway,
        token,
        None,
        content=orjson.dumps(
            {"notice": reordered, "type": "CaseNotice"}, option=orjson.OPT_INDENT_2
        ),
        headers={"Content-Type": "application/json"},
    )
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replay"] == "true"
    # Another token of the same state retrying is the same notice, too.
    third = _post(gateway, gateway.token("MX"), body)
    assert third.json() == first.json()
    assert _ingress(gateway, "MX") == before


def test_concurrent_twins_produce_once(gateway: Gateway) -> None:
    token = gateway.token("MX")
    body = {"type": "CaseNotice", "notice": notice_json(gateway.registry, "MX")}
    before = _ingress(gateway, "MX")

    async def twins() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=30) as c:
            return list(await asyncio.gather(*(c.post("/v1/notices", json=body) for _ in range(5))))

    answers = run(twins())
    assert [a.status_code for a in answers] == [202] * 5
    assert len({a.content for a in answers}) == 1
    assert sum(1 for a in answers if "Idempotent-Replay" not in a.headers) == 1
    after = _ingress(gateway, "MX")
    assert sum(after.values()) - sum(before.values()) == 1


def test_same_notice_id_with_other_content_is_a_conflict(gateway: Gateway) -> None:
    token = gateway.token("MX")
    notice = notice_json(gateway.registry, "MX")
    assert _post(gateway, token, {"type": "CaseNotice", "notice": notice}).status_code == 202
    changed = copy.deepcopy(notice)
    changed["summary"] = notice["summary"] + " (amended)"
    before = _ingress(gateway, "MX")
    r = _post(gateway, token, {"type": "CaseNotice", "notice": changed})
    assert r.status_code == 409
    assert r.json()["reason"] == "NOTICE_ID_REUSED"
    assert _ingress(gateway, "MX") == before


def test_a_notice_id_belongs_to_its_state(gateway: Gateway) -> None:
    """Each state's gateway keeps its own first answers (its own topic, which only its own
    principal reaches): the same notice id from another state is that state's own notice, on
    its own ingress, and each state's retry gets its own first answer back."""
    mx_token, gt_token = gateway.token("MX"), gateway.token("GT")
    mx_notice = notice_json(gateway.registry, "MX")
    mx = {"type": "CaseNotice", "notice": mx_notice}
    gt_notice = notice_json(gateway.registry, "GT")
    gt_notice["notice_id"] = mx_notice["notice_id"]
    gt = {"type": "CaseNotice", "notice": gt_notice}
    first_mx = _post(gateway, mx_token, mx)
    assert first_mx.status_code == 202
    before = _ingress(gateway, "GT")
    first_gt = _post(gateway, gt_token, gt)
    assert first_gt.status_code == 202 and "Idempotent-Replay" not in first_gt.headers
    assert first_gt.json()["origin"] == "GT"
    assert first_gt.json()["topic"] == gateway.tenant.topic(INGRESS, "GT")
    after = _ingress(gateway, "GT")
    assert sum(after.values()) - sum(before.values()) == 1
    for token, body, first in ((mx_token, mx, first_mx), (gt_token, gt, first_gt)):
        again = _post(gateway, token, body)
        assert again.headers["Idempotent-Replay"] == "true"
        assert again.json() == first.json()


# --- refusals: status, reason, and nothing produced ------------------------------------------


def _refused(
    gateway: Gateway, response: httpx.Response, status: int, reason: str, before: dict[int, int]
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["reason"] == reason
    assert body["message"]
    assert _ingress(gateway, "MX") == before
    return body


@pytest.fixture
def mx(gateway: Gateway) -> str:
    return gateway.token("MX")


@pytest.fixture
def before(gateway: Gateway) -> dict[int, int]:
    return _ingress(gateway, "MX")


def test_spoofed_origin_is_forbidden(gateway: Gateway, before: dict[int, int]) -> None:
    gt_token = gateway.token("GT")
    notice = notice_json(gateway.registry, "MX")  # body says MX, token is GT's
    r = _post(gateway, gt_token, {"type": "CaseNotice", "notice": notice})
    _refused(gateway, r, 403, "ORIGIN_MISMATCH", before)
    assert _ingress(gateway, "GT") == run(
        end_offsets(gateway.tenant, gateway.tenant.topic(INGRESS, "GT"))
    )


def test_agency_limited_to_other_types_is_forbidden(
    gateway: Gateway, before: dict[int, int]
) -> None:
    consular_only = gateway.token("MX", types=("puente.ConsularNotification",))
    r = _post(
        gateway,
        consular_only,
        {"type": "CaseNotice", "notice": notice_json(gateway.registry, "MX")},
    )
    _refused(gateway, r, 403, "NOTICE_TYPE_FORBIDDEN", before)
    ok = _post(
        gateway,
        consular_only,
        {
            "type": "ConsularNotification",
            "notice": notice_json(gateway.registry, "MX", consular=True),
        },
    )
    assert ok.status_code == 202


def test_wrong_content_type_is_415(gateway: Gateway, mx: str, before: dict[int, int]) -> None:
    body = orjson.dumps({"type": "CaseNotice", "notice": notice_json(gateway.registry, "MX")})
    for ctype in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
    ):
        r = _post(gateway, mx, None, content=body, headers={"Content-Type": ctype})
        _refused(gateway, r, 415, "UNSUPPORTED_MEDIA_TYPE", before)
    with gateway.client(mx) as c:
        r = c.post("/v1/notices", content=body)  # no content type at all
    _refused(gateway, r, 415, "UNSUPPORTED_MEDIA_TYPE", before)


def test_malformed_json_is_400(gateway: Gateway, mx: str, before: dict[int, int]) -> None:
    for raw in (b'{"type": "CaseNotice", "notice": {', b"\xff\xfe", b"", b"NaN"):
        r = _post(gateway, mx, None, content=raw, headers={"Content-Type": "application/json"})
        _refused(gateway, r, 400, "MALFORMED_JSON", before)


def test_declared_oversize_body_is_refused_before_it_is_sent(
    gateway: Gateway, mx: str, before: dict[int, int]
) -> None:
    limit = gateway.gw.max_body_bytes
    r = _post(
        gateway,
        mx,
        None,
        content=b"{" + b" " * limit + b"}",
        headers={"Content-Type": "application/json"},
    )
    _refused(gateway, r, 413, "BODY_TOO_LARGE", before)


def test_chunked_oversize_body_is_refused_while_streaming(
    gateway: Gateway, mx: str, before: dict[int, int]
) -> None:
    limit = gateway.gw.max_body_bytes
    sent = 0
    stop = threading.Event()

    def chunks() -> Any:
        nonlocal sent
        yield b'{"type": "CaseNotice", "notice": {"summary": "'
        # Far more than the limit, without a Content-Length: the server must stop early.
        for _ in range(limit // 1024 * 20):
            if stop.is_set():
                return
            sent += 1024
            yield b"x" * 1024
        yield b'"}}'

    try:
        r = _post(gateway, mx, None, content=chunks(), headers={"Content-Type": "application/json"})
    except httpx.HTTPError:
        pytest.fail("the server should answer 413, not drop the connection")
    stop.set()
    _refused(gateway, r, 413, "BODY_TOO_LARGE", before)


def test_envelope_errors_are_422_with_paths(
    gateway: Gateway, mx: str, before: dict[int, int]
) -> None:
    cases: list[tuple[Any, set[str]]] = [
        ([1, 2], {""}),
        ({"notice": {}}, {"type"}),
        ({"type": "CaseNotice"}, {"notice"}),
        ({"type": 7, "notice": []}, {"type", "notice"}),
        ({"type": "CaseNotice", "notice": {}, "extra": 1}, {"extra"}),
    ]
    for body, paths in cases:
        r = _post(gateway, mx, body)
        err = _refused(gateway, r, 422, "ENVELOPE_INVALID", before)
        assert {p["path"] for p in err["problems"]} == paths, body


def test_unknown_notice_type_is_422(gateway: Gateway, mx: str, before: dict[int, int]) -> None:
    for kind in ("Parcel", "DeliveryReceipt", "puente.Delivery", ""):
        r = _post(gateway, mx, {"type": kind, "notice": notice_json(gateway.registry, "MX")})
        err = _refused(gateway, r, 422, "UNKNOWN_NOTICE_TYPE", before)
        assert err["problems"][0]["path"] == "type"


def test_field_errors_name_each_path(gateway: Gateway, mx: str, before: dict[int, int]) -> None:
    notice = notice_json(gateway.registry, "MX")
    notice["created_at"] = "yesterday"
    notice["persons"] = [dict(notice["persons"][0], sex="ROBOT")] if notice["persons"] else []
    del notice["summary"]
    notice["unexpected"] = True
    r = _post(gateway, mx, {"type": "CaseNotice", "notice": notice})
    err = _refused(gateway, r, 422, "INVALID_NOTICE", before)
    paths = {p["path"]: p["problem"] for p in err["problems"]}
    assert "notice.created_at" in paths
    assert "notice.summary" in paths and "missing" in paths["notice.summary"]
    assert "notice.unexpected" in paths
    if notice["persons"]:
        assert "notice.persons[0].sex" in paths


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "+10000-01-01T00:00:00Z"]
)
def test_extreme_timestamps_are_422_with_the_field_path(
    gateway: Gateway, mx: str, before: dict[int, int], when: str
) -> None:
    notice = notice_json(gateway.registry, "MX")
    notice["created_at"] = when
    r = _post(gateway, mx, {"type": "CaseNotice", "notice": notice})
    err = _refused(gateway, r, 422, "INVALID_NOTICE", before)
    assert [p["path"] for p in err["problems"]] == ["notice.created_at"]


def test_missing_origin_is_a_field_error_not_a_spoof(
    gateway: Gateway, mx: str, before: dict[int, int]
) -> None:
    notice = notice_json(gateway.registry, "MX")
    notice["origin"] = 52
    r = _post(gateway, mx, {"type": "CaseNotice", "notice": notice})
    err = _refused(gateway, r, 422, "INVALID_NOTICE", before)
    assert [p["path"] for p in err["problems"]] == ["notice.origin"]


def test_lone_surrogate_is_refused_not_a_crash(
    gateway: Gateway, mx: str, before: dict[int, int]
) -> None:
    notice = notice_json(gateway.registry, "MX")
    raw = orjson.dumps({"type": "CaseNotice", "notice": notice}).replace(
        notice["summary"].encode(), b"\\ud800", 1
    )
    r = _post(gateway, mx, None, content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert _ingress(gateway, "MX") == before


# --- authentication -------------------------------------------------------------------------


def test_no_credentials_is_401_with_a_challenge(gateway: Gateway, before: dict[int, int]) -> None:
    body = {"type": "CaseNotice", "notice": notice_json(gateway.registry, "MX")}
    with gateway.client() as c:
        r = c.post("/v1/notices", json=body)
    err = _refused(gateway, r, 401, "AUTH_REQUIRED", before)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert err["problems"] == []


@pytest.mark.parametrize(
    "header",
    ["Bearer pgw_not-a-real-token", "Bearer", "Basic bXg6cGFzc3dvcmQ=", "pgw_no-scheme"],
)
def test_bad_credentials_are_401(gateway: Gateway, before: dict[int, int], header: str) -> None:
    body = {"type": "CaseNotice", "notice": notice_json(gateway.registry, "MX")}
    with httpx.Client(base_url=gateway.url, headers={"Authorization": header}) as c:
        r = c.post("/v1/notices", json=body)
    _refused(gateway, r, 401, "AUTH_INVALID", before)
    assert "WWW-Authenticate" in r.headers


def test_revoked_and_expired_tokens_are_401_like_unknown_ones(gateway: Gateway) -> None:
    record, token = gateway.issue("MX", agency="to revoke")
    body = {"type": "CaseNotice", "notice": notice_json(gateway.registry, "MX")}
    assert _post(gateway, token, body).status_code == 202
    long_ago = now_ms() - 10 * 86_400_000
    _, expired = gateway.issue(
        "MX", agency="expired", now=long_ago, expires_ms=long_ago + 86_400_000
    )
    before = _ingress(gateway, "MX")
    gateway.revoke(record.id)  # the serving replica applies its own write at once
    fresh = {"type": "CaseNotice", "notice": notice_json(gateway.registry, "MX")}
    answers = [_post(gateway, t, fresh) for t in (token, expired, "pgw_" + "A" * 43)]
    for r in answers:
        _refused(gateway, r, 401, "AUTH_INVALID", before)
    # None of the answers says which it was: the bodies are identical.
    assert len({r.content for r in answers}) == 1
