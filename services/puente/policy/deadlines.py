"""Deadlines: "without delay" as a clock (policies/SEMANTICS.md §11, docs/receipts.md).

The regional file sets, per notice type and event, how long a recipient state has to *receive* a
delivery (its software verifies it and signs a machine receipt) and to *acknowledge* it (a
consular officer takes the case or declines it), counted from the origin's decision, and
optionally a time in the notice that caps both (a return's departure). A state's own file may
shorten a deadline for the notices it sends, never lengthen it nor start a clock the region
does not run: the loader refuses either, and :meth:`DeadlineTable.deadlines` takes the shorter
of the two whatever it is given.

Pure: the table is built by the policy loader, asked by the node's processor for each delivery,
and its answer is recorded in the delivery's audit record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from puente.notices import short_name

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
ANY_EVENT = ""
"""The event key of an entry that lists no events: it covers every event of its type."""


def duration_ms(text: str) -> int:
    """``90m``, ``72h``, ``7d`` as milliseconds (the pattern is checked by the policy model)."""
    return int(text[:-1]) * _UNIT_MS[text[-1]]


@dataclass(frozen=True, slots=True)
class DeadlineEntry:
    """One deadline entry as loaded (the regional one, or a state's shortening of it)."""

    id: str
    receive_ms: int | None
    acknowledge_ms: int | None
    legal_basis: str
    before_departure: bool = False


@dataclass(frozen=True, slots=True)
class Deadlines:
    """The deadlines of one delivery (Unix ms), and the entries they come from."""

    type: str  # <notice type>/<event>, or the notice type when it has no event
    receive_by: int | None
    acknowledge_by: int | None
    deadline_ids: tuple[str, ...]
    legal_bases: tuple[str, ...]


class DeadlineTable:
    """The deadlines of a policy set, by (notice type, event) and by origin."""

    def __init__(
        self,
        regional: Mapping[tuple[str, str], DeadlineEntry] | None = None,
        states: Mapping[tuple[str, str, str], DeadlineEntry] | None = None,
    ) -> None:
        """``regional``: (notice type, event or :data:`ANY_EVENT`) → entry; ``states``:
        (origin, notice type, event or :data:`ANY_EVENT`) → that origin's shortening."""
        self.regional = dict(regional or {})
        self.states = dict(states or {})

    def __bool__(self) -> bool:
        return bool(self.regional)

    def entry(self, notice_type: str, event: str) -> DeadlineEntry | None:
        """The regional entry covering (``notice_type``, ``event``), if any."""
        t = short_name(notice_type)
        return self.regional.get((t, event)) or self.regional.get((t, ANY_EVENT))

    def deadlines(
        self, notice_type: str, notice: Mapping[str, Any], origin: str, decided_at: int
    ) -> Deadlines | None:
        """The deadlines of a delivery of ``notice`` (a decoded record of ``notice_type``)
        decided at ``decided_at`` by ``origin``'s node; None when no deadline applies."""
        t = short_name(notice_type)
        raw = notice.get("event")
        event = raw if isinstance(raw, str) else ANY_EVENT
        base = self.entry(t, event)
        if base is None:
            return None
        own = self.states.get((origin, t, event)) or self.states.get((origin, t, ANY_EVENT))
        # A state shortens the region's clocks; it cannot start one the region does not run
        # (the departure, when the region caps by it, is a clock that always runs).
        cap = not base.before_departure
        receive = _shorter(base.receive_ms, own.receive_ms if own else None, cap=cap)
        acknowledge = _shorter(base.acknowledge_ms, own.acknowledge_ms if own else None, cap=cap)
        receive_by = None if receive is None else decided_at + receive
        acknowledge_by = None if acknowledge is None else decided_at + acknowledge
        if base.before_departure:
            departure = first_departure(notice)
            if departure is not None:
                receive_by = _shorter(receive_by, departure)
                acknowledge_by = _shorter(acknowledge_by, departure)
        entries = (base,) if own is None else (base, own)
        return Deadlines(
            type=f"{t}/{event}" if event else t,
            receive_by=receive_by,
            acknowledge_by=acknowledge_by,
            deadline_ids=tuple(e.id for e in entries),
            legal_bases=tuple(e.legal_basis for e in entries if e.legal_basis),
        )


def first_departure(notice: Mapping[str, Any]) -> int | None:
    """The earliest scheduled departure of a return's itinerary (Unix ms), if it has one."""
    details = notice.get("return_details")
    legs = details.get("itinerary") if isinstance(details, Mapping) else None
    times = [
        leg["departure_at"]
        for leg in legs or ()
        if isinstance(leg, Mapping) and isinstance(leg.get("departure_at"), dt.datetime)
    ]
    if not times:
        return None
    return int(min(times).timestamp() * 1000)


def _shorter(a: int | None, b: int | None, *, cap: bool = False) -> int | None:
    """The earlier of two optional times or durations; with ``cap``, none if ``a`` is none."""
    if a is None:
        return None if cap else b
    return a if b is None else min(a, b)
