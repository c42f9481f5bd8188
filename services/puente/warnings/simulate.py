"""Simulate before you trust it: synthetic days through the whole early-warning pipeline.

Every member's notices of each day (:mod:`puente.synth.movement`) are fed, in the order they
reach their origin, to that origin's :class:`~puente.warnings.aggregate.Aggregator` (one per
shard, as a node counts one per ingress partition); the shards' closed windows are summed
(:class:`~puente.warnings.combine.Combiner`, as a node's combiner does) and published with small
cells suppressed, encoded, signed with keys derived from the seed, verified and fed to
the :class:`~puente.warnings.evaluator.Evaluator` in the order they would reach the aggregates
topic. A warm-up of background (the longest baseline) comes first, so that every trigger can be
evaluated from day 0. Deterministic by seed: the output of two runs is the same bytes.

The JSON contract ``puente.warnings.simulate/v1`` (docs/early-warning.md): per trigger, each
episode (started, ended, level), the detection delay of the movement (from its first day to the
time its warning can be published: window end plus lateness) and the false alarms (episodes on
anything but the movement's nationality, place or route, or outside it).
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from puente.codec.registry import Registry
from puente.evidence.keys import SigningKey
from puente.evidence.trust import KeyEntry, TrustList, Usage, node_holder
from puente.warnings.aggregate import Aggregate, Aggregator, publish
from puente.warnings.combine import Combiner, Partial
from puente.warnings.evaluator import EarlyWarning, Evaluator
from puente.warnings.signing import AGGREGATE_CONTEXT, open_aggregate, sign
from puente.warnings.triggers import TriggerSet

CONTRACT = "puente.warnings.simulate/v1"
DAY_MS = 86_400_000
START = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)


def _key(seed: int, origin: str) -> SigningKey:
    seed_bytes = sha256(f"puente.warnings.simulate/{seed}/{origin}".encode()).digest()
    return SigningKey(f"puente.sim/{origin}", Ed25519PrivateKey.from_private_bytes(seed_bytes))


@dataclass(frozen=True)
class _Published:
    at: int  # when the origin can publish it: window end + lateness
    origin: str
    shard: int
    aggregate: Aggregate


def warmup_days(triggers: TriggerSet) -> int:
    """Days of background before day 0: the longest baseline plus its window, in whole days."""
    longest = max((t.window_ms * (t.baseline_windows + 1) for t in triggers.triggers), default=0)
    return -(-longest // DAY_MS)


def simulate(
    triggers: TriggerSet,
    registry: Registry,
    members: tuple[str, ...],
    *,
    scenario: str,
    days: int,
    seed: int,
    shards: int = 1,
) -> dict[str, Any]:
    """Run a scenario (``mass-movement`` or ``background``); the contract's JSON document."""
    from puente.synth.movement import SCENARIOS, DayStream, Movement

    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    if shards < 1:
        raise ValueError("shards must be at least 1")
    movement = Movement() if scenario == "mass-movement" else None
    warm = warmup_days(triggers)
    first = START - dt.timedelta(days=warm)
    stream = DayStream(seed, first, members, movement)
    if movement is not None:  # the movement's days count from day 0, not from the warm-up
        stream.movement = Movement(**{**movement.__dict__, "start_day": movement.start_day + warm})
    aggregators = {
        (o, s): Aggregator(
            o,
            triggers.tables_for(o),
            gazetteer=triggers.gazetteer,
            lateness_ms=triggers.lateness_ms,
        )
        for o in members
        for s in range(shards)
    }
    combiners = {o: Combiner() for o in members}
    published: list[_Published] = []
    notices = late = 0
    next_close = -1  # the earliest time any aggregator can close a window

    def close(now_ms: int) -> None:
        nonlocal next_close
        if now_ms < next_close:
            return
        for (o, s), agg in aggregators.items():
            if agg.due(now_ms):
                for closed in agg.close(now_ms):
                    # As a node does: several shards are summed before suppression.
                    done = [closed]
                    if shards > 1:
                        done = combiners[o].add(Partial(s, shards, closed), len(published))
                    for whole in done:
                        at = whole.window_start + whole.window_ms + triggers.lateness_ms
                        for a in publish(whole, origin=o, k=triggers.k):
                            published.append(_Published(at, o, 0, a))
        dues = [agg.next_due(now_ms) for agg in aggregators.values()]
        next_close = min((d for d in dues if d is not None), default=1 << 62)

    for day in range(warm + days):
        todays = sorted(
            stream.day(day), key=lambda n: (n.record["created_at"], n.record["notice_id"])
        )
        for name, record in todays:
            now_ms = int(record["created_at"].timestamp() * 1000)
            close(now_ms)
            shard = zlib.crc32(record["notice_id"].encode()) % shards
            agg = aggregators[(record["origin"], shard)]
            before = agg.late
            agg.feed(record, name, now_ms)
            late += agg.late - before
            notices += 1
        close(int((first + dt.timedelta(days=day + 1)).timestamp() * 1000))
    end_ms = int((first + dt.timedelta(days=warm + days)).timestamp() * 1000)

    keys = {o: _key(seed, o) for o in members}
    trust = TrustList(
        1,
        0,
        1 << 50,
        tuple(
            KeyEntry(k.public, node_holder(o), frozenset({Usage.EARLY_WARNING}), 0)
            for o, k in sorted(keys.items())
        ),
    )
    evaluator = Evaluator(triggers)
    warnings: list[tuple[int, EarlyWarning]] = []
    published.sort(key=lambda p: (p.at, p.origin, p.shard, p.aggregate.table.id))
    for p in published:
        if p.at > end_ms:
            break
        body = p.aggregate.encode(registry)
        sig = sign(keys[p.origin], AGGREGATE_CONTEXT, body, signed_at=p.at)
        signed = open_aggregate(trust, registry, body, sig.headers(), min_k=triggers.k)
        for w in evaluator.add(signed):
            warnings.append((p.at, w))
    return _report(
        triggers,
        scenario=scenario,
        seed=seed,
        days=days,
        shards=shards,
        warm=warm,
        movement=movement,
        warnings=warnings,
        notices=notices,
        late=late,
        aggregates=sum(1 for p in published if p.at <= end_ms),
        cells=sum(len(p.aggregate.cells) for p in published if p.at <= end_ms),
        evaluations=evaluator.evaluated,
    )


