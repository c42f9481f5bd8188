"""Phase 2, the deadlines: the regional clocks and each state's shortenings, checked.

The regional file's ``deadlines`` set, per notice type and event, how long a recipient has to
receive and to acknowledge; a state file's ``deadlines`` may shorten them for the notices that
state sends. Checked here, each problem with its file and line: known types and events, no
(type, event) given twice in one file, a legal basis on every entry, a clock on every entry,
receive no later than acknowledge, ``before: departure`` only where the notice has an
itinerary; and a state's entry never longer than the region's, never a clock the region does
not run (policies/SEMANTICS.md §11).
"""

from __future__ import annotations

from typing import Any

from puente.policy.deadlines import ANY_EVENT, DeadlineEntry, DeadlineTable, duration_ms
from puente.policy.engine import NOTICE_TYPES
from puente.policy.loader._problems import Problems
from puente.policy.loader._read import Source, Sources
from puente.policy.model import Deadline, DeadlineAnchor, StateDeadline
from puente.policy.yamlsrc import LList, LMap, item_line, key_line

DEADLINES = "deadlines"
_DEPARTURE_FIELD = "return_details"  # what ``before: departure`` reads (deadlines.first_departure)
_CONSULAR = "ConsularNotification"


def event_symbols(schema: dict[str, Any]) -> frozenset[str] | None:
    """The symbols of a notice schema's top-level ``event`` enum; None if it has no event."""
    for f in schema.get("fields", ()):
        if f.get("name") == "event" and isinstance(f.get("type"), dict):
            return frozenset(f["type"].get("symbols", ()))
    return None


def check_deadlines(
    sources: Sources,
    schemas: dict[str, dict[str, Any]],
    problems: Problems,
    seen: dict[str, tuple[str, int]],
) -> DeadlineTable:
    """The deadline table of ``sources``; every problem added to ``problems``. ``seen`` holds the
    ids already used in the set (id → file, line) and gets these ones."""
    return _Check(sources, schemas, problems, seen).run()


