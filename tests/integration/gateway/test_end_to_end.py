"""End to end through the gateway and a real node, on the embedded default (one gateway for every
state, every key in ``<state>/keys``): a Mexican police agency reports, over HTTP, the arrest of
a Colombian national who asked for consular notification; the gateway seals it to Mexico's
node, which is the only one that can read it on Kafka; Mexico's node decides and seals the
delivery to Colombia; the Colombian consulate reads it opened from the gateway's event stream,
verifies the bytes against the signed trust list the gateway serves, and sends a signed receipt
back."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import TopicPartition

from puente.codec.jsonconv import to_json
from puente.codec.wire import decode, encode
from puente.config import GatewaySettings
from puente.evidence.trust import TrustList, Usage, member_holder
from puente.evidence.verify import DELIVERY_RECEIPT, Verifier, open_verified, sign_receipt
from puente.kafka.clients import consumer, start
from puente.synth.generator import Generator
from puente.topics import INGRESS
from puente_gateway.app import create_app
from puente_gateway.clock import now_ms
from tests.harness import KafkaHarness
from tests.integration.gateway.support import (
    Federation,
    federation,
    issue_token,
    now_stamped,
    running,
    serving,
)

pytestmark = pytest.mark.kafka
POLICE = "Instituto Nacional de Migración"


@dataclass
class World:
    """The federation, its gateway (serving every state) and an agency token of MX and CO."""

    kafka: KafkaHarness
    fed: Federation
    url: str
    police: str  # MX, consular notifications only
    consulate: str  # CO, every type

    def client(self, token: str) -> httpx.AsyncClient:
        auth = {"Authorization": f"Bearer {token}"}
        return httpx.AsyncClient(base_url=self.url, headers=auth, timeout=60)

    def arrest(self, seed: int) -> dict[str, Any]:
        """The POST body of a consular notification: a Colombian arrested in Mexico."""
        notice = Generator(seed).scenario("requested-arrest", origin="MX", nationality="CO")
        registry = self.fed.registry
        return {
            "type": "ConsularNotification",
            "notice": to_json(registry, notice.name, now_stamped(notice)),
        }


@pytest.fixture(scope="module")
async def world(kafka: KafkaHarness) -> AsyncIterator[World]:
    fed = await federation(kafka)
    # The embedded default: no anchors file and no keys directory; the gateway takes the
    # operator's root keys and every state's keys from <state>/keys.
    gw = GatewaySettings(sse_heartbeat_s=0.5)
    app = create_app(fed.settings, gw, registry=fed.registry)
    with serving(app, gw) as url:
        police = issue_token(app, url, "MX", agency=POLICE, types=("puente.ConsularNotification",))
        consulate = issue_token(app, url, "CO", agency="Consulado de Colombia en Tapachula")
        yield World(kafka, fed, url, police[1], consulate[1])


async def _first_delivery(client: httpx.AsyncClient, cursor: str) -> dict[str, Any]:
    headers = {"Accept": "text/event-stream", "Last-Event-ID": cursor}
    async with client.stream("GET", "/v1/deliveries", headers=headers) as r:
        assert r.status_code == 200
        event: dict[str, str] = {}
        async for line in r.aiter_lines():
            if line == "":
                if event.get("event") == "delivery":
                    return dict(orjson.loads(event["data"]))
                event = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                event[name] = value
    raise AssertionError("the stream ended without a delivery")


async def test_post_deliver_stream_verify_receipt(world: World) -> None:
    fed = world.fed
    # The operator hands the trust anchor out of band; the consulate keeps it.
    anchors = list(fed.evidence.anchors)
    body = world.arrest(42)
    notice_id = body["notice"]["notice_id"]
    async with world.client(world.consulate) as co, world.client(world.police) as mx:
        start = (await co.get("/v1/deliveries")).json()["next_cursor"]
        async with running(fed.node("MX")):
            waiting = asyncio.create_task(_first_delivery(co, start))
            posted = await mx.post("/v1/notices", json=body)
            assert posted.status_code == 202, posted.text
            t0 = time.monotonic()
            item = await asyncio.wait_for(waiting, 90)
            latency = time.monotonic() - t0

        # Verify exactly the bytes received, with the trust list the gateway serves and the
        # anchor held out of band: nothing from the gateway is taken on trust.
        served = await co.get("/v1/trust-list")
        assert served.status_code == 200
        trust = TrustList.open(served.content, anchors, now=now_ms())
        verified = Verifier(trust_list=trust, registry=fed.registry).verify_delivery(
            base64.b64decode(item["delivery"]), recipient="CO"
        )
        assert verified.statement.notice_id == notice_id
        assert verified.statement.origin == "MX"
        assert verified.key_ids == (fed.evidence.node_key("MX").key_id,)  # MX's own node key
        assert verified.statement.original_sha256.hex() == posted.json()["sha256"]
        assert item["delivery_digest"] == verified.digest.hex()
        # Sealed to CO on Kafka; the gateway opened it with CO's key, and what it gives is the
        # notice the signed statement commits to.
        assert verified.sealed
        notice = base64.b64decode(item["notice_avro"])
        assert hashlib.sha256(notice).digest() == verified.statement.payload_sha256
        co_keys = fed.evidence.store.keyring(member_holder("CO"))
        assert open_verified(verified, co_keys) == notice
        delivered = decode(fed.registry, notice)
        assert delivered["notice_id"] == notice_id
        assert delivered["event"] == "ARREST"
        assert delivered["person"]["nationalities"] == ["CO"]
        assert item["notice"]["notice_id"] == notice_id  # the convenience view agrees

        # The consulate acknowledges with its own key; the gateway checks the signature.
        key = fed.evidence.store.current(member_holder("CO"), usage=Usage.RECEIPT, at=now_ms())
        receipt = encode(
            fed.registry,
            DELIVERY_RECEIPT,
            {
                "receipt_id": "7d8d7e1e-7d64-4b2a-9a43-2f1f0c1b5a61",
                "notice_id": notice_id,
                "recipient": "CO",
                "delivery_digest": verified.digest.hex(),
                "log_id": verified.statement.audit_log_id,
                "log_index": verified.statement.audit_leaf_index,
                "status": "VERIFIED",
                "received_at": dt.datetime.now(dt.UTC),
            },
        )
        acked = await co.post(
            "/v1/receipts",
            json={
                "receipt_avro": base64.b64encode(receipt).decode(),
                "signature": {
                    "key_id": key.key_id,
                    "signature": base64.b64encode(sign_receipt(key, receipt)).decode(),
                },
            },
        )
        assert acked.status_code == 202, acked.text
        assert acked.json()["signature_verified"] is True
    assert latency < 60


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


async def _every_record(world: World, topic: str) -> list[Any]:
    """Every record of ``topic`` (aborted ones too), read from the beginning as the cluster's
    administrator."""
    endpoint, cred = world.kafka.endpoint, world.kafka.admin
    c = consumer(endpoint, cred, isolation_level="read_uncommitted")
    await start(c, endpoint, cred)
    try:
        partitions = next(t.partitions for t in world.fed.tenant.plan.topics if t.name == topic)
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        ends = await c.end_offsets(tps)
        out: list[Any] = []
        deadline = time.monotonic() + 30
        while [tp for tp in tps if await c.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, "the topic was not read to its end"
            for batch in (await c.getmany(timeout_ms=500)).values():
                out += batch
        return out
    finally:
        await c.stop()


async def test_a_posted_notice_is_on_kafka_only_sealed_and_its_partner_reads_it_opened(
    world: World,
) -> None:
    fed = world.fed
    body = world.arrest(8)  # shared with CO unchanged (DELIVERED)
    async with world.client(world.police) as mx:
        posted = await mx.post("/v1/notices", json=body)
    assert posted.status_code == 202, posted.text
    # On MX's ingress topic, read as the cluster's administrator (whoever operates Kafka):
    # the notice's id is the record's key, and nothing else of it is anywhere in a record.
    records = await _every_record(world, fed.tenant.topic(INGRESS, "MX"))
    ours = [r for r in records if r.key == body["notice"]["notice_id"].encode()]
    assert len(ours) == 1 and ours[0].value[:2] == b"PS"
    assert hashlib.sha256(ours[0].value).hexdigest() == posted.json()["sealed_sha256"]
    values = {s for s in _strings(body["notice"]) if len(s) >= 4} - {body["notice"]["notice_id"]}
    assert len(values) > 10  # names, document numbers, places, the summary...
    for rec in records:
        seen = b"".join([rec.key or b"", rec.value or b"", *(v for _, v in rec.headers)])
        leaked = [v for v in values if v.encode() in seen]
        assert not leaked, leaked
    # MX's node opens it, decides, and seals it to CO; CO's agencies read it opened.
    async with world.client(world.consulate) as co, running(fed.node("MX")):
        item = await _page_item(co, body["notice"]["notice_id"])
    assert (
        item["statement"]["original_sha256"]
        == base64.b64encode(bytes.fromhex(posted.json()["sha256"])).decode()
    )
    assert "error" not in item
    assert item["statement"]["decision"]["action"] == "DELIVERED"
    assert item["notice"] == body["notice"]  # what the police posted, opened for CO


async def _page_item(client: httpx.AsyncClient, notice_id: str) -> dict[str, Any]:
    """The delivery item of ``notice_id`` in the caller's pages (long-polling until it is
    there)."""
    cursor: str | None = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        params: dict[str, Any] = {"wait": 5} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/deliveries", params=params)).json()
        for item in page["items"]:
            if item.get("statement", {}).get("notice_id") == notice_id:
                return dict(item)
        cursor = page["next_cursor"]
    raise AssertionError(f"no delivery of {notice_id} within 90 s")
