"""Sealing: delivery payloads to their recipients and ingress notices to their state's node,
the envelope's layout, what each binding refuses, and encryption-key rotation and revocation."""

from __future__ import annotations

import struct
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from hypothesis import given, settings
from hypothesis import strategies as st

from puente.evidence.enckeys import EncryptionKey, KeyRing
from puente.evidence.errors import SealError
from puente.evidence.keystore import KeyStore
from puente.evidence.seal import (
    Kind,
    delivery_info,
    is_sealed,
    notice_info,
    open_delivery,
    open_notice,
    parse_envelope,
    seal_delivery,
    seal_notice,
    sealing_key,
)
from puente.evidence.trust import EncKeyEntry, TrustList, member_holder, node_holder

T0 = 1_767_225_600_000
HOUR = 3_600_000
NOTICE_ID = "8a0c3f52-3c1e-4d8e-9f6a-0b6f3e2d1c40"
DELIVERY_ID = "1f5e2b7c-9d3a-4c61-8e0f-7a2b5c4d3e21"
FP = bytes.fromhex("0123456789abcdef")
PAYLOAD = b"\xc3\x01" + FP + b"case notice body " * 60  # ~1 KiB, single-object shaped


def ring(code: str, *keys: EncryptionKey, kind: str = "member") -> KeyRing:
    return KeyRing(f"{kind}:{code}", keys)


@pytest.fixture(scope="module")
def gt() -> EncryptionKey:
    return EncryptionKey.generate("puente.member/GT")


@pytest.fixture(scope="module")
def mx_node() -> EncryptionKey:
    return EncryptionKey.generate("puente.node/MX")


def seal_gt(key: EncryptionKey, payload: bytes = PAYLOAD) -> bytes:
    return seal_delivery(
        payload, to=key.public, notice_id=NOTICE_ID, recipient="GT", delivery_id=DELIVERY_ID
    ).envelope


def open_gt(envelope: bytes, keys: KeyRing, **override: Any) -> bytes:
    args: dict[str, Any] = {
        "notice_id": NOTICE_ID,
        "recipient": "GT",
        "delivery_id": DELIVERY_ID,
        "payload_fingerprint": FP,
    }
    args.update(override)
    return open_delivery(envelope, keys=keys, **args).plaintext


def reason(call: Callable[..., object], *args: Any, **kwargs: Any) -> str:
    with pytest.raises(SealError) as exc:
        call(*args, **kwargs)
    return exc.value.reason


# --- round trips and layout -----------------------------------------------------------------


def test_a_sealed_delivery_opens_for_its_recipient_and_commits_to_both_digests(
    gt: EncryptionKey,
) -> None:
    sealed = seal_delivery(
        PAYLOAD, to=gt.public, notice_id=NOTICE_ID, recipient="GT", delivery_id=DELIVERY_ID
    )
    env = sealed.envelope
    assert PAYLOAD not in env and b"case notice" not in env
    assert env[:4] == b"PS\x01\x01" and env[4:12] == bytes.fromhex(gt.key_id)
    assert len(env) == 44 + len(PAYLOAD) + 16
    assert sealed.key_id == gt.key_id
    assert sealed.sealed_sha256 == sha256(env).digest()
    assert sealed.plaintext_sha256 == sha256(PAYLOAD).digest()
    opened = open_delivery(
        env,
        keys=ring("GT", gt),
        notice_id=NOTICE_ID,
        recipient="GT",
        delivery_id=DELIVERY_ID,
        payload_fingerprint=FP,
    )
    assert opened.plaintext == PAYLOAD and opened.key_id == gt.key_id
    assert (opened.sealed_sha256, opened.plaintext_sha256) == (
        sealed.sealed_sha256,
        sealed.plaintext_sha256,
    )
    # Two seals of the same payload differ (a fresh ephemeral key each time).
    assert seal_gt(gt) != env


