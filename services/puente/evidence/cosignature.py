"""C2SP cosignatures (c2sp.org/tlog-cosignature, ``cosignature/v1``): a witness's timestamped
Ed25519 signature on a checkpoint, carried as one more signature line of the checkpoint's note.

A witness with key name ``N`` and Ed25519 public key ``P`` signs, at Unix time ``t`` (seconds)::

    cosignature/v1
    time <t>
    <the checkpoint's note text, verbatim>

and appends to the note the line ``— N base64(key hash || t as 8 bytes big-endian || signature)``,
where the key hash is the first 4 bytes of ``SHA-256(N || 0x0A || 0x04 || P)`` (signature type
0x04: timestamped Ed25519 cosignature). A verifier that does not know the witness ignores the
line (c2sp.org/signed-note), so a cosigned checkpoint still verifies as the log's checkpoint.

Puente lists witness keys in the trust list as ordinary Ed25519 verifier keys (``key`` lines,
type 0x01, usage ``witness``): :func:`cosigner_vkey` gives the same key in the type-0x04 text
that cosignature verifiers take.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from puente.evidence.errors import MalformedError, SignatureError
from puente.evidence.keys import (
    KEY_HASH_SIZE,
    SIGNATURE_SIZE,
    PublicKey,
    SigningKey,
    encode_key_text,
    key_digest,
)
from puente.evidence.note import Note, NoteSignature

ALG_COSIGNATURE_V1 = 0x04
COSIGNATURE_HEADER = b"cosignature/v1\n"
_TIMESTAMP = struct.Struct(">Q")
COSIGNATURE_SIZE = _TIMESTAMP.size + SIGNATURE_SIZE  # after the key hash


def cosigner_key_hash(key: PublicKey) -> bytes:
    """The cosignature key hash of ``key``: ``SHA-256(name || 0x0A || 0x04 || key)[:4]``."""
    return key_digest(key.name, ALG_COSIGNATURE_V1, key.raw)[:KEY_HASH_SIZE]


def cosigner_vkey(key: PublicKey) -> str:
    """``key`` as a cosignature verifier key: ``<name>+<hex key hash>+<base64(0x04 || key)>``."""
    return encode_key_text(key.name, cosigner_key_hash(key), ALG_COSIGNATURE_V1, key.raw)


def cosigned_message(text: str, time_s: int) -> bytes:
    """The bytes a witness signs for checkpoint text ``text`` at ``time_s``."""
    if time_s < 0:
        raise MalformedError("a cosignature time is not negative")
    return COSIGNATURE_HEADER + f"time {time_s}\n".encode() + text.encode()


@dataclass(frozen=True)
class Cosignature:
    """One cosignature line of a note: who (name, key hash), when (Unix seconds), the signature."""

    name: str
    key_hash: bytes
    time_s: int
    signature: bytes

    @property
    def time_ms(self) -> int:
        """The cosignature's time in Unix ms (trust-list validity is judged in ms)."""
        return self.time_s * 1000

    def line(self) -> NoteSignature:
        """As a note signature line."""
        return NoteSignature(
            self.name, self.key_hash, _TIMESTAMP.pack(self.time_s) + self.signature
        )

    @classmethod
    def from_line(cls, sig: NoteSignature) -> Cosignature | None:
        """The cosignature a note signature line holds, or None when it cannot be one (a plain
        Ed25519 note signature: 64 bytes after the key hash)."""
        if len(sig.signature) != COSIGNATURE_SIZE:
            return None
        (time_s,) = _TIMESTAMP.unpack(sig.signature[: _TIMESTAMP.size])
        return cls(sig.name, sig.key_hash, time_s, sig.signature[_TIMESTAMP.size :])

    def made_by(self, key: PublicKey) -> bool:
        """True when name and cosignature key hash both match ``key``."""
        return self.name == key.name and self.key_hash == cosigner_key_hash(key)

    def verify(self, key: PublicKey, text: str) -> None:
        """Check this cosignature of checkpoint text ``text`` with ``key``; raises
        :class:`SignatureError` (``COSIGNATURE_INVALID``)."""
        if not self.made_by(key):
            raise SignatureError(
                f"cosignature by {self.name} is not by key {key.key_id}",
                reason="COSIGNATURE_INVALID",
            )
        try:
            key.verify(self.signature, cosigned_message(text, self.time_s))
        except SignatureError:
            raise SignatureError(
                f"cosignature by {self.name} at {self.time_s} does not verify",
                reason="COSIGNATURE_INVALID",
            ) from None


def cosign(note: Note, key: SigningKey, *, time_s: int) -> Note:
    """``note`` with ``key``'s cosignature at ``time_s`` appended."""
    signature = key.sign(cosigned_message(note.text, time_s))
    cosig = Cosignature(key.name, cosigner_key_hash(key.public), time_s, signature)
    return Note(note.text, (*note.signatures, cosig.line()))


def cosignatures(note: Note) -> list[Cosignature]:
    """Every signature line of ``note`` that has the shape of a cosignature (unverified)."""
    found = (Cosignature.from_line(s) for s in note.signatures)
    return [c for c in found if c is not None]


def without_cosignatures(note: Note) -> Note:
    """``note`` with only its plain signature lines: the log-signed checkpoint."""
    return Note(note.text, tuple(s for s in note.signatures if Cosignature.from_line(s) is None))
