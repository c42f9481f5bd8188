"""cosignature/v1 (c2sp.org/tlog-cosignature): the signed message, the line, the key hash."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest

from puente.evidence.cosignature import (
    Cosignature,
    cosign,
    cosignatures,
    cosigned_message,
    cosigner_key_hash,
    cosigner_vkey,
    without_cosignatures,
)
from puente.evidence.errors import SignatureError
from puente.evidence.note import Note
from tests.unit.witness.federation import Federation

TIME_S = 1_767_225_700


def test_the_signed_message_is_the_header_the_time_and_the_checkpoint_text() -> None:
    text = "puente.audit/MX/0\n3\n" + base64.b64encode(bytes(32)).decode() + "\n"
    assert cosigned_message(text, TIME_S) == (b"cosignature/v1\ntime 1767225700\n" + text.encode())


def test_a_cosignature_line_holds_key_hash_timestamp_and_signature(fed: Federation) -> None:
    record = fed.grow(fed.log(), 5)
    note = Note.parse(record.note)
    w = fed.witnesses["GT"]
    cosigned = cosign(note, w, time_s=TIME_S)
    line = cosigned.signatures[-1]
    assert line.name == "puente.witness/GT"
    digest = hashlib.sha256(b"puente.witness/GT\n\x04" + w.public.raw).digest()
    assert line.key_hash == digest[:4] == cosigner_key_hash(w.public)
    assert line.key_hash != w.public.key_hash  # the note key hash uses type 0x01
    assert line.signature[:8] == struct.pack(">Q", TIME_S)
    w.public.verify(line.signature[8:], cosigned_message(note.text, TIME_S))
    vkey = cosigner_vkey(w.public)
    name, khash, blob = vkey.split("+", 2)
    assert name == "puente.witness/GT" and khash == digest[:4].hex()
    assert base64.b64decode(blob) == b"\x04" + w.public.raw


def test_a_cosigned_note_round_trips_and_still_verifies_as_the_logs(fed: Federation) -> None:
    record = fed.grow(fed.log(), 5)
    cosigned = cosign(Note.parse(record.note), fed.witnesses["GT"], time_s=TIME_S)
    data = cosigned.to_bytes()
    assert Note.parse(data) == cosigned
    # A verifier that knows only the log's key ignores the cosignature line.
    verified = fed.verifier().verify_checkpoint(data)
    assert verified.checkpoint.size == 5
    assert without_cosignatures(Note.parse(data)).to_bytes() == record.note
    (found,) = cosignatures(Note.parse(data))
    assert found.time_s == TIME_S and found.time_ms == TIME_S * 1000
    found.verify(fed.witnesses["GT"].public, cosigned.text)


def test_a_cosignature_does_not_verify_for_another_time_text_or_key(fed: Federation) -> None:
    record = fed.grow(fed.log(), 5)
    note = Note.parse(record.note)
    (c,) = cosignatures(cosign(note, fed.witnesses["GT"], time_s=TIME_S))
    moved = Cosignature(c.name, c.key_hash, TIME_S + 1, c.signature)
    with pytest.raises(SignatureError) as exc:
        moved.verify(fed.witnesses["GT"].public, note.text)
    assert exc.value.reason == "COSIGNATURE_INVALID"
    with pytest.raises(SignatureError):
        c.verify(fed.witnesses["GT"].public, note.text.replace("5", "6", 1))
    with pytest.raises(SignatureError):
        c.verify(fed.witnesses["HN"].public, note.text)


def test_a_plain_note_signature_is_not_a_cosignature(fed: Federation) -> None:
    record = fed.grow(fed.log(), 2)
    assert cosignatures(Note.parse(record.note)) == []