def test_a_sealed_notice_opens_at_its_states_node(mx_node: EncryptionKey) -> None:
    sealed = seal_notice(PAYLOAD, to=mx_node.public, origin="MX")
    assert sealed.envelope[:4] == b"PS\x01\x02" and is_sealed(sealed.envelope)
    opened = open_notice(sealed.envelope, keys=ring("MX", mx_node, kind="node"), origin="MX")
    assert opened.plaintext == PAYLOAD
    assert opened.plaintext_sha256 == sha256(PAYLOAD).digest()


def test_info_is_the_documented_byte_string(gt: EncryptionKey) -> None:
    def f(b: bytes) -> bytes:
        return struct.pack(">H", len(b)) + b

    kid = bytes.fromhex(gt.key_id)
    assert delivery_info(
        key_id=gt.key_id,
        notice_id=NOTICE_ID,
        recipient="GT",
        delivery_id=DELIVERY_ID,
        schema_fingerprint=FP,
    ) == (
        b"puente/sealed-delivery/v1\x00"
        + f(kid)
        + f(NOTICE_ID.encode())
        + f(b"GT")
        + f(DELIVERY_ID.encode())
        + f(FP)
    )
    assert notice_info(key_id=gt.key_id, origin="MX") == (
        b"puente/sealed-notice/v1\x00" + f(kid) + f(b"MX")
    )


def test_an_envelope_built_from_the_documented_parts_opens(gt: EncryptionKey) -> None:
    """Only the documented pieces: the suite, the info, and magic || version || kind || key id
    || enc || ciphertext."""
    suite = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)
    info = delivery_info(
        key_id=gt.key_id,
        notice_id=NOTICE_ID,
        recipient="GT",
        delivery_id=DELIVERY_ID,
        schema_fingerprint=FP,
    )
    env = (
        b"PS\x01\x01" + bytes.fromhex(gt.key_id) + suite.encrypt(PAYLOAD, gt.public.crypto(), info)
    )
    assert open_gt(env, ring("GT", gt)) == PAYLOAD
    # A sealer that names one schema in the binding and seals a payload of another is caught.
    other = b"\xc3\x01" + bytes(8) + PAYLOAD[10:]
    env = b"PS\x01\x01" + bytes.fromhex(gt.key_id) + suite.encrypt(other, gt.public.crypto(), info)
    assert reason(open_gt, env, ring("GT", gt)) == "SEAL_INVALID"


@settings(max_examples=30, deadline=None)
@given(
    body=st.binary(max_size=3000),
    notice_id=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=60),
)
def test_any_payload_round_trips(body: bytes, notice_id: str) -> None:
    key = EncryptionKey.generate("puente.member/GT")
    payload = b"\xc3\x01" + FP + body
    env = seal_delivery(
        payload, to=key.public, notice_id=notice_id, recipient="GT", delivery_id=DELIVERY_ID
    ).envelope
    assert open_gt(env, ring("GT", key), notice_id=notice_id) == payload


# --- what a seal refuses --------------------------------------------------------------------


@pytest.mark.parametrize(
    "override",
    [
        {"notice_id": "8a0c3f52-3c1e-4d8e-9f6a-0b6f3e2d1c41"},
        {"delivery_id": "1f5e2b7c-9d3a-4c61-8e0f-7a2b5c4d3e22"},
        {"payload_fingerprint": bytes(8)},
    ],
)
def test_another_binding_does_not_open(gt: EncryptionKey, override: dict[str, object]) -> None:
    assert reason(open_gt, seal_gt(gt), ring("GT", gt), **override) == "SEAL_INVALID"