def _day(ms: int) -> float:
    return round((ms - int(START.timestamp() * 1000)) / DAY_MS, 2)


def _marks(triggers: TriggerSet, movement: Any) -> set[str]:
    """The cell values the movement is about (nationality, place of the deaths, route)."""
    if movement is None:
        return set()
    country, place = movement.deaths_at
    return {
        movement.nationality,
        triggers.gazetteer.admin1(country, place),
        ">".join(movement.route),
    }


def _report(
    triggers: TriggerSet,
    *,
    scenario: str,
    seed: int,
    days: int,
    shards: int,
    warm: int,
    movement: Any,
    warnings: list[tuple[int, EarlyWarning]],
    notices: int,
    late: int,
    aggregates: int,
    cells: int,
    evaluations: int,
) -> dict[str, Any]:
    marks = _marks(triggers, movement)
    start_ms = int(START.timestamp() * 1000)
    surge_from = surge_to = None
    if movement is not None:
        surge_from = start_ms + movement.start_day * DAY_MS
        surge_to = start_ms + movement.end_day * DAY_MS
    episodes: dict[str, dict[str, Any]] = {}
    per_trigger: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for at, w in warnings:
        ep = episodes.get(w.episode_id)
        if ep is None:
            window = max(triggers.trigger(w.trigger_id).window_ms, DAY_MS)
            about_movement = (
                surge_from is not None
                and surge_to is not None
                and bool(marks & {v for _, v in w.subject})
                and w.window_end > surge_from
                and w.window_start < surge_to + window
            )
            ep = {
                "subject": {d: v for d, v in w.subject},
                "started_window": [_day(w.window_start), _day(w.window_end)],
                "started_at_day": _day(at),
                "ended_window": None,
                "ended_at_day": None,
                "levels": [w.level.value],
                "peak_value": w.value,
                "movement": about_movement,
            }
            episodes[w.episode_id] = ep
            per_trigger[w.trigger_id].append(ep)
        else:
            if w.level.value not in ep["levels"]:
                ep["levels"].append(w.level.value)
            ep["peak_value"] = max(ep["peak_value"], w.value)
        if w.status == "ENDED":
            ep["ended_window"] = [_day(w.window_start), _day(w.window_end)]
            ep["ended_at_day"] = _day(at)
    out_triggers = []
    for t in triggers.triggers:
        eps = per_trigger.get(t.id, [])
        hits = [e for e in eps if e["movement"]]
        delay = None
        if hits and surge_from is not None:
            delay = round(min(e["started_at_day"] for e in hits) - _day(surge_from), 2)
        out_triggers.append(
            {
                "id": t.id,
                "window_hours": t.window_ms / 3_600_000,
                "episodes": eps,
                "fired_on_movement": bool(hits),
                "detection_delay_days": delay,
                "false_alarms": sum(1 for e in eps if not e["movement"]),
            }
        )
    return {
        "contract": CONTRACT,
        "scenario": scenario,
        "seed": seed,
        "days": days,
        "shards": shards,
        "day_0": START.date().isoformat(),
        "warmup_days": warm,
        "triggers_version": triggers.version,
        "k": triggers.k,
        "lateness_hours": triggers.lateness_ms / 3_600_000,
        "movement": None
        if movement is None
        else {
            "nationality": movement.nationality,
            "detentions_in": list(movement.states),
            "first_day": movement.start_day,
            "last_day": movement.end_day - 1,
            "peak_detentions_per_state_per_day": movement.peak,
            "deaths_at": triggers.gazetteer.admin1(*movement.deaths_at),
            "route": ">".join(movement.route),
        },
        "notices": notices,
        "late_notices": late,
        "aggregates": aggregates,
        "published_cells": cells,
        "evaluations": evaluations,
        "triggers": out_triggers,
        "warnings": [
            {
                "at_day": _day(at),
                "status": w.status,
                "trigger_id": w.trigger_id,
                "level": w.level.value,
                "subject": {d: v for d, v in w.subject},
                "window": [_day(w.window_start), _day(w.window_end)],
                "value": w.value,
                "baseline": round(w.baseline, 3),
                "missing": list(w.missing),
            }
            for at, w in warnings
        ],
    }


