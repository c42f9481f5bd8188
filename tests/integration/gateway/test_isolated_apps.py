"""Gateways with their own settings: Kafka unreachable, tight rate limits, a trust list only on
file, few readers. Each runs as a real server next to the session's."""

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
from puente.config import GatewaySettings, Settings
from puente.evidence.trust import TRUST_LIST_KEY
from puente.members import load_members
from puente.topics import TRUST
from puente_gateway.app import create_app
from tests.harness import KafkaHarness, Tenant
from tests.integration.gateway.support import (
    Keys,
    issue_token,
    notice_json,
    produce,
    run,
    serving,
)

pytestmark = pytest.mark.kafka
SSE = {"Accept": "text/event-stream"}


@contextmanager
def gateway_with(settings: Settings, **gw: Any) -> Iterator[tuple[str, dict[str, str]]]:
    """A server for ``settings``; yields its URL and one bearer header per state MX and GT."""
    gws = GatewaySettings(**gw)
    app = create_app(settings, gws)
    with serving(app, gws) as url:
        tokens = {s: issue_token(app, url, s, agency=f"agency {s}")[1] for s in ("MX", "GT")}
        yield url, {s: f"Bearer {t}" for s, t in tokens.items()}


def _stream_status(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """The status of an event-stream request (and the body when it is an error)."""
    with httpx.Client(timeout=30) as c, c.stream("GET", url, headers=headers | SSE) as r:
        if r.status_code == 200:
            return r.status_code, {}
        r.read()
        body: dict[str, Any] = r.json()
        return r.status_code, body


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kafka_unreachable_is_503_with_retry_after_and_bounded(
    kafka: KafkaHarness, gw_tenant: Tenant
) -> None:
    real = kafka.settings_for(gw_tenant)
    dead = real.model_copy(
        update={"kafka": real.kafka.model_copy(update={"bootstrap": f"127.0.0.1:{_closed_port()}"})}
    )
    gw = GatewaySettings(retry_after_s=7)
    app = create_app(dead, gw)
    # No token can be issued without Kafka; a well-formed one is enough to be refused with 503:
    # the replica cannot confirm its token list is current, so it accepts no token at all.
    well_formed = "Bearer pgw_" + "A" * 43
    with serving(app, gw, ready=False) as url:
        with httpx.Client(base_url=url, headers={"Authorization": well_formed}, timeout=30) as c:
            notice = notice_json(Registry.load(dead.schemas_dir), "MX")
            requests: list[tuple[str, str, dict[str, Any]]] = [
                ("POST", "/v1/notices", {"json": {"type": "CaseNotice", "notice": notice}}),
                ("GET", "/v1/deliveries", {}),
                ("GET", "/v1/schemas", {}),
                ("GET", "/readyz", {}),
            ]
            for method, path, kw in requests:
                t0 = time.monotonic()
                r = c.request(method, path, **kw)
                assert r.status_code == 503, (path, r.text)
                assert r.headers["Retry-After"] == "7"
                assert r.json()["reason"] == "KAFKA_UNAVAILABLE"
                assert time.monotonic() - t0 < 5, path
            # The process itself is alive.
            assert c.get("/healthz").status_code == 200
        with httpx.Client(base_url=url) as anonymous:
            assert anonymous.post("/v1/notices", json={}).status_code == 401
            garbage = anonymous.get("/v1/schemas", headers={"Authorization": "Bearer x"})
            assert garbage.status_code == 401  # refused on its form, Kafka or not


def test_rate_limit_answers_429_with_retry_after_per_caller(
    kafka: KafkaHarness, gw_tenant: Tenant
) -> None:
    settings = kafka.settings_for(gw_tenant)
    with gateway_with(settings, rate_per_s=1.0, rate_burst=3) as (url, auth):
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
    missing = tmp_path / "missing.note"
    with gateway_with(settings, trust_list_file=missing) as (url, auth):
        with httpx.Client(base_url=url, headers={"Authorization": auth["MX"]}) as c:
            r = c.get("/v1/trust-list")
        assert r.status_code == 503
        assert r.json()["reason"] == "TRUST_LIST_UNAVAILABLE"
    good = tmp_path / "trust.note"
    good.write_bytes(keys.trust_bytes)
    with gateway_with(settings, trust_list_file=good) as (url, auth):
        with httpx.Client(base_url=url, headers={"Authorization": auth["GT"]}) as c:
            r = c.get("/v1/trust-list")
        assert r.status_code == 200
        assert r.content == keys.trust_bytes
    junk = tmp_path / "junk.note"
    junk.write_bytes(b"not a trust list\n")
    with (
        gateway_with(settings, trust_list_file=junk) as (url, auth),
        httpx.Client(base_url=url, headers={"Authorization": auth["GT"]}) as c,
    ):
        assert c.get("/v1/trust-list").status_code == 503


def test_streams_are_capped_per_caller_and_the_shared_readers_are_all_they_take(
    kafka: KafkaHarness, gw_tenant: Tenant
) -> None:
    settings = kafka.settings_for(gw_tenant)
    members = len(load_members(settings.policies_dir).codes)
    # One reader for the gateway, one per state for its pages, one shared.
    small = {"max_readers": members + 2, "max_streams_per_caller": 1, "retry_after_s": 2}
    with gateway_with(settings, **small) as (url, auth):
        mx = {"Authorization": auth["MX"]}
        gt = {"Authorization": auth["GT"]}
        with (
            httpx.Client(base_url=url, headers=mx, timeout=30) as c,
            c.stream("GET", "/v1/deliveries", headers=SSE) as stream,
        ):
            assert stream.status_code == 200  # holds the only shared reader
            second = c.get("/v1/rejections", headers=SSE)
            assert second.status_code == 429
            assert second.json()["reason"] == "TOO_MANY_STREAMS"
            assert second.headers["Retry-After"] == "2"
            status, body = _stream_status(f"{url}/v1/rejections", gt)
            assert (status, body["reason"]) == (503, "BUSY")
            # Pages of every state still work, from the readers reserved for them.
            assert httpx.get(f"{url}/v1/deliveries", headers=gt, timeout=30).status_code == 200
            assert c.get("/v1/rejections").status_code == 200
        deadline = time.monotonic() + 10
        while _stream_status(f"{url}/v1/rejections", gt)[0] != 200:
            assert time.monotonic() < deadline  # freed when the stream closed
            time.sleep(0.2)


def test_shutdown_with_an_open_event_stream_is_bounded(
    kafka: KafkaHarness, gw_tenant: Tenant
) -> None:
    settings = kafka.settings_for(gw_tenant)
    client: httpx.Client | None = None
    with gateway_with(settings) as (url, auth):
        client = httpx.Client(base_url=url, headers={"Authorization": auth["GT"]}, timeout=60)
        stream = client.stream("GET", "/v1/deliveries", headers=SSE)
        response = stream.__enter__()
        assert response.status_code == 200
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 20  # graceful shutdown waits 10 s, then ends the stream
    stream.__exit__(None, None, None)
    client.close()


def test_the_gateway_follows_the_trust_list_and_never_rolls_back(
    kafka: KafkaHarness, tmp_path: Path
) -> None:
    """A newer list is served within a refresh; an older one re-published on the topic is
    refused (the gateway keeps the newer one) — on a tenant of its own, whose trust topic this
    test may rewrite."""
    tenant = kafka.provision(["MX", "GT"], partitions=1)
    keys = Keys.make(("MX", "GT"))
    anchors = tmp_path / "anchors.vkey"
    anchors.write_text(keys.root.public.vkey + "\n")
    operator = tenant.service("operator")

    def publish(serial: int) -> None:
        run(
            produce(
                tenant, operator, tenant.topic(TRUST), [keys.relisted(serial)], key=TRUST_LIST_KEY
            )
        )

    publish(5)
    settings = kafka.settings_for(tenant)
    gateway = gateway_with(settings, trust_anchors_file=anchors, trust_refresh_s=0.2)
    with (
        gateway as (url, auth),
        httpx.Client(base_url=url, headers={"Authorization": auth["MX"]}) as c,
    ):

        def serial() -> int:
            r = c.get("/v1/trust-list")
            assert r.status_code == 200, r.text
            return int(r.headers["X-Puente-Trust-Serial"])

        assert serial() == 5
        publish(3)  # an older list re-published: refused, for as long as we look (20 refreshes)
        seen = [serial()]
        until = time.monotonic() + 20 * 0.2
        while time.monotonic() < until:
            time.sleep(0.05)
            seen.append(serial())
        publish(6)  # then a newer one: in force within a refresh
        deadline = time.monotonic() + 60
        while seen[-1] != 6:
            assert time.monotonic() < deadline, seen
            time.sleep(0.1)
            seen.append(serial())
        assert 3 not in seen, seen
