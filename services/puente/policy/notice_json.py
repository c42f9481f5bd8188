"""Notices as JSON for the command line, through the codec's JSON conversion.

A NOTICE.json is the natural JSON form of ``puente.codec.jsonconv`` (dates ``YYYY-MM-DD``,
timestamps ISO 8601 with a zone, unions as bare values); payloads are written back in that form.
This is the CLI's edge only, never the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from puente.codec.jsonconv import from_json, to_json
from puente.codec.registry import Registry
from puente.policy.errors import PolicyError


class NoticeJsonError(PolicyError):
    """A NOTICE.json that does not fit its schema."""

    reason = "POLICY_NOTICE_JSON"


def guess_type(data: Mapping[str, Any]) -> str:
    """CaseNotice or ConsularNotification, from the fields present."""
    if "event" in data and "person" in data:
        return "ConsularNotification"
    if "persons" in data or "crime_types" in data:
        return "CaseNotice"
    raise NoticeJsonError("cannot tell the notice type; pass --type")


def record_from_json(registry: Registry, notice_type: str, data: Any) -> dict[str, Any]:
    """The decoded-record form (what fastavro would give the engine) of a JSON notice."""
    return from_json(registry, f"puente.{notice_type}", data)


def payload_to_json(
    registry: Registry, notice_type: str, payload: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The JSON form of a decision's payload (None when withheld)."""
    return None if payload is None else to_json(registry, f"puente.{notice_type}", payload)
