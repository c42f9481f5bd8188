"""The evolution gate: is every schema's latest version backward and forward compatible with
each earlier version kept in schemas/? Decided by the reference Apache ``avro`` package's
checker (``avro.compatibility``), not by Puente's code; this module only asks it and names the
offending field in each answer.

Backward: the latest version (reader) reads what an earlier version (writer) wrote.
Forward: an earlier version (reader) reads what the latest version (writer) writes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from puente.codec.errors import SchemaError
from puente.codec.registry import Registry, SchemaVersion

_LOCK = threading.Lock()  # check_pair briefly wraps a function of the avro module


@dataclass(frozen=True)
class Incompatibility:
    """One reason a reader version cannot read a writer version."""

    full_name: str
    direction: str  # "backward" or "forward"
    reader_version: int
    writer_version: int
    field: str  # field path in the reader schema, e.g. "persons[].nationalities"; "" = record
    kind: str  # the checker's incompatibility type, e.g. "reader_field_missing_default_value"
    message: str

    def __str__(self) -> str:
        where = self.field or "<record>"
        return (
            f"{self.full_name}: v{self.reader_version} cannot read v{self.writer_version} "
            f"({self.direction}): {where}: {self.kind}: {self.message}"
        )


def _avro() -> Any:
    try:
        import avro.compatibility
        import avro.schema
    except ImportError as exc:  # a dev dependency; production processes never need it
        raise SchemaError(
            "the compatibility check needs the 'avro' package", hint="pip install 'puente[dev]'"
        ) from exc
    return avro


def _checker_class() -> Any:
    avro = _avro()
    base = avro.compatibility.ReaderWriterCompatibilityChecker

    class LocatingChecker(base):  # type: ignore[misc, valid-type]
        """The reference checker, except that union branches keep their location: upstream
        restarts the location at each union branch, losing the path to the field."""

        def __init__(self) -> None:
            super().__init__()
            self._stack: list[list[str]] = [[]]

        def get_compatibility(
            self,
            reader: Any,
            writer: Any,
            reference_token: str = "/",  # noqa: S107  (the upstream signature)
            location: Any = None,
        ) -> Any:
            if location is None:
                location = list(self._stack[-1])
            return super().get_compatibility(reader, writer, reference_token, location)

        def calculate_compatibility(self, reader: Any, writer: Any, location: list[str]) -> Any:
            self._stack.append(location)
            try:
                return super().calculate_compatibility(reader, writer, location)
            finally:
                self._stack.pop()

    return LocatingChecker


def _named_types(node: Any, out: dict[str, Any], namespace: str = "") -> None:
    if isinstance(node, list):
        for branch in node:
            _named_types(branch, out, namespace)
    elif isinstance(node, dict):
        if node.get("type") in {"record", "error", "enum", "fixed"}:
            ns = node.get("namespace", namespace)
            name = node["name"]
            out[name] = node
            out[f"{ns}.{name}" if ns and "." not in name else name] = node
            namespace = ns
        for key in ("fields", "items", "values"):
            child = node.get(key)
            if key == "fields" and isinstance(child, list):
                for f in child:
                    _named_types(f["type"], out, namespace)
            elif child is not None:
                _named_types(child, out, namespace)
        if isinstance(node.get("type"), (dict, list)):
            _named_types(node["type"], out, namespace)


def field_path(schema: Mapping[str, Any], location: str) -> str:
    """Translate a checker location (``/fields/6/type/items/fields/7/type``) into a field path
    in ``schema`` (``persons[].nationalities``)."""
    names: dict[str, Any] = {}
    _named_types(schema, names)
    node: Any = schema
    path = ""
    steps = [t for t in location.split("/") if t]
    i = 0
    while i < len(steps):
        step = steps[i]
        if isinstance(node, str):
            node = names.get(node, node)
        if isinstance(node, list):  # a union: follow the branch the next step belongs to
            wanted = {"fields": "record", "items": "array", "values": "map"}.get(step)
            node = next((b for b in node if _kind(b, names) == wanted), None)
            if node is None:
                break
            continue
        if not isinstance(node, dict):
            break
        if step == "fields" and i + 1 < len(steps) and steps[i + 1].isdigit():
            node = node["fields"][int(steps[i + 1])]
            path = f"{path}.{node['name']}" if path else node["name"]
            i += 2
            continue
        if step == "type" and "type" in node:
            node = node["type"]
        elif step in {"items", "values"} and step in node:
            node, path = node[step], path + ("[]" if step == "items" else "{}")
        else:
            break  # symbols, name, size or a union branch index: the path ends here
        i += 1
    return path


def _kind(node: Any, names: dict[str, Any]) -> str:
    if isinstance(node, str):
        node = names.get(node, node)
    if isinstance(node, dict):
        t = node.get("type")
        return t if isinstance(t, str) else "?"
    return "union" if isinstance(node, list) else str(node)


def check_pair(reader: Mapping[str, Any], writer: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(field path, incompatibility kind, message) for each reason ``reader`` cannot read data
    written with ``writer`` (raw JSON schemas); empty when compatible."""
    avro = _avro()
    r = avro.schema.parse(json.dumps(reader))
    w = avro.schema.parse(json.dumps(writer))
    module = avro.compatibility
    original = module.incompatible
    found: list[tuple[str, str, str]] = []

    def recording(kind: Any, message: str, location: list[str]) -> Any:
        # The checker merges its findings into sets of locations and messages that no longer
        # say which message belongs where; each call here is one finding, whole.
        result = original(kind, message, location)
        found.append((next(iter(result.locations)), kind.value, message))
        return result

    with _LOCK:
        module.incompatible = recording
        try:
            result = _checker_class()().get_compatibility(r, w)
        finally:
            module.incompatible = original
    if result.compatibility is module.SchemaCompatibilityType.compatible:
        return []
    out: list[tuple[str, str, str]] = []
    for location, kind, message in found:
        # Union branches are matched by trial; a failed trial that found another branch is
        # not in the final result and is not a finding.
        if location not in result.locations or message not in result.messages:
            continue
        entry = (field_path(reader, location), kind, message)
        if entry not in out:
            out.append(entry)
    return out


