"""The warnings topic as people read it: every record's summary, its signature checked, and the
warnings in force. What ``puente warnings list --json`` prints (contract
``puente.warnings.list/v1``) and what the gateway's ``GET /v1/warnings`` serves. Pure: the
records come from whoever read the topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from puente.codec.registry import Registry
from puente.evidence.trust import TrustList
from puente.warnings.evaluator import EarlyWarning
from puente.warnings.signing import WARNING_CONTEXT, Signature, verify

LIST_CONTRACT = "puente.warnings.list/v1"


@dataclass(frozen=True)
class WarningRecord:
    """One record of the warnings topic, as read (offset, value, headers)."""

    offset: int
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


def entry(
    record: WarningRecord, registry: Registry, trust_list: TrustList | None
) -> dict[str, Any]:
    """One record's summary: the warning (no inputs), ``verified`` and who signed it, or the
    ``reason`` it did not verify (``WARNING_MALFORMED`` for bytes that are not a warning, a
    signature or key reason, ``TRUST_LIST_MISSING`` without a trust list). Never raises."""
    if record.value is None:  # a tombstone: nobody publishes one
        return {"offset": record.offset, "verified": False, "reason": "WARNING_MALFORMED"}
    try:
        w = EarlyWarning.decode(registry, record.value)
    except Exception as exc:  # bytes that are not a warning: reported, never fatal
        reason = getattr(exc, "reason", None) or "WARNING_MALFORMED"
        return {"offset": record.offset, "verified": False, "reason": reason}
    out: dict[str, Any] = {"offset": record.offset, **w.summary(), "verified": False}
    out["reason"] = None
    if trust_list is None:
        out["reason"] = "TRUST_LIST_MISSING"
        return out
    try:
        sig = Signature.from_headers(record.headers)
        found = verify(trust_list, WARNING_CONTEXT, record.value, sig, holders=None)
    except Exception as exc:  # reported per record, never fatal
        out["reason"] = getattr(exc, "reason", None) or type(exc).__name__
        return out
    out |= {"verified": True, "signed_by": found.holder, "key_id": sig.key_id}
    return out


class Listing:
    """Folds records in topic order: each warning once (a second evaluator publishes the same
    bytes again: a copy of a record that verified is skipped; any other record under the same
    warning id is listed, with the reason it does not verify), and the last record of each
    episode not ended. Only records that verified (or, without a trust list, every record)
    move an episode or hide a copy."""

    def __init__(self, registry: Registry, trust_list: TrustList | None) -> None:
        self.registry = registry
        self.trust_list = trust_list
        self.warnings: list[dict[str, Any]] = []
        self.in_force: dict[str, dict[str, Any]] = {}
        self._seen: set[tuple[str, bytes]] = set()

    def add(self, record: WarningRecord) -> dict[str, Any] | None:
        """Take one record; its entry, or None for a copy of a record already listed (or a
        tombstone)."""
        if record.value is None:
            return None
        e = entry(record, self.registry, self.trust_list)
        wid = e.get("warning_id")
        if wid is not None:
            copy = (wid, sha256(record.value).digest())
            if copy in self._seen:
                return None
            if e["verified"] or self.trust_list is None:
                self._seen.add(copy)  # only what verified hides a later copy
                if e["status"] == "ENDED":
                    self.in_force.pop(e["episode_id"], None)
                else:
                    self.in_force[e["episode_id"]] = e
        self.warnings.append(e)
        return e

    def document(self) -> dict[str, Any]:
        """The ``puente.warnings.list/v1`` document."""
        return {
            "contract": LIST_CONTRACT,
            "warnings": list(self.warnings),
            "active": list(self.in_force.values()),
        }


def list_document(
    records: Iterable[WarningRecord], registry: Registry, trust_list: TrustList | None
) -> dict[str, Any]:
    """The ``puente.warnings.list/v1`` document of ``records`` (topic order)."""
    listing = Listing(registry, trust_list)
    for r in records:
        listing.add(r)
    return listing.document()


def select(
    doc: dict[str, Any], *, trigger: str | None = None, active: bool = False
) -> dict[str, Any]:
    """``doc`` with only ``trigger``'s records, and with ``active`` only those in force."""
    out = dict(doc)
    if trigger is not None:
        out["warnings"] = [w for w in out["warnings"] if w.get("trigger_id") == trigger]
        out["active"] = [w for w in out["active"] if w.get("trigger_id") == trigger]
    if active:
        out["warnings"] = list(out["active"])
    return out
