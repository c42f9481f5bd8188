"""Signed deliveries in both modes: one verification API, tamper detection, offline checks by a
subscriber holding only the trust list, and a non-Python verifier (the openssl CLI)."""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from dataclasses import replace
from hashlib import sha256
from pathlib import Path

import pytest

from puente.codec.registry import Registry
from puente.codec.wire import encode
from puente.evidence._time import to_datetime
from puente.evidence.checkpoint import Checkpoint
from puente.evidence.delivery import (
    BatchProof,
    Delivery,
    DeliveryBatch,
    DeliverySigner,
    DeliveryStatement,
    SignatureProof,
)
from puente.evidence.errors import EvidenceError, TrustListError
from puente.evidence.keys import PublicKey, SigningKey
from puente.evidence.note import Note
from puente.evidence.trust import KeyEntry, TrustList, Usage, service_holder
from puente.evidence.verify import Verifier, sign_receipt

from .conftest import DAY, T0, World

OPENSSL = shutil.which("openssl")


def verifier(world: World) -> Verifier:
    return Verifier(trust_list=world.trust_list, registry=world.registry)


def signed_delivery(world: World, n: int = 0) -> Delivery:
    payload = world.payload(n)
    return DeliverySigner(world.service, world.registry).sign(
        world.statement(payload, n=n), payload
    )


def batch_deliveries(world: World, count: int = 7) -> list[Delivery]:
    batch = DeliveryBatch(world.registry, "MX/0/0")
    for n in range(count):
        p = world.payload(n)
        assert batch.add(world.statement(p, n=n, recipient=("GT", "HN")[n % 2]), p) == n
    return batch.seal(world.service, time_ms=T0 + 1000)


def test_both_modes_verify_through_one_call(world: World) -> None:
    v = verifier(world)
    single = signed_delivery(world)
    res = v.verify_delivery(single.encode(world.registry), recipient="GT")
    assert res.mode == "signature" and res.key_ids == (world.service.key_id,)
    assert res.payload == world.payload(0) and res.statement.audit_leaf_index == 0
    assert res.digest == sha256(b"puente/delivery-statement/v1\x00" + single.statement).digest()
    for d in batch_deliveries(world):
        st = DeliveryStatement.decode(world.registry, d.statement)
        res = v.verify_delivery(d.encode(world.registry), recipient=st.recipient)
        assert res.mode == "batch" and res.time_ms == T0 + 1000
        assert isinstance(d.proof, BatchProof)
        assert len(d.proof.inclusion_path) <= 3  # 7 leaves: at most ceil(log2 7)


def test_envelope_round_trips(world: World) -> None:
    for d in [signed_delivery(world), *batch_deliveries(world, 3)]:
        data = d.encode(world.registry)
        assert Delivery.decode(world.registry, data) == d
        assert DeliveryStatement.decode(world.registry, d.statement) == world.statement(
            d.payload,
            n=DeliveryStatement.decode(world.registry, d.statement).audit_leaf_index,
            recipient=DeliveryStatement.decode(world.registry, d.statement).recipient,
        )


def reason_of(v: Verifier, d: Delivery | bytes, recipient: str = "GT") -> str:
    with pytest.raises(EvidenceError) as exc:
        v.verify_delivery(d, recipient=recipient)
    return exc.value.reason


def test_tampering_is_detected_in_both_modes(world: World) -> None:
    v = verifier(world)
    single = signed_delivery(world)
    assert isinstance(single.proof, SignatureProof)
    other_stmt = world.statement(single.payload, n=0, recipient="HN").encode(world.registry)
    cases = {
        "payload": replace(single, payload=single.payload + b"x"),
        "statement": replace(single, statement=other_stmt),
        "signature": replace(single, proof=SignatureProof(single.proof.key_id, bytes(64))),
        "key": replace(single, proof=SignatureProof("0123456789abcdef", single.proof.signature)),
    }
    assert reason_of(v, cases["payload"]) == "PAYLOAD_MISMATCH"
    assert reason_of(v, cases["statement"], recipient="HN") == "SIGNATURE_INVALID"
    assert reason_of(v, cases["signature"]) == "SIGNATURE_INVALID"
    assert reason_of(v, cases["key"]) == "KEY_UNKNOWN"
    assert reason_of(v, single, recipient="HN") == "RECIPIENT_MISMATCH"
    assert reason_of(v, b"\xc3\x01garbage") == "DELIVERY_MALFORMED"

    batch = batch_deliveries(world)
    d0, d1 = batch[0], batch[1]
    assert isinstance(d0.proof, BatchProof) and isinstance(d1.proof, BatchProof)
    swapped = replace(d0, proof=d1.proof)  # another delivery's proof
    assert reason_of(v, swapped) == "PROOF_INVALID"
    moved = replace(d0, proof=replace(d0.proof, leaf_index=1))
    assert reason_of(v, moved) == "PROOF_INVALID"
    forged_note = d0.proof.batch_note.replace(b"puente.batch/MX/0/0", b"puente.batch/MX/0/1")
    assert reason_of(v, replace(d0, proof=replace(d0.proof, batch_note=forged_note))) == (
        "SIGNATURE_INVALID"
    )
    assert reason_of(v, replace(d0, payload=d1.payload)) == "PAYLOAD_MISMATCH"
    # A batch-shaped note signed by a key the trust list does not know.
    rogue = SigningKey.generate("puente.svc/policy")
    rogue_batch = DeliveryBatch(world.registry, "MX/0/0")
    rogue_batch.add(world.statement(world.payload(0)), world.payload(0))
    assert reason_of(v, rogue_batch.seal(rogue, time_ms=T0 + 1000)[0]) == "KEY_UNKNOWN"
    # An audit checkpoint is not a batch note even when the same key signed it.
    cp_note = Checkpoint.make("puente.audit/MX/0", 1, leaf_hash_of(d0), time_ms=T0 + 5)
    as_batch = replace(
        d0,
        proof=BatchProof(cp_note.sign(world.service).to_bytes(), 0, ()),
    )
    assert reason_of(v, as_batch) == "BATCH_ORIGIN_INVALID"


