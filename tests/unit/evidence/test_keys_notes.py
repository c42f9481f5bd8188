"""Keys, key files, signed notes and checkpoints: encodings, permissions, byte-exact round trips."""

from __future__ import annotations

import base64
import os
import pickle
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from puente.evidence.checkpoint import Checkpoint, parse_signed_checkpoint
from puente.evidence.errors import KeyStoreError, MalformedError, SignatureError
from puente.evidence.keys import (
    PublicKey,
    SigningKey,
    read_private_key,
    read_public_key,
    write_private_key,
    write_public_key,
)
from puente.evidence.merkle import EMPTY_ROOT, leaf_hash
from puente.evidence.note import Note, UnsignedNoteError

# golang.org/x/mod/sumdb/note's published example: an independent implementation's bytes.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_go_note_vector_is_reproduced_byte_for_byte() -> None:
    key = SigningKey.from_skey(GO_SKEY)
    assert key.public.vkey == GO_VKEY
    assert key.public.key_hash.hex() == "c74f20a3"
    assert key.key_id.startswith("c74f20a3")
    note = Note.unsigned(GO_TEXT).sign(key)
    assert note.to_bytes() == GO_NOTE.encode()
    parsed = Note.parse(GO_NOTE.encode())
    assert parsed == note
    assert parsed.verify([PublicKey.from_vkey(GO_VKEY)]) == [key.public]


def test_tampered_note_is_rejected() -> None:
    vkey = PublicKey.from_vkey(GO_VKEY)
    bad = Note.parse(GO_NOTE.replace("cryptography", "cryptographY").encode())
    with pytest.raises(SignatureError):
        bad.verify([vkey])


def test_note_verification_follows_the_spec_for_unknown_keys() -> None:
    a, b = SigningKey.generate("puente.test/a"), SigningKey.generate("puente.test/b")
    note = Note.unsigned("hello\n").sign(a).sign(b)
    # Only b known: a's signature is ignored, b's verifies.
    assert note.verify([b.public]) == [b.public]
    # Nothing known: rejected.
    with pytest.raises(SignatureError):
        note.verify([SigningKey.generate("puente.test/c").public])
    # Same name, other key (so other key hash): ignored, hence no known signature.
    impostor = SigningKey.generate("puente.test/a")
    with pytest.raises(SignatureError):
        note.verify([impostor.public])
    # A known key whose signature fails rejects the whole note, even if another one verifies.
    forged = Note(
        note.text,
        (note.signatures[0], note.signatures[1].__class__(b.name, b.public.key_hash, bytes(64))),
    )
    with pytest.raises(SignatureError):
        forged.verify([a.public, b.public])


@pytest.mark.parametrize(
    "data",
    [
        b"no newline",
        b"text\n",  # unsigned
        b"text\n\n",  # blank line, no signatures
        "text\n\n— name AAAA\n".encode(),  # too short to carry a key hash and a signature
        "text\n\n— name notbase64!\n".encode(),
        "text\n\n— na me QUJDREVGRw==\n".encode(),
        b"text\n\n-- name QUJDREVGRw==\n",
        "te\txt\n\n— name QUJDREVGRw==\n".encode(),
        b"\xff\xfe\n\n",
        "text\n\n— name QUJDREVGRw=\n".encode(),  # non-canonical padding
    ],
)
def test_malformed_notes_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedError):
        Note.parse(data)


def test_unsigned_note_is_reported_as_such() -> None:
    with pytest.raises(UnsignedNoteError) as exc:
        Note.parse(b"puente.trust-list\nserial 1\n")
    assert exc.value.reason == "NOTE_UNSIGNED"


texts = st.lists(
    st.text(
        alphabet=st.characters(min_codepoint=0x20, exclude_categories=["Cs"]),
        max_size=30,
    ),
    min_size=1,
    max_size=6,
).map(lambda lines: "\n".join(lines) + "\n")


