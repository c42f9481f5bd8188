"""Notices as JSON for the command line: read a NOTICE.json, write payloads back as JSON.

JSON carries dates as ``YYYY-MM-DD``, timestamps as ISO 8601 (or epoch milliseconds), unions as
the bare value or Avro's ``{"type": value}`` form. This small converter walks the Avro schema so
the engine sees what fastavro would decode; it is the CLI's edge only, never the hot path.
(To move to ``puente.codec.jsonconv`` once it lands: replace :func:`record_from_json` and
:func:`to_jsonable`; nothing else reads JSON.)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from puente.policy.errors import PolicyError

_EPOCH = dt.date(1970, 1, 1)


class NoticeJsonError(PolicyError):
    """A NOTICE.json that does not fit its schema."""

    reason = "POLICY_NOTICE_JSON"


def guess_type(data: dict[str, Any]) -> str:
    """CaseNotice or ConsularNotification, from the fields present."""
    if "event" in data and "person" in data:
        return "ConsularNotification"
    if "persons" in data or "crime_types" in data:
        return "CaseNotice"
    raise NoticeJsonError("cannot tell the notice type; pass --type")


def record_from_json(schema: dict[str, Any], data: Any) -> Any:
    """The decoded-record form of ``data`` under the Avro ``schema`` (raw JSON dict)."""
    names: dict[str, Any] = {}
    return _conv(schema, data, names, "")


def _conv(s: Any, v: Any, names: dict[str, Any], path: str) -> Any:
    if isinstance(s, str):
        if s in names:
            return _conv(names[s], v, names, path)
        return v
    if isinstance(s, list):
        if v is None:
            return None
        if isinstance(v, dict) and len(v) == 1:
            ((tag, inner),) = v.items()
            for branch in s:
                name = branch if isinstance(branch, str) else branch.get("name", branch.get("type"))
                if name == tag or (isinstance(name, str) and name.rsplit(".", 1)[-1] == tag):
                    return _conv(branch, inner, names, path)
        branches = [b for b in s if b != "null"]
        return _conv(branches[0], v, names, path)
    typ = s["type"]
    if isinstance(s.get("name"), str) and typ in ("record", "enum"):
        names[s["name"]] = s
        if "namespace" in s:
            names[f"{s['namespace']}.{s['name']}"] = s
    logical = s.get("logicalType")
    try:
        if logical == "date":
            if isinstance(v, int):
                return _EPOCH + dt.timedelta(days=v)
            return dt.date.fromisoformat(v)
        if logical == "timestamp-millis":
            if isinstance(v, int):
                return dt.datetime.fromtimestamp(v / 1000, tz=dt.UTC)
            ts = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
            return ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)
    except (TypeError, ValueError) as exc:
        raise NoticeJsonError(f"{path or '(root)'}: {exc}") from None
    if typ == "record":
        if not isinstance(v, dict):
            raise NoticeJsonError(f"{path or '(root)'}: expected an object")
        out: dict[str, Any] = {}
        for f in s["fields"]:
            if f["name"] in v:
                out[f["name"]] = _conv(f["type"], v[f["name"]], names, f"{path}.{f['name']}")
            elif "default" in f:
                out[f["name"]] = _conv(f["type"], f["default"], names, path)
            else:
                raise NoticeJsonError(f"{path}.{f['name']}: missing")
        return out
    if typ == "array":
        return [_conv(s["items"], x, names, f"{path}[{i}]") for i, x in enumerate(v)]
    if isinstance(typ, dict | list):
        return _conv(typ, v, names, path)
    return v


def to_jsonable(value: Any) -> Any:
    """A payload made JSON-ready: dates and timestamps as ISO 8601 strings."""
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
