"""Compile a decoder for one (writer schema, reader schema) pair into a Python function.

The generated function ``read(data, pos) -> (record, pos)`` reads Avro binary from ``data``
(bytes) at ``pos``. Schema resolution (Avro specification, "Schema Resolution") is worked out
once, here, so decoding a record runs straight-line code: no per-datum type dispatch. It is
also strict where a generic reader is lenient: an enum index or union branch out of range
(negative ones included), a boolean byte other than 0 or 1, an over-long varint, a negative
length, a malformed UUID or invalid UTF-8 raise :class:`BodyError` naming the field path.
Running past the end of ``data`` surfaces as IndexError or struct.error, which the caller maps
to TRUNCATED.

Decoded values: string -> str, bytes/fixed -> bytes, int/long -> int, float/double -> float,
enum -> symbol str, array -> list, map -> dict, record -> dict in reader field order, and the
logical types date -> datetime.date, timestamp-millis/micros -> aware UTC datetime,
uuid -> str (validated, as written).
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from collections.abc import Callable
from copy import deepcopy
from typing import Any

from puente.codec._emit import Emitter
from puente.codec._schema import (
    EPOCH,
    EPOCH_ORDINAL,
    INT_MAX,
    INT_MIN,
    Names,
    Node,
    default_value,
    kind,
    logical,
    min_size,
    names_match,
)

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Arrays of zero-size items (nulls, empty records) are not bounded by the input length.
MAX_ZERO_SIZE_ITEMS = 1_000_000

Reader = Callable[[bytes, int], tuple[dict[str, Any], int]]

_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


class BodyError(Exception):
    """Raised by generated readers: ``reason`` is a DecodeError reason code."""

    def __init__(self, reason: str, path: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.path = path
        self.message = message


def _read_long(data: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint of up to ten bytes (the single-byte case is inlined by the compiler)."""
    b = data[pos]
    pos += 1
    n = b & 0x7F
    shift = 7
    while b & 0x80:
        if shift >= 70:
            raise BodyError("INVALID_DATA", "", "varint longer than ten bytes")
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
    if n >> 64:
        raise BodyError("INVALID_DATA", "", "varint exceeds 64 bits")
    return (n >> 1) ^ -(n & 1), pos


def _length_error(n: int, left: int, path: str) -> BodyError:
    if n < 0:
        return BodyError("INVALID_DATA", path, f"negative length {n}")
    return BodyError("TRUNCATED", path, f"{n} bytes announced, {left} left")


_NAMESPACE: dict[str, Any] = {
    "_long": _read_long,
    "_length_error": _length_error,
    "_Bad": BodyError,
    "_date": dt.date.fromordinal,
    "_td": dt.timedelta,
    "_EPOCH": EPOCH,
    "_EPOCH_ORD": EPOCH_ORDINAL,
    "_uuid_ok": UUID_RE.fullmatch,
    "_f": struct.Struct("<f").unpack_from,
    "_d": struct.Struct("<d").unpack_from,
    "_copy": deepcopy,
}


def _matches(writer: Node, reader: Node) -> bool:
    """Whether a writer type can be read as a reader type (one level, as for union branches)."""
    wk, rk = kind(writer), kind(reader)
    if wk == rk:
        if wk in {"record", "enum", "fixed"}:
            return names_match(writer, reader)
        return True
    return rk in _PROMOTIONS.get(wk, set())