def leaf_hash_of(d: Delivery) -> bytes:
    return sha256(b"\x00" + d.signed_bytes).digest()


def test_rotation_and_revocation_at_the_evidence_time(world: World) -> None:
    old = signed_delivery(world)  # signed_at T0+20
    new_key = SigningKey.generate("puente.svc/policy")
    usages = frozenset({Usage.DELIVERY, Usage.CHECKPOINT})
    tl = world.trust_list.retire(world.service.key_id, until=T0 + DAY).with_entry(
        KeyEntry(new_key.public, service_holder(), usages, T0 + DAY)
    )
    rotated = TrustList.open(
        tl.reissued(issued_at=T0, expires_at=T0 + 9 * DAY).sign(world.root),
        [world.root.public],
        now=T0 + 2 * DAY,
    )
    v = Verifier(trust_list=rotated, registry=world.registry)
    v.verify_delivery(old, recipient="GT")  # made before the rotation: still good
    late_stmt = replace(world.statement(world.payload(1), n=1), signed_at=T0 + 2 * DAY)
    late_old = DeliverySigner(world.service, world.registry).sign(late_stmt, world.payload(1))
    assert reason_of(v, late_old) == "KEY_EXPIRED"
    v.verify_delivery(
        DeliverySigner(new_key, world.registry).sign(late_stmt, world.payload(1)), recipient="GT"
    )
    revoked = TrustList.open(
        rotated.revoke(new_key.key_id, since=T0 + 2 * DAY)
        .reissued(issued_at=T0, expires_at=T0 + 9 * DAY)
        .sign(world.root),
        [world.root.public],
        now=T0 + 3 * DAY,
    )
    v2 = Verifier(trust_list=revoked, registry=world.registry)
    assert (
        reason_of(v2, DeliverySigner(new_key, world.registry).sign(late_stmt, world.payload(1)))
        == "KEY_REVOKED"
    )
    # Batch mode judges the key at the batch note's time.
    b = DeliveryBatch(world.registry, "MX/0/9")
    b.add(late_stmt, world.payload(1))
    assert reason_of(v2, b.seal(new_key, time_ms=T0 + 2 * DAY)[0]) == "KEY_REVOKED"


def test_member_keys_cannot_sign_deliveries(world: World) -> None:
    tl = world.trust_list.with_entry(
        replace(world.trust_list.entry(world.mx.key_id), usages=frozenset({Usage.DELIVERY}))
    )
    opened = TrustList.open(tl.sign(world.root), [world.root.public], now=T0)
    v = Verifier(trust_list=opened, registry=world.registry)
    p = world.payload()
    forged = DeliverySigner(world.mx, world.registry).sign(world.statement(p), p)
    assert reason_of(v, forged) == "KEY_WRONG_HOLDER"


def test_verifier_refuses_an_unverified_trust_list(world: World) -> None:
    with pytest.raises(TrustListError):
        Verifier(trust_list=TrustList.from_text(world.trust_list.text()), registry=world.registry)


