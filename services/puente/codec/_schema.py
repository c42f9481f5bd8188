"""Helpers over fastavro-parsed schemas shared by the compilers, the JSON converter and the
validator: type kinds, named-type lookup, logical types, defaults.

A parsed schema node is a ``str`` (a primitive or the full name of a named type defined
earlier), a ``list`` (a union) or a ``dict`` (a complex type, or a primitive with attributes
such as ``logicalType``). fastavro has already checked the schema and made names full.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

Node = Any  # str | list[Node] | dict[str, Any]; kept loose because schemas are JSON

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1

# The logical types Puente converts; any other logical type is read as its underlying type,
# as the Avro specification asks of an implementation that does not know it.
SUPPORTED_LOGICAL = frozenset(
    {
        ("int", "date"),
        ("long", "timestamp-millis"),
        ("long", "timestamp-micros"),
        ("string", "uuid"),
    }
)


class Names:
    """Named types seen so far while walking one schema (Avro defines a name before its use)."""

    def __init__(self) -> None:
        self._types: dict[str, dict[str, Any]] = {}

    def resolve(self, node: Node) -> Node:
        """The node itself, or the named type a string refers to; records definitions."""
        if isinstance(node, str):
            if node in PRIMITIVES:
                return node
            return self._types[node]
        if isinstance(node, dict) and node.get("type") in NAMED:
            self._types.setdefault(node["name"], node)
        return node


def kind(node: Node) -> str:
    """The Avro type of a resolved node: a primitive name, 'record', 'enum', 'array', 'map',
    'fixed' or 'union'."""
    if isinstance(node, list):
        return "union"
    if isinstance(node, str):
        return node
    t = node["type"]
    return "record" if t == "error" else str(t)


def logical(node: Node) -> str | None:
    """The supported logical type of a resolved node, if any."""
    if isinstance(node, dict):
        lt = node.get("logicalType")
        if lt is not None and (kind(node), lt) in SUPPORTED_LOGICAL:
            return str(lt)
    return None


def short_name(full_name: str) -> str:
    """``puente.CaseNotice`` -> ``CaseNotice``."""
    return full_name.rsplit(".", 1)[-1]


def names_match(writer: dict[str, Any], reader: dict[str, Any]) -> bool:
    """Avro name resolution of named types: same full or short name, or a reader alias."""
    w, r = writer["name"], reader["name"]
    if w == r or short_name(w) == short_name(r):
        return True
    aliases = reader.get("aliases") or []
    return w in aliases or short_name(w) in {short_name(a) for a in aliases}


def min_size(node: Node, names: Names, _seen: frozenset[str] = frozenset()) -> int:
    """The fewest bytes a value of this type can take (bounds array lengths on decode)."""
    node = names.resolve(node)
    k = kind(node)
    if k == "null":
        return 0
    if k in {"float"}:
        return 4
    if k == "double":
        return 8
    if k == "fixed":
        return int(node["size"])
    if k == "record":
        if node["name"] in _seen:
            return 0
        seen = _seen | {node["name"]}
        return sum(min_size(f["type"], names, seen) for f in node["fields"])
    return 1


def default_value(node: Node, value: Any, names: Names) -> Any:
    """A field default (JSON, as written in the schema) as the value a decoded record holds."""
    node = names.resolve(node)
    k = kind(node)
    if k == "union":
        return default_value(node[0], value, names)
    if k == "record":
        out = {}
        for f in node["fields"]:
            v = value[f["name"]] if f["name"] in value else f.get("default")
            out[f["name"]] = default_value(f["type"], v, names)
        return out
    if k == "array":
        return [default_value(node["items"], v, names) for v in value]
    if k == "map":
        return {key: default_value(node["values"], v, names) for key, v in value.items()}
    if k in {"bytes", "fixed"}:
        return str(value).encode("latin-1")
    if k in {"float", "double"}:
        return float(value)
    lt = logical(node)
    if lt == "date":
        return dt.date.fromordinal(int(value) + EPOCH_ORDINAL)
    if lt == "timestamp-millis":
        return EPOCH + dt.timedelta(milliseconds=int(value))
    if lt == "timestamp-micros":
        return EPOCH + dt.timedelta(microseconds=int(value))
    return value
