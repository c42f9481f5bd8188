"""The schema registry: every ``schemas/<RecordName>/v<N>.avsc`` file, parsed, fingerprinted and
compiled once.

Lookups by full name (``puente.CaseNotice``; a unique short name such as ``CaseNotice`` works
too) and by fingerprint. Every version is kept so old messages still decode. Any record schema
placed in the layout is picked up; nothing here knows which records exist.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, cast

import fastavro

from puente.codec._reader import BodyError, Reader, compile_reader
from puente.codec._schema import names_match, short_name
from puente.codec._writer import Writer, compile_writer
from puente.codec.errors import DecodeError, SchemaError
from puente.codec.fingerprint import (
    canonical_form,
    crc64_avro,
    fingerprint_bytes,
    format_fingerprint,
)

_VERSION_FILE = re.compile(r"v([1-9][0-9]*)\.avsc")


@dataclass(frozen=True, eq=False)
class SchemaVersion:
    """One version of one record schema.

    ``schema`` is the file's JSON; ``parsed`` is fastavro's parsed form; ``fingerprint`` is the
    CRC-64-AVRO of the Parsing Canonical Form (unsigned), ``fingerprint_bytes`` its eight bytes
    little-endian as in a single-object header.
    """

    full_name: str
    version: int
    fingerprint: int
    fingerprint_bytes: bytes
    schema: Mapping[str, Any] = field(repr=False)
    parsed: dict[str, Any] = field(repr=False)
    canonical_form: str = field(repr=False)
    path: Path
    writer: Writer = field(repr=False)
    reader: Reader = field(repr=False)
    header: bytes = field(repr=False)

    @property
    def name(self) -> str:
        """The short record name, e.g. ``CaseNotice``."""
        return short_name(self.full_name)


class Registry:
    """Every schema version found under one directory. Build with :meth:`load`."""

    def __init__(self, versions: list[SchemaVersion], root: Path) -> None:
        self.root = root
        self._by_name: dict[str, tuple[SchemaVersion, ...]] = {}
        self._by_header: dict[bytes, SchemaVersion] = {}
        for sv in sorted(versions, key=lambda v: (v.full_name, v.version)):
            self._by_name[sv.full_name] = (*self._by_name.get(sv.full_name, ()), sv)
            self._by_header[sv.fingerprint_bytes] = sv
        self._latest = {name: vs[-1] for name, vs in self._by_name.items()}
        shorts: dict[str, list[str]] = {}
        for name in self._by_name:
            shorts.setdefault(short_name(name), []).append(name)
        self._short = {s: names[0] for s, names in shorts.items() if len(names) == 1}
        # (writer header bytes, reader name) -> compiled reader; see plan().
        self._plans: dict[tuple[bytes, str | None], Reader] = {}

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, schemas_dir: Path) -> Registry:
        """Load every ``<RecordName>/v<N>.avsc`` under ``schemas_dir``.

        Raises SchemaError naming the file for malformed JSON, an invalid or non-record schema,
        a record name that does not match its folder, a misnamed ``.avsc`` file, two versions
        of one record with the same schema, or a fingerprint shared by two files.
        """
        root = Path(schemas_dir)
        if not root.is_dir():
            raise SchemaError(
                "schemas directory not found",
                reason="SCHEMA_LAYOUT",
                path=root,
                hint="set PUENTE_SCHEMAS_DIR",
            )
        versions: list[SchemaVersion] = []
        seen: dict[int, Path] = {}
        for path in _schema_files(root):
            sv = _load_file(path)
            if sv.fingerprint in seen:
                raise SchemaError(
                    f"same schema (fingerprint {format_fingerprint(sv.fingerprint)}) "
                    f"as {seen[sv.fingerprint]}",
                    reason="SCHEMA_DUPLICATE",
                    path=path,
                    hint="a new version must change the schema; delete the copy",
                )
            seen[sv.fingerprint] = path
            versions.append(sv)
        return cls(versions, root)

    # -- lookups -------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Full names of every registered record, sorted."""
        return sorted(self._by_name)

    def full_name(self, name: str) -> str:
        """The full name for a full or unique short name; SchemaError if unknown."""
        if name in self._by_name:
            return name
        full = self._short.get(name)
        if full is None:
            raise SchemaError(
                f"no schema named {name!r}; known: {', '.join(self.names()) or 'none'}",
                reason="SCHEMA_NOT_FOUND",
            )
        return full

    def versions(self, full_name: str) -> tuple[SchemaVersion, ...]:
        """Every version of a record, oldest first."""
        return self._by_name[self.full_name(full_name)]

    def latest(self, full_name: str) -> SchemaVersion:
        """The newest version of a record (what :func:`~puente.codec.wire.encode` writes)."""
        sv = self._latest.get(full_name)
        return sv if sv is not None else self._latest[self.full_name(full_name)]

    def get(self, full_name: str, version: int) -> SchemaVersion:
        """One version of a record; SchemaError if absent."""
        for sv in self.versions(full_name):
            if sv.version == version:
                return sv
        raise SchemaError(f"{full_name} has no version {version}", reason="SCHEMA_NOT_FOUND")

    def by_fingerprint(self, fp: int | bytes) -> SchemaVersion | None:
        """The version with this fingerprint (int, or the eight header bytes), or None."""
        key = fp if isinstance(fp, bytes) else fingerprint_bytes(fp)
        return self._by_header.get(key)

    def __iter__(self) -> Iterator[SchemaVersion]:
        for name in self.names():
            yield from self._by_name[name]

    def __len__(self) -> int:
        return len(self._by_header)

    # -- decoding plans ------------------------------------------------------------------
    def plan(self, header: bytes, reader: str | None) -> Reader:
        """The compiled reader for bytes written with the schema whose fingerprint bytes are
        ``header``, read as the latest version of ``reader`` (or as written when None).
        Compiled on first use and cached: schema resolution is worked out once per pair."""
        key = (header, reader)
        fn = self._plans.get(key)
        if fn is not None:
            return fn
        writer = self._by_header.get(header)
        if writer is None:
            raise DecodeError(
                f"unknown writer schema fingerprint {header.hex()} (little-endian)",
                reason="UNKNOWN_SCHEMA",
            )
        if reader is None:
            fn = writer.reader
        else:
            target = self.latest(reader)
            if target is writer:
                fn = writer.reader
            elif not names_match(writer.parsed, target.parsed):
                fn = _refuse(f"a {writer.full_name} cannot be read as a {target.full_name}")
            else:
                fn = compile_reader(writer.parsed, target.parsed)
        self._plans[key] = fn
        return fn


