"""``GET /v1/warnings`` on a real gateway and broker: every member's agencies read the early
warnings, each record's signature checked against the trust list the gateway follows; as a page
(the ``puente.warnings.list/v1`` document) and as Server-Sent Events that resume from
``Last-Event-ID``.

Self-contained (its own tenant, trust list and gateway): the warnings are the evaluator's real
output over node-signed aggregates (``surge_episode``), signed with an evaluator key the trust
list names, and produced to the warnings topic as the evaluator's principal.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI

from puente.codec.registry import Registry
from puente.config import GatewaySettings
from puente.evidence.keys import SigningKey
from puente.evidence.keystore import KeyStore
from puente.evidence.trust import (
    TRUST_LIST_KEY,
    KeyEntry,
    TrustList,
    Usage,
    member_holder,
    service_holder,
)
from puente.topics import TRUST, WARNINGS
from puente.warnings.evaluator import EarlyWarning
from puente.warnings.signing import WARNING_CONTEXT, sign
from puente_gateway.app import create_app
from puente_gateway.clock import now_ms
from tests.harness import KafkaHarness, Tenant
from tests.integration.gateway.support import issue_token, produce, run, serving
from tests.unit.warnings.conftest import DAY, surge_episode

pytestmark = pytest.mark.kafka

STATES = ("GT", "MX", "US")
SSE = {"Accept": "text/event-stream"}


@dataclass
class World:
    tenant: Tenant
    registry: Registry
    app: FastAPI
    url: str
    evaluator: SigningKey
    warnings: list[EarlyWarning]  # STARTED then ENDED, as the evaluator derived them

    def client(self, state: str = "MX") -> httpx.Client:
        _, token = issue_token(self.app, self.url, state, agency=f"Protección civil {state}")
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def publish(self, *values: tuple[bytes, list[tuple[str, bytes]]]) -> None:
        """Records on the warnings topic, as the evaluator's principal (the only writer)."""
        from puente.kafka.clients import producer, start

        async def go() -> None:
            cred = self.tenant.service("warnings")
            p = producer(self.tenant.endpoint, cred)
            await start(p, self.tenant.endpoint, cred)
            try:
                for value, headers in values:
                    topic = self.tenant.topic(WARNINGS)
                    await p.send_and_wait(topic, value, headers=headers, partition=0)
            finally:
                await p.stop()

        run(go())

    def signed(self, w: EarlyWarning) -> tuple[bytes, list[tuple[str, bytes]]]:
        body = w.encode(self.registry)
        return body, sign(self.evaluator, WARNING_CONTEXT, body, signed_at=now_ms()).headers()