def test_every_altered_byte_is_refused_with_its_reason(gt: EncryptionKey) -> None:
    env = seal_gt(gt, PAYLOAD[:40])
    expected = {0: "NOT_SEALED", 1: "NOT_SEALED", 2: "SEAL_MALFORMED", 3: "SEAL_MALFORMED"}
    for i in range(len(env)):
        bad = bytearray(env)
        bad[i] ^= 0x01
        got = reason(open_gt, bytes(bad), ring("GT", gt))
        assert got == expected.get(i, "SEAL_KEY_UNKNOWN" if i < 12 else "SEAL_INVALID"), i
    bad = bytearray(env)
    bad[3] = Kind.NOTICE
    assert reason(open_gt, bytes(bad), ring("GT", gt)) == "SEAL_WRONG_KIND"
    cuts = {0: "NOT_SEALED", 11: "SEAL_MALFORMED", 59: "SEAL_MALFORMED", 60: "SEAL_INVALID"}
    for cut, want in {**cuts, len(env) - 1: "SEAL_INVALID"}.items():
        assert reason(open_gt, env[:cut], ring("GT", gt)) == want, cut
    assert reason(open_gt, env + b"\x00", ring("GT", gt)) == "SEAL_INVALID"
    # An ephemeral key that is a low-order point (all-zero shared secret) is refused too.
    for enc in (bytes(32), b"\x01" + bytes(31)):
        assert reason(open_gt, env[:12] + enc + env[44:], ring("GT", gt)) == "SEAL_INVALID"


def test_plaintext_is_not_sealed(gt: EncryptionKey, mx_node: EncryptionKey) -> None:
    assert not any(is_sealed(data) for data in (PAYLOAD, b"", b"PS", b"PS\x02"))
    with pytest.raises(SealError, match="plaintext Avro") as exc:
        open_notice(PAYLOAD, keys=ring("MX", mx_node, kind="node"), origin="MX")
    assert exc.value.reason == "NOT_SEALED"
    assert reason(open_gt, b"", ring("GT", gt)) == "NOT_SEALED"


def test_a_delivery_sealed_to_cr_cannot_be_opened_with_hns_key() -> None:
    cr = EncryptionKey.generate("puente.member/CR")
    hn = EncryptionKey.generate("puente.member/HN")
    env = seal_delivery(
        PAYLOAD, to=cr.public, notice_id=NOTICE_ID, recipient="CR", delivery_id=DELIVERY_ID
    ).envelope
    hn_ring = ring("HN", hn)
    # HN, honest about whom the delivery is for:
    assert reason(open_gt, env, hn_ring, recipient="CR") == "SEAL_WRONG_RECIPIENT"
    # HN pretending to be the recipient: the envelope names CR's key, which HN does not hold.
    assert reason(open_gt, env, hn_ring, recipient="HN") == "SEAL_KEY_UNKNOWN"
    # HN rewriting the envelope to name its own key: the seal does not open.
    forged = env[:4] + bytes.fromhex(hn.key_id) + env[12:]
    assert reason(open_gt, forged, hn_ring, recipient="HN") == "SEAL_INVALID"
    assert open_gt(env, ring("CR", cr), recipient="CR") == PAYLOAD


def test_a_notice_sealed_to_one_node_is_useless_at_another(mx_node: EncryptionKey) -> None:
    gt_node = EncryptionKey.generate("puente.node/GT")
    env = seal_notice(PAYLOAD, to=mx_node.public, origin="MX").envelope
    gt_ring = ring("GT", gt_node, kind="node")
    # Replayed onto GT's ingress: GT's node does not hold MX's node key.
    assert reason(open_notice, env, keys=gt_ring, origin="GT") == "SEAL_KEY_UNKNOWN"
    assert reason(open_notice, env, keys=gt_ring, origin="MX") == "SEAL_WRONG_RECIPIENT"
    # Sealed to GT's node but claiming origin MX: GT's node, reading ingress.GT, refuses it.
    claims_mx = seal_notice(PAYLOAD, to=gt_node.public, origin="MX").envelope
    assert reason(open_notice, claims_mx, keys=gt_ring, origin="GT") == "SEAL_INVALID"
    # A member's ring is not a node's, and a delivery envelope is not a notice.
    assert reason(open_notice, env, keys=ring("MX", mx_node), origin="MX") == "SEAL_WRONG_RECIPIENT"
    delivery = seal_delivery(
        PAYLOAD, to=mx_node.public, notice_id=NOTICE_ID, recipient="MX", delivery_id=DELIVERY_ID
    ).envelope
    mx_ring = ring("MX", mx_node, kind="node")
    assert reason(open_notice, delivery, keys=mx_ring, origin="MX") == "SEAL_WRONG_KIND"
    assert reason(open_gt, env, ring("GT", gt_node)) == "SEAL_WRONG_KIND"


