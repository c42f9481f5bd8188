"""C2SP signed notes (c2sp.org/signed-note): a UTF-8 text signed by one or more keys.

::

    <text, ending in a newline>
    <blank line>
    — <key name> <base64(4-byte key hash || Ed25519 signature)>
    — <key name> <base64(...)>            (more signatures: witnesses, a second root)

The signature covers the text bytes (final newline included, blank line excluded). Parsing is
strict and canonical so that ``parse(b).to_bytes() == b`` for every accepted ``b``: checkpoints
and trust lists are stored and forwarded byte for byte, never re-rendered.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass

from puente.evidence.errors import MalformedError, SignatureError
from puente.evidence.keys import KEY_HASH_SIZE, PublicKey, SigningKey, check_key_name

SIG_PREFIX = "\u2014 "  # em dash, space
MAX_SIGNATURES = 100  # the spec asks verifiers to accept at least 16; Go's x/mod/sumdb/note: 100
MAX_NOTE_BYTES = 1 << 20


class UnsignedNoteError(MalformedError):
    """A text without any signature line where a signed note was expected."""

    reason = "NOTE_UNSIGNED"


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key hash and the signature bytes."""

    name: str
    key_hash: bytes
    signature: bytes

    def line(self) -> str:
        """The signature line, newline included."""
        blob = base64.b64encode(self.key_hash + self.signature).decode()
        return f"{SIG_PREFIX}{self.name} {blob}\n"

    def made_by(self, key: PublicKey) -> bool:
        """True when name and key hash both match ``key`` (the spec's notion of a known key)."""
        return self.name == key.name and self.key_hash == key.key_hash


def check_text(text: str) -> str:
    """A note text: non-empty, ends with a newline, no control characters other than newline."""
    if not text.endswith("\n"):
        raise MalformedError("note text must end with a newline")
    for ch in text:
        if ch < " " and ch != "\n":
            raise MalformedError(f"note text contains control character {ord(ch):#04x}")
    return text


@dataclass(frozen=True)
class Note:
    """A signed note: the text and its signatures, in order."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def to_bytes(self) -> bytes:
        """The note's exact bytes."""
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()

    def sign(self, key: SigningKey) -> Note:
        """This note with one more signature, by ``key``, appended."""
        sig = NoteSignature(key.name, key.public.key_hash, key.sign(self.text.encode()))
        return Note(self.text, (*self.signatures, sig))

    @classmethod
    def unsigned(cls, text: str) -> Note:
        """A note text awaiting its first signature."""
        return cls(check_text(text), ())

    @classmethod
    def parse(cls, data: bytes) -> Note:
        """Parse a signed note; :class:`MalformedError` (or :class:`UnsignedNoteError`)."""
        if len(data) > MAX_NOTE_BYTES:
            raise MalformedError(f"note of {len(data)} bytes is over the {MAX_NOTE_BYTES} limit")
        try:
            whole = data.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedError("note is not valid UTF-8") from None
        check_text(whole)
        split = whole.rfind("\n\n")
        if split < 0:
            raise UnsignedNoteError("note has no signature block")
        text, block = whole[: split + 1], whole[split + 2 :]
        lines = block.split("\n")[:-1]  # block ends with "\n"; check_text guaranteed it
        if not lines or not any(line.startswith(SIG_PREFIX) for line in lines):
            raise UnsignedNoteError("note has no signature lines")
        if len(lines) > MAX_SIGNATURES:
            raise MalformedError(f"note has {len(lines)} signatures, limit {MAX_SIGNATURES}")
        sigs = tuple(_parse_signature_line(line) for line in lines)
        note = cls(text, sigs)
        if note.to_bytes() != data:  # pragma: no cover - guarded by the canonical checks above
            raise MalformedError("note is not in canonical form")
        return note

    def verify(self, keys: Iterable[PublicKey]) -> list[PublicKey]:
        """The known keys whose signatures verify (at least one), in signature order.

        As the spec says: signatures by unknown keys (name and hash not both matching) are
        ignored; a known key's signature that fails rejects the whole note; no verified known
        signature rejects it too. Raises :class:`SignatureError`.
        """
        known = list(keys)
        message = self.text.encode()
        good: list[PublicKey] = []
        for sig in self.signatures:
            for key in known:
                if sig.made_by(key):
                    key.verify(sig.signature, message)  # raises SignatureError
                    good.append(key)
        if not good:
            raise SignatureError("no signature on the note is by a known key")
        return good


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(SIG_PREFIX):
        raise MalformedError("signature line does not start with an em dash and a space")
    rest = line[len(SIG_PREFIX) :]
    name, sep, blob = rest.partition(" ")
    if not sep or " " in blob:
        raise MalformedError("signature line is not '— <name> <base64>'")
    check_key_name(name)
    try:
        raw = base64.b64decode(blob, validate=True)
    except ValueError:
        raise MalformedError("signature is not base64") from None
    if base64.b64encode(raw).decode() != blob:
        raise MalformedError("signature base64 is not canonical")
    if len(raw) <= KEY_HASH_SIZE:
        raise MalformedError("signature too short")
    return NoteSignature(name, raw[:KEY_HASH_SIZE], raw[KEY_HASH_SIZE:])