def check_versions(latest: SchemaVersion, earlier: SchemaVersion) -> list[Incompatibility]:
    """Backward and forward incompatibilities between the latest and one earlier version."""
    out = []
    for direction, reader, writer in (
        ("backward", latest, earlier),
        ("forward", earlier, latest),
    ):
        for field, kind, message in check_pair(reader.schema, writer.schema):
            out.append(
                Incompatibility(
                    latest.full_name,
                    direction,
                    reader.version,
                    writer.version,
                    field,
                    kind,
                    message,
                )
            )
    return out


def check_registry(reg: Registry) -> list[Incompatibility]:
    """Every incompatibility between each record's latest version and its earlier versions."""
    out: list[Incompatibility] = []
    for name in reg.names():
        versions = reg.versions(name)
        for earlier in versions[:-1]:
            out.extend(check_versions(versions[-1], earlier))
    return out


def undocumented(schema: Mapping[str, Any]) -> list[str]:
    """Field paths (and named types) of a schema that lack a ``doc`` string."""
    out: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, list):
            for branch in node:
                walk(branch, path)
        elif isinstance(node, dict):
            t = node.get("type")
            if t in {"record", "error", "enum", "fixed"} and not node.get("doc"):
                out.append(f"{path or '<root>'} (type {node['name']})")
            for f in node.get("fields", []) if t in {"record", "error"} else []:
                fpath = f"{path}.{f['name']}" if path else f["name"]
                if not f.get("doc"):
                    out.append(fpath)
                walk(f["type"], fpath)
            if t == "array":
                walk(node["items"], path + "[]")
            elif t == "map":
                walk(node["values"], path + "{}")

    walk(schema, "")
    return out
