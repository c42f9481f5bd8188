"""Schema fingerprints: CRC-64-AVRO (the Avro specification's 64-bit Rabin fingerprint) of the
schema's Parsing Canonical Form, as used in single-object encoding."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastavro.schema import fingerprint as _fingerprint
from fastavro.schema import to_parsing_canonical_form


def canonical_form(schema: Mapping[str, Any]) -> str:
    """The Parsing Canonical Form of a schema (raw JSON dict)."""
    return str(to_parsing_canonical_form(dict(schema)))


def crc64_avro(canonical: str) -> int:
    """CRC-64-AVRO of a canonical form, as an unsigned 64-bit integer. (fastavro returns the
    fingerprint's bytes little-endian, as they appear in a single-object header.)"""
    return int.from_bytes(bytes.fromhex(_fingerprint(canonical, "CRC-64-AVRO")), "little")


def fingerprint_bytes(fp: int) -> bytes:
    """The eight bytes of a fingerprint as written in a single-object header (little-endian)."""
    return fp.to_bytes(8, "little")


def format_fingerprint(fp: int | bytes) -> str:
    """The one printed form of a fingerprint, everywhere (CLI, HTTP, reports, docs): its eight
    bytes as they appear in the single-object header and in ``schema_fingerprint`` fields, as
    16 hex digits. (As a 64-bit number, e.g. Java's ``parsingFingerprint64``, the bytes read
    in reverse order.)"""
    data = fingerprint_bytes(fp) if isinstance(fp, int) else fp
    return data.hex()
