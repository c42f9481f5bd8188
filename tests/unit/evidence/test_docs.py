"""docs/evidence.md is what a third party verifies with: its shell commands run, its example
verifies, and its proof algorithms, transcribed line by line, pass every RFC 6962 vector."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from hashlib import sha256
from pathlib import Path

import pytest

from puente.evidence.checkpoint import parse_signed_checkpoint
from puente.evidence.keys import PublicKey

DOC = Path(__file__).resolve().parents[3] / "docs" / "evidence.md"
VECTORS = Path(__file__).resolve().parents[2] / "fixtures" / "rfc6962"


def blocks(after: str) -> list[str]:
    """The fenced code blocks of the section that starts with the heading/text ``after``."""
    text = DOC.read_text()
    start = text.index(after)
    return re.findall(r"```[a-z]*\n(.*?)```", text[start:], flags=re.S)


def test_example_checkpoint_verifies_with_the_documented_key() -> None:
    note = blocks("A checkpoint is a C2SP")[0].encode()
    vkey = re.search(r"verifier key of this example: `([^`]+)`", DOC.read_text())
    assert vkey is not None
    cp, parsed = parse_signed_checkpoint(note)
    assert cp.log_origin == "puente.audit/MX/0" and cp.time_ms is not None
    parsed.verify([PublicKey.from_vkey(vkey.group(1))])


@pytest.mark.skipif(
    not all(shutil.which(t) for t in ("openssl", "xxd", "base64", "sed", "bash")),
    reason="needs openssl, xxd, base64, sed",
)
def test_documented_shell_commands_verify_the_example(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.note").write_text(blocks("A checkpoint is a C2SP")[0])
    pem_block = blocks("To use a verifier key with openssl")[0]
    verify_block = blocks("### 5.1 Verifying a note")[0]
    for script in (pem_block, verify_block):
        res = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert res.returncode == 0, res.stdout + res.stderr
    assert "Signature Verified Successfully" in res.stdout
    (tmp_path / "checkpoint.note").write_text(
        blocks("A checkpoint is a C2SP")[0].replace("\n5\n", "\n6\n")
    )
    res = subprocess.run(
        ["bash", "-c", verify_block], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert res.returncode != 0


# --- §6, transcribed ---------------------------------------------------------------------------


def H(*parts: bytes) -> bytes:
    return sha256(b"".join(parts)).digest()


def doc_inclusion(index: int, size: int, leaf_hash: bytes, path: list[bytes], root: bytes) -> bool:
    # (the documented algorithm starts from SHA-256(0x00 || leaf); the vectors give leaf hashes)
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = H(b"\x01", p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = H(b"\x01", r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def doc_consistency(size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes) -> bool:
    if size1 == 0 or size2 < size1:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 & (size1 - 1) == 0:
        proof = [root1, *proof]
    if not proof:
        return False
    fn, sn = size1 - 1, size2 - 1
    while fn % 2 == 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr = H(b"\x01", c, fr)
            sr = H(b"\x01", c, sr)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = H(b"\x01", sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


def _b(s: str) -> bytes:
    return base64.b64decode(s)


def test_documented_algorithms_pass_every_vector() -> None:
    n = 0
    for path in sorted((VECTORS / "inclusion").rglob("*.json")):
        v = json.loads(path.read_text())
        leaf = _b(v["leafHash"])
        got = len(leaf) == 32 and doc_inclusion(
            v["leafIdx"], v["treeSize"], leaf, [_b(h) for h in v["proof"] or []], _b(v["root"])
        )
        assert got == (not v["wantErr"]), path
        n += 1
    for path in sorted((VECTORS / "consistency").rglob("*.json")):
        v = json.loads(path.read_text())
        got = doc_consistency(
            v["size1"],
            v["size2"],
            [_b(h) for h in v["proof"] or []],
            _b(v["root1"]),
            _b(v["root2"]),
        )
        assert got == (not v["wantErr"]), path
        n += 1
    assert n > 190


# --- §9, sealing -------------------------------------------------------------------------------


def test_the_sealing_example_opens_from_the_documented_pieces() -> None:
    from puente.evidence.enckeys import EncryptionKey, EncryptionPublicKey, KeyRing
    from puente.evidence.seal import delivery_info, open_delivery

    text = DOC.read_text()
    skey = blocks("### 9.3 Example")[0].strip()
    info_hex, envelope_hex = blocks("### 9.3 Example")[1].split()
    key = EncryptionKey.from_skey(skey)
    # §2.1's example public key is this key's, and its key id is the envelope's bytes 4..11.
    ekey = re.search(r"e\.g\.\n  `(puente\.member/GT\+[^`]+)`", text)
    assert ekey is not None and EncryptionPublicKey.from_ekey(ekey.group(1)) == key.public
    envelope = bytes.fromhex(envelope_hex)
    assert envelope[4:12].hex() == key.key_id
    payload = bytes.fromhex(re.findall(r"payload\n`([0-9a-f]+)`", text)[0])
    binding = {
        "notice_id": "8a0c3f52-3c1e-4d8e-9f6a-0b6f3e2d1c40",
        "recipient": "GT",
        "delivery_id": "1f5e2b7c-9d3a-4c61-8e0f-7a2b5c4d3e21",
    }
    assert f"notice id `{binding['notice_id']}`" in text.replace("\n", " ")
    info = delivery_info(key_id=key.key_id, schema_fingerprint=payload[2:10], **binding)
    assert info.hex() == info_hex and len(info) == 126
    opened = open_delivery(
        envelope, keys=KeyRing("member:GT", (key,)), payload_fingerprint=payload[2:10], **binding
    )
    assert opened.plaintext == payload and payload.endswith(b"example payload")


def test_the_batch_sealing_example_opens_from_the_documented_pieces() -> None:
    """§9.6: with §9.3's key, payload and binding, the example record opens, its info and AAD
    are the documented bytes, and the pieces alone (HPKE then AES-256-GCM) open it too."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

    from puente.evidence.enckeys import EncryptionKey, KeyRing
    from puente.evidence.seal import batch_delivery_aad, batch_key_info, open_delivery

    text = DOC.read_text()
    key = EncryptionKey.from_skey(blocks("### 9.3 Example")[0].strip())
    info_hex, aad_hex, record_hex = blocks("### 9.6 Batch-sealed")[1].split()
    payload = bytes.fromhex(re.findall(r"payload\n`([0-9a-f]+)`", text)[0])
    binding = {
        "notice_id": "8a0c3f52-3c1e-4d8e-9f6a-0b6f3e2d1c40",
        "recipient": "GT",
        "delivery_id": "1f5e2b7c-9d3a-4c61-8e0f-7a2b5c4d3e21",
    }
    info = batch_key_info(key_id=key.key_id, recipient="GT")
    aad = batch_delivery_aad(key_id=key.key_id, schema_fingerprint=payload[2:10], **binding)
    assert (info.hex(), len(info), aad.hex(), len(aad)) == (info_hex, 41, aad_hex, 132)
    record = bytes.fromhex(record_hex)
    assert record[:4] == b"PS\x01\x04" and record[92:104] == bytes(12) and len(record) == 145
    opened = open_delivery(
        record, keys=KeyRing("member:GT", (key,)), payload_fingerprint=payload[2:10], **binding
    )
    assert opened.plaintext == payload
    suite = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)
    data_key = suite.decrypt(record[12:92], key.crypto(), info)
    assert AESGCM(data_key).decrypt(record[92:104], record[104:], aad) == payload
