"""The gateway under hostile load, on a real server (uvicorn on loopback) and the real broker:
oversized and bogus credentials, slow and oversized heads and bodies, one member opening many
streams while another is served, and fuzzed notices. Nothing may grow without bound, hang,
starve another member or answer 500.

Failed authentications are counted per client address, so each test speaks from its own
loopback address (127.0.0.x) and one test's bogus tokens never block another's requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from puente.codec.jsonconv import to_json
from puente.codec.registry import Registry
from puente.config import GatewaySettings
from puente.evidence.trust import TRUST_LIST_KEY
from puente.evidence.verify import DELIVERY_RECEIPT
from puente.topics import DELIVER, TRUST
from puente_gateway.app import create_app
from tests.harness import KafkaHarness, Tenant
from tests.integration.gateway.support import (
    Keys,
    close_streams,
    context_of,
    issue_token,
    notice_json,
    open_streams,
    produce,
    receipt_record,
    run,
    serving,
    wait_until,
)
from tests.jsonfuzz import mutations

pytestmark = pytest.mark.kafka
SSE = {"Accept": "text/event-stream"}
_ADDRESSES = (f"127.0.0.{i}" for i in itertools.count(2))
LIMITS = GatewaySettings(
    head_timeout_s=1.0,
    body_timeout_s=1.0,
    auth_fail_burst=5,
    auth_fail_per_s=0.5,
    max_streams_per_caller=2,
    max_streams_per_state=4,
    max_page_bytes=64 * 1024,
    rate_per_s=10_000,
    rate_burst=10_000,
    trust_refresh_s=0.5,
    sse_heartbeat_s=0.5,
)


@dataclass
class Hostile:
    """A gateway with tight limits, its tenant, and a fresh client address per caller."""

    url: str
    app: FastAPI
    tenant: Tenant
    keys: Keys
    registry: Registry

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def token(self, state: str, **kw: Any) -> str:
        return issue_token(self.app, self.url, state, **kw)[1]

    def client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        """A client from a loopback address no other client used."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = httpx.HTTPTransport(local_address=next(_ADDRESSES))
        return httpx.Client(
            base_url=self.url, headers=headers, transport=transport, timeout=30, **kw
        )

    def socket(self) -> socket.socket:
        """A raw connection from a fresh loopback address."""
        s = socket.socket()
        s.bind((next(_ADDRESSES), 0))
        s.settimeout(30)
        s.connect(("127.0.0.1", self.port))
        return s


