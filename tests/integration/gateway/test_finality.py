"""Finality at the gateway, on the real broker: a delivery item says ``signed`` until a quorum
of other states' witnesses cosigned a checkpoint of its origin's log covering it, then
``witnessed``; ``GET /v1/finality`` lists the log, its cosigners and whether it is final. The
log's own witness never counts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from puente.codec.registry import Registry
from puente.evidence._time import now_ms
from puente.evidence.cosignature import cosign
from puente.evidence.log import AuditLog, audit_log_id
from puente.evidence.note import Note
from puente.topics import COSIGNATURES, DELIVER
from puente_gateway.app import create_app
from tests.harness import KafkaHarness, Tenant
from tests.integration.gateway.support import (
    Keys,
    issue_token,
    produce,
    run,
    serving,
    signed_delivery,
)

pytestmark = pytest.mark.kafka


@contextmanager
def gateway_with_quorum(
    kafka: KafkaHarness, tenant: Tenant, keys: Keys, quorum: int, lookback_s: float = 86_400
) -> Iterator[httpx.Client]:
    """A gateway counting ``quorum`` witnesses as final (from the cosignatures written in the
    last ``lookback_s``), and a client of an agency of GT."""
    witness = {"quorum": quorum, "finality_lookback_s": lookback_s}
    settings = kafka.settings_for(tenant, witness=witness)
    gws = keys.gateway(trust_refresh_s=0.5)
    app = create_app(settings, gws, registry=Registry.load(settings.schemas_dir))
    with serving(app, gws) as url:
        token = issue_token(app, url, "GT")[1]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            yield client


def _item(client: httpx.Client, digest: str) -> dict[str, Any]:
    """The item of GT's deliveries whose delivery digest is ``digest``."""
    params: dict[str, str | int] = {"limit": 1000}
    while True:
        got = client.get("/v1/deliveries", params=params)
        assert got.status_code == 200, got.text
        page = got.json()
        for item in page["items"]:
            if item.get("delivery_digest") == digest:
                return dict(item)
        if page["caught_up"]:
            raise AssertionError("the delivery is not in GT's feed")
        params["cursor"] = page["next_cursor"]


def _until(client: httpx.Client, check: Callable[[dict[str, Any]], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not check(doc := client.get("/v1/finality").json()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {doc}")
        time.sleep(0.1)


def test_a_delivery_is_signed_until_a_quorum_of_other_witnesses_cosigned(
    kafka: KafkaHarness, gw_tenant: Tenant, keys: Keys
) -> None:
    registry = Registry.load(kafka.settings_for(gw_tenant).schemas_dir)
    # US's node delivered this to GT at leaf 0 of its log, and checkpointed the log at size 1.
    delivery, raw = signed_delivery(registry, keys, origin="US", recipient="GT")
    run(produce(gw_tenant, gw_tenant.node("US"), gw_tenant.topic(DELIVER, "GT"), [raw]))
    log = AuditLog(audit_log_id("US", 0))
    log.append(b"the audit record of the delivery")
    checkpoint = Note.parse(log.checkpoint(keys.nodes["US"], time_ms=now_ms()).note)
    log_id = log.log_id

    def cosigned_by(state: str) -> None:
        note = cosign(checkpoint, keys.witnesses[state], time_s=now_ms() // 1000).to_bytes()
        topic = gw_tenant.topic(COSIGNATURES)
        run(produce(gw_tenant, gw_tenant.witness(state), topic, [note], key=log_id.encode()))

    def entry(doc: dict[str, Any]) -> dict[str, Any] | None:
        return next((e for e in doc["logs"] if e["log"] == log_id), None)

    with gateway_with_quorum(kafka, gw_tenant, keys, quorum=2) as client:
        assert _item(client, delivery.digest.hex())["finality"] == "signed"
        cosigned_by("US")  # the log's own witness: never counts
        cosigned_by("MX")
        _until(client, lambda d: (e := entry(d)) is not None and e["cosigners"] == ["MX"], "MX")
        doc = client.get("/v1/finality", params={"log_id": log_id}).json()
        assert doc["contract"] == "puente.finality/v1" and doc["quorum"] == 2
        assert [e["log"] for e in doc["logs"]] == [log_id]
        assert doc["logs"][0]["final"] is False and doc["logs"][0]["size"] == 1
        assert _item(client, delivery.digest.hex())["finality"] == "signed"

        cosigned_by("GT")
        _until(client, lambda d: (e := entry(d)) is not None and e["final"], "a quorum")
        (final,) = client.get("/v1/finality", params={"log_id": log_id}).json()["logs"]
        assert final["cosigners"] == ["GT", "MX"] and final["final_size"] == 1
        assert _item(client, delivery.digest.hex())["finality"] == "witnessed"

    # A gateway that asks for more witnesses than cosigned: signed only, from the same topic.
    with gateway_with_quorum(kafka, gw_tenant, keys, quorum=3) as strict:
        _until(strict, lambda d: d["caught_up"] and entry(d) is not None, "caught up")
        assert _item(strict, delivery.digest.hex())["finality"] == "signed"
    # One that starts at the cosignatures of the last second: these are older, so it has not
    # seen them (signed, never a claim that it is not witnessed).
    time.sleep(1.5)
    with gateway_with_quorum(kafka, gw_tenant, keys, quorum=2, lookback_s=1.0) as late:
        _until(late, lambda d: d["caught_up"], "caught up")
        assert entry(late.get("/v1/finality").json()) is None
        assert _item(late, delivery.digest.hex())["finality"] == "signed"
