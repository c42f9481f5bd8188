"""Trust list, schemas, health, readiness and metrics on the running gateway."""

from __future__ import annotations

import hashlib

import pytest

from puente.evidence.trust import TrustList
from puente_gateway.clock import now_ms
from tests.integration.gateway.conftest import Gateway
from tests.integration.gateway.support import notice_json

pytestmark = pytest.mark.kafka


def test_trust_list_is_served_verbatim_from_the_trust_topic(gateway: Gateway) -> None:
    with gateway.client(gateway.token("US")) as c:
        r = c.get("/v1/trust-list")
    assert r.status_code == 200
    assert r.content == gateway.keys.trust_bytes
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["X-Puente-Trust-Serial"] == "1"
    assert r.headers["ETag"].strip('"') == hashlib.sha256(r.content).hexdigest()[:32]
    # A client verifies it with the anchor it holds out of band.
    tl = TrustList.open(r.content, [gateway.keys.root.public], now=now_ms())
    assert tl.signed_by == (gateway.keys.root.key_id,)


def test_schema_list_and_details(gateway: Gateway) -> None:
    with gateway.client(gateway.token("MX")) as c:
        listing = c.get("/v1/schemas").json()["schemas"]
        by_name = {s["name"]: s for s in listing}
        assert by_name["puente.CaseNotice"]["notice_type"] is True
        assert by_name["puente.ConsularNotification"]["notice_type"] is True
        assert by_name["puente.DeliveryReceipt"]["notice_type"] is False
        for name in ("CaseNotice", "puente.CaseNotice"):
            detail = c.get(f"/v1/schemas/{name}").json()
            sv = gateway.registry.latest("puente.CaseNotice")
            assert detail["name"] == "puente.CaseNotice"
            assert detail["version"] == sv.version
            # printed as everywhere: the header's bytes (what `xxd` shows at payload[2:10])
            assert detail["fingerprint"] == sv.fingerprint_bytes.hex()
            assert detail["avro"] == sv.schema
            assert detail["json_schema"]["type"] == "object"
        assert c.get("/v1/schemas/CaseNotice", params={"version": 1}).status_code == 200
        for missing in ("/v1/schemas/Nope", "/v1/schemas/CaseNotice?version=999"):
            r = c.get(missing)
            assert r.status_code == 404
            assert r.json()["reason"] == "SCHEMA_NOT_FOUND"


def test_unauthenticated_callers_cannot_tell_what_exists(gateway: Gateway) -> None:
    with gateway.client() as c:
        answers = [
            c.get(p)
            for p in (
                "/v1/schemas/CaseNotice",
                "/v1/schemas/Nope",
                "/v1/no-such-route",
                "/v1/trust-list",
            )
        ]
    assert {a.status_code for a in answers} == {401}
    assert len({a.content for a in answers}) == 1


def test_health_readiness_and_metrics(gateway: Gateway) -> None:
    token = gateway.token("MX")
    with gateway.client(token) as c:
        assert (
            c.post(
                "/v1/notices",
                json={"type": "CaseNotice", "notice": notice_json(gateway.registry, "MX")},
            ).status_code
            == 202
        )
        spoof = notice_json(gateway.registry, "GT")
        assert (
            c.post("/v1/notices", json={"type": "CaseNotice", "notice": spoof}).status_code == 403
        )
    with gateway.client() as c:
        assert c.get("/healthz").json() == {"status": "alive"}
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        text = c.get("/metrics").text
    assert 'puente_gateway_requests_total{method="POST",route="/v1/notices",status="202"}' in text
    assert 'puente_gateway_notices_produced_total{origin="MX",type="puente.CaseNotice"}' in text
    assert 'puente_gateway_rejections_total{reason="ORIGIN_MISMATCH"}' in text
    assert 'puente_gateway_request_seconds_bucket{le="0.05",route="/v1/notices"}' in text


def test_openapi_document_is_published(gateway: Gateway) -> None:
    with gateway.client() as c:
        doc = c.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    paths = doc["paths"]
    for path in (
        "/v1/notices",
        "/v1/deliveries",
        "/v1/rejections",
        "/v1/receipts",
        "/v1/trust-list",
        "/v1/schemas",
        "/v1/schemas/{name}",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths
    post = paths["/v1/notices"]["post"]
    assert post["security"] == [{"bearer": []}, {"mutualTLS": []}]
    for status in ("202", "400", "401", "403", "409", "413", "415", "422", "429", "503"):
        assert status in post["responses"], status
    schemas = doc["components"]["schemas"]
    assert set(schemas["ErrorBody"]["properties"]) == {"reason", "message", "problems"}
    variants = schemas["NoticeSubmission"]["oneOf"]
    assert {v["properties"]["type"]["enum"][0] for v in variants} == {
        "CaseNotice",
        "ConsularNotification",
    }
    assert "text/event-stream" in paths["/v1/deliveries"]["get"]["responses"]["200"]["content"]
    assert paths["/healthz"]["get"]["security"] == []


def test_unknown_routes_and_methods_after_authentication(gateway: Gateway) -> None:
    with gateway.client(gateway.token("MX")) as c:
        missing = c.get("/v1/no-such-route")
        wrong = c.delete("/v1/notices")
    assert missing.status_code == 404
    assert missing.json()["reason"] == "NOT_FOUND"
    assert wrong.status_code == 405
    assert wrong.json()["reason"] == "METHOD_NOT_ALLOWED"
    assert wrong.headers["Allow"] == "POST"