@pytest.fixture(scope="module")
def hostile(kafka: KafkaHarness, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    tenant = kafka.provision(["MX", "GT"], partitions=2)
    keys = Keys.make(("MX", "GT"), tmp_path_factory.mktemp("hostile-keys"))
    operator = tenant.service("operator")
    run(produce(tenant, operator, tenant.topic(TRUST), [keys.trust_bytes], key=TRUST_LIST_KEY))
    settings_ = kafka.settings_for(tenant)
    gw = keys.gateway(LIMITS)
    app = create_app(settings_, gw)
    with serving(app, gw) as url:
        yield Hostile(url, app, tenant, keys, Registry.load(settings_.schemas_dir))


def _read_all(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := s.recv(65536):
            out += chunk
    return out


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


# --- heads: size and time ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "status", "reason"),
    [
        (b"GET /v1/schemas HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer pgw_", 431, "HEADERS"),
        (b"GET /v1/schemas HTTP/1.1\r\nHost: x\r\nX-Filler: ", 431, "HEADERS_TOO_LARGE"),
        (b"GET /v1/schemas?cursor=", 414, "URL_TOO_LONG"),
        (b"GET /healthz HTTP/1.1\r\n" + b"X-A: b\r\n" * 10, 431, "HEADERS_TOO_LARGE"),
    ],
)
def test_an_oversized_head_is_refused_by_the_parser_and_the_connection_closed(
    hostile: Hostile, head: bytes, status: int, reason: str
) -> None:
    with hostile.socket() as s:
        s.sendall(head)
        sent = len(head)
        filler = b"A" * 65536 if not head.endswith(b"\r\n") else b"X-A: b\r\n" * 8192
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < 8 * 1024 * 1024:  # an 8 MiB head, as uvicorn used to accept
                s.sendall(filler)
                sent += len(filler)
        answer = _read_all(s)
    assert _status(answer) == status, answer[:200]
    assert reason.encode() in answer
    assert sent < 8 * 1024 * 1024  # the server closed before the client could send it all


def test_a_head_within_the_limits_is_served(hostile: Hostile) -> None:
    token = hostile.token("MX")
    with hostile.client(token) as c:
        r = c.get("/v1/schemas", headers={"X-Filler": "A" * 12_000})
    assert r.status_code == 200


@pytest.mark.parametrize("first", [b"", b"GET /v1/schemas HTTP/1.1\r\nHost: x\r\n"])
def test_a_slow_or_silent_head_is_closed_with_408(hostile: Hostile, first: bytes) -> None:
    answer = b""
    with hostile.socket() as s:
        s.sendall(first)
        s.settimeout(0.2)
        deadline = time.monotonic() + 30
        drip = itertools.cycle(b"X-Slow: drip\r\n")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while True:
                assert time.monotonic() < deadline, "the server kept the connection open"
                if first:
                    s.sendall(bytes([next(drip)]))  # one byte every 0.2 s
                try:
                    chunk = s.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                answer += chunk
    assert _status(answer) == 408 and b"HEAD_TIMEOUT" in answer


def test_an_idle_connection_outlives_the_clients_idle_expiry(hostile: Hostile) -> None:
    """A client keeps an idle connection for a while (httpx: 5 s) and then sends its next
    request on it: the gateway must not close it first, or that request fails with a read
    error instead of an answer (uvicorn's own 5 s made a test fail that way)."""
    client_expiry = httpx.Limits().keepalive_expiry or 5.0
    assert context_of(hostile.app).gw.keep_alive_s > client_expiry + 1
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with hostile.socket() as s:
        s.sendall(request)
        assert _status(s.recv(65536)) == 200
        time.sleep(client_expiry + 1)
        s.sendall(request)
        assert _status(s.recv(65536)) == 200


def test_a_slow_body_is_408_and_closed(hostile: Hostile) -> None:
    token = hostile.token("MX")
    with hostile.socket() as s:
        s.sendall(
            b"POST /v1/notices HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 1000\r\n\r\n{"
        )
        answer = _read_all(s)  # the client sends nothing more
    assert _status(answer) == 408 and b"BODY_TIMEOUT" in answer


def test_an_unauthenticated_upload_is_answered_and_not_read(hostile: Hostile) -> None:
    declared = 200 * 1024 * 1024
    with hostile.socket() as s:
        s.sendall(
            b"POST /v1/notices HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(declared).encode() + b"\r\n\r\n"
        )
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < declared:
                s.sendall(b" " * 65536)
                sent += 65536
        answer = _read_all(s)
    assert _status(answer) == 401
    assert b"connection: close" in answer.lower()  # said so, before closing
    assert sent < declared  # closed once the answer was given, not read to the end


# --- bogus credentials --------------------------------------------------------------------------


def test_bogus_tokens_of_any_size_are_refused_and_leave_nothing_behind(hostile: Hostile) -> None:
    ctx = context_of(hostile.app)
    tokens_before = len(ctx.shared.tokens)
    bogus = [
        "pgw_" + secrets.token_urlsafe(32),  # the right form, unknown
        "pgw_" + secrets.token_urlsafe(700),  # 1 KiB
        secrets.token_urlsafe(6000),  # 8 KiB
    ]
    for value in bogus:
        with hostile.client(value) as c:
            r = c.get("/v1/schemas")
        assert r.status_code == 401 and r.json()["reason"] == "AUTH_INVALID"
    with (
        hostile.client("pgw_" + secrets.token_urlsafe(768 * 1024)) as c,  # 1 MiB
        contextlib.suppress(httpx.TransportError),  # closed while still sending is fine
    ):
        assert c.get("/v1/schemas").status_code == 431
    assert len(ctx.shared.tokens) == tokens_before  # nothing was looked up into being


def test_failed_authentications_are_limited_per_address(hostile: Hostile) -> None:
    good = hostile.token("GT")
    transport = httpx.HTTPTransport(local_address=next(_ADDRESSES))
    with httpx.Client(base_url=hostile.url, transport=transport, timeout=30) as c:
        bad = {"Authorization": "Bearer pgw_" + "B" * 43}
        codes = [c.get("/v1/schemas", headers=bad).status_code for _ in range(5)]
        assert codes == [401] * 5
        limited = c.get("/v1/schemas", headers=bad)
        assert limited.status_code == 429
        assert limited.json()["reason"] == "AUTH_RATE_LIMITED"
        retry_after = int(limited.headers["Retry-After"])
        assert 1 <= retry_after <= 2  # one failure leaks away in 2 s at 0.5/s
        # The address is refused before its credentials are looked at, good ones too...
        assert c.get("/v1/schemas", headers={"Authorization": f"Bearer {good}"}).status_code == 429
        assert c.get("/healthz").status_code == 200  # ...but only for /v1
        wait_until(
            lambda: (
                c.get("/v1/schemas", headers={"Authorization": f"Bearer {good}"}).status_code == 200
            ),
            what="the address to regain a try",
        )
    with hostile.client(good) as other:  # another address was never affected
        assert other.get("/v1/schemas").status_code == 200
    metrics = httpx.get(f"{hostile.url}/metrics").text
    assert 'puente_gateway_rejections_total{reason="AUTH_RATE_LIMITED"}' in metrics


# --- readers: no member starves another ---------------------------------------------------------


async def test_one_member_with_a_hundred_streams_starves_no_one(hostile: Hostile) -> None:
    mx = [hostile.token("MX", agency=f"MX agency {i}") for i in range(10)]
    gt = hostile.token("GT")
    answers, opened = await open_streams(hostile.url, mx, 100)
    try:
        assert [a for a in answers if a[0] == 200] == [(200, "")] * LIMITS.max_streams_per_state
        assert set(answers) == {(200, ""), (429, "TOO_MANY_STREAMS")}
        async with httpx.AsyncClient(
            base_url=hostile.url, headers={"Authorization": f"Bearer {gt}"}, timeout=30
        ) as c:
            page = await c.get("/v1/deliveries")
            assert page.status_code == 200, page.text
            rejections = await c.get("/v1/rejections")
            assert rejections.status_code == 200
            async with c.stream("GET", "/v1/deliveries", headers=SSE) as stream:
                assert stream.status_code == 200
            # The trust-list refresh still gets a reader: a newer list is picked up.
            newer = hostile.keys.relisted(2)
            operator = hostile.tenant.service("operator")
            topic = hostile.tenant.topic(TRUST)
            await produce(hostile.tenant, operator, topic, [newer], key=TRUST_LIST_KEY)
            deadline = time.monotonic() + 30
            while (await c.get("/v1/trust-list")).headers.get("X-Puente-Trust-Serial") != "2":
                assert time.monotonic() < deadline, "the trust list was not refreshed"
                await asyncio.sleep(0.2)
    finally:
        await close_streams(opened)


def test_pages_reuse_readers_and_stay_within_their_byte_budget(hostile: Hostile) -> None:
    big = [os.urandom(40_000) for _ in range(6)]  # undecodable: given raw to an all-types agency
    run(
        produce(
            hostile.tenant,
            hostile.tenant.node("MX"),
            hostile.tenant.topic(DELIVER, "GT"),
            big,
        )
    )
    pool = context_of(hostile.app).readers
    with hostile.client(hostile.token("GT")) as c:
        c.get("/v1/deliveries")  # a reader exists now
        opened = pool.opened
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        sizes = []
        for _ in range(20):
            params: dict[str, Any] = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
            page = c.get("/v1/deliveries", params=params).json()
            sizes.append(sum(len(i["delivery"]) * 3 // 4 for i in page["items"]))
            items += page["items"]
            cursor = page["next_cursor"]
    assert pool.opened - opened <= 1  # twenty pages, at most one new SCRAM login
    assert len(items) == len(big)
    budget = LIMITS.max_page_bytes
    assert all(size <= budget + 40_002 for size in sizes)  # the budget and at most one record
    assert max(sizes) > 0 and len([s for s in sizes if s]) >= 3  # so it took several pages


# --- fuzzing the JSON -> Avro path ----------------------------------------------------------------


@st.composite
def requests(draw: st.DrawFn, valid: list[tuple[str, Any]]) -> tuple[str, Any]:
    """A POST body: a valid notice or receipt of the caller's state, with a fresh id, mutated."""
    path, body = draw(st.sampled_from(valid))
    fresh = str(draw(st.uuids()))
    if "receipt" in body:
        body = {"receipt": dict(body["receipt"], receipt_id=fresh)}
    else:
        body = dict(body, notice=dict(body["notice"], notice_id=fresh))
    return path, draw(mutations(body))


def valid_requests(registry: Registry, state: str) -> list[tuple[str, Any]]:
    """Valid notices of both types and a receipt of ``state``, to mutate."""
    out: list[tuple[str, Any]] = []
    for seed in range(6):
        consular = seed % 2 == 1
        notice = notice_json(registry, state, seed=seed, consular=consular)
        kind = "ConsularNotification" if consular else "CaseNotice"
        out.append(("/v1/notices", {"type": kind, "notice": notice}))
    record = receipt_record(state)
    out.append(("/v1/receipts", {"receipt": to_json(registry, DELIVERY_RECEIPT, record)}))
    return out


FUZZ_OK = {202, 400, 403, 409, 413, 415, 422}


# The server runs in this process, in another thread, and aiokafka there draws from the global
# `random` (broker choice, fetch order) while Hypothesis generates: that is not the strategy's.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
def test_fuzzed_notices_and_receipts_get_only_typed_refusals(hostile: Hostile) -> None:
    token = hostile.token("MX")
    seen: dict[int, int] = {}
    with hostile.client(token) as c:

        @settings(
            max_examples=150,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(requests(valid_requests(hostile.registry, "MX")))
        def post(request: tuple[str, Any]) -> None:
            path, body = request
            r = c.post(path, json=body)
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            assert r.status_code in FUZZ_OK, (r.status_code, r.text[:500])
            if r.status_code != 202:
                assert r.json()["reason"].isupper()

        post()
    assert seen.get(202, 0) > 0  # the mutations left some requests valid
    assert sum(v for k, v in seen.items() if k >= 500) == 0


# --- memory of a real gateway process -----------------------------------------------------------


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_gateway_process_stays_small_under_a_flood_of_megabyte_tokens(
    kafka: KafkaHarness, hostile: Hostile, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {
        "PUENTE_STATE_DIR": str(tmp_path),
        "PUENTE_SECRETS_DIR": str(hostile.tenant.secrets.directory),
        "PUENTE_KAFKA_BOOTSTRAP": kafka.endpoint.bootstrap,
        "PUENTE_KAFKA_TOPIC_PREFIX": hostile.tenant.naming.prefix,
        "PUENTE_GATEWAY__AUTH_FAIL_BURST": "1000000",
        "PUENTE_GATEWAY__TRUST_ANCHORS_FILE": str(hostile.keys.anchors),
        # The tenant's states, each as its own gateway principal, with their keys.
        "PUENTE_GATEWAY__STATES": json.dumps(hostile.tenant.members),
        "PUENTE_GATEWAY__KEYS_DIR": str(hostile.keys.store.root),
        "PUENTE_LOG_LEVEL": "warning",
    }
    cmd = [sys.executable, "-m", "puente", "gateway", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), timeout_s=60, what="the gateway process")
        for _ in range(20):  # warm up: connections, imports, allocator arenas
            _bogus(url, 1024 * 1024)
        before = _rss_kib(proc.pid)
        answers = [_bogus(url, 1024 * 1024) for _ in range(300)]
        after = _rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert set(answers) <= {431, -1}, answers  # -1: closed while the client still sent
    assert after - before < 32 * 1024, (before, after)  # 300 MiB were sent


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _bogus(url: str, size: int) -> int:
    header = {"Authorization": "Bearer pgw_" + secrets.token_urlsafe(size * 3 // 4)}
    try:
        return httpx.get(f"{url}/v1/schemas", headers=header, timeout=30).status_code
    except httpx.TransportError:
        return -1
