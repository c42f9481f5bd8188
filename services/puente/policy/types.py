"""The static types the policy engine sees in a notice, derived from its Avro schema.

One small vocabulary serves both the CEL type checker (``notice.persons.exists(p, p.minor)`` is
checked field by field at load) and the transformation checker (``persons[].date_of_birth`` must
be a nullable date to be generalised to its year).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Prim:
    """A CEL primitive: ``int``, ``double``, ``string``, ``bool``, ``null``."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class EnumT:
    """An Avro enum: a string in CEL whose literals are checked against the symbols."""

    name: str
    symbols: tuple[str, ...]

    def __str__(self) -> str:
        return f"enum {self.name}"


@dataclass(frozen=True, slots=True)
class ListT:
    elem: CelType

    def __str__(self) -> str:
        return f"list({self.elem})"


@dataclass(frozen=True, slots=True)
class RecordT:
    """An Avro record: a map with a fixed set of fields in CEL."""

    name: str
    fields: dict[str, CelType] = field(compare=False, hash=False)
    defaults: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __str__(self) -> str:
        return f"record {self.name}"


@dataclass(frozen=True, slots=True)
class OptT:
    """An Avro union ``["null", T]``: the value may be null."""

    inner: CelType

    def __str__(self) -> str:
        return f"optional({self.inner})"


@dataclass(frozen=True, slots=True)
class Opaque:
    """A value CEL conditions may not inspect (dates, timestamps, uuids as logical types are
    strings and stay strings; dates and timestamps are Python objects with no CEL mapping here)."""

    logical: str

    def __str__(self) -> str:
        return self.logical


@dataclass(frozen=True, slots=True)
class Dyn:
    """The element type of an empty list literal: compatible with anything."""

    def __str__(self) -> str:
        return "dyn"


CelType = Prim | EnumT | ListT | RecordT | OptT | Opaque | Dyn

INT = Prim("int")
DOUBLE = Prim("double")
STRING = Prim("string")
BOOL = Prim("bool")
NULL = Prim("null")
DYN = Dyn()

_AVRO_PRIMS: dict[str, CelType] = {
    "int": INT,
    "long": INT,
    "float": DOUBLE,
    "double": DOUBLE,
    "string": STRING,
    "boolean": BOOL,
    "null": NULL,
    "bytes": Opaque("bytes"),
}


def is_stringish(t: CelType) -> bool:
    """Strings and enums both behave as CEL strings."""
    return t == STRING or isinstance(t, EnumT)


def record_type(schema: dict[str, Any]) -> RecordT:
    """The :class:`RecordT` of an Avro record schema (raw JSON dict)."""
    named: dict[str, CelType] = {}
    t = _convert(schema, named, schema.get("namespace", ""))
    assert isinstance(t, RecordT)
    return t


def _convert(s: Any, named: dict[str, CelType], ns: str) -> CelType:
    if isinstance(s, str):
        if s in _AVRO_PRIMS:
            return _AVRO_PRIMS[s]
        full = s if "." in s else f"{ns}.{s}" if ns else s
        return named.get(full) or named[s]
    if isinstance(s, list):
        branches = [b for b in s if b != "null"]
        if len(branches) == 1 and len(s) == 2:
            return OptT(_convert(branches[0], named, ns))
        return Opaque("union")
    typ = s["type"]
    logical = s.get("logicalType")
    if logical in ("date", "timestamp-millis", "timestamp-micros", "time-millis", "decimal"):
        return Opaque(logical)
    if typ == "record":
        ns2 = s.get("namespace", ns)
        full = f"{ns2}.{s['name']}" if ns2 else s["name"]
        rec = RecordT(full, {}, {})
        named[full] = rec
        for f in s["fields"]:
            rec.fields[f["name"]] = _convert(f["type"], named, ns2)
            if "default" in f:
                rec.defaults[f["name"]] = f["default"]
        return rec
    if typ == "enum":
        ns2 = s.get("namespace", ns)
        full = f"{ns2}.{s['name']}" if ns2 else s["name"]
        e = EnumT(full, tuple(s["symbols"]))
        named[full] = e
        return e
    if typ == "array":
        return ListT(_convert(s["items"], named, ns))
    if typ in _AVRO_PRIMS:  # {"type": "string", "logicalType": "uuid"} and friends
        return _AVRO_PRIMS[typ]
    return Opaque(str(typ))