def test_sealing_refuses_what_it_cannot_bind(gt: EncryptionKey) -> None:
    args = {"to": gt.public, "notice_id": NOTICE_ID, "delivery_id": DELIVERY_ID}
    assert reason(seal_delivery, b"{json}", recipient="GT", **args) == "SEAL_MALFORMED"
    assert reason(seal_delivery, PAYLOAD, recipient="", **args) == "SEAL_MALFORMED"
    assert reason(seal_delivery, PAYLOAD, recipient="Guatemala ñ", **args) == "SEAL_MALFORMED"
    assert parse_envelope(seal_gt(gt)).kind is Kind.DELIVERY


# --- rotation and revocation ----------------------------------------------------------------


def test_rotation_keeps_old_seals_readable_and_revoked_keys_are_never_chosen(
    tmp_path: Path,
) -> None:
    store = KeyStore(tmp_path / "keys")
    old, _ = store.generate_encryption("member:GT", valid_from=T0)

    def trust() -> TrustList:
        return store.trust_list(serial=1, issued_at=T0, expires_at=T0 + 100 * HOUR)

    gt = member_holder("GT")
    to_old = sealing_key(trust(), gt, at=T0 + 1)
    assert to_old == old.public
    before = seal_gt(old)
    new, _ = store.rotate_encryption("member:GT", at=T0 + HOUR, overlap_ms=HOUR)
    assert sealing_key(trust(), gt, at=T0 + HOUR) == new.public  # the new key from its start
    after = seal_delivery(
        PAYLOAD,
        to=sealing_key(trust(), gt, at=T0 + 3 * HOUR),
        notice_id=NOTICE_ID,
        recipient="GT",
        delivery_id=DELIVERY_ID,
    ).envelope
    keys = store.keyring("member:GT")
    assert open_gt(before, keys) == PAYLOAD  # sealed to the old key, opened after rotation
    assert open_gt(after, keys) == PAYLOAD
    assert parse_envelope(after).key_id == new.key_id
    # Revoking the new key: from its revocation time on it is never chosen, and with no other
    # valid key there is nothing to seal to.
    store.revoke(new.key_id, since=T0 + 5 * HOUR)
    assert sealing_key(trust(), gt, at=T0 + 5 * HOUR - 1) == new.public
    with pytest.raises(SealError) as exc:
        sealing_key(trust(), gt, at=T0 + 5 * HOUR)
    assert exc.value.reason == "SEAL_KEY_UNKNOWN"
    third, _ = store.generate_encryption("member:GT", valid_from=T0 + 6 * HOUR)
    for t in (T0 + 6 * HOUR, T0 + 50 * HOUR):
        assert sealing_key(trust(), gt, at=t) == third.public
    # The revoked key's holder still reads what was sealed to it before.
    assert open_gt(after, store.keyring("member:GT")) == PAYLOAD
    # Deleting the old private key is what makes its seals unreadable.
    store.delete_private(old.key_id)
    assert reason(open_gt, before, store.keyring("member:GT")) == "SEAL_KEY_UNKNOWN"


def test_sealing_key_for_a_node_comes_from_the_trust_list(mx_node: EncryptionKey) -> None:
    tl = TrustList(1, T0, T0 + HOUR, (), (EncKeyEntry(mx_node.public, node_holder("MX"), T0),))
    assert sealing_key(tl, node_holder("MX"), at=T0) == mx_node.public
    assert reason(sealing_key, tl, node_holder("GT"), at=T0) == "SEAL_KEY_UNKNOWN"
    assert reason(sealing_key, tl, node_holder("MX"), at=T0 - 1) == "SEAL_KEY_UNKNOWN"
