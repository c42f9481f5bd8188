"""Who sees what: the receipt status of a state's pairs, and a report per pair and period (pure).

A state sees the deliveries it sent and the ones it received, never another pair
(:func:`visible`); the operator (no state) sees every pair. The document
(:func:`status_document`, contract ``puente.receipts.status/v1``) holds ids, types, states and
times only: per (origin, recipient, period) how many deliveries, how many received,
acknowledged, declined, overdue and still awaited, and the median and 95th percentile of the
time to receipt and to acknowledgment; and the deliveries still awaited or overdue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from puente.evidence._time import format_ms
from puente.receipts.track import ANSWERED, Track, TrackState

CONTRACT = "puente.receipts.status/v1"
Period = Literal["day", "week", "month", "all"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "all")
Show = Literal["awaiting", "overdue", "all"]


def visible(track: Track, viewer: str | None) -> bool:
    """Whether ``viewer`` (a state; None: the operator) may see ``track``: it sent it or
    received it."""
    return viewer is None or viewer in (track.origin, track.recipient)


def period_of(ms: int, period: Period) -> str:
    """The period a time falls in: ``2026-12-02``, ``2026-W49`` (ISO week), ``2026-12``, or
    ``all``."""
    if period == "all":
        return "all"
    d = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    if period == "day":
        return f"{d:%Y-%m-%d}"
    if period == "week":
        year, week, _ = d.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{d:%Y-%m}"


def quantile(ordered: list[int], q: float) -> int | None:
    """The nearest-rank ``q`` quantile of a sorted list (None when empty)."""
    if not ordered:
        return None
    rank = max(1, -(-int(q * 1000) * len(ordered) // 1000))  # ceil(q * n), exact in integers
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class PairStats:
    """What one (origin, recipient) pair's deliveries of one period came to."""

    origin: str
    recipient: str
    period: str
    deliveries: int = 0
    received: int = 0
    acknowledged: int = 0
    declined: int = 0
    overdue: int = 0  # went overdue (escalated), answered late or not
    awaiting: int = 0  # a deadline still runs
    to_receipt: list[int] = field(default_factory=list)
    to_acknowledgment: list[int] = field(default_factory=list)

    def add(self, t: Track) -> None:
        self.deliveries += 1
        if t.received_at is not None:
            self.received += 1
            self.to_receipt.append(t.received_at - t.decided_at)
        if t.state is TrackState.ACKNOWLEDGED:
            self.acknowledged += 1
        elif t.state is TrackState.DECLINED:
            self.declined += 1
        if t.state in ANSWERED and t.answered_at is not None:
            self.to_acknowledgment.append(t.answered_at - t.decided_at)
        if t.escalated_at is not None:
            self.overdue += 1
        if t.open:
            self.awaiting += 1

    def to_json(self) -> dict[str, Any]:
        r, a = sorted(self.to_receipt), sorted(self.to_acknowledgment)
        return {
            "origin": self.origin,
            "recipient": self.recipient,
            "period": self.period,
            "deliveries": self.deliveries,
            "received": self.received,
            "acknowledged": self.acknowledged,
            "declined": self.declined,
            "overdue": self.overdue,
            "awaiting": self.awaiting,
            "time_to_receipt_ms": {"median": quantile(r, 0.5), "p95": quantile(r, 0.95)},
            "time_to_acknowledgment_ms": {"median": quantile(a, 0.5), "p95": quantile(a, 0.95)},
        }


def report(tracks: Iterable[Track], period: Period = "month") -> list[dict[str, Any]]:
    """One row per (origin, recipient, period of the decision), in that order."""
    rows: dict[tuple[str, str, str], PairStats] = {}
    for t in tracks:
        key = (t.origin, t.recipient, period_of(t.decided_at, period))
        stats = rows.get(key)
        if stats is None:
            stats = rows[key] = PairStats(*key)
        stats.add(t)
    return [rows[k].to_json() for k in sorted(rows)]


def delivery_json(t: Track) -> dict[str, Any]:
    """One delivery's status: ids, type, state and times (ISO 8601, UTC) only."""
    return {
        "delivery_id": t.delivery_id,
        "notice_id": t.notice_id,
        "origin": t.origin,
        "recipient": t.recipient,
        "type": t.type,
        "state": t.state.value,
        "decided_at": format_ms(t.decided_at),
        "receive_by": _time(t.receive_by),
        "acknowledge_by": _time(t.acknowledge_by),
        "received_at": _time(t.received_at),
        "answered_at": _time(t.answered_at),
        "decline_reason": t.decline_reason,
        "case_reference": t.case_reference,
        "missed": None if t.missed is None else t.missed.value,
        "escalated_at": _time(t.escalated_at),
    }


def _time(ms: int | None) -> str | None:
    return None if ms is None else format_ms(ms)


def shown(t: Track, show: Show) -> bool:
    """Whether a delivery is listed: ``overdue`` ones (unanswered past a deadline),
    ``awaiting`` ones (those and the ones a deadline still runs for), or ``all``."""
    if show == "all":
        return True
    if show == "overdue":
        return t.state is TrackState.OVERDUE
    return t.state is TrackState.OVERDUE or t.open


def status_document(
    tracks: Iterable[Track],
    *,
    viewer: str | None,
    now_ms: int,
    period: Period = "month",
    show: Show = "awaiting",
) -> dict[str, Any]:
    """The status ``viewer`` may see (contract ``puente.receipts.status/v1``): the report of
    its pairs, and its deliveries that ``show`` selects (oldest decision first)."""
    mine = [t for t in tracks if visible(t, viewer)]
    listed = sorted(
        (t for t in mine if shown(t, show)), key=lambda t: (t.decided_at, t.delivery_id)
    )
    return {
        "contract": CONTRACT,
        "as": viewer,
        "generated_at": format_ms(now_ms),
        "period": period,
        "show": show,
        "report": report(mine, period),
        "deliveries": [delivery_json(t) for t in listed],
    }