class _Check:
    def __init__(
        self,
        sources: Sources,
        schemas: dict[str, dict[str, Any]],
        problems: Problems,
        seen: dict[str, tuple[str, int]],
    ) -> None:
        self.sources = sources
        self.schemas = schemas
        self.problems = problems
        self.seen = seen

    def run(self) -> DeadlineTable:
        reg = self.sources.regional
        regional: dict[tuple[str, str], DeadlineEntry] = {}
        for i, d in enumerate(reg.model.deadlines):
            line, data = _where(reg, i)
            entry = self.entry(reg, line, data, d)
            for key in self.covers(reg, line, data, d):
                if key in regional:
                    self.duplicate(reg.name, line, key, regional[key].id)
                elif entry is not None:
                    regional[key] = entry
        self.warn_uncovered(reg, regional)
        states: dict[tuple[str, str, str], DeadlineEntry] = {}
        for code, src in self.sources.states.items():
            own: dict[tuple[str, str], DeadlineEntry] = {}
            for i, sd in enumerate(src.model.deadlines):
                line, data = _where(src, i)
                entry = self.entry(src, line, data, sd)
                for key in self.covers(src, line, data, sd):
                    if key in own:
                        self.duplicate(src.name, line, key, own[key].id)
                    elif entry is not None and self.shortens(src, line, data, sd, key, regional):
                        own[key] = entry
            states.update({(code, t, e): entry for (t, e), entry in own.items()})
        return DeadlineTable(regional, states)

    def error(self, file: str, line: int, code: str, message: str) -> None:
        self.problems.error(file, line, code, message)

    def entry(
        self, src: Source[Any], line: int, data: Any, d: Deadline | StateDeadline
    ) -> DeadlineEntry | None:
        """The entry as loaded, or None after saying what is wrong with it."""
        ok = True
        if d.id in self.seen:
            f, ln = self.seen[d.id]
            self.error(
                src.name, line, "POLICY_DUPLICATE_ID", f"id {d.id!r} is already used at {f}:{ln}"
            )
            ok = False
        else:
            self.seen[d.id] = (src.name, line)
        if not d.legal_basis.strip():
            self.error(
                src.name,
                line,
                "POLICY_NO_LEGAL_BASIS",
                f"deadline {d.id}: no legal_basis (every deadline must cite one)",
            )
            ok = False
        before = isinstance(d, Deadline) and d.before is DeadlineAnchor.DEPARTURE
        if d.receive is None and d.acknowledge is None and not before:
            self.error(
                src.name,
                line,
                "POLICY_SHAPE",
                f"deadline {d.id}: set receive, acknowledge or both",
            )
            ok = False
        receive = None if d.receive is None else duration_ms(d.receive)
        acknowledge = None if d.acknowledge is None else duration_ms(d.acknowledge)
        if receive is not None and acknowledge is not None and receive > acknowledge:
            self.error(
                src.name,
                key_line(data, "receive", line),
                "POLICY_DEADLINE_ORDER",
                f"deadline {d.id}: receive ({d.receive}) is later than acknowledge "
                f"({d.acknowledge}); an acknowledgment is also a receipt",
            )
            ok = False
        if before and _DEPARTURE_FIELD not in _field_names(self.schemas.get(d.type, {})):
            self.error(
                src.name,
                key_line(data, "before", line),
                "POLICY_SHAPE",
                f"deadline {d.id}: {d.type} has no itinerary to read a departure from",
            )
            ok = False
        if not ok:
            return None
        return DeadlineEntry(d.id, receive, acknowledge, d.legal_basis.strip(), before)

    def covers(
        self, src: Source[Any], line: int, data: Any, d: Deadline | StateDeadline
    ) -> list[tuple[str, str]]:
        """The (type, event) keys the entry covers (none after saying what is unknown)."""
        if d.type not in NOTICE_TYPES:
            self.error(
                src.name,
                key_line(data, "type", line),
                "POLICY_UNKNOWN_TYPE",
                f"deadline {d.id}: unknown notice type {d.type!r} ({', '.join(NOTICE_TYPES)})",
            )
            return []
        if not d.events:
            return [(d.type, ANY_EVENT)]
        symbols = event_symbols(self.schemas[d.type]) or frozenset()
        unknown = [e for e in d.events if e not in symbols]
        if unknown:
            self.error(
                src.name,
                key_line(data, "events", line),
                "POLICY_UNKNOWN_EVENT",
                f"deadline {d.id}: {d.type} has no event {', '.join(map(repr, unknown))}"
                + (f" ({', '.join(sorted(symbols))})" if symbols else " (it has no events)"),
            )
            return []
        return [(d.type, e) for e in dict.fromkeys(d.events)]

    def duplicate(self, file: str, line: int, key: tuple[str, str], first: str) -> None:
        what = f"{key[0]}/{key[1]}" if key[1] else f"{key[0]} (every event)"
        self.error(
            file,
            line,
            "POLICY_DUPLICATE_DEADLINE",
            f"{what} already has a deadline in this file ({first})",
        )

    def shortens(
        self,
        src: Source[Any],
        line: int,
        data: Any,
        d: StateDeadline,
        key: tuple[str, str],
        regional: dict[tuple[str, str], DeadlineEntry],
    ) -> bool:
        """True when the state's entry only shortens the region's clocks for ``key``."""
        t, event = key
        base = regional.get(key) or regional.get((t, ANY_EVENT))
        what = f"{t}/{event}" if event else t
        if base is None:
            self.error(
                src.name,
                line,
                "POLICY_DEADLINE_NOT_REGIONAL",
                f"deadline {d.id}: the region sets no deadline for {what}; a state may shorten "
                "a regional deadline, not start one",
            )
            return False
        ok = True
        for name, own, theirs in (
            ("receive", d.receive, base.receive_ms),
            ("acknowledge", d.acknowledge, base.acknowledge_ms),
        ):
            if own is None:
                continue
            where = key_line(data, name, line)
            if theirs is None and base.before_departure:
                continue  # the region's clock is the departure: any duration ends no later
            if theirs is None:
                self.error(
                    src.name,
                    where,
                    "POLICY_DEADLINE_NOT_REGIONAL",
                    f"deadline {d.id}: the region runs no {name} clock for {what} "
                    f"({base.id}); a state may shorten a regional deadline, not start one",
                )
                ok = False
            elif duration_ms(own) > theirs:
                self.error(
                    src.name,
                    where,
                    "POLICY_DEADLINE_LONGER",
                    f"deadline {d.id}: {name} {own} is longer than the regional "
                    f"{_duration(theirs)} ({base.id}); a state may shorten a deadline, never "
                    "lengthen it",
                )
                ok = False
        return ok

    def warn_uncovered(
        self, reg: Source[Any], regional: dict[tuple[str, str], DeadlineEntry]
    ) -> None:
        """A consular event without a regional deadline is never tracked against a clock."""
        if not regional or _CONSULAR not in self.schemas:
            return
        if (_CONSULAR, ANY_EVENT) in regional:
            return
        missing = sorted(
            e
            for e in event_symbols(self.schemas[_CONSULAR]) or ()
            if (_CONSULAR, e) not in regional
        )
        if missing:
            self.problems.warn(
                reg.name,
                key_line(reg.data, DEADLINES),
                "POLICY_DEADLINE_MISSING",
                f"{_CONSULAR} events without a deadline: {', '.join(missing)}",
            )


def _where(src: Source[Any], i: int) -> tuple[int, Any]:
    """The line of deadline ``i`` of ``src`` and its YAML mapping (with lines)."""
    raw = src.data.get(DEADLINES) if isinstance(src.data, LMap) else None
    data = raw[i] if isinstance(raw, LList) and i < len(raw) else LMap()
    return item_line(src.data, DEADLINES, i), data


def _field_names(schema: dict[str, Any]) -> set[str]:
    return {f.get("name") for f in schema.get("fields", ())}


def _duration(ms: int) -> str:
    """A duration as a policy file writes it (24h stays 24h; 7d stays 7d)."""
    day, hour = 86_400_000, 3_600_000
    if ms % day == 0 and ms >= 2 * day:
        return f"{ms // day}d"
    if ms % hour == 0:
        return f"{ms // hour}h"
    return f"{ms // 60_000}m"
