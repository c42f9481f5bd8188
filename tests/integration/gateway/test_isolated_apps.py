"""Gateways with their own settings: Kafka unreachable, tight rate limits, a trust list only on
file, few readers. Each runs as a real server next to the session's."""

from __future__ import annotations

import base64
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
from puente.errors import ConfigError
from puente.evidence.trust import TRUST_LIST_KEY, node_holder
from puente.topics import DELIVER, INGRESS, TRUST
from puente_gateway.app import create_app
from puente_gateway.clock import now_ms
from tests.harness import KafkaHarness, Tenant
from tests.integration.gateway.conftest import Gateway
from tests.integration.gateway.support import (
    Keys,
    end_offsets,
    issue_token,
    notice_json,
    produce,
    run,
    serving,
    signed_delivery,
)

pytestmark = pytest.mark.kafka
SSE = {"Accept": "text/event-stream"}


@contextmanager
def gateway_with(settings: Settings, keys: Keys, **gw: Any) -> Iterator[tuple[str, dict[str, str]]]:
    """A server for ``settings`` following ``keys``' trust list; yields its URL and one bearer
    header per state MX and GT it serves (a token is issued at its own state's gateway)."""
    gws = keys.gateway(**gw)
    app = create_app(settings, gws)
    with serving(app, gws) as url:
        served = [s for s in ("MX", "GT") if s in gws.states]
        tokens = {s: issue_token(app, url, s, agency=f"agency {s}")[1] for s in served}
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
    kafka: KafkaHarness, gw_tenant: Tenant, keys: Keys
) -> None:
    real = kafka.settings_for(gw_tenant)
    dead = real.model_copy(
        update={"kafka": real.kafka.model_copy(update={"bootstrap": f"127.0.0.1:{_closed_port()}"})}
    )
    gw = keys.gateway(retry_after_s=7)
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
    kafka: KafkaHarness, gw_tenant: Tenant, keys: Keys
) -> None:
    settings = kafka.settings_for(gw_tenant)
    with gateway_with(settings, keys, rate_per_s=1.0, rate_burst=3) as (url, auth):
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
    keys = Keys.make(("MX", "GT"), tmp_path / "keys")
    missing = tmp_path / "missing.note"
    with gateway_with(settings, keys, trust_list_file=missing) as (url, auth):
        with httpx.Client(base_url=url, headers={"Authorization": auth["MX"]}) as c:
            r = c.get("/v1/trust-list")
            assert r.status_code == 503
            assert r.json()["reason"] == "TRUST_LIST_UNAVAILABLE"
            # Nothing to seal to and nothing to verify with: no notice goes out in clear, no
            # delivery is shown, and the reader's cursor stays where it was.
            notice = notice_json(Registry.load(settings.schemas_dir), "MX")
            posted = c.post("/v1/notices", json={"type": "CaseNotice", "notice": notice})
            assert (posted.status_code, posted.json()["reason"]) == (503, "TRUST_LIST_UNAVAILABLE")
            assert "Retry-After" in posted.headers
            page = c.get("/v1/deliveries")
            assert (page.status_code, page.json()["reason"]) == (503, "TRUST_LIST_UNAVAILABLE")
        assert sum(run(end_offsets(bare, bare.topic(INGRESS, "MX"))).values()) == 0
    good = tmp_path / "trust.note"
    good.write_bytes(keys.trust_bytes)
    with gateway_with(settings, keys, trust_list_file=good) as (url, auth):
        with httpx.Client(base_url=url, headers={"Authorization": auth["GT"]}) as c:
            r = c.get("/v1/trust-list")
        assert r.status_code == 200
        assert r.content == keys.trust_bytes
    junk = tmp_path / "junk.note"
    junk.write_bytes(b"not a trust list\n")
    with (
        gateway_with(settings, keys, trust_list_file=junk) as (url, auth),
        httpx.Client(base_url=url, headers={"Authorization": auth["GT"]}) as c,
    ):
        assert c.get("/v1/trust-list").status_code == 503


def test_streams_are_capped_per_caller_and_the_shared_readers_are_all_they_take(
    kafka: KafkaHarness, gw_tenant: Tenant, keys: Keys
) -> None:
    settings = kafka.settings_for(gw_tenant)
    served = len(keys.gateway().states)
    # One reader for the gateway, one per state it serves for its pages, one shared.
    small = {"max_readers": served + 2, "max_streams_per_caller": 1, "retry_after_s": 2}
    with gateway_with(settings, keys, **small) as (url, auth):
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
    kafka: KafkaHarness, gw_tenant: Tenant, keys: Keys
) -> None:
    settings = kafka.settings_for(gw_tenant)
    client: httpx.Client | None = None
    with gateway_with(settings, keys) as (url, auth):
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
    keys = Keys.make(("MX", "GT"), tmp_path / "keys")
    operator = tenant.service("operator")

    def publish(serial: int) -> None:
        run(
            produce(
                tenant, operator, tenant.topic(TRUST), [keys.relisted(serial)], key=TRUST_LIST_KEY
            )
        )

    publish(5)
    settings = kafka.settings_for(tenant)
    gateway = gateway_with(settings, keys, trust_refresh_s=0.2)
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


