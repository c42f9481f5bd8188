"""POST /v1/receipts: JSON or Avro receipts, signatures checked against the trust list, the
recipient bound to the caller's state, idempotent on receipt id."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from puente.codec.jsonconv import to_json
from puente.codec.wire import decode, encode
from puente.config import GatewaySettings
from puente.errors import ConfigError
from puente.evidence.verify import DELIVERY_RECEIPT, sign_receipt
from puente.topics import RECEIPTS
from puente_gateway.app import create_app
from tests.harness import KafkaHarness
from tests.integration.gateway.conftest import Gateway
from tests.integration.gateway.support import (
    end_offsets,
    issue_token,
    read_records,
    receipt_record,
    run,
    serving,
)

pytestmark = pytest.mark.kafka


def _post(gateway: Gateway, token: str, body: Any) -> httpx.Response:
    with gateway.client(token) as c:
        return c.post("/v1/receipts", json=body)


def _receipts(gateway: Gateway, state: str) -> dict[int, int]:
    topic = gateway.tenant.topic(RECEIPTS, state)
    return run(end_offsets(gateway.tenant, topic, reader="gateway"))


def test_json_receipt_is_produced_to_the_callers_receipts_topic(gateway: Gateway) -> None:
    record = receipt_record("GT")
    as_json = to_json(gateway.registry, DELIVERY_RECEIPT, record)
    r = _post(gateway, gateway.token("GT"), {"receipt": as_json})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["receipt_id"] == record["receipt_id"]
    assert body["signed"] is False and body["signature_verified"] is False
    assert body["topic"] == gateway.tenant.topic(RECEIPTS, "GT")
    [rec] = run(
        read_records(
            gateway.tenant,
            gateway.tenant.tracker("MX"),
            body["topic"],
            body["partition"],
            body["offset"],
        )
    )
    assert rec.key == record["notice_id"].encode()
    # A machine receipt: DeliveryReceipt v2's acknowledgment is null.
    assert decode(gateway.registry, rec.value, reader=DELIVERY_RECEIPT) == record | {
        "acknowledgment": None
    }


def test_signed_avro_receipt_is_verified_and_forwarded_byte_exact(gateway: Gateway) -> None:
    record = receipt_record("GT")
    raw = encode(gateway.registry, DELIVERY_RECEIPT, record)
    sig = sign_receipt(gateway.keys.members["GT"], raw)
    body = {
        "receipt_avro": base64.b64encode(raw).decode(),
        "signature": {
            "key_id": gateway.keys.members["GT"].key_id,
            "signature": base64.b64encode(sig).decode(),
        },
    }
    r = _post(gateway, gateway.token("GT"), body)
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["signed"] is True and answer["signature_verified"] is True
    [rec] = run(
        read_records(
            gateway.tenant,
            gateway.tenant.tracker("MX"),
            answer["topic"],
            answer["partition"],
            answer["offset"],
        )
    )
    assert rec.value == raw
    headers = dict(rec.headers)
    assert headers["puente.receipt.key-id"] == gateway.keys.members["GT"].key_id.encode()
    assert headers["puente.receipt.signature"] == sig
    # Retried: the first answer again, nothing new.
    before = _receipts(gateway, "GT")
    again = _post(gateway, gateway.token("GT"), body)
    assert again.json() == answer and again.headers["Idempotent-Replay"] == "true"
    assert _receipts(gateway, "GT") == before


@pytest.mark.parametrize("signer", ["MX", "corrupt"])
def test_bad_receipt_signatures_are_refused(gateway: Gateway, signer: str) -> None:
    raw = encode(gateway.registry, DELIVERY_RECEIPT, receipt_record("GT"))
    if signer == "corrupt":
        key = gateway.keys.members["GT"]
        sig = bytearray(sign_receipt(key, raw))
        sig[0] ^= 1
    else:  # another state's key cannot sign GT's receipt
        key = gateway.keys.members[signer]
        sig = bytearray(sign_receipt(key, raw))
    before = _receipts(gateway, "GT")
    r = _post(
        gateway,
        gateway.token("GT"),
        {
            "receipt_avro": base64.b64encode(raw).decode(),
            "signature": {"key_id": key.key_id, "signature": base64.b64encode(sig).decode()},
        },
    )
    assert r.status_code == 422, r.text
    assert r.json()["reason"] == "RECEIPT_SIGNATURE_INVALID"
    assert _receipts(gateway, "GT") == before


def test_receipt_for_another_state_is_forbidden(gateway: Gateway) -> None:
    before = _receipts(gateway, "GT")
    as_json = to_json(gateway.registry, DELIVERY_RECEIPT, receipt_record("MX"))
    r = _post(gateway, gateway.token("GT"), {"receipt": as_json})
    assert r.status_code == 403
    assert r.json()["reason"] == "RECIPIENT_MISMATCH"
    assert _receipts(gateway, "GT") == before


def test_reused_receipt_id_with_other_content_is_a_conflict(gateway: Gateway) -> None:
    record = receipt_record("GT")
    token = gateway.token("GT")
    first = to_json(gateway.registry, DELIVERY_RECEIPT, record)
    assert _post(gateway, token, {"receipt": first}).status_code == 202
    other = to_json(gateway.registry, DELIVERY_RECEIPT, record | {"status": "VERIFICATION_FAILED"})
    r = _post(gateway, token, {"receipt": other})
    assert r.status_code == 409
    assert r.json()["reason"] == "RECEIPT_ID_REUSED"


@pytest.mark.parametrize(
    ("body", "reason", "paths"),
    [
        ({}, "ENVELOPE_INVALID", {"receipt"}),
        ({"receipt": {}, "receipt_avro": ""}, "ENVELOPE_INVALID", {"receipt"}),
        ({"receipt_avro": "***"}, "ENVELOPE_INVALID", {"receipt_avro"}),
        (
            {"receipt_avro": base64.b64encode(b"\xc3\x01nope").decode()},
            "INVALID_RECEIPT",
            {"receipt_avro"},
        ),
        ({"receipt": {"status": "MAYBE"}}, "INVALID_RECEIPT", None),
        (
            {"receipt": {}, "signature": {"key_id": "x", "signature": "AA=="}},
            "ENVELOPE_INVALID",
            {"signature.key_id", "signature.signature"},
        ),
        ({"receipt": {}, "more": 1}, "ENVELOPE_INVALID", {"more"}),
        ([], "ENVELOPE_INVALID", {""}),
    ],
)
def test_receipt_input_errors(
    gateway: Gateway, body: Any, reason: str, paths: set[str] | None
) -> None:
    r = _post(gateway, gateway.token("GT"), body)
    assert r.status_code == 422, r.text
    err = r.json()
    assert err["reason"] == reason
    got = {p["path"] for p in err["problems"]}
    if paths is not None:
        assert got == paths
    else:
        assert "receipt.status" in got and "receipt.receipt_id" in got


def test_receipts_need_json_and_credentials(gateway: Gateway) -> None:
    with gateway.client(gateway.token("GT")) as c:
        r = c.post("/v1/receipts", content=b"<receipt/>", headers={"Content-Type": "text/xml"})
    assert r.status_code == 415
    with gateway.client() as c:
        r = c.post("/v1/receipts", json={"receipt": {}})
    assert r.status_code == 401


def test_required_signatures_fail_closed_without_a_trust_list(
    kafka: KafkaHarness, gateway: Gateway, tmp_path: Path
) -> None:
    bare = kafka.provision(["MX", "GT"], partitions=1)  # nothing on its trust topic
    settings = kafka.settings_for(bare)
    anchors = tmp_path / "anchors.vkey"
    anchors.write_text(gateway.keys.root.public.vkey + "\n")
    gw = GatewaySettings(
        require_signed_receipts=True,
        trust_anchors_file=anchors,
        trust_list_file=tmp_path / "none.note",
        states=("GT",),
        keys_dir=gateway.keys.store.root,
    )
    app = create_app(settings, gw)
    record = receipt_record("GT")
    value = encode(gateway.registry, DELIVERY_RECEIPT, record)
    key = gateway.keys.members["GT"]
    body = {
        "receipt_avro": base64.b64encode(value).decode(),
        "signature": {
            "key_id": key.key_id,
            "signature": base64.b64encode(sign_receipt(key, value)).decode(),
        },
    }
    with serving(app, gw) as url:
        token = issue_token(app, url, "GT")[1]
        before = run(end_offsets(bare, bare.topic(RECEIPTS, "GT"), reader="gateway"))
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
            r = c.post("/v1/receipts", json=body)
            assert r.status_code == 503, r.text
            assert r.json()["reason"] == "TRUST_LIST_UNAVAILABLE" and "Retry-After" in r.headers
            unsigned = c.post("/v1/receipts", json={"receipt_avro": body["receipt_avro"]})
            assert unsigned.status_code == 422
            assert unsigned.json()["reason"] == "RECEIPT_SIGNATURE_INVALID"
        assert run(end_offsets(bare, bare.topic(RECEIPTS, "GT"), reader="gateway")) == before
    with pytest.raises(ConfigError):  # required, but nothing to verify with: refuses to start
        create_app(settings, GatewaySettings(require_signed_receipts=True, trust_anchors_file=None))