class _ReaderCompiler:
    def __init__(self, writer_names: Names, reader_names: Names) -> None:
        self.e = Emitter(_NAMESPACE)
        self.wn = writer_names
        self.rn = reader_names

    # -- small emitters ---------------------------------------------------------------
    def varint(self, ind: int, target: str) -> None:
        e = self.e
        e.line(ind, "b = data[pos]")
        e.line(ind, f"if b < 128: {target} = (b >> 1) ^ -(b & 1); pos += 1")
        e.line(ind, f"else: {target}, pos = _long(data, pos)")

    def fail(self, ind: int, reason: str, path: str, message: str) -> None:
        self.e.line(ind, f"raise _Bad({reason!r}, f{path!r}, {message})")

    # -- the walk ---------------------------------------------------------------------
    def read(self, w: Node, r: Node | None, ind: int, target: str, path: str) -> None:
        """Emit code that reads writer type ``w`` (resolved into reader type ``r``, or as
        itself when ``r`` is None) into the local ``target``."""
        w = self.wn.resolve(w)
        if r is not None:
            r = self.rn.resolve(r)
        if kind(w) == "union":
            self.union(w, r, ind, target, path)
            return
        if r is not None and kind(r) == "union":
            branch = next((b for b in r if _matches(w, self.rn.resolve(b))), None)
            if branch is None:
                self.fail(ind, "SCHEMA_MISMATCH", path, f"'writer {kind(w)} not in reader union'")
                return
            r = self.rn.resolve(branch)
        if r is not None and not _matches(w, r):
            self.fail(
                ind, "SCHEMA_MISMATCH", path, f"'writer {kind(w)} cannot be read as {kind(r)}'"
            )
            return
        getattr(self, "t_" + kind(w))(w, r, ind, target, path)

    def union(self, w: list[Any], r: Node | None, ind: int, target: str, path: str) -> None:
        e = self.e
        idx = e.fresh("u")
        self.varint(ind, idx)
        for i, branch in enumerate(w):
            e.line(ind, f"{'if' if i == 0 else 'elif'} {idx} == {i}:")
            self.read(branch, r, ind + 1, target, path)
        e.line(ind, "else:")
        self.fail(ind + 1, "INVALID_DATA", path, f"f'union branch {{{idx}}} out of range'")

    def t_null(self, w: Node, r: Node | None, ind: int, target: str, path: str) -> None:
        self.e.line(ind, f"{target} = None")

    def t_boolean(self, w: Node, r: Node | None, ind: int, target: str, path: str) -> None:
        e = self.e
        e.line(ind, "b = data[pos]; pos += 1")
        e.line(ind, "if b > 1:")
        self.fail(ind + 1, "INVALID_DATA", path, "f'boolean byte {b}'")
        e.line(ind, f"{target} = b == 1")

    def t_int(self, w: Node, r: Node | None, ind: int, target: str, path: str) -> None:
        self.varint(ind, target)
        self.e.line(ind, f"if not {INT_MIN} <= {target} <= {INT_MAX}:")
        self.fail(ind + 1, "INVALID_DATA", path, "'int out of 32-bit range'")
        self.integral(w, r, ind, target, path)

    def t_long(self, w: Node, r: Node | None, ind: int, target: str, path: str) -> None:
        self.varint(ind, target)
        self.integral(w, r, ind, target, path)

    def integral(self, w: Node, r: Node | None, ind: int, target: str, path: str) -> None:
        e = self.e
        dest = r if r is not None else w
        if kind(dest) in {"float", "double"}:
            e.line(ind, f"{target} = float({target})")
            return
        lt = logical(dest)
        conv = {
            "date": f"_date({target} + _EPOCH_ORD)",
            "timestamp-millis": f"_EPOCH + _td(milliseconds={target})",
            "timestamp-micros": f"_EPOCH + _td(microseconds={target})",
        }.get(lt or "")
        if conv is not None:
            e.line(ind, "try:")
            e.line(ind + 1, f"{target} = {conv}")
            e.line(ind, "except (ValueError, OverflowError):")
            self.fail(ind + 1, "INVALID_DATA", path, f"'{lt} out of range'")

    def t_float(self, w: Node, r: Node | None, ind: int, target: str, path: str) -> None:
        self.e.line(ind, f"{target}, = _f(data, pos); pos += 4")

    def t_double(self, w: Node, r: Node | None, ind: int, target: str, path: str) -> None:
        self.e.line(ind, f"{target}, = _d(data, pos); pos += 8")

    def length_prefixed(self, ind: int, path: str) -> None:
        """Read a length into ``n`` and check it against what is left; sets ``e`` (the end)."""
        e = self.e
        self.varint(ind, "n")
        e.line(ind, "if not 0 <= n <= end - pos:")
        e.line(ind + 1, f"raise _length_error(n, end - pos, f{path!r})")
        e.line(ind, "e = pos + n")

    def t_string(self, w: Node, r: Node | None, ind: int, target: str, path: str) -> None:
        e = self.e
        self.length_prefixed(ind, path)
        if r is not None and kind(r) == "bytes":
            e.line(ind, f"{target} = data[pos:e]; pos = e")
            return
        e.line(ind, f"{target} = data[pos:e].decode(); pos = e")
        if logical(r if r is not None else w) == "uuid":
            e.line(ind, f"if _uuid_ok({target}) is None:")
            self.fail(ind + 1, "INVALID_DATA", path, "'malformed UUID'")

    def t_bytes(self, w: Node, r: Node | None, ind: int, target: str, path: str) -> None:
        e = self.e
        self.length_prefixed(ind, path)
        if r is not None and kind(r) == "string":
            e.line(ind, f"{target} = data[pos:e].decode(); pos = e")
        else:
            e.line(ind, f"{target} = data[pos:e]; pos = e")

    def t_fixed(self, w: Node, r: Node | None, ind: int, target: str, path: str) -> None:
        e = self.e
        size = int(w["size"])
        if r is not None and int(r["size"]) != size:
            self.fail(ind, "SCHEMA_MISMATCH", path, "'fixed sizes differ'")
            return
        e.line(ind, f"e = pos + {size}")
        e.line(ind, "if e > end:")
        self.fail(ind + 1, "TRUNCATED", path, f"'fixed({size}) cut short'")
        e.line(ind, f"{target} = data[pos:e]; pos = e")

    def t_enum(self, w: Node, r: Node | None, ind: int, target: str, path: str) -> None:
        e = self.e
        symbols: list[str] = list(w["symbols"])
        if r is not None:
            rsyms = set(r["symbols"])
            default = r.get("default")
            symbols = [s if s in rsyms else default for s in symbols]
        table = e.const(tuple(symbols), "SYM")
        idx = e.fresh("x")
        self.varint(ind, idx)
        e.line(ind, f"if not 0 <= {idx} < {len(symbols)}:")
        self.fail(ind + 1, "INVALID_DATA", path, f"f'enum index {{{idx}}} out of range'")
        e.line(ind, f"{target} = {table}[{idx}]")
        if any(s is None for s in symbols):
            e.line(ind, f"if {target} is None:")
            self.fail(ind + 1, "SCHEMA_MISMATCH", path, "'enum symbol unknown to the reader'")

    def blocks(self, ind: int, item_min: int, path: str) -> tuple[str, int]:
        """Emit the block loop header of an array or map; return (count var, body indent)."""
        e = self.e
        count = e.fresh("c")
        e.line(ind, "while True:")
        self.varint(ind + 1, count)
        e.line(ind + 1, f"if {count} == 0: break")
        e.line(ind + 1, f"if {count} < 0:")
        e.line(ind + 2, f"{count} = -{count}")
        skip = e.fresh("s")
        self.varint(ind + 2, skip)
        if item_min > 0:
            e.line(ind + 1, f"if {count} * {item_min} > end - pos:")
            self.fail(ind + 2, "TRUNCATED", path, f"f'{{{count}}} items announced'")
        else:
            e.line(ind + 1, f"if {count} > {MAX_ZERO_SIZE_ITEMS}:")
            self.fail(ind + 2, "INVALID_DATA", path, f"f'{{{count}}} empty items'")
        e.line(ind + 1, f"for _ in range({count}):")
        return count, ind + 2

    def t_array(self, w: Node, r: Node | None, ind: int, target: str, path: str) -> None:
        e = self.e
        items = e.fresh("a")
        e.line(ind, f"{items} = []")
        _, body = self.blocks(ind, min_size(w["items"], self.wn), path)
        item = e.fresh("i")
        item_path = f"{path}[{{len({items})}}]"
        self.read(w["items"], None if r is None else r["items"], body, item, item_path)
        e.line(body, f"{items}.append({item})")
        e.line(ind, f"{target} = {items}")

    def t_map(self, w: Node, r: Node | None, ind: int, target: str, path: str) -> None:
        e = self.e
        out = e.fresh("m")
        e.line(ind, f"{out} = {{}}")
        _, body = self.blocks(ind, 1 + min_size(w["values"], self.wn), path)
        key = e.fresh("k")
        self.t_string("string", None, body, key, path)
        value = e.fresh("v")
        self.read(
            w["values"], None if r is None else r["values"], body, value, f"{path}[{{{key}!r}}]"
        )
        e.line(body, f"{out}[{key}] = {value}")
        e.line(ind, f"{target} = {out}")

    def t_record(self, w: Node, r: Node | None, ind: int, target: str, path: str) -> None:
        e = self.e
        prefix = f"{path}." if path else ""
        if r is None:
            pairs = []
            for f in w["fields"]:
                var = e.fresh("f")
                self.read(f["type"], None, ind, var, prefix + f["name"])
                pairs.append((f["name"], var))
            e.line(ind, f"{target} = {{" + ", ".join(f"{k!r}: {v}" for k, v in pairs) + "}")
            return
        by_name = {f["name"]: f for f in r["fields"]}
        for f in r["fields"]:
            for alias in f.get("aliases") or []:
                by_name.setdefault(alias, f)
        values: dict[str, str] = {}
        for f in w["fields"]:
            rf = by_name.get(f["name"])
            var = e.fresh("f")
            # A field the reader does not know is still read, to move past it, then dropped.
            self.read(f["type"], None if rf is None else rf["type"], ind, var, prefix + f["name"])
            if rf is not None:
                values[rf["name"]] = var
        for f in r["fields"]:
            if f["name"] in values:
                continue
            if "default" not in f:
                self.fail(ind, "SCHEMA_MISMATCH", prefix + f["name"], "'no value and no default'")
                values[f["name"]] = "None"
                continue
            value = default_value(f["type"], f["default"], self.rn)
            const = e.const(value, "D")
            mutable = isinstance(value, (list, dict))
            values[f["name"]] = f"_copy({const})" if mutable else const
        items = ", ".join(f"{f['name']!r}: {values[f['name']]}" for f in r["fields"])
        e.line(ind, f"{target} = {{{items}}}")


def compile_reader(writer: Node, reader: Node | None = None) -> Reader:
    """A decoder for records written with ``writer`` (fastavro-parsed), resolved into ``reader``
    (fastavro-parsed) or, when ``reader`` is None, read as the writer's own schema."""
    c = _ReaderCompiler(Names(), Names())
    c.e.line(0, "def read(data, pos):")
    c.e.line(1, "end = len(data)")
    c.read(writer, reader, 1, "rec", "")
    c.e.line(1, "return rec, pos")
    return c.e.build("read", "<puente-avro-reader>")
