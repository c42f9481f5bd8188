"""Compile an encoder for one schema into a Python function.

The generated function ``write(record, out)`` appends the Avro binary encoding of ``record`` to
the bytearray ``out``. It takes the fast road: every field must be present (no defaults filled
in), values must have the exact types listed in ``_reader``'s docstring (aware datetimes for
timestamps, ``datetime.date`` for dates, ``str`` or ``uuid.UUID`` for UUIDs), and any mismatch
raises an exception without naming the field. The caller (``wire.encode``) then takes the slow
road: fill defaults, validate with field paths, retry.
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from collections.abc import Callable
from typing import Any

from puente.codec._emit import Emitter
from puente.codec._reader import UUID_RE
from puente.codec._schema import (
    EPOCH,
    EPOCH_ORDINAL,
    INT_MAX,
    INT_MIN,
    LONG_MAX,
    LONG_MIN,
    Names,
    Node,
    kind,
    logical,
)

Writer = Callable[[dict[str, Any], bytearray], None]

_SMALL = 1 << 14  # zig-zag varints of 0..16383 are precomputed (lengths, counts, small ints)


class Mismatch(Exception):
    """Raised by generated writers when a value does not fit; the slow road says where."""


def _zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_VARINT = tuple(_zigzag(i) for i in range(_SMALL))
_MS = dt.timedelta(milliseconds=1)
_US = dt.timedelta(microseconds=1)


def _long(n: int) -> bytes:
    if 0 <= n < _SMALL:
        return _VARINT[n]
    if not LONG_MIN <= n <= LONG_MAX:
        raise Mismatch("long out of range")
    return _zigzag(n)


def _uuid(v: Any) -> str:
    if isinstance(v, uuid.UUID):
        return str(v)
    if v.__class__ is not str or UUID_RE.fullmatch(v) is None:
        raise Mismatch("not a UUID")
    return v


def _instant(v: Any, unit: dt.timedelta) -> int:
    if v.__class__ is not dt.datetime or v.tzinfo is None:
        raise Mismatch("not an aware datetime")
    return (v - EPOCH) // unit


_NAMESPACE: dict[str, Any] = {
    "_V": _VARINT,
    "_SMALL": _SMALL,
    "_long": _long,
    "_uuid": _uuid,
    "_instant": _instant,
    "_MS": _MS,
    "_US": _US,
    "_Mismatch": Mismatch,
    "_date": dt.date,
    "_EPOCH_ORD": EPOCH_ORDINAL,
    "_f": struct.Struct("<f").pack,
    "_d": struct.Struct("<d").pack,
    "_float": float,
    "_int": int,
}


class _WriterCompiler:
    def __init__(self) -> None:
        self.e = Emitter(_NAMESPACE)
        self.names = Names()

    def length(self, ind: int, expr: str) -> None:
        """Append a length or block count (never negative)."""
        self.e.line(ind, f"n = {expr}")
        self.e.line(ind, "out += _V[n] if n < _SMALL else _long(n)")

    def write(self, node: Node, ind: int, value: str) -> None:
        node = self.names.resolve(node)
        getattr(self, "t_" + kind(node))(node, ind, value)

    def t_union(self, node: list[Any], ind: int, value: str) -> None:
        e = self.e
        # Branch choice by Python type, in union order; the first branch that fits wins.
        checks = {
            "null": f"{value} is None",
            "boolean": f"{value}.__class__ is bool",
            "int": f"{value}.__class__ is _int",
            "long": f"{value}.__class__ is _int",
            "float": f"{value}.__class__ is _float",
            "double": f"{value}.__class__ is _float or {value}.__class__ is _int",
            "string": f"{value}.__class__ is str",
            "bytes": f"isinstance({value}, (bytes, bytearray))",
            "fixed": f"isinstance({value}, (bytes, bytearray))",
            "enum": f"{value}.__class__ is str",
            "array": f"isinstance({value}, (list, tuple))",
            "map": f"{value}.__class__ is dict",
            "record": f"{value}.__class__ is dict",
        }
        first = True
        for i, branch in enumerate(node):
            b = self.names.resolve(branch)
            test = checks[kind(b)]
            lt = logical(b)
            if lt == "date":
                test = f"{value}.__class__ is _date"
            elif lt in {"timestamp-millis", "timestamp-micros"}:
                test = f"isinstance({value}, _date) and {value}.__class__ is not _date"
            elif lt == "uuid":
                test = f"{value}.__class__ is not dict and {value} is not None"
            if kind(b) == "enum":
                test += f" and {value} in {e.const(frozenset(b['symbols']), 'S')}"
            e.line(ind, f"{'if' if first else 'elif'} {test}:")
            e.line(ind + 1, f"out.append({_VARINT[i][0]})")
            self.write(b, ind + 1, value)
            first = False
        e.line(ind, "else: raise _Mismatch('no union branch fits')")

    def t_null(self, node: Node, ind: int, value: str) -> None:
        self.e.line(ind, f"if {value} is not None: raise _Mismatch('not null')")

    def t_boolean(self, node: Node, ind: int, value: str) -> None:
        e = self.e
        e.line(ind, f"if {value} is True: out.append(1)")
        e.line(ind, f"elif {value} is False: out.append(0)")
        e.line(ind, "else: raise _Mismatch('not a boolean')")

    def integral(self, node: Node, ind: int, value: str, lo: int, hi: int) -> None:
        e = self.e
        lt = logical(node)
        if lt == "date":
            e.line(ind, f"if {value}.__class__ is not _date: raise _Mismatch('not a date')")
            e.line(ind, f"{value} = {value}.toordinal() - _EPOCH_ORD")
        elif lt in {"timestamp-millis", "timestamp-micros"}:
            unit = "_MS" if lt == "timestamp-millis" else "_US"
            e.line(ind, f"{value} = _instant({value}, {unit})")
        else:
            e.line(ind, f"if {value}.__class__ is not _int: raise _Mismatch('not an int')")
        e.line(ind, f"if 0 <= {value} < _SMALL: out += _V[{value}]")
        e.line(ind, f"elif {lo} <= {value} <= {hi}: out += _long({value})")
        e.line(ind, "else: raise _Mismatch('out of range')")

    def t_int(self, node: Node, ind: int, value: str) -> None:
        self.integral(node, ind, value, INT_MIN, INT_MAX)

    def t_long(self, node: Node, ind: int, value: str) -> None:
        self.integral(node, ind, value, LONG_MIN, LONG_MAX)

    def t_float(self, node: Node, ind: int, value: str) -> None:
        self.e.line(ind, f"out += _f({value})")

    def t_double(self, node: Node, ind: int, value: str) -> None:
        self.e.line(ind, f"out += _d({value})")

    def t_string(self, node: Node, ind: int, value: str) -> None:
        e = self.e
        if logical(node) == "uuid":
            e.line(ind, f"{value} = _uuid({value})")
        e.line(ind, f"{value} = {value}.encode()")
        self.length(ind, f"len({value})")
        e.line(ind, f"out += {value}")

    def t_bytes(self, node: Node, ind: int, value: str) -> None:
        e = self.e
        e.line(ind, f"if not isinstance({value}, (bytes, bytearray)): raise _Mismatch('bytes')")
        self.length(ind, f"len({value})")
        e.line(ind, f"out += {value}")

    def t_fixed(self, node: Node, ind: int, value: str) -> None:
        e = self.e
        size = int(node["size"])
        e.line(ind, f"if not isinstance({value}, (bytes, bytearray)) or len({value}) != {size}:")
        e.line(ind + 1, "raise _Mismatch('fixed size')")
        e.line(ind, f"out += {value}")

    def t_enum(self, node: Node, ind: int, value: str) -> None:
        table = self.e.const({s: _VARINT[i] for i, s in enumerate(node["symbols"])}, "E")
        self.e.line(ind, f"out += {table}[{value}]")

    def t_array(self, node: Node, ind: int, value: str) -> None:
        e = self.e
        e.line(ind, f"if {value}.__class__ is not list and {value}.__class__ is not tuple:")
        e.line(ind + 1, "raise _Mismatch('not a list')")
        e.line(ind, f"if {value}:")
        self.length(ind + 1, f"len({value})")
        item = e.fresh("i")
        e.line(ind + 1, f"for {item} in {value}:")
        self.write(node["items"], ind + 2, item)
        e.line(ind, "out.append(0)")

    def t_map(self, node: Node, ind: int, value: str) -> None:
        e = self.e
        e.line(ind, f"if {value}.__class__ is not dict: raise _Mismatch('not a dict')")
        e.line(ind, f"if {value}:")
        self.length(ind + 1, f"len({value})")
        key, val = e.fresh("k"), e.fresh("v")
        e.line(ind + 1, f"for {key}, {val} in {value}.items():")
        self.t_string("string", ind + 2, key)
        self.write(node["values"], ind + 2, val)
        e.line(ind, "out.append(0)")

    def t_record(self, node: Node, ind: int, value: str) -> None:
        e = self.e
        fields = node["fields"]
        e.line(ind, f"if {value}.__class__ is not dict or len({value}) != {len(fields)}:")
        e.line(ind + 1, "raise _Mismatch('not a complete record')")
        for f in fields:
            var = e.fresh("f")
            e.line(ind, f"{var} = {value}[{f['name']!r}]")
            self.write(f["type"], ind, var)


def compile_writer(schema: Node) -> Writer:
    """An encoder for records of ``schema`` (fastavro-parsed)."""
    c = _WriterCompiler()
    c.e.line(0, "def write(rec, out):")
    c.write(schema, 1, "rec")
    return c.e.build("write", "<puente-avro-writer>")