def _refuse(message: str) -> Reader:
    def read(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
        raise BodyError("SCHEMA_MISMATCH", "", message)

    return read


def _schema_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for path in sorted(root.rglob("*.avsc")):
        rel = path.relative_to(root)
        if len(rel.parts) != 2 or not _VERSION_FILE.fullmatch(rel.parts[1]):
            raise SchemaError(
                "schema files must be laid out as <RecordName>/v<N>.avsc (N = 1, 2, ...)",
                reason="SCHEMA_LAYOUT",
                path=path,
            )
        files.append(path)
    return files


def _load_file(path: Path) -> SchemaVersion:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SchemaError(f"not UTF-8: {exc}", path=path) from exc
    except json.JSONDecodeError as exc:
        raise SchemaError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", path=path
        ) from exc
    if not isinstance(raw, dict) or raw.get("type") != "record":
        raise SchemaError("the top-level schema must be a record", path=path)
    try:
        # A copy: fastavro annotates what it parses, and ``schema`` stays the file's JSON.
        parsed = cast(dict[str, Any], fastavro.parse_schema(copy.deepcopy(raw), named_schemas={}))
        pcf = canonical_form(raw)
    except Exception as exc:  # fastavro raises several types for a bad schema
        raise SchemaError(f"invalid Avro schema: {exc}", path=path) from exc
    full_name = str(parsed["name"])
    if short_name(full_name) != path.parent.name:
        raise SchemaError(
            f"record {full_name} belongs in {path.parent.parent / short_name(full_name)}/",
            reason="SCHEMA_LAYOUT",
            path=path,
        )
    try:
        writer = compile_writer(parsed)
        reader = compile_reader(parsed)
    except RecursionError as exc:
        raise SchemaError("recursive record types are not supported", path=path) from exc
    fp = crc64_avro(pcf)
    header = fingerprint_bytes(fp)
    match = _VERSION_FILE.fullmatch(path.name)
    assert match is not None  # checked by _schema_files
    return SchemaVersion(
        full_name=full_name,
        version=int(match.group(1)),
        fingerprint=fp,
        fingerprint_bytes=header,
        schema=raw,
        parsed=parsed,
        canonical_form=pcf,
        path=path,
        writer=writer,
        reader=reader,
        header=b"\xc3\x01" + header,
    )


@cache
def default_registry() -> Registry:
    """The registry of the configured ``Settings().schemas_dir``, loaded once per process."""
    from puente.config import get_settings

    return Registry.load(get_settings().schemas_dir)