@given(texts, st.integers(min_value=1, max_value=4))
def test_notes_round_trip_byte_exactly(text: str, n_sigs: int) -> None:
    note = Note.unsigned(text)
    keys = [SigningKey.generate(f"puente.test/k{i}") for i in range(n_sigs)]
    for k in keys:
        note = note.sign(k)
    data = note.to_bytes()
    again = Note.parse(data)
    assert again == note and again.to_bytes() == data
    assert again.verify([k.public for k in keys]) == [k.public for k in keys]


@given(
    st.from_regex(r"[a-z][a-z0-9./-]{0,40}", fullmatch=True),
    st.integers(min_value=0, max_value=2**63 - 1),
    st.binary(min_size=32, max_size=32),
    st.integers(min_value=0, max_value=2**53),
)
def test_checkpoints_round_trip_byte_exactly(origin: str, size: int, root: bytes, t: int) -> None:
    key = SigningKey.generate("puente.svc/policy")
    cp = Checkpoint.make(origin, size, root, time_ms=t)
    data = cp.sign(key).to_bytes()
    cp2, note = parse_signed_checkpoint(data)
    assert cp2 == cp and cp2.time_ms == t
    assert note.to_bytes() == data
    note.verify([key.public])


def test_checkpoint_text_is_the_c2sp_layout() -> None:
    cp = Checkpoint.make("puente.audit/MX/0", 0, EMPTY_ROOT, time_ms=1767225600000)
    assert cp.text() == (
        "puente.audit/MX/0\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
        "puente-time-ms 1767225600000\n"
    )
    # A third-party checkpoint with foreign extension lines parses and keeps them verbatim.
    foreign = "example.com/log\n7\n" + base64.b64encode(leaf_hash(b"x")).decode() + "\nabc\n"
    assert Checkpoint.from_text(foreign).text() == foreign
    assert Checkpoint.from_text(foreign).time_ms is None


@pytest.mark.parametrize(
    "text",
    [
        "o\n007\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",  # leading zeros
        "o\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "o\n1\nAAAA\n",  # short root
        "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n",  # empty extension
        "\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",  # empty origin
        "o\n1\n",
        "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\npuente-time-ms 01\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(MalformedError):
        Checkpoint.from_text(text)


def test_key_encodings_reject_mismatches() -> None:
    key = SigningKey.generate("puente.member/MX")
    name, h, blob = key.public.vkey.split("+", 2)
    with pytest.raises(MalformedError):
        PublicKey.from_vkey(f"{name}+00000000+{blob}")
    with pytest.raises(MalformedError):
        PublicKey.from_vkey(f"other+{h}+{blob}")
    for bad_name in ["", "a b", "a+b", "a\tb"]:
        with pytest.raises(MalformedError):
            SigningKey.generate(bad_name)


def test_private_keys_never_show_in_repr_or_pickles() -> None:
    key = SigningKey.generate("puente.svc/policy")
    # The blob is the last of the four '+'-separated fields (base64 may hold '+' itself).
    secret = key.skey().split("+", 4)[4]
    assert len(secret) == 44  # base64 of the algorithm byte and the 32-byte seed
    assert secret not in repr(key) and secret not in str(key)
    assert key.key_id in repr(key)
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_key_files_are_owner_only(tmp_path: Path) -> None:
    key = SigningKey.generate("puente.svc/policy")
    path = write_private_key(key, tmp_path / "keys" / "svc.skey")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert read_private_key(path).public == key.public
    with pytest.raises(KeyStoreError):
        write_private_key(key, path)  # never overwritten
    os.chmod(path, 0o644)
    with pytest.raises(KeyStoreError) as exc:
        read_private_key(path)
    assert "0600" in str(exc.value)
    pub = write_public_key(key.public, tmp_path / "keys" / "svc.vkey")
    assert read_public_key(pub) == key.public
    assert pub.with_suffix(".pem").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
