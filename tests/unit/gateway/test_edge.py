"""The gateway as a state's edge, without I/O: which states it serves and with which keys, and a
delivery item — verified for the caller's state, opened with its keys, or given without its
notice and with the reason."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from puente.codec.registry import Registry
from puente.codec.wire import decode
from puente.config import GatewaySettings, Settings
from puente.errors import ConfigError
from puente.evidence.enckeys import KeyRing
from puente.evidence.finality import Finality
from puente.evidence.keystore import KeyStore
from puente.evidence.trust import member_holder
from puente.evidence.verify import Verifier
from puente_gateway.auth import Caller
from puente_gateway.edge import Edge
from puente_gateway.feeds import delivery_item
from puente_gateway.reader import Record
from tests.integration.gateway.support import Keys, signed_delivery

MEMBERS = ("MX", "GT", "US")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys.make(MEMBERS, tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load(Settings().schemas_dir)


def _record(value: bytes) -> Record:
    return Record(0, 7, 0, None, value, "d1.x")


def _caller(state: str, *types: str) -> Caller:
    return Caller("t1", state, "agency", frozenset(types))


def test_an_edge_serves_what_its_settings_say(keys: Keys, tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")  # no keys there
    everyone = Edge.from_settings(settings, GatewaySettings(), MEMBERS)
    assert everyone.states == set(MEMBERS)  # the embedded default: every member state
    assert everyone.keyring("GT").keys == ()  # holds none: nothing will open
    own = keys.store_of("GT", tmp_path / "gt")
    gt = Edge.from_settings(settings, GatewaySettings(states=("GT",), keys_dir=own), MEMBERS)
    held = [k.key_id for k in gt.keyring("GT").keys]
    assert gt.states == {"GT"} and held == [k.key_id for k in keys.ring("GT").keys]
    assert gt.keyring("MX").keys == ()  # GT's gateway does not hold MX's keys
    with pytest.raises(ConfigError, match="holds no private encryption key of member:MX"):
        Edge.from_settings(settings, GatewaySettings(states=("MX",), keys_dir=own), MEMBERS)
    with pytest.raises(ConfigError, match="not member states"):
        Edge.from_settings(settings, GatewaySettings(states=("ZZ",)), MEMBERS)


def test_a_rotated_key_is_read_within_the_reload_period(keys: Keys, tmp_path: Path) -> None:
    directory = keys.store_of("GT", tmp_path / "gt")
    now = [0.0]
    edge = Edge(["GT"], KeyStore(directory), reload_s=5, clock=lambda: now[0])
    before = edge.keyring("GT")
    new, _ = KeyStore(directory).rotate_encryption(member_holder("GT"), at=1, overlap_ms=0)
    now[0] = 4.9
    assert edge.keyring("GT") is before
    now[0] = 5.0
    after = edge.keyring("GT")
    assert after.get(new.key_id) is not None
    assert all(after.get(k.key_id) is not None for k in before.keys)  # old keys still open


def _verifier(keys: Keys, registry: Registry) -> Verifier:
    return Verifier(trust_list=keys.trust_list(), registry=registry)


def test_a_delivery_for_the_callers_state_is_verified_and_opened(
    keys: Keys, registry: Registry
) -> None:
    delivery, raw = signed_delivery(registry, keys, recipient="GT", consular=True)
    item = delivery_item(
        registry, _verifier(keys, registry), keys.ring("GT"), _caller("GT"), _record(raw)
    )
    assert item is not None and "error" not in item
    notice = base64.b64decode(item["notice_avro"])
    assert item["notice"]["notice_id"] == decode(registry, notice)["notice_id"]
    assert item["statement"]["recipient"] == "GT"
    assert item["notice_type"] == "puente.ConsularNotification"
    assert item["verification"]["key_id"] == keys.nodes["MX"].key_id
    assert item["delivery_digest"] == delivery.digest.hex()
    assert base64.b64decode(item["delivery"]) == raw


def test_a_verified_item_says_how_final_its_log_position_is(keys: Keys, registry: Registry) -> None:
    _, raw = signed_delivery(registry, keys, recipient="GT")
    asked: list[tuple[str, int]] = []

    def witnessed(log_id: str, leaf_index: int) -> Finality:
        asked.append((log_id, leaf_index))
        return Finality.WITNESSED

    verifier, ring = _verifier(keys, registry), keys.ring("GT")
    item = delivery_item(registry, verifier, ring, _caller("GT"), _record(raw), finality=witnessed)
    assert item is not None and item["finality"] == "witnessed"
    assert asked == [("puente.audit/MX/0", 0)]  # the statement's own log position
    # Not verified for the caller's state: no claim about it at all.
    other = delivery_item(registry, verifier, ring, _caller("US"), _record(raw), finality=witnessed)
    assert other is not None and "finality" not in other and len(asked) == 1


def _tampered(raw: bytes) -> bytes:
    """The last byte of the sealed payload flipped (the record's last field is the proof)."""
    i = raw.index(b"PS\x01\x01") + 60
    return raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1 :]


@pytest.mark.parametrize(
    ("make", "ring_of", "reason", "verified"),
    [
        # Another state's delivery, even on this gateway that holds that state's keys too.
        (lambda r, k: signed_delivery(r, k, recipient="MX")[1], "GT", "RECIPIENT_MISMATCH", False),
        # Addressed to GT, sealed to MX: it verifies, and never opens with GT's keys.
        (
            lambda r, k: signed_delivery(r, k, recipient="GT", sealed_to="MX")[1],
            "GT",
            "SEAL_KEY_UNKNOWN",
            True,
        ),
        # The gateway does not hold GT's keys.
        (lambda r, k: signed_delivery(r, k, recipient="GT")[1], None, "SEAL_KEY_UNKNOWN", True),
        # The envelope altered on the way: the statement no longer signs for it.
        (
            lambda r, k: _tampered(signed_delivery(r, k, recipient="GT")[1]),
            "GT",
            "PAYLOAD_MISMATCH",
            False,
        ),
        (lambda r, k: b"\xc3\x01 not a delivery", "GT", "DELIVERY_MALFORMED", False),
    ],
)
def test_what_does_not_verify_or_open_is_given_without_its_notice(
    keys: Keys, registry: Registry, make: object, ring_of: str | None, reason: str, verified: bool
) -> None:
    raw = make(registry, keys)  # type: ignore[operator]
    ring = keys.ring(ring_of) if ring_of else KeyRing(member_holder("GT"), ())
    verifier = _verifier(keys, registry)
    item = delivery_item(registry, verifier, ring, _caller("GT"), _record(raw))
    assert item is not None
    assert item["error"]["reason"] == reason
    assert "notice" not in item and "notice_avro" not in item
    assert base64.b64decode(item["delivery"]) == raw  # the bytes are still given
    assert ("statement" in item) is verified  # shown only when it verified for GT
    limited = delivery_item(
        registry, verifier, ring, _caller("GT", "puente.CaseNotice"), _record(raw)
    )
    # An agency limited to a type sees it only when its type is known (it verified).
    assert (limited is not None) is verified


def test_an_agency_never_sees_a_type_it_is_not_given(keys: Keys, registry: Registry) -> None:
    _, raw = signed_delivery(registry, keys, recipient="GT", consular=True)
    consular = _caller("GT", "puente.ConsularNotification")
    case = _caller("GT", "puente.CaseNotice")
    verifier, ring = _verifier(keys, registry), keys.ring("GT")
    assert delivery_item(registry, verifier, ring, consular, _record(raw)) is not None
    assert delivery_item(registry, verifier, ring, case, _record(raw)) is None