def summary_lines(doc: Mapping[str, Any]) -> list[str]:
    """The report for a terminal."""
    lines = [
        f"{doc['scenario']}, seed {doc['seed']}, {doc['days']} days after {doc['warmup_days']} "
        f"days of warm-up, {doc['shards']} shard(s) per origin: {doc['notices']} notices, "
        f"{doc['aggregates']} aggregates ({doc['published_cells']} published cells)"
    ]
    if doc["movement"]:
        m = doc["movement"]
        lines.append(
            f"movement: {m['nationality']} detentions in {', '.join(m['detentions_in'])} "
            f"from day {m['first_day']} to day {m['last_day']}; deaths at {m['deaths_at']}; "
            f"route {m['route']}"
        )
    for t in doc["triggers"]:
        delay = t["detection_delay_days"]
        lines.append(
            f"  {t['id']}: {len(t['episodes'])} episode(s), false alarms {t['false_alarms']}, "
            + (f"detected after {delay} days" if delay is not None else "movement not detected")
        )
        for e in t["episodes"]:
            subject = ", ".join(f"{k}={v}" for k, v in e["subject"].items())
            ended = e["ended_at_day"] if e["ended_at_day"] is not None else "-"
            lines.append(
                f"      {subject}: started day {e['started_at_day']}, ended day {ended}, "
                f"{'/'.join(e['levels'])}{'' if e['movement'] else ' (false alarm)'}"
            )
    return lines
