"""JSON <-> Avro record conversion for the HTTP gateway and the CLI, with field paths in errors.

The JSON form is natural JSON, not Avro's JSON encoding: a union value is the bare value (or
``null``), a date is ``"YYYY-MM-DD"``, a timestamp is an ISO 8601 string with a time zone
(written back in UTC as ``2025-05-01T12:00:00.000Z``), a UUID is its canonical string
(lower-cased on input), bytes and fixed are standard base64, an enum is its symbol. Fields left
out take their schema default; fields the schema does not know are refused.

``from_json`` and ``to_json`` collect every problem (``persons[2].nationalities[0]: expected a
string``) and raise one EncodeError listing them. Converters are built once per schema
version and cached.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import uuid
from collections.abc import Callable, Mapping
from copy import deepcopy
from typing import Any

from puente.codec._reader import UUID_RE
from puente.codec._schema import (
    INT_MAX,
    INT_MIN,
    LONG_MAX,
    LONG_MIN,
    Names,
    Node,
    default_value,
    kind,
    logical,
)
from puente.codec.errors import EncodeError, FieldProblem
from puente.codec.registry import Registry, SchemaVersion

Problems = list[FieldProblem]
Conv = Callable[[Any, str, Problems], Any]
_MISSING = object()


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class _Builder:
    """Builds converter closures for one direction: 'in' (JSON -> record), 'out' (record ->
    JSON)."""

    def __init__(self, direction: str) -> None:
        self.inbound = direction == "in"
        self.names = Names()
        self.records: dict[str, Conv] = {}

    def build(self, node: Node) -> Conv:
        node = self.names.resolve(node)
        k = kind(node)
        lt = logical(node)
        if lt is not None:
            return getattr(self, "l_" + lt.replace("-", "_"))(node)  # type: ignore[no-any-return]
        return getattr(self, "t_" + k)(node)  # type: ignore[no-any-return]

    # -- primitives ----------------------------------------------------------------------
    def t_null(self, node: Node) -> Conv:
        def conv(v: Any, path: str, problems: Problems) -> Any:
            if v is not None:
                problems.append(FieldProblem(path, f"expected null, got {_type_name(v)}"))
            return None

        return conv

    def t_boolean(self, node: Node) -> Conv:
        def conv(v: Any, path: str, problems: Problems) -> Any:
            if v is not True and v is not False:
                problems.append(FieldProblem(path, f"expected a boolean, got {_type_name(v)}"))
            return v

        return conv

    def _integral(self, lo: int, hi: int, what: str) -> Conv:
        def conv(v: Any, path: str, problems: Problems) -> Any:
            if v.__class__ is not int:
                problems.append(FieldProblem(path, f"expected an integer, got {_type_name(v)}"))
            elif not lo <= v <= hi:
                problems.append(FieldProblem(path, f"{v} is out of range for {what}"))
            return v

        return conv

    def t_int(self, node: Node) -> Conv:
        return self._integral(INT_MIN, INT_MAX, "a 32-bit int")

    def t_long(self, node: Node) -> Conv:
        return self._integral(LONG_MIN, LONG_MAX, "a 64-bit long")

    def t_float(self, node: Node) -> Conv:
        inbound = self.inbound

        def conv(v: Any, path: str, problems: Problems) -> Any:
            if v.__class__ not in (int, float):
                problems.append(FieldProblem(path, f"expected a number, got {_type_name(v)}"))
                return v
            if not inbound and not math.isfinite(v):
                problems.append(FieldProblem(path, f"{v} cannot be written as JSON"))
            return float(v)

        return conv

    t_double = t_float

    def t_string(self, node: Node) -> Conv:
        def conv(v: Any, path: str, problems: Problems) -> Any:
            if v.__class__ is not str:
                problems.append(FieldProblem(path, f"expected a string, got {_type_name(v)}"))
            return v

        return conv

    def t_bytes(self, node: Node) -> Conv:
        size = node.get("size") if isinstance(node, dict) else None
        if self.inbound:

            def conv(v: Any, path: str, problems: Problems) -> Any:
                try:
                    out = base64.b64decode(v, validate=True)
                except (TypeError, ValueError, binascii.Error):
                    problems.append(FieldProblem(path, "expected base64 text"))
                    return v
                if size is not None and len(out) != size:
                    problems.append(FieldProblem(path, f"expected {size} bytes, got {len(out)}"))
                return out

            return conv

        def conv_out(v: Any, path: str, problems: Problems) -> Any:
            if not isinstance(v, (bytes, bytearray)):
                problems.append(FieldProblem(path, f"expected bytes, got {_type_name(v)}"))
                return v
            if size is not None and len(v) != size:
                problems.append(FieldProblem(path, f"expected {size} bytes, got {len(v)}"))
            return base64.b64encode(v).decode("ascii")

        return conv_out

    t_fixed = t_bytes

    def t_enum(self, node: Node) -> Conv:
        symbols = frozenset(node["symbols"])
        listed = ", ".join(node["symbols"])

        def conv(v: Any, path: str, problems: Problems) -> Any:
            if v.__class__ is not str or v not in symbols:
                problems.append(FieldProblem(path, f"{v!r} is not one of {listed}"))
            return v

        return conv

    # -- logical types -------------------------------------------------------------------
    def l_uuid(self, node: Node) -> Conv:
        inbound = self.inbound

        def conv(v: Any, path: str, problems: Problems) -> Any:
            if isinstance(v, uuid.UUID) and not inbound:
                return str(v)
            if v.__class__ is not str or UUID_RE.fullmatch(v) is None:
                problems.append(FieldProblem(path, f"expected a UUID string, got {v!r:.60}"))
                return v
            return v.lower() if inbound else v

        return conv

    def l_date(self, node: Node) -> Conv:
        if self.inbound:

            def conv(v: Any, path: str, problems: Problems) -> Any:
                try:
                    if v.__class__ is not str or len(v) != 10:
                        raise ValueError
                    return dt.date.fromisoformat(v)
                except ValueError:
                    problems.append(
                        FieldProblem(path, f"expected a date YYYY-MM-DD, got {v!r:.40}")
                    )
                    return v

            return conv

        def conv_out(v: Any, path: str, problems: Problems) -> Any:
            if v.__class__ is not dt.date:
                problems.append(FieldProblem(path, f"expected a date, got {_type_name(v)}"))
                return v
            return v.isoformat()

        return conv_out

    def _instant(self, micros: bool) -> Conv:
        if self.inbound:

            def conv(v: Any, path: str, problems: Problems) -> Any:
                try:
                    when = dt.datetime.fromisoformat(v) if v.__class__ is str else None
                except ValueError:
                    when = None
                if when is None or when.tzinfo is None:
                    problems.append(
                        FieldProblem(
                            path,
                            f"expected an ISO 8601 timestamp with a time zone, got {v!r:.40}",
                        )
                    )
                    return v
                try:
                    when = when.astimezone(dt.UTC)
                except OverflowError:
                    # e.g. 0001-01-01T00:00:00+01:00: a valid text, but before year 1 in UTC.
                    problems.append(FieldProblem(path, f"timestamp out of range in UTC: {v!r:.40}"))
                    return v
                return when if micros else when.replace(microsecond=when.microsecond // 1000 * 1000)

            return conv

        def conv_out(v: Any, path: str, problems: Problems) -> Any:
            if v.__class__ is not dt.datetime or v.tzinfo is None:
                problems.append(
                    FieldProblem(path, f"expected an aware datetime, got {_type_name(v)}")
                )
                return v
            return (
                v.astimezone(dt.UTC)
                .isoformat(timespec="microseconds" if micros else "milliseconds")
                .replace("+00:00", "Z")
            )

        return conv_out

    def l_timestamp_millis(self, node: Node) -> Conv:
        return self._instant(micros=False)

    def l_timestamp_micros(self, node: Node) -> Conv:
        return self._instant(micros=True)

    # -- complex types -------------------------------------------------------------------
    def t_array(self, node: Node) -> Conv:
        item = self.build(node["items"])

        def conv(v: Any, path: str, problems: Problems) -> Any:
            if not isinstance(v, (list, tuple)):
                problems.append(FieldProblem(path, f"expected an array, got {_type_name(v)}"))
                return v
            return [item(x, f"{path}[{i}]", problems) for i, x in enumerate(v)]

        return conv

    def t_map(self, node: Node) -> Conv:
        value = self.build(node["values"])

        def conv(v: Any, path: str, problems: Problems) -> Any:
            if not isinstance(v, Mapping) or not all(k.__class__ is str for k in v):
                problems.append(FieldProblem(path, "expected an object with string keys"))
                return v
            return {k: value(x, f"{path}[{k!r}]", problems) for k, x in v.items()}

        return conv

    def t_record(self, node: Node) -> Conv:
        name = node["name"]
        if name in self.records:
            return self.records[name]
        fields: list[tuple[str, Conv, Any]] = []
        for f in node["fields"]:
            default = _MISSING
            if "default" in f:
                default = default_value(f["type"], f["default"], self.names)
            fields.append((f["name"], self.build(f["type"]), default))
        known = frozenset(n for n, _, _ in fields)
        inbound = self.inbound

        def conv(v: Any, path: str, problems: Problems) -> Any:
            if not isinstance(v, Mapping):
                problems.append(FieldProblem(path, f"expected an object, got {_type_name(v)}"))
                return v
            for key in v:
                if key not in known:
                    problems.append(FieldProblem(_join(path, str(key)), "unknown field"))
            out: dict[str, Any] = {}
            for fname, fconv, default in fields:
                value = v.get(fname, _MISSING)
                if value is _MISSING:
                    if default is _MISSING:
                        problems.append(FieldProblem(_join(path, fname), "required field missing"))
                        continue
                    # Defaults are held as decoded values; JSON output converts them too.
                    value = deepcopy(default)
                    if inbound:
                        out[fname] = value
                        continue
                out[fname] = fconv(value, _join(path, fname), problems)
            return out

        self.records[name] = conv
        return conv

    def t_union(self, node: list[Any]) -> Conv:
        branches = [(kind(self.names.resolve(b)), self.build(b)) for b in node]
        nullable = any(k == "null" for k, _ in branches)
        others = [c for k, c in branches if k != "null"]

        def conv(v: Any, path: str, problems: Problems) -> Any:
            if v is None and nullable:
                return None
            if len(others) == 1:
                return others[0](v, path, problems)
            for c in others:
                trial: Problems = []
                out = c(v, path, trial)
                if not trial:
                    return out
            problems.append(FieldProblem(path, f"{_type_name(v)} matches no branch of the union"))
            return v

        return conv


_CACHE: dict[tuple[int, str], Conv] = {}


def _converter(sv: SchemaVersion, direction: str) -> Conv:
    key = (sv.fingerprint, direction)
    conv = _CACHE.get(key)
    if conv is None:
        conv = _CACHE[key] = _Builder(direction).build(sv.parsed)
    return conv


def _run(sv: SchemaVersion, direction: str, value: Any) -> dict[str, Any]:
    problems: Problems = []
    out = _converter(sv, direction)(value, "", problems)
    if problems:
        raise EncodeError.from_problems(sv.full_name, problems)
    return out  # type: ignore[no-any-return]


def _version(reg: Registry, name: str, version: int | None) -> SchemaVersion:
    return reg.latest(name) if version is None else reg.get(name, version)


def from_json(reg: Registry, name: str, data: Any, *, version: int | None = None) -> dict[str, Any]:
    """A record of ``name`` (latest version unless ``version``) from its JSON form (parsed JSON:
    dicts, lists, str, int, float, bool, None). Raises EncodeError listing every problem."""
    return _run(_version(reg, name, version), "in", data)


def to_json(
    reg: Registry, name: str, record: Mapping[str, Any], *, version: int | None = None
) -> dict[str, Any]:
    """The JSON form of a record of ``name`` (latest version unless ``version``): dicts, lists,
    str, int, float, bool, None only. Raises EncodeError if the record does not fit."""
    return _run(_version(reg, name, version), "out", record)


def normalise(sv: SchemaVersion, record: Any) -> dict[str, Any]:
    """The record with defaults filled in and values checked, as the fast writer wants it;
    EncodeError naming every problem otherwise. (The encoder's slow road.)"""
    return _run(sv, "in", _run(sv, "out", record))


def validate(reg: Registry, name: str, record: Mapping[str, Any]) -> list[FieldProblem]:
    """Every problem that would stop ``record`` from being encoded as ``name``; empty if none."""
    try:
        normalise(reg.latest(name), record)
    except EncodeError as exc:
        return list(exc.problems)
    return []
