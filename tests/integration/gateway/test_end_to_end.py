"""End to end through the gateway and the real policy service: a Mexican police agency reports,
over HTTP, the arrest of a Colombian national who asked for consular notification; the policy
service delivers it; the Colombian consulate reads it from the gateway's event stream, verifies
it against the signed trust list the gateway serves, and sends a signed receipt back."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from puente.codec.jsonconv import to_json
from puente.codec.wire import decode, encode
from puente.config import GatewaySettings
from puente.evidence.trust import TrustList, Usage, member_holder
from puente.evidence.verify import DELIVERY_RECEIPT, Verifier, sign_receipt
from puente.synth.generator import Generator
from puente_gateway.app import create_app
from puente_gateway.clock import now_ms
from tests.harness import KafkaHarness
from tests.integration.gateway.support import issue_token, serving
from tests.integration.service.support import Deployment, deploy, now_stamped, running

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
async def dep(kafka: KafkaHarness) -> Deployment:
    return await deploy(kafka, partitions=2)


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


async def test_post_deliver_stream_verify_receipt(dep: Deployment, tmp_path: Path) -> None:
    # The operator hands the trust anchor out of band; the consulate keeps it.
    anchors = list(dep.evidence.anchors)
    gw = GatewaySettings(sse_heartbeat_s=0.5)
    app = create_app(dep.settings, gw, registry=dep.registry)
    notice = Generator(42).scenario("requested-arrest", origin="MX", nationality="CO")
    body: dict[str, Any] = {
        "type": "ConsularNotification",
        "notice": to_json(dep.registry, notice.name, now_stamped(notice)),
    }
    notice_id = body["notice"]["notice_id"]

    with serving(app, gw) as url:
        _, police = issue_token(
            app,
            url,
            "MX",
            agency="Instituto Nacional de Migración",
            types=("puente.ConsularNotification",),
        )
        _, consulate = issue_token(app, url, "CO", agency="Consulado de Colombia en Tapachula")
        auth = {"Authorization": f"Bearer {consulate}"}
        async with (
            httpx.AsyncClient(base_url=url, headers=auth, timeout=60) as co,
            httpx.AsyncClient(
                base_url=url, headers={"Authorization": f"Bearer {police}"}, timeout=60
            ) as mx,
        ):
            start = (await co.get("/v1/deliveries")).json()["next_cursor"]
            async with running(dep.service()):
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
            verified = Verifier(trust_list=trust, registry=dep.registry).verify_delivery(
                base64.b64decode(item["delivery"]), recipient="CO"
            )
            assert verified.statement.notice_id == notice_id
            assert verified.statement.origin == "MX"
            assert item["delivery_digest"] == verified.digest.hex()
            delivered = decode(dep.registry, verified.payload)
            assert delivered["notice_id"] == notice_id
            assert delivered["event"] == "ARREST"
            assert delivered["person"]["nationalities"] == ["CO"]
            assert item["notice"]["notice_id"] == notice_id  # the convenience view agrees

            # The consulate acknowledges with its own key; the gateway checks the signature.
            key = dep.evidence.store.current(member_holder("CO"), usage=Usage.RECEIPT, at=now_ms())
            receipt = encode(
                dep.registry,
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
