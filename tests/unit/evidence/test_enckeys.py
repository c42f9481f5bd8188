"""X25519 encryption keys: key ids, text encodings, key files, and the key store's encryption
keys (generate, import, list, rotate, revoke, delete) beside its signing keys."""

from __future__ import annotations

import base64
import os
import pickle
import stat
from hashlib import sha256
from pathlib import Path

import pytest

from puente.evidence.enckeys import (
    EncryptionKey,
    EncryptionPublicKey,
    read_encryption_key,
    write_encryption_key,
)
from puente.evidence.errors import KeyStoreError, MalformedError
from puente.evidence.keys import PublicKey, SigningKey
from puente.evidence.keystore import KeyStore
from puente.evidence.trust import Usage

T0 = 1_767_225_600_000
HOUR = 3_600_000
# RFC 7748 §6.1: Alice's private key and the public key it gives (an independent computation).
RFC7748_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
RFC7748_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")


def test_key_id_hash_and_text_follow_the_documented_construction() -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    key = EncryptionKey("puente.member/GT", X25519PrivateKey.from_private_bytes(RFC7748_PRIVATE))
    assert key.public.raw == RFC7748_PUBLIC
    digest = sha256(b"puente.member/GT" + b"\n" + b"\x20" + RFC7748_PUBLIC).digest()
    assert key.key_id == digest[:8].hex() and key.public.key_hash == digest[:4]
    blob = base64.b64encode(b"\x20" + RFC7748_PUBLIC).decode()
    assert key.public.ekey == f"puente.member/GT+{digest[:4].hex()}+{blob}"
    assert key.skey() == (
        f"PRIVATE+KEY+puente.member/GT+{digest[:4].hex()}+"
        + base64.b64encode(b"\x20" + RFC7748_PRIVATE).decode()
    )
    assert EncryptionPublicKey.from_ekey(key.public.ekey) == key.public
    assert EncryptionKey.from_skey(key.skey()).public == key.public


def test_encryption_and_signing_key_texts_are_not_interchangeable() -> None:
    enc = EncryptionKey.generate("puente.member/GT")
    sig = SigningKey.generate("puente.member/GT")
    assert enc.key_id != sig.key_id  # same name, another algorithm byte
    with pytest.raises(MalformedError, match="not an X25519 key"):
        EncryptionPublicKey.from_ekey(sig.public.vkey)
    with pytest.raises(MalformedError, match="not an Ed25519 key"):
        PublicKey.from_vkey(enc.public.ekey)
    with pytest.raises(MalformedError, match="not an X25519 key"):
        EncryptionKey.from_skey(sig.skey())
    with pytest.raises(MalformedError, match="not an Ed25519 key"):
        SigningKey.from_skey(enc.skey())


def test_key_texts_that_do_not_match_are_refused() -> None:
    key = EncryptionKey.generate("puente.node/MX")
    name, key_hash, blob = key.public.ekey.split("+", 2)
    bad_hash = "00000000" if key_hash != "00000000" else "11111111"
    for text in (
        f"{name}+{bad_hash}+{blob}",  # hash of another key
        f"puente.node/GT+{key_hash}+{blob}",  # renamed
        f"{name}+{key_hash}+{blob[:-1]}",  # not base64
        f"{name}+{key_hash}",
    ):
        with pytest.raises(MalformedError):
            EncryptionPublicKey.from_ekey(text)
    with pytest.raises(MalformedError, match="key hash"):
        EncryptionKey.from_skey(key.skey().replace(key_hash, bad_hash))


@pytest.mark.parametrize(
    "point",
    [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",  # order 8
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",  # order 8
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # p - 1
    ],
)
def test_low_order_points_are_refused(point: str) -> None:
    # With such a key every shared secret is the same: a seal to it would be readable by all.
    with pytest.raises(MalformedError, match="low-order"):
        EncryptionPublicKey("puente.member/GT", bytes.fromhex(point))


def test_private_keys_never_show_in_repr_or_pickles() -> None:
    key = EncryptionKey.generate("puente.member/GT")
    secret = key.skey().split("+", 4)[4]
    for shown in (repr(key), str(key), f"{key}", repr(key.public)):
        assert secret not in shown and "PRIVATE" not in shown
    assert key.key_id in repr(key)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)


def test_private_key_files_are_owner_only(tmp_path: Path) -> None:
    key = EncryptionKey.generate("puente.member/GT")
    path = write_encryption_key(key, tmp_path / "keys" / "gt.skey")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert read_encryption_key(path).public == key.public
    with pytest.raises(KeyStoreError, match="refusing to overwrite"):
        write_encryption_key(EncryptionKey.generate("puente.member/GT"), path)
    os.chmod(path, 0o640)
    with pytest.raises(KeyStoreError, match="0600") as exc:
        read_encryption_key(path)
    assert exc.value.hint == f"chmod 600 {path}"