def test_a_states_own_gateway_serves_its_state_only_with_its_keys_only(
    kafka: KafkaHarness, gw_tenant: Tenant, keys: Keys, gateway: Gateway, tmp_path: Path
) -> None:
    """Production's shape: GT's gateway holds only GT's member keys (``keys_dir``), serves GT
    only (``states``) and connects as GT's gateway principal only: GT's agencies read their
    deliveries opened; a valid token of another state, issued before it started, is unknown
    to it (it cannot read that state's token topic) on every route, and nothing it sends is
    produced."""
    mx_token = gateway.token("MX")  # at a gateway that serves MX: on MX's own token topic
    settings = kafka.settings_for(gw_tenant)
    registry = Registry.load(settings.schemas_dir)
    _, delivery = signed_delivery(registry, keys, recipient="GT")
    topic = gw_tenant.topic(DELIVER, "GT")
    run(produce(gw_tenant, gw_tenant.node("MX"), topic, [delivery]))
    own = keys.store_of("GT", tmp_path / "gt-keys")
    # Readers: one for the gateway, one reserved for GT (the only state it serves; none kept
    # for the other 19), one shared.
    own_gateway = {"states": ("GT",), "keys_dir": own, "max_readers": 3}
    with gateway_with(settings, keys, **own_gateway) as (url, auth):
        with httpx.Client(base_url=url, headers={"Authorization": auth["GT"]}, timeout=30) as gt:
            items = []
            cursor: str | None = None
            while True:
                page = gt.get("/v1/deliveries", params={"cursor": cursor} if cursor else {}).json()
                items += page["items"]
                cursor = page["next_cursor"]
                if page["caught_up"]:
                    break
        mine = next(i for i in items if base64.b64decode(i["delivery"]) == delivery)
        assert mine["notice"]["origin"] == "MX" and "error" not in mine
        before = run(end_offsets(gw_tenant, gw_tenant.topic(INGRESS, "MX")))
        assert set(auth) == {"GT"}
        mx_auth = {"Authorization": f"Bearer {mx_token}"}
        with httpx.Client(base_url=url, headers=mx_auth, timeout=30) as mx:
            notice = notice_json(registry, "MX")
            for r in (
                mx.post("/v1/notices", json={"type": "CaseNotice", "notice": notice}),
                mx.get("/v1/deliveries"),
                mx.get("/v1/trust-list"),
            ):
                assert (r.status_code, r.json()["reason"]) == (401, "AUTH_INVALID"), r.text
        assert run(end_offsets(gw_tenant, gw_tenant.topic(INGRESS, "MX"))) == before
    # A gateway for a state whose keys it does not hold, or for a non-member, does not start.
    for wrong in ({"states": ("MX",), "keys_dir": own}, {"states": ("ZZ",)}):
        with pytest.raises(ConfigError):
            create_app(settings, keys.gateway(**wrong))


def test_no_valid_node_key_no_publish(kafka: KafkaHarness, tmp_path: Path) -> None:
    """A trust list in which MX's node has no valid encryption key (revoked): MX's notices are
    refused with 503 SEAL_KEY_UNKNOWN and nothing is produced; GT's still go out, sealed."""
    tenant = kafka.provision(["MX", "GT"], partitions=1)
    keys = Keys.make(("MX", "GT"), tmp_path / "keys")
    [mx_node] = [
        m for m in keys.store.key_metas() if m.holder == node_holder("MX") and m.is_encryption
    ]
    keys.store.revoke(mx_node.key_id, since=now_ms() - 60_000)
    revoked = keys.relisted(2)
    operator = tenant.service("operator")
    run(produce(tenant, operator, tenant.topic(TRUST), [revoked], key=TRUST_LIST_KEY))
    settings = kafka.settings_for(tenant)
    registry = Registry.load(settings.schemas_dir)
    with gateway_with(settings, keys) as (url, auth):
        for state, expected in (("MX", (503, "SEAL_KEY_UNKNOWN")), ("GT", (202, None))):
            with httpx.Client(base_url=url, headers={"Authorization": auth[state]}) as c:
                notice = notice_json(registry, state)
                r = c.post("/v1/notices", json={"type": "CaseNotice", "notice": notice})
            assert (r.status_code, r.json().get("reason")) == expected, r.text
    assert sum(run(end_offsets(tenant, tenant.topic(INGRESS, "MX"))).values()) == 0
    assert sum(run(end_offsets(tenant, tenant.topic(INGRESS, "GT"))).values()) == 1
