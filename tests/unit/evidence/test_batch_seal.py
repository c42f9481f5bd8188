"""Batch-sealed deliveries (envelope kind 0x04): one HPKE-sealed data key per (batch,
recipient), AES-256-GCM per delivery; each record opens on its own, only for its binding."""

from __future__ import annotations

import struct
from hashlib import sha256
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from puente.evidence.enckeys import EncryptionKey, KeyRing
from puente.evidence.errors import SealError
from puente.evidence.seal import (
    OPENED_KEYS,
    BatchSealer,
    Kind,
    batch_delivery_aad,
    batch_key_info,
    open_delivery,
    parse_envelope,
    seal_delivery,
)

FP = bytes.fromhex("0123456789abcdef")
PAYLOAD = b"\xc3\x01" + FP + b"case notice body " * 60  # ~1 KiB, single-object shaped
SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)


def binding(i: int) -> dict[str, str]:
    return {"notice_id": f"8a0c3f52-3c1e-4d8e-9f6a-{i:012d}", "delivery_id": f"d-{i}"}


def open_as(
    envelope: bytes, keys: KeyRing, i: int, *, recipient: str = "GT", **override: Any
) -> bytes:
    args: dict[str, Any] = {**binding(i), "recipient": recipient, "payload_fingerprint": FP}
    args.update(override)
    return open_delivery(envelope, keys=keys, **args).plaintext


def reason(envelope: bytes, keys: KeyRing, i: int, **override: Any) -> str:
    with pytest.raises(SealError) as exc:
        open_as(envelope, keys, i, **override)
    return exc.value.reason


def ring(code: str, *keys: EncryptionKey) -> KeyRing:
    return KeyRing(f"member:{code}", keys)


@pytest.fixture(scope="module")
def gt() -> EncryptionKey:
    return EncryptionKey.generate("puente.member/GT")


def batch(key: EncryptionKey, n: int, recipient: str = "GT") -> list[bytes]:
    sealer = BatchSealer(key.public, recipient)
    return [sealer.seal(PAYLOAD, **binding(i)).envelope for i in range(n)]


def test_each_delivery_of_a_batch_opens_on_its_own_and_commits_to_both_digests(
    gt: EncryptionKey,
) -> None:
    sealer = BatchSealer(gt.public, "GT")
    sealed = [sealer.seal(PAYLOAD, **binding(i)) for i in range(5)]
    for i, s in enumerate(sealed):
        env = s.envelope
        assert env[:4] == b"PS\x01\x04" and env[4:12] == bytes.fromhex(gt.key_id)
        assert len(env) == 104 + len(PAYLOAD) + 16 and b"case notice" not in env
        assert env[12:92] == sealed[0].envelope[12:92]  # one enc and sealed data key per batch
        assert env[92:104] == i.to_bytes(12, "big")  # the nonce counts the batch's deliveries
        assert (s.key_id, s.sealed_sha256) == (gt.key_id, sha256(env).digest())
        assert s.plaintext_sha256 == sha256(PAYLOAD).digest()
        assert parse_envelope(env).kind is Kind.BATCH_DELIVERY
    # Each record alone, with a ring that has opened nothing yet, in any order:
    for i in (3, 0, 4):
        assert open_as(sealed[i].envelope, ring("GT", gt), i) == PAYLOAD
    memo = ring("GT", gt)
    assert [open_as(s.envelope, memo, i) for i, s in enumerate(sealed)] == [PAYLOAD] * 5
    assert len(memo.opened) == 1  # one HPKE open for the batch, AES-GCM for the rest


