"""Errors of the codec: schema loading, encoding, decoding. Each carries a stable ``reason``.

Reason codes (stable; used in rejections, HTTP bodies, metrics and tests):

========================  =====================================================================
SchemaError
  SCHEMA_INVALID          a schema file is not valid JSON or not a valid Avro record schema
  SCHEMA_DUPLICATE        two files give the same version, or the same schema twice
  SCHEMA_LAYOUT           a file is not where ``schemas/<RecordName>/v<N>.avsc`` says it must be
  SCHEMA_NOT_FOUND        no schema of that full name (or version) is registered
EncodeError
  INVALID_RECORD          a record does not match its schema (``problems`` name the field paths)
DecodeError
  BAD_MAGIC               not Avro single-object encoding (the first two bytes are not C3 01)
  UNKNOWN_SCHEMA          the writer fingerprint is not in the registry
  SCHEMA_MISMATCH         the writer schema cannot be read as the requested reader schema
  TRUNCATED               the body ends before the record does
  TRAILING_BYTES          bytes follow the end of the record
  INVALID_DATA            an impossible value: enum index, union branch, boolean byte, length,
                          varint, UTF-8
========================  =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from puente.errors import PuenteError


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem with one field: ``path`` is like ``persons[2].nationalities[0]``."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path or '<record>'}: {self.problem}"


class CodecError(PuenteError):
    """Base of every codec error."""

    reason = "CODEC_ERROR"


class SchemaError(CodecError):
    """A schema file is malformed, misplaced or duplicated, or a schema name is unknown."""

    reason = "SCHEMA_INVALID"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        path: Path | None = None,
        hint: str | None = None,
    ) -> None:
        text = f"{path}: {message}" if path is not None else message
        super().__init__(text, reason=reason, hint=hint)
        self.path = path


class EncodeError(CodecError):
    """A record cannot be encoded (or converted from JSON): ``problems`` lists every field at
    fault with its path."""

    reason = "INVALID_RECORD"

    def __init__(
        self,
        message: str,
        *,
        problems: tuple[FieldProblem, ...] = (),
        reason: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.problems = problems

    @classmethod
    def from_problems(cls, full_name: str, problems: list[FieldProblem]) -> EncodeError:
        """An error whose message names the first few problems."""
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        return cls(f"invalid {full_name}: {shown}{more}", problems=tuple(problems))


class DecodeError(CodecError):
    """Bytes are not a valid single-object-encoded record of a registered schema."""

    reason = "INVALID_DATA"

    def __init__(self, message: str, *, reason: str, path: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.path = path