@pytest.fixture(scope="module")
def world(kafka: KafkaHarness, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tenant = kafka.provision(list(STATES), partitions=1)
    root = SigningKey.generate("puente.operator/root")
    evaluator = SigningKey.generate("puente.svc/warnings")
    now = now_ms()
    listed = KeyEntry(
        evaluator.public, service_holder("warnings"), frozenset({Usage.EARLY_WARNING}), now - DAY
    )
    trust = TrustList(1, now - DAY, now + 30 * DAY, (listed,))  # the evaluator's key
    run(
        produce(
            tenant,
            tenant.service("operator"),
            tenant.topic(TRUST),
            [trust.sign(root)],
            key=TRUST_LIST_KEY,
        )
    )
    anchors: Path = tmp_path_factory.mktemp("warnings-gw") / "anchors.vkey"
    anchors.write_text(root.public.vkey + "\n")
    settings = kafka.settings_for(tenant)
    gw = GatewaySettings(
        rate_per_s=1000,
        rate_burst=1000,
        sse_heartbeat_s=0.5,
        sse_recheck_s=0.5,
        trust_anchors_file=anchors,
        trust_refresh_s=0.5,
        states=STATES,  # the tenant's states: each is reached as its own gateway
    )
    # A state's gateway starts only with its state's encryption key (it opens its deliveries).
    store = KeyStore(settings.keys_dir)
    for state in STATES:
        store.generate_encryption(member_holder(state), valid_from=now - DAY)
    registry = Registry.load(settings.schemas_dir)
    app = create_app(settings, gw, registry=registry)
    with serving(app, gw) as url:
        yield World(tenant, registry, app, url, evaluator, surge_episode(STATES))


def _events(lines: Iterator[str], want: int, timeout_s: float = 30) -> list[dict[str, str]]:
    """The next ``want`` SSE events (heartbeats skipped)."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    for line in lines:
        if line == "":
            if "data" in current:
                events.append(current)
                if len(events) >= want:
                    break
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            current[name] = value
        assert time.monotonic() < deadline, "the stream stalled"
    return events


def test_warnings_as_a_page_and_as_events(world: World) -> None:
    started, ended = world.warnings
    with httpx.Client(base_url=world.url, timeout=30) as anonymous:
        assert anonymous.get("/v1/warnings").status_code == 401  # agencies only
    with world.client("GT") as c:
        empty = c.get("/v1/warnings")
        assert empty.status_code == 200
        assert empty.json() == {"contract": "puente.warnings.list/v1", "warnings": [], "active": []}

        # The evaluator publishes a warning; a second evaluator the same bytes again; and
        # someone with the topic's write access a copy with an altered value under the
        # evaluator's signature.
        body, headers = world.signed(started)
        forged = body.replace(b"test.detentions", b"test.detentionz")
        world.publish((body, headers), (body, headers), (forged, headers))
        doc = c.get("/v1/warnings").json()
        assert [(w["offset"], w["verified"], w.get("reason")) for w in doc["warnings"]] == [
            (0, True, None),  # the copy at offset 1 is listed once
            (2, False, "SIGNATURE_INVALID"),
        ]
        first = doc["warnings"][0]
        assert first["warning_id"] == started.warning_id and first["status"] == "STARTED"
        assert first["signed_by"] == "service:warnings"
        assert (
            first["subject"] == {"nationality": "VE"} and first["trigger_id"] == "test.detentions"
        )
        assert [w["warning_id"] for w in doc["active"]] == [started.warning_id]
        assert c.get("/v1/warnings", params={"trigger": "other"}).json()["warnings"] == []

        # The same records as events, then a new one while the stream is open.
        with c.stream("GET", "/v1/warnings", headers=SSE) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            before = _events(lines, 2)
            world.publish(world.signed(ended))
            (live,) = _events(lines, 1)
        assert [(e["event"], e["id"]) for e in before] == [("warning", "1"), ("warning", "3")]
        assert orjson.loads(before[0]["data"]) == first
        assert orjson.loads(before[1]["data"])["reason"] == "SIGNATURE_INVALID"
        news = orjson.loads(live["data"])
        assert (live["id"], news["status"], news["verified"]) == ("4", "ENDED", True)
        assert news["episode_id"] == started.episode_id

        # Reconnecting as EventSource does: from the last id it received.
        with c.stream("GET", "/v1/warnings", headers=SSE | {"Last-Event-ID": "3"}) as r:
            (again,) = _events(r.iter_lines(), 1)
        assert again["id"] == "4" and orjson.loads(again["data"])["status"] == "ENDED"

        # The page caught up: the episode ended, nothing is in force.
        doc = c.get("/v1/warnings").json()
        assert [w["status"] for w in doc["warnings"] if w["verified"]] == ["STARTED", "ENDED"]
        assert doc["active"] == []
        assert c.get("/v1/warnings", params={"active": "true"}).json()["warnings"] == []
    with world.client("US") as other:  # any member's agency reads the same warnings
        assert other.get("/v1/warnings").json() == doc


def test_a_bad_last_event_id_is_400_and_one_past_the_end_waits_for_news(world: World) -> None:
    with world.client() as c:
        r = c.get("/v1/warnings", headers=SSE | {"Last-Event-ID": "d1.AAAA"})
        assert r.status_code == 400 and r.json()["reason"] == "CURSOR_INVALID"
        end = max(w["offset"] for w in c.get("/v1/warnings").json()["warnings"]) + 1
        with c.stream("GET", "/v1/warnings", headers=SSE | {"Last-Event-ID": "999999"}) as r:
            lines = r.iter_lines()
            world.publish(world.signed(world.warnings[0]))  # nothing older is replayed
            (news,) = _events(lines, 1)
        assert news["id"] == str(end + 1)
        assert orjson.loads(news["data"])["offset"] == end
