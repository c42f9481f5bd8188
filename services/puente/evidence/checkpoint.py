"""C2SP tlog-checkpoints (c2sp.org/tlog-checkpoint): a log's signed tree head.

The note text is::

    <origin>                       e.g. puente.audit/MX/0 — one log per audit partition
    <tree size, decimal>
    <base64 root hash>
    puente-time-ms <unix ms>       extension line: when the log signed it

The time extension is Puente's: trust is judged "at a time" (a key valid then, not revoked since),
and putting the time under the log's signature keeps anyone but the key holder from moving it.
Other extension lines are kept verbatim and ignored. Parsing is strict and canonical, so a
checkpoint's bytes round-trip exactly.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from puente.evidence.errors import MalformedError
from puente.evidence.keys import SigningKey
from puente.evidence.merkle.hasher import HASH_SIZE
from puente.evidence.note import Note, check_text

TIME_EXTENSION = "puente-time-ms "


def check_log_origin(log_origin: str) -> str:
    """A log origin as Puente writes it: non-empty, no spaces, no ``+`` (C2SP's SHOULD)."""
    if (
        not log_origin
        or "+" in log_origin
        or any(ch.isspace() or ord(ch) < 0x20 for ch in log_origin)
    ):
        raise MalformedError(f"invalid log origin {log_origin!r}: non-empty, no spaces, no '+'")
    return log_origin


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: its C2SP origin line (``log_origin``: the log id, e.g. ``puente.audit/MX/0``
    — not to be confused with a notice's origin *state*), size, root hash, extension lines."""

    log_origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.log_origin or "\n" in self.log_origin:
            raise MalformedError("checkpoint origin must be one non-empty line")
        if self.size < 0:
            raise MalformedError("checkpoint size is negative")
        if len(self.root) != HASH_SIZE:
            raise MalformedError(f"checkpoint root of {len(self.root)} bytes, want {HASH_SIZE}")
        for ext in self.extensions:
            if not ext or "\n" in ext:
                raise MalformedError("checkpoint extension lines must be non-empty single lines")

    @classmethod
    def make(cls, origin: str, size: int, root: bytes, *, time_ms: int) -> Checkpoint:
        """A Puente checkpoint with its signing time in the ``puente-time-ms`` extension."""
        return cls(check_log_origin(origin), size, root, (f"{TIME_EXTENSION}{time_ms}",))

    @property
    def time_ms(self) -> int | None:
        """The signing time from the ``puente-time-ms`` extension, if present."""
        for ext in self.extensions:
            if ext.startswith(TIME_EXTENSION):
                return _decimal(ext[len(TIME_EXTENSION) :], "checkpoint time")
        return None

    def text(self) -> str:
        """The note text (what the log signs)."""
        root = base64.b64encode(self.root).decode()
        lines = [self.log_origin, str(self.size), root, *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text; :class:`MalformedError` unless canonical."""
        check_text(text)
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedError("a checkpoint has at least three lines")
        origin, size_s, root_s, *ext = lines
        size = _decimal(size_s, "tree size")
        try:
            root = base64.b64decode(root_s, validate=True)
        except ValueError:
            raise MalformedError("checkpoint root is not base64") from None
        cp = cls(origin, size, root, tuple(ext))
        if cp.text() != text:
            raise MalformedError("checkpoint text is not canonical")
        cp.time_ms  # noqa: B018 - validates the time extension, if any
        return cp

    def sign(self, key: SigningKey) -> Note:
        """The signed note of this checkpoint."""
        return Note.unsigned(self.text()).sign(key)


def _decimal(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise MalformedError(f"{what} {text!r} is not a canonical decimal")
    return int(text)


def parse_signed_checkpoint(data: bytes) -> tuple[Checkpoint, Note]:
    """Parse a signed checkpoint. Signatures are not checked here: that is the verifier's job."""
    note = Note.parse(data)
    return Checkpoint.from_text(note.text), note
