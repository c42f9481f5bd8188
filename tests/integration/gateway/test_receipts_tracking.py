"""The gateway and the receipt tracker: an officer's acknowledgment posted through
``POST /v1/receipts`` reaches MX's tracker; ``GET /v1/receipts/status`` shows each state only
the pairs it is part of. The gateway and the token commands run as an operator runs them
(``puente gateway serve``, ``puente gateway token create``), each in its own process; MX's
tracker runs in the test with a clock the test moves."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from puente.codec.jsonconv import to_json
from puente.evidence.receipt import DELIVERY_RECEIPT, AcknowledgmentDecision, Receipt
from puente.evidence.verify import sign_receipt
from puente.receipts.track import TrackState
from tests.harness import KafkaHarness
from tests.integration.receipts.support import (
    HOUR,
    Deliveries,
    ManualClock,
    receipt,
    receipt_key,
    running,
    state_of,
    tracker,
    until,
)
from tests.integration.service.support import Deployment, deploy

pytestmark = pytest.mark.kafka


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def dep(kafka: KafkaHarness) -> Deployment:
    return await deploy(kafka, partitions=1)


@pytest.fixture
def gateway(dep: Deployment) -> Iterator[str]:
    """``puente gateway serve`` on this deployment; its base URL once it answers."""
    port = _free_port()
    env = dep.env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "puente", "gateway", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"the gateway exited: {proc.stderr.read() if proc.stderr else ''}"
                )
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not become ready")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def token(dep: Deployment, url: str, state: str, *types: str) -> dict[str, str]:
    """A new token for an agency of ``state`` (``puente gateway token create``), once the
    running gateway knows it: the Authorization header."""
    args = [sys.executable, "-m", "puente", "gateway", "token", "create", "--state", state]
    args += ["--agency", f"Consulado de prueba {state}", "--json"]
    for t in types:
        args += ["--types", t]
    made = subprocess.run(args, env=dep.env(), capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    header = {"Authorization": f"Bearer {json.loads(made.stdout)['token']}"}
    deadline = time.monotonic() + 60
    while httpx.get(f"{url}/v1/receipts/status", headers=header).status_code == 401:
        assert time.monotonic() < deadline, "the gateway never learnt the token"
        time.sleep(0.2)
    return header


def signed_body(dep: Deployment, rec: Receipt) -> dict[str, Any]:
    """The exact single-object bytes of ``rec`` and its recipient's signature."""
    data = rec.encode(dep.registry)
    key = receipt_key(dep, rec.recipient)
    return {
        "receipt_avro": base64.b64encode(data).decode(),
        "signature": {
            "key_id": key.key_id,
            "signature": base64.b64encode(sign_receipt(key, data)).decode(),
        },
    }


async def status(http: httpx.AsyncClient, auth: dict[str, str], **params: str) -> dict[str, Any]:
    r = await http.get("/v1/receipts/status", headers=auth, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["contract"] == "puente.receipts.status/v1"
    return body


async def test_acknowledgments_through_the_gateway_and_who_sees_what(
    dep: Deployment, gateway: str
) -> None:
    clock = ManualClock()
    mx = Deliveries(dep)
    to_gt, to_hn = mx.make("GT"), mx.make("HN")
    await mx.send(to_gt, to_hn)
    gt, hn, us, mx_auth = (token(dep, gateway, s) for s in ("GT", "HN", "US", "MX"))
    gt_cases = token(dep, gateway, "GT", "CaseNotice")  # an agency of case notices only
    async with (
        running(tracker(dep, clock)) as t,
        httpx.AsyncClient(base_url=gateway, timeout=60) as http,
    ):
        await until(lambda: len(t.book) == 2, "the two deliveries")
        # GT's software receipt, then its officer's answer, through the gateway.
        r = await http.post("/v1/receipts", headers=gt, json=signed_body(dep, receipt(dep, to_gt)))
        assert r.status_code == 202, r.text
        await until(lambda: state_of(t, to_gt) is TrackState.RECEIVED, "GT's receipt")
        answer = receipt(dep, to_gt, answer=AcknowledgmentDecision.ACKNOWLEDGED)
        r = await http.post("/v1/receipts", headers=gt, json=signed_body(dep, answer))
        assert r.status_code == 202, r.text
        await until(lambda: state_of(t, to_gt) is TrackState.ACKNOWLEDGED, "GT's answer")

        # An answer that breaks the receipt rules is refused before Kafka sees it.
        declined = receipt(dep, to_hn, answer=AcknowledgmentDecision.DECLINED)  # no reason
        r = await http.post(
            "/v1/receipts",
            headers=hn,
            json={"receipt": to_json(dep.registry, DELIVERY_RECEIPT, declined.to_avro())},
        )
        assert r.status_code == 422 and r.json()["reason"] == "INVALID_RECEIPT", r.text
        assert [p["path"] for p in r.json()["problems"]] == ["receipt.acknowledgment.reason_code"]

        clock.advance(3 * HOUR)  # HN never received it: overdue, escalated
        await until(lambda: state_of(t, to_hn) is TrackState.OVERDUE, "HN's escalation")

        # Each state sees the pairs it is part of, and no other (once the escalation's
        # transaction is committed: the in-memory state may run a moment ahead of it).
        deadline = time.monotonic() + 60
        while not (seen_hn := await status(http, hn, overdue="true"))["deliveries"]:
            assert time.monotonic() < deadline, "due.HN never showed the overdue delivery"
            await asyncio.sleep(0.1)
        assert [(d["recipient"], d["state"], d["missed"]) for d in seen_hn["deliveries"]] == [
            ("HN", "OVERDUE", "RECEIVE")
        ]
        seen_gt = await status(http, gt, all="true")
        assert {(r["origin"], r["recipient"]) for r in seen_gt["report"]} == {("MX", "GT")}
        assert [(d["delivery_id"], d["state"]) for d in seen_gt["deliveries"]] == [
            (to_gt.record.delivery_id, "ACKNOWLEDGED")
        ]
        [row] = seen_gt["report"]
        assert (row["deliveries"], row["received"], row["acknowledged"], row["overdue"]) == (
            1,
            1,
            1,
            0,
        )
        assert row["time_to_acknowledgment_ms"]["median"] is not None
        seen_mx = await status(http, mx_auth, period="all")
        assert {(r["recipient"], r["overdue"]) for r in seen_mx["report"]} == {
            ("GT", 0),
            ("HN", 1),
        }
        seen_us = await status(http, us, all="true")
        assert (seen_us["as"], seen_us["report"], seen_us["deliveries"]) == ("US", [], [])
        # An agency limited to case notices sees no consular deliveries.
        assert (await status(http, gt_cases, all="true"))["deliveries"] == []
        bad = await http.get(
            "/v1/receipts/status", headers=gt, params={"overdue": "true", "all": "true"}
        )
        assert bad.status_code == 422
        assert (await http.get("/v1/receipts/status")).status_code == 401
