"""JSON Schema (OpenAPI 3.1) of an Avro record's *natural JSON* form, as puente.codec.jsonconv
reads and writes it.

So the OpenAPI document describes exactly what the gateway accepts: a union is the bare value or
``null``, a date is ``YYYY-MM-DD``, a timestamp an RFC 3339 date-time with a zone, a UUID its
string, bytes standard base64, an enum one of its symbols; fields with a default are optional
and unknown fields are refused (``additionalProperties: false``). Named types are inlined (the
codec allows no recursion), so each notice schema stands alone.
"""

from __future__ import annotations

from typing import Any

from puente.codec.registry import SchemaVersion

INT_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)


def record_schema(sv: SchemaVersion) -> dict[str, Any]:
    """The JSON Schema of one schema version's JSON form."""
    return _Converter().node(sv.schema, namespace=_namespace(sv.full_name))


def _namespace(full_name: str) -> str:
    return full_name.rpartition(".")[0]


class _Converter:
    def __init__(self) -> None:
        self.named: dict[str, dict[str, Any]] = {}

    def node(self, node: Any, *, namespace: str) -> dict[str, Any]:
        if isinstance(node, str):
            return self.named_or_primitive(node, namespace)
        if isinstance(node, list):
            return self.union(node, namespace)
        kind = node["type"]
        logical = node.get("logicalType")
        if logical is not None:
            out = self.logical(kind, logical)
            if out is not None:
                return out
        if kind == "record":
            return self.record(node, namespace)
        if kind == "enum":
            out = {"type": "string", "enum": list(node["symbols"])}
            self.remember(node, namespace, out)
            return _doc(out, node)
        if kind == "array":
            return {"type": "array", "items": self.node(node["items"], namespace=namespace)}
        if kind == "map":
            return {
                "type": "object",
                "additionalProperties": self.node(node["values"], namespace=namespace),
            }
        if kind == "fixed":
            out = {"type": "string", "contentEncoding": "base64"}
            self.remember(node, namespace, out)
            return out
        return self.named_or_primitive(kind, namespace)

    def remember(self, node: dict[str, Any], namespace: str, schema: dict[str, Any]) -> None:
        name = node["name"]
        ns = node.get("namespace", namespace)
        full = name if "." in name else f"{ns}.{name}" if ns else name
        self.named[full] = schema
        self.named.setdefault(name, schema)

    def named_or_primitive(self, name: str, namespace: str) -> dict[str, Any]:
        primitive = _PRIMITIVES.get(name)
        if primitive is not None:
            return dict(primitive)
        full = name if "." in name else f"{namespace}.{name}"
        found = self.named.get(full) or self.named.get(name)
        if found is None:
            raise ValueError(f"unknown Avro type {name!r}")
        return found

    def logical(self, kind: str, logical: str) -> dict[str, Any] | None:
        if logical == "uuid" and kind == "string":
            return {"type": "string", "format": "uuid"}
        if logical == "date" and kind == "int":
            return {"type": "string", "format": "date"}
        if logical in ("timestamp-millis", "timestamp-micros") and kind == "long":
            return {"type": "string", "format": "date-time"}
        return None

    def union(self, branches: list[Any], namespace: str) -> dict[str, Any]:
        options = [self.node(b, namespace=namespace) for b in branches]
        return {"anyOf": options}

    def record(self, node: dict[str, Any], namespace: str) -> dict[str, Any]:
        ns = node.get("namespace", namespace)
        name = node["name"]
        ns = name.rpartition(".")[0] if "." in name else ns
        props: dict[str, Any] = {}
        required: list[str] = []
        out: dict[str, Any] = {
            "type": "object",
            "title": name.rpartition(".")[2],
            "properties": props,
            "additionalProperties": False,
        }
        self.remember(node, ns, out)
        for f in node["fields"]:
            schema = dict(self.node(f["type"], namespace=ns))
            if "doc" in f:
                schema["description"] = f["doc"]
            props[f["name"]] = schema
            if "default" not in f:
                required.append(f["name"])
        if required:
            out["required"] = required
        return _doc(out, node)


def _doc(out: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "doc" in node and "description" not in out:
        out["description"] = node["doc"]
    return out


_PRIMITIVES: dict[str, dict[str, Any]] = {
    "null": {"type": "null"},
    "boolean": {"type": "boolean"},
    "int": {"type": "integer", "minimum": INT_RANGE[0], "maximum": INT_RANGE[1]},
    "long": {"type": "integer", "minimum": LONG_RANGE[0], "maximum": LONG_RANGE[1]},
    "float": {"type": "number"},
    "double": {"type": "number"},
    "bytes": {"type": "string", "contentEncoding": "base64"},
    "string": {"type": "string"},
}
