"""Who sees what, and the report per pair and period (pure)."""

from __future__ import annotations

import dataclasses
import json
import re

from puente.evidence.receipt import AcknowledgmentDecision
from puente.receipts.report import period_of, quantile, status_document, visible
from puente.receipts.track import Track, TrackState
from tests.unit.receipts.conftest import HOUR, T0, World

ACK = AcknowledgmentDecision.ACKNOWLEDGED


def test_quantiles_are_nearest_rank() -> None:
    assert quantile([], 0.5) is None
    assert quantile([7], 0.5) == 7 and quantile([7], 0.95) == 7
    ordered = list(range(1, 101))  # 1..100
    assert quantile(ordered, 0.5) == 50
    assert quantile(ordered, 0.95) == 95
    assert quantile([1, 2, 3, 4], 0.5) == 2


def test_periods() -> None:
    t = 1_796_212_800_000  # 2026-12-02T12:00:00Z, a Wednesday of ISO week 49
    assert period_of(t, "day") == "2026-12-02"
    assert period_of(t, "week") == "2026-W49"
    assert period_of(t, "month") == "2026-12"
    assert period_of(t, "all") == "all"


def _tracks(world: World) -> list[Track]:
    """MX→GT: one acknowledged after 2 h (received after 1 min), one overdue; MX→HN: one
    received after 10 min and awaited; GT→HN: another pair's."""
    book = world.book()
    a = book.deliver(world.delivery("GT"))
    b = book.deliver(world.delivery("GT"))
    c = book.deliver(world.delivery("HN"))
    assert a is not None and b is not None and c is not None
    book.judge(world.receipt(a, at=T0 + 60_000), world.verifier)
    book.judge(world.receipt(a, at=T0 + 2 * HOUR, answer=ACK), world.verifier)
    book.judge(world.receipt(c, at=T0 + 600_000), world.verifier)
    book.escalate(T0 + 3 * HOUR)  # b missed its receive deadline
    other = dataclasses.replace(c, delivery_id="other", origin="GT", recipient="HN")
    return [*book, other]


def test_a_state_sees_its_pairs_only(world: World) -> None:
    tracks = _tracks(world)
    gt = [t for t in tracks if visible(t, "GT")]
    assert {(t.origin, t.recipient) for t in gt} == {("MX", "GT"), ("GT", "HN")}
    us = [t for t in tracks if visible(t, "US")]
    assert us == []
    assert len([t for t in tracks if visible(t, None)]) == len(tracks)  # the operator


def test_the_report_per_pair(world: World) -> None:
    doc = status_document(_tracks(world), viewer="MX", now_ms=T0 + 4 * HOUR, period="all")
    rows = {(r["origin"], r["recipient"]): r for r in doc["report"]}
    assert set(rows) == {("MX", "GT"), ("MX", "HN")}  # not GT→HN: MX is not part of it
    gt = rows[("MX", "GT")]
    assert (gt["deliveries"], gt["received"], gt["acknowledged"], gt["overdue"]) == (2, 1, 1, 1)
    assert gt["time_to_receipt_ms"] == {"median": 60_000, "p95": 60_000}
    assert gt["time_to_acknowledgment_ms"] == {"median": 2 * HOUR, "p95": 2 * HOUR}
    hn = rows[("MX", "HN")]
    assert (hn["received"], hn["awaiting"], hn["overdue"]) == (1, 1, 0)
    assert hn["time_to_acknowledgment_ms"] == {"median": None, "p95": None}
    # Listed: what is awaited or overdue, not what was answered.
    assert sorted(d["state"] for d in doc["deliveries"]) == ["OVERDUE", "RECEIVED"]
    overdue = status_document(_tracks(world), viewer="MX", now_ms=T0, show="overdue")
    assert [d["state"] for d in overdue["deliveries"]] == [TrackState.OVERDUE.value]


def test_the_document_holds_ids_types_states_and_times_only(world: World) -> None:
    doc = status_document(_tracks(world), viewer=None, now_ms=T0, show="all")
    assert doc["contract"] == "puente.receipts.status/v1"
    allowed = re.compile(
        r"^([0-9a-f-]{36}|other|[A-Z]{2}|ConsularNotification(/[A-Z_]+)?|[A-Z_]+|"
        r"\d{4}-\d\d-\d\dT[\d:.]+Z|\d{4}-\d\d|all|awaiting|overdue|month|"
        r"puente\.receipts\.status/v1|GT-[\d/]+)$"
    )

    def strings(x: object) -> list[str]:
        if isinstance(x, dict):
            return [s for v in x.values() for s in strings(v)]
        if isinstance(x, list):
            return [s for v in x for s in strings(v)]
        return [x] if isinstance(x, str) else []

    bad = [s for s in strings(doc) if not allowed.match(s)]
    assert bad == [], bad
    json.dumps(doc)  # plain JSON