def test_subscriber_verifies_offline_with_only_the_trust_list(world: World, tmp_path: Path) -> None:
    """What a partner state holds: the anchor's verifier key, the trust-list file, the schemas."""
    (tmp_path / "root.vkey").write_text(world.root.public.vkey + "\n")
    (tmp_path / "trust-list.note").write_bytes(world.trust_bytes)
    wire = [signed_delivery(world, 3).encode(world.registry)] + [
        d.encode(world.registry) for d in batch_deliveries(world)
    ]
    del world  # nothing else from the sender's side below
    anchor = PublicKey.from_vkey((tmp_path / "root.vkey").read_text())
    tl = TrustList.open((tmp_path / "trust-list.note").read_bytes(), [anchor], now=T0 + DAY)
    v = Verifier(trust_list=tl, registry=Registry.load(Path(__file__).parents[3] / "schemas"))
    # The partner is GT: its own deliveries verify; HN's, replayed to it, never do.
    got = []
    for data in wire:
        try:
            got.append(v.verify_delivery(data, recipient="GT"))
        except EvidenceError as exc:
            assert exc.reason == "RECIPIENT_MISMATCH"
    assert [g.mode for g in got] == ["signature"] + ["batch"] * 4
    assert all(sha256(g.payload).digest() == g.statement.payload_sha256 for g in got)
    assert {g.statement.recipient for g in got} == {"GT"}


def test_receipts_are_signed_by_the_recipient(world: World) -> None:
    receipt = encode(
        world.registry,
        "puente.DeliveryReceipt",
        {
            "receipt_id": str(uuid.uuid4()),
            "notice_id": str(uuid.UUID(int=10_000)),
            "recipient": "GT",
            "delivery_digest": signed_delivery(world).digest.hex(),
            "log_id": "puente.audit/MX/0",
            "log_index": 0,
            "status": "VERIFIED",
            "received_at": to_datetime(T0 + 100),
        },
    )
    v = verifier(world)
    entry = v.verify_receipt(
        receipt, key_id=world.gt.key_id, signature=sign_receipt(world.gt, receipt)
    )
    assert entry.holder == "member:GT"
    with pytest.raises(EvidenceError) as exc:
        v.verify_receipt(receipt, key_id=world.mx.key_id, signature=sign_receipt(world.mx, receipt))
    assert exc.value.reason == "KEY_WRONG_HOLDER"


@pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")
def test_openssl_verifies_the_exact_signed_bytes(world: World, tmp_path: Path) -> None:
    """A non-Python verifier, from the documented layout alone (docs/evidence.md)."""
    d = signed_delivery(world)
    assert isinstance(d.proof, SignatureProof)
    (tmp_path / "msg").write_bytes(b"puente/delivery-statement/v1\x00" + d.statement)
    (tmp_path / "sig").write_bytes(d.proof.signature)
    (tmp_path / "pub.pem").write_bytes(world.service.public.spki_pem())

    def openssl_verify(msg: str, sig: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(OPENSSL),
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                "pub.pem",
                "-rawin",
                "-in",
                msg,
                "-sigfile",
                sig,
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )

    ok = openssl_verify("msg", "sig")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Signature Verified Successfully" in ok.stdout
    (tmp_path / "bad").write_bytes(
        b"puente/delivery-statement/v1\x00" + d.statement[:-1] + bytes([d.statement[-1] ^ 1])
    )
    assert openssl_verify("bad", "sig").returncode != 0

    # Batch mode: the batch note's signature over its text, with the key rebuilt from the
    # verifier key string by hand (the documented SPKI prefix), and the inclusion proof with
    # nothing but SHA-256 from `openssl dgst`.
    b = batch_deliveries(world, 5)[3]
    assert isinstance(b.proof, BatchProof)
    note = Note.parse(b.proof.batch_note)
    text = note.text.encode()
    sig_blob = base64.b64decode(b.proof.batch_note.decode().rsplit(" ", 1)[1])
    (tmp_path / "note.txt").write_bytes(text)
    (tmp_path / "note.sig").write_bytes(sig_blob[4:])
    vkey_blob = base64.b64decode(world.service.public.vkey.split("+", 2)[2])
    der = bytes.fromhex("302a300506032b6570032100") + vkey_blob[1:]
    (tmp_path / "pub.pem").write_text(
        "-----BEGIN PUBLIC KEY-----\n"
        + base64.b64encode(der).decode()
        + "\n-----END PUBLIC KEY-----\n"
    )
    ok = openssl_verify("note.txt", "note.sig")
    assert ok.returncode == 0, ok.stdout + ok.stderr

    def openssl_sha256(data: bytes) -> bytes:
        out = subprocess.run(
            [str(OPENSSL), "dgst", "-sha256", "-binary"],
            input=data,
            capture_output=True,
            check=True,
        )
        return out.stdout

    lines = note.text.split("\n")
    size, root = int(lines[1]), base64.b64decode(lines[2])
    h = openssl_sha256(b"\x00" + b.signed_bytes)
    index, last = b.proof.leaf_index, size - 1
    for sibling in b.proof.inclusion_path:  # RFC 9162 §2.1.3.2, as written in the docs
        if index % 2 == 1 or index == last:
            h = openssl_sha256(b"\x01" + sibling + h)
            while index % 2 == 0 and index != 0:
                index, last = index // 2, last // 2
        else:
            h = openssl_sha256(b"\x01" + h + sibling)
        index, last = index // 2, last // 2
    assert h == root
