"""Avro single-object encoding: ``C3 01``, the writer schema's CRC-64-AVRO fingerprint (eight
bytes, little-endian), then the Avro binary body. The hot path of Puente.

``encode`` always writes with the latest version of a record. ``decode`` finds the writer schema
by fingerprint and reads into the latest version of the expected record (Avro schema
resolution), or into the writer's own schema when no reader is given. Both use code compiled
once per schema (or per writer/reader pair) by the registry. Decoded values are plain Python:
str, int, float, bool, None, bytes, list, dict; ``datetime.date`` for dates, aware UTC
``datetime`` for timestamps, ``str`` for UUIDs.
"""

from __future__ import annotations

import struct
from typing import Any

from puente.codec._reader import BodyError
from puente.codec.errors import DecodeError
from puente.codec.registry import Registry

MAGIC = b"\xc3\x01"
HEADER_SIZE = 10


def encode(reg: Registry, name: str, record: dict[str, Any]) -> bytes:
    """Encode ``record`` with the latest version of ``name``.

    Fields with a default may be left out. A record that does not fit raises EncodeError whose
    ``problems`` name each field path (``persons[2].nationalities[0]``) and what is wrong.
    """
    sv = reg.latest(name)
    out = bytearray(sv.header)
    try:
        sv.writer(record, out)
    except Exception:
        # The fast writer wants complete, exactly typed records; anything else takes the slow
        # road, which fills defaults and names every problem. (Exception: the generated code
        # fails with whatever the bad value raises: KeyError, TypeError, AttributeError, ...)
        from puente.codec.jsonconv import normalise

        out = bytearray(sv.header)
        sv.writer(normalise(sv, record), out)
    return bytes(out)


def header_fingerprint(data: bytes) -> bytes | None:
    """The 8 fingerprint bytes of a single-object header (as written: little-endian), or None
    when ``data`` does not start with one. The one place the header is taken apart."""
    if len(data) < HEADER_SIZE or data[:2] != MAGIC:
        return None
    return bytes(data[2:HEADER_SIZE])


def fingerprint_of(data: bytes) -> int:
    """The writer fingerprint of single-object-encoded bytes; DecodeError if not framed."""
    _check_frame(data)
    return int.from_bytes(data[2:HEADER_SIZE], "little")


def decode(reg: Registry, data: bytes, reader: str | None = None) -> dict[str, Any]:
    """Decode single-object-encoded ``data``.

    ``reader`` names the record expected (its latest version is read into); None reads with
    the writer's own schema. Every failure is a DecodeError with a stable reason: BAD_MAGIC,
    UNKNOWN_SCHEMA, SCHEMA_MISMATCH, TRUNCATED, TRAILING_BYTES or INVALID_DATA.
    """
    if data.__class__ is not bytes:
        data = bytes(data)
    if data[:2] != MAGIC or len(data) < HEADER_SIZE:
        _check_frame(data)
    read = reg.plan(data[2:HEADER_SIZE], reader)
    try:
        record, pos = read(data, HEADER_SIZE)
    except BodyError as exc:
        where = f" at {exc.path}" if exc.path else ""
        raise DecodeError(f"{exc.message}{where}", reason=exc.reason, path=exc.path) from None
    except (IndexError, struct.error):
        raise DecodeError(
            f"the body ends before the record does ({len(data)} bytes)", reason="TRUNCATED"
        ) from None
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"invalid UTF-8 in a string: {exc.reason}", reason="INVALID_DATA"
        ) from None
    if pos != len(data):
        raise DecodeError(
            f"{len(data) - pos} bytes after the end of the record", reason="TRAILING_BYTES"
        )
    return record


def _check_frame(data: bytes) -> None:
    if data[:2] != MAGIC[: len(data[:2])] or (len(data) >= 2 and data[:2] != MAGIC):
        raise DecodeError(
            f"not Avro single-object encoding (starts with {data[:2].hex() or 'nothing'}, "
            "expected c301)",
            reason="BAD_MAGIC",
        )
    if len(data) < HEADER_SIZE:
        raise DecodeError(
            f"{len(data)} bytes: shorter than the 10-byte single-object header", reason="TRUNCATED"
        )
