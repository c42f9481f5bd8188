"""Gateways with their own settings: Kafka unreachable, tight rate limits, a trust list only on
file. Each runs as a real server next to the session's."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from puente.codec.registry import Registry
from puente.config import Settings
from puente_gateway.app import create_app
from puente_gateway.settings import GatewaySettings
from puente_gateway.tokens import TOKENS_FILE, TokenStore
from tests.harness import KafkaHarness, Tenant
from tests.integration.gateway.support import Keys, notice_json, serving

pytestmark = pytest.mark.kafka


@contextmanager
def gateway_with(settings: Settings, data: Path, **gw: Any) -> Iterator[tuple[str, dict[str, str]]]:
    """A server for ``settings``; yields its URL and one bearer header per state MX and GT."""
    gws = GatewaySettings(data_dir=data, **gw)
    app = create_app(settings, gws)
    store = TokenStore(data / TOKENS_FILE)
    tokens = {s: store.create(state=s, agency=f"agency {s}")[1] for s in ("MX", "GT")}
    store.close()
    with serving(app, gws) as url:
        yield url, {s: f"Bearer {t}" for s, t in tokens.items()}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kafka_unreachable_is_503_with_retry_after_and_bounded(
    kafka: KafkaHarness, gw_tenant: Tenant, tmp_path: Path
) -> None:
    real = kafka.settings_for(gw_tenant)
    dead = real.model_copy(
        update={"kafka": real.kafka.model_copy(update={"bootstrap": f"127.0.0.1:{_closed_port()}"})}
    )
    with gateway_with(dead, tmp_path, retry_after_s=7) as (url, auth):
        with httpx.Client(base_url=url, headers={"Authorization": auth["MX"]}, timeout=30) as c:
            registry_notice = notice_json(Registry.load(dead.schemas_dir), "MX")
            for method, path, kw in (
                (
                    "POST",
                    "/v1/notices",
                    {"json": {"type": "CaseNotice", "notice": registry_notice}},
                ),
                ("GET", "/v1/deliveries", {}),
                ("GET", "/v1/rejections", {}),
                ("GET", "/v1/trust-list", {}),
                ("GET", "/readyz", {}),
            ):
                t0 = time.monotonic()
                r = c.request(method, path, **kw)
                assert r.status_code == 503, (path, r.text)
                assert r.headers["Retry-After"] == "7"
                assert r.json()["reason"] in ("KAFKA_UNAVAILABLE", "TRUST_LIST_UNAVAILABLE")
                assert time.monotonic() - t0 < 5, path
            # The process itself is alive, and input errors are still reported as such.
            assert c.get("/healthz").status_code == 200
            assert c.post("/v1/notices", json={"type": "Nope", "notice": {}}).status_code == 422
        with httpx.Client(base_url=url) as anonymous:
            assert anonymous.post("/v1/notices", json={}).status_code == 401


def test_rate_limit_answers_429_with_retry_after_per_caller(
    kafka: KafkaHarness, gw_tenant: Tenant, tmp_path: Path
) -> None:
    settings = kafka.settings_for(gw_tenant)
    with gateway_with(settings, tmp_path, rate_per_s=1.0, rate_burst=3) as (url, auth):
        with httpx.Client(base_url=url, headers={"Authorization": auth["MX"]}) as mx:
            codes = [mx.get("/v1/schemas").status_code for _ in range(4)]
            assert codes == [200, 200, 200, 429]
            limited = mx.get("/v1/schemas")
            assert limited.status_code == 429
            assert limited.json()["reason"] == "RATE_LIMITED"
            assert int(limited.headers["Retry-After"]) >= 1
            with httpx.Client(base_url=url, headers={"Authorization": auth["GT"]}) as gt:
                assert gt.get("/v1/schemas").status_code == 200  # another caller, another bucket
            time.sleep(1.2)
            assert mx.get("/v1/schemas").status_code == 200
        with httpx.Client(base_url=url) as c:
            metrics = c.get("/metrics").text
    assert 'puente_gateway_rejections_total{reason="RATE_LIMITED"} 2.0' in metrics


def test_trust_list_from_file_when_the_topic_has_none(kafka: KafkaHarness, tmp_path: Path) -> None:
    bare = kafka.provision(["MX", "GT"], partitions=1)  # nothing on its trust topic
    settings = kafka.settings_for(bare)
    keys = Keys.make(("MX", "GT"))
    with gateway_with(settings, tmp_path / "a") as (url, auth):
        with httpx.Client(base_url=url, headers={"Authorization": auth["MX"]}) as c:
            r = c.get("/v1/trust-list")
        assert r.status_code == 503
        assert r.json()["reason"] == "TRUST_LIST_UNAVAILABLE"
    good = tmp_path / "trust.note"
    good.write_bytes(keys.trust_bytes)
    with gateway_with(settings, tmp_path / "b", trust_list_file=good) as (url, auth):
        with httpx.Client(base_url=url, headers={"Authorization": auth["GT"]}) as c:
            r = c.get("/v1/trust-list")
        assert r.status_code == 200
        assert r.content == keys.trust_bytes
    junk = tmp_path / "junk.note"
    junk.write_bytes(b"not a trust list\n")
    with (
        gateway_with(settings, tmp_path / "c", trust_list_file=junk) as (url, auth),
        httpx.Client(base_url=url, headers={"Authorization": auth["GT"]}) as c,
    ):
        assert c.get("/v1/trust-list").status_code == 503


def test_too_many_readers_is_503_busy(
    kafka: KafkaHarness, gw_tenant: Tenant, tmp_path: Path
) -> None:
    settings = kafka.settings_for(gw_tenant)
    with gateway_with(settings, tmp_path, max_readers=1, retry_after_s=2) as (url, auth):
        headers = {"Authorization": auth["GT"]}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            sse = {"Accept": "text/event-stream"}
            with c.stream("GET", "/v1/deliveries", headers=sse) as stream:
                assert stream.status_code == 200  # holds the only reader
                busy = httpx.get(f"{url}/v1/rejections", headers=headers, timeout=30)
            assert busy.status_code == 503
            assert busy.json()["reason"] == "BUSY"
            assert busy.headers["Retry-After"] == "2"
            deadline = time.monotonic() + 10
            while c.get("/v1/rejections").status_code != 200:  # freed when the stream closed
                assert time.monotonic() < deadline
                time.sleep(0.2)


def test_shutdown_with_an_open_event_stream_is_bounded(
    kafka: KafkaHarness, gw_tenant: Tenant, tmp_path: Path
) -> None:
    settings = kafka.settings_for(gw_tenant)
    client: httpx.Client | None = None
    with gateway_with(settings, tmp_path) as (url, auth):
        client = httpx.Client(base_url=url, headers={"Authorization": auth["GT"]}, timeout=60)
        stream = client.stream("GET", "/v1/deliveries", headers={"Accept": "text/event-stream"})
        response = stream.__enter__()
        assert response.status_code == 200
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 20  # graceful shutdown waits 10 s, then ends the stream
    stream.__exit__(None, None, None)
    client.close()