def test_a_record_opens_from_the_documented_parts_alone(gt: EncryptionKey) -> None:
    """HPKE single-shot open of bytes 12..91 with the batch-key info, then AES-256-GCM with
    the nonce at 92..103 and the delivery's AAD: what a third party does (docs/evidence.md §9)."""
    env = batch(gt, 2)[1]

    def f(b: bytes) -> bytes:
        return struct.pack(">H", len(b)) + b

    kid = bytes.fromhex(gt.key_id)
    info = b"puente/sealed-batch-key/v1\x00" + f(kid) + f(b"GT")
    assert info == batch_key_info(key_id=gt.key_id, recipient="GT")
    b = binding(1)
    aad = (
        b"puente/sealed-batch-delivery/v1\x00"
        + f(kid)
        + f(b["notice_id"].encode())
        + f(b"GT")
        + f(b["delivery_id"].encode())
        + f(FP)
    )
    assert aad == batch_delivery_aad(key_id=gt.key_id, recipient="GT", schema_fingerprint=FP, **b)
    data_key = SUITE.decrypt(env[12:92], gt.crypto(), info)
    assert AESGCM(data_key).decrypt(env[92:104], env[104:], aad) == PAYLOAD


@pytest.mark.parametrize(
    "override",
    [
        {"notice_id": "8a0c3f52-3c1e-4d8e-9f6a-999999999999"},
        {"delivery_id": "d-other"},
        {"payload_fingerprint": bytes(8)},
    ],
)
def test_another_binding_does_not_open(gt: EncryptionKey, override: dict[str, Any]) -> None:
    env = batch(gt, 1)[0]
    assert reason(env, ring("GT", gt), 0, **override) == "SEAL_INVALID"
    memo = ring("GT", gt)
    assert open_as(env, memo, 0) == PAYLOAD  # the data key memoised: still refused
    assert reason(env, memo, 0, **override) == "SEAL_INVALID"


def test_a_record_moved_to_another_delivery_or_recipient_does_not_open(gt: EncryptionKey) -> None:
    envs = batch(gt, 3)
    memo = ring("GT", gt)
    assert open_as(envs[0], memo, 0) == PAYLOAD
    # Delivery 1's record offered as delivery 2 (same batch, same data key): refused.
    assert reason(envs[1], memo, 2) == "SEAL_INVALID"
    # Delivery 1's ciphertext under delivery 2's nonce, or the reverse: refused.
    assert reason(envs[1][:92] + envs[2][92:104] + envs[1][104:], memo, 1) == "SEAL_INVALID"
    assert reason(envs[1][:92] + envs[2][92:104] + envs[1][104:], memo, 2) == "SEAL_INVALID"
    # Another recipient, honest about whom it is for, or pretending to be GT or itself.
    hn = EncryptionKey.generate("puente.member/HN")
    assert reason(envs[1], ring("HN", hn), 1) == "SEAL_WRONG_RECIPIENT"
    assert reason(envs[1], ring("HN", hn), 1, recipient="HN") == "SEAL_KEY_UNKNOWN"
    forged = envs[1][:4] + bytes.fromhex(hn.key_id) + envs[1][12:]
    assert reason(forged, ring("HN", hn), 1, recipient="HN") == "SEAL_INVALID"
    # A data key sealed to HN by the same node: GT's delivery cannot borrow it.
    hn_env = batch(hn, 1, "HN")[0]
    mixed = hn_env[:92] + envs[1][92:]
    assert reason(mixed, ring("HN", hn), 1, recipient="HN") == "SEAL_INVALID"
    # GT's key and GT's sealed data key from another batch: refused (another data key).
    other = batch(gt, 2)[1]
    assert reason(other[:92] + envs[1][92:], memo, 1) == "SEAL_INVALID"
    # A data key sealed to GT as recipient "HN" (a bad sealer): GT opening for GT refuses it.
    wrong_info = BatchSealer(gt.public, "HN").seal(PAYLOAD, **binding(1)).envelope
    assert reason(wrong_info, memo, 1) == "SEAL_INVALID"