# --- the key store ---------------------------------------------------------------------------


def test_key_store_keeps_encryption_keys_beside_signing_keys(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    sig, _ = store.generate("member:GT", valid_from=T0)
    enc, meta = store.generate_encryption("member:GT", valid_from=T0)
    assert meta.usages == ("encryption",) and meta.is_encryption and meta.name == "puente.member/GT"
    stem = store.root / f"member-GT-{enc.key_id}"
    assert stat.S_IMODE(stem.with_suffix(".skey").stat().st_mode) == 0o600
    assert store.encryption_public(meta) == enc.public
    assert stem.with_suffix(".ekey").read_text().strip() == enc.public.ekey
    # A node key of MX: its signing key is a node key for deliveries and checkpoints.
    node_sig, node_meta = store.generate("node:MX", valid_from=T0)
    assert node_meta.name == "puente.node/MX"
    assert set(node_meta.usages) == {"delivery", "checkpoint", "early-warning"}
    node_enc, _ = store.generate_encryption("node:MX", valid_from=T0)
    # Another state's key, imported: public only.
    hn = EncryptionKey.generate("puente.member/HN")
    store.import_encryption(hn.public, "member:HN", valid_from=T0)
    assert not list(store.root.glob(f"*{hn.key_id}.skey"))
    listed = {m.key_id: m for m in store.key_metas()}
    assert set(listed) == {sig.key_id, enc.key_id, node_sig.key_id, node_enc.key_id, hn.key_id}
    tl = store.trust_list(serial=1, issued_at=T0, expires_at=T0 + HOUR, floor_digest=bytes(32))
    assert {e.key_id for e in tl.entries} == {sig.key_id, node_sig.key_id}
    assert {e.key_id for e in tl.encryption_entries} == {enc.key_id, node_enc.key_id, hn.key_id}
    assert tl.encryption_key("member:HN", at=T0).key == hn.public
    assert tl.floor_digest == bytes(32)
    assert store.keyring("member:GT").keys[0].public == enc.public
    assert store.keyring("member:HN").keys == ()  # not ours to hold


def test_key_store_refuses_mixed_kinds(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    with pytest.raises(KeyStoreError, match="X25519"):
        store.generate("member:GT", valid_from=T0, usages=[Usage.ENCRYPTION])
    store.generate_encryption("member:GT", valid_from=T0)
    with pytest.raises(KeyStoreError, match="trust list"):
        store.current("member:GT", usage=Usage.ENCRYPTION, at=T0)
    for holder in ("service:policy", "operator:root"):
        with pytest.raises(KeyStoreError) as exc:
            store.generate_encryption(holder, valid_from=T0)
        assert exc.value.reason == "KEY_WRONG_HOLDER"


def test_rotation_and_revocation_keep_old_seals_openable(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    sig, _ = store.generate("member:GT", valid_from=T0)
    old, _ = store.generate_encryption("member:GT", valid_from=T0)
    new, retired = store.rotate_encryption("member:GT", at=T0 + HOUR, overlap_ms=HOUR)
    assert [m.key_id for m in retired] == [old.key_id]
    assert store.meta(old.key_id).valid_until == T0 + 2 * HOUR
    assert store.meta(sig.key_id).valid_until is None  # the signing key is not rotated with it
    ring = store.keyring("member:GT")
    assert [k.key_id for k in ring.keys] == [new.key_id, old.key_id]  # newest first, old kept
    # Rotating the signing key leaves the encryption keys alone.
    store.rotate("member:GT", at=T0 + 2 * HOUR, overlap_ms=0)
    assert store.meta(new.key_id).valid_until is None
    # Revocation stops sealing to the key, not reading with it.
    store.revoke(new.key_id, since=T0 + 3 * HOUR)
    assert store.meta(new.key_id).revoked_since == T0 + 3 * HOUR
    assert new.key_id in {k.key_id for k in store.keyring("member:GT").keys}
    tl = store.trust_list(serial=2, issued_at=T0, expires_at=T0 + 9 * HOUR)
    assert tl.encryption_key("member:GT", at=T0 + HOUR + 1).key_id == new.key_id
    # Deleting a private key is the one thing that makes its seals unreadable here.
    store.delete_private(old.key_id)
    assert [k.key_id for k in store.keyring("member:GT").keys] == [new.key_id]
    assert store.meta(old.key_id).key_id == old.key_id  # the description stays
    with pytest.raises(KeyStoreError, match="no private key"):
        store.delete_private(old.key_id)