def test_no_two_deliveries_share_a_key_and_nonce(gt: EncryptionKey) -> None:
    hn = EncryptionKey.generate("puente.member/HN")
    pairs: list[tuple[bytes, bytes]] = []
    for key, code in ((gt, "GT"), (gt, "GT"), (hn, "HN")):  # two batches to GT, one to HN
        info = batch_key_info(key_id=key.key_id, recipient=code)
        for env in batch(key, 40, code):
            pairs.append((SUITE.decrypt(env[12:92], key.crypto(), info), env[92:104]))
    assert len(set(pairs)) == len(pairs) == 120
    assert len({k for k, _ in pairs}) == 3  # one data key per (batch, recipient)


def test_every_altered_byte_is_refused_with_its_reason(gt: EncryptionKey) -> None:
    env = BatchSealer(gt.public, "GT").seal(PAYLOAD[:40], **binding(0)).envelope
    expected = {0: "NOT_SEALED", 1: "NOT_SEALED", 2: "SEAL_MALFORMED", 3: "SEAL_MALFORMED"}
    memo = ring("GT", gt)
    assert open_as(env, memo, 0) == PAYLOAD[:40]
    for keys in (ring("GT", gt), memo):
        for i in range(len(env)):
            bad = bytearray(env)
            bad[i] ^= 0x01
            want = expected.get(i, "SEAL_KEY_UNKNOWN" if i < 12 else "SEAL_INVALID")
            assert reason(bytes(bad), keys, 0) == want, i
    bad = bytearray(env)
    bad[3] = Kind.DELIVERY  # read as a kind-0x01 envelope: its HPKE open fails
    assert reason(bytes(bad), ring("GT", gt), 0) == "SEAL_INVALID"
    bad[3] = Kind.NOTICE
    assert reason(bytes(bad), ring("GT", gt), 0) == "SEAL_WRONG_KIND"
    for cut, want in {0: "NOT_SEALED", 59: "SEAL_MALFORMED", 119: "SEAL_MALFORMED"}.items():
        assert reason(env[:cut], ring("GT", gt), 0) == want, cut
    assert reason(env[:120], ring("GT", gt), 0) == "SEAL_INVALID"
    assert reason(env + b"\x00", ring("GT", gt), 0) == "SEAL_INVALID"
    for enc in (bytes(32), b"\x01" + bytes(31)):  # low-order points
        assert reason(env[:12] + enc + env[44:], ring("GT", gt), 0) == "SEAL_INVALID"


def test_sealing_refuses_what_it_cannot_bind(gt: EncryptionKey) -> None:
    sealer = BatchSealer(gt.public, "GT")
    for payload in (b"{json}", b"\xc3\x01short"):
        with pytest.raises(SealError) as exc:
            sealer.seal(payload, **binding(0))
        assert exc.value.reason == "SEAL_MALFORMED"
    for recipient in ("", "Guatemala ñ"):
        with pytest.raises(SealError) as exc:
            BatchSealer(gt.public, recipient)
        assert exc.value.reason == "SEAL_MALFORMED"


def test_a_key_ring_memoises_a_bounded_number_of_data_keys(gt: EncryptionKey) -> None:
    memo = ring("GT", gt)
    first = batch(gt, 1)[0]
    assert open_as(first, memo, 0) == PAYLOAD
    for _ in range(OPENED_KEYS):
        assert open_as(batch(gt, 1)[0], memo, 0) == PAYLOAD
    assert len(memo.opened) == OPENED_KEYS and first[4:92] not in memo.opened
    assert open_as(first, memo, 0) == PAYLOAD  # evicted: opened again with HPKE
    assert ring("GT", gt) == memo  # the memo is not part of the ring's identity


def test_the_old_kind_still_opens_beside_the_new(gt: EncryptionKey) -> None:
    old = seal_delivery(PAYLOAD, to=gt.public, recipient="GT", **binding(7)).envelope
    new = batch(gt, 8)[7]
    keys = ring("GT", gt)
    assert old[3] == Kind.DELIVERY and new[3] == Kind.BATCH_DELIVERY
    assert open_as(old, keys, 7) == open_as(new, keys, 7) == PAYLOAD
