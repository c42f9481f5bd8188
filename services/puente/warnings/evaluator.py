"""The evaluator: verified aggregates in, EarlyWarning records out, the same for everyone.

:class:`Evaluator` is a fold over the aggregates in the order of the (single-partition)
aggregates topic. Its output depends only on that sequence and on the trigger set — no clock, no
randomness, sorted iteration everywhere — so a second evaluator over the same aggregates writes
byte-identical records, and anyone can re-derive a warning from the aggregates it names
(:func:`recompute`). Pure.

For each trigger, windows are evaluated in order, starting once ``baseline`` windows of history
exist (from the first aggregate of its counts). A window is evaluated as soon as every state the
trigger reads has delivered all shards of it, or once one of them has delivered a window ``grace``
windows later (the missing states are then listed in the warning and count as zero). For each
cell key, the value in the window is compared with the mean over the baseline windows before it;
a threshold met starts a warning (STARTED), a level change while it holds is CHANGED, and
``clear_after`` windows in a row without the threshold end it (ENDED).
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from puente.evidence._avro import AvroRecord
from puente.evidence._time import from_datetime, to_datetime
from puente.warnings.aggregate import AggregateRefused
from puente.warnings.signing import SignedAggregate, digest
from puente.warnings.tables import Dimension, Key, Table
from puente.warnings.triggers import Level, Measure, Trigger, TriggerSet

EARLY_WARNING = "puente.EarlyWarning"
_NS = uuid.UUID("0b5a4d1e-7c3f-4e21-9d7a-2f6c1e8b9a40")
STARTED, CHANGED, ENDED = "STARTED", "CHANGED", "ENDED"


@dataclass(frozen=True)
class EarlyWarning(AvroRecord):
    """One STARTED, CHANGED or ENDED record (``puente.EarlyWarning``)."""

    AVRO_NAME: ClassVar[str] = EARLY_WARNING

    warning_id: str
    episode_id: str
    status: str
    trigger_id: str
    triggers_version: str
    level: Level
    group: str | None
    states: tuple[str, ...]
    place: str | None
    subject: tuple[tuple[str, str], ...]
    window_start: int
    window_end: int
    measure: Measure
    value: int
    baseline: float
    baseline_windows: int
    threshold_ratio: float
    threshold_min: int
    missing: tuple[str, ...]
    notify: tuple[str, ...]
    inputs: tuple[dict[str, Any], ...] = field(repr=False)

    def to_avro(self) -> dict[str, Any]:
        return {
            "warning_id": self.warning_id,
            "episode_id": self.episode_id,
            "status": self.status,
            "trigger_id": self.trigger_id,
            "triggers_version": self.triggers_version,
            "level": self.level.value,
            "region": {"group": self.group, "states": list(self.states), "place": self.place},
            "subject": [{"dimension": d, "value": v} for d, v in self.subject],
            "window_start": to_datetime(self.window_start),
            "window_end": to_datetime(self.window_end),
            "measure": self.measure.name,
            "value": self.value,
            "baseline": self.baseline,
            "baseline_windows": self.baseline_windows,
            "threshold_ratio": self.threshold_ratio,
            "threshold_min": self.threshold_min,
            "missing": list(self.missing),
            "notify": list(self.notify),
            "inputs": [dict(i) for i in self.inputs],
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> EarlyWarning:
        r = d["region"]
        return cls(
            warning_id=str(d["warning_id"]),
            episode_id=str(d["episode_id"]),
            status=d["status"],
            trigger_id=d["trigger_id"],
            triggers_version=d["triggers_version"],
            level=Level(d["level"]),
            group=r["group"],
            states=tuple(r["states"]),
            place=r["place"],
            subject=tuple((s["dimension"], s["value"]) for s in d["subject"]),
            window_start=from_datetime(d["window_start"]),
            window_end=from_datetime(d["window_end"]),
            measure=Measure[d["measure"]],
            value=d["value"],
            baseline=d["baseline"],
            baseline_windows=d["baseline_windows"],
            threshold_ratio=d["threshold_ratio"],
            threshold_min=d["threshold_min"],
            missing=tuple(d["missing"]),
            notify=tuple(d["notify"]),
            inputs=tuple(d["inputs"]),
        )

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly summary (no inputs): what ``puente warnings list`` prints."""
        return {
            "warning_id": self.warning_id,
            "episode_id": self.episode_id,
            "status": self.status,
            "trigger_id": self.trigger_id,
            "level": self.level.value,
            "group": self.group,
            "states": list(self.states),
            "place": self.place,
            "subject": {d: v for d, v in self.subject},
            "window_start": self.window_start,
            "window_end": self.window_end,
            "measure": self.measure.value,
            "value": self.value,
            "baseline": self.baseline,
            "missing": list(self.missing),
            "notify": list(self.notify),
            "inputs": len(self.inputs),
            "triggers_version": self.triggers_version,
        }


@dataclass
class _Episode:
    episode_id: str
    level: Level
    baseline: float  # the baseline when it started, kept while it holds
    quiet: int = 0  # windows in a row without the threshold


class Evaluator:
    """The fold (see the module docstring). Feed :meth:`add` in topic order."""

    def __init__(self, triggers: TriggerSet) -> None:
        self.triggers = triggers
        self._by_table: dict[Table, list[Trigger]] = defaultdict(list)
        for t in triggers.triggers:
            self._by_table[t.table].append(t)
        # table -> window start -> (origin, shard) -> aggregate
        self._store: dict[Table, dict[int, dict[tuple[str, int], SignedAggregate]]] = defaultdict(
            dict
        )
        self._latest: dict[tuple[Table, str], int] = {}  # newest window seen per origin
        self._next: dict[str, int] = {}  # trigger id -> next window to evaluate
        self._active: dict[str, dict[Key, _Episode]] = defaultdict(dict)
        self.ignored: Counter[str] = Counter()  # aggregates not used, by reason
        self.evaluated = 0  # (trigger, window) evaluations done

    def add(self, sa: SignedAggregate) -> list[EarlyWarning]:
        """Take one verified aggregate; the warnings it completes (possibly none).

        Raises :class:`AggregateRefused` (``AGGREGATE_CONFLICT``) for a second, different
        aggregate of one origin, shard, table and window: the first stays (publishing two
        versions of a window would let them be differenced)."""
        a = sa.aggregate
        triggers = [t for t in self._by_table.get(a.table, []) if a.origin in t.over]
        if not triggers:
            self.ignored["AGGREGATE_NOT_READ"] += 1
            return []
        slot = self._store[a.table].setdefault(a.window_start, {})
        have = slot.get((a.origin, a.shard))
        if have is not None:
            if have.body == sa.body:
                self.ignored["AGGREGATE_DUPLICATE"] += 1
                return []
            raise AggregateRefused(
                f"a second, different aggregate of {a.origin} shard {a.shard} for window "
                f"{a.window_start} of {a.table.id}; the first is kept",
                reason="AGGREGATE_CONFLICT",
            )
        slot[(a.origin, a.shard)] = sa
        latest = self._latest.get((a.table, a.origin))
        if latest is None or a.window_start > latest:
            self._latest[(a.table, a.origin)] = a.window_start
        out: list[EarlyWarning] = []
        for t in triggers:
            nxt = self._next.setdefault(t.id, a.window_start + t.baseline_windows * t.window_ms)
            while self._evaluable(t, nxt):
                out += self._evaluate(t, nxt)
                nxt += t.window_ms
            self._next[t.id] = nxt
        return out

    # --- when -----------------------------------------------------------------------------------

    def _complete(self, t: Trigger, window: int, origin: str) -> bool:
        got = [
            sa.aggregate
            for (o, _), sa in self._store[t.table].get(window, {}).items()
            if o == origin
        ]
        return bool(got) and len(got) == got[0].shards

    def _evaluable(self, t: Trigger, window: int) -> bool:
        newest = max((self._latest.get((t.table, o), -1) for o in t.over), default=-1)
        if newest >= window + self.triggers.grace_windows * t.window_ms:
            return True
        return newest >= window and all(self._complete(t, window, o) for o in t.over)

    # --- what -------------------------------------------------------------------------------------

    def _values(self, t: Trigger, window: int) -> tuple[dict[Key, int], list[SignedAggregate]]:
        used = sorted(
            (sa for (o, _), sa in self._store[t.table].get(window, {}).items() if o in t.over),
            key=lambda sa: (sa.aggregate.origin, sa.aggregate.shard),
        )
        values: Counter[Key] = Counter()
        if t.measure is Measure.COUNT:
            for sa in used:
                for key, n in sa.aggregate.cells:
                    values[key] += n
        else:
            origins: dict[Key, set[str]] = defaultdict(set)
            for sa in used:
                for key, _ in sa.aggregate.cells:
                    origins[key].add(sa.aggregate.origin)
            values.update({key: len(os) for key, os in origins.items()})
        return dict(values), used

    def _evaluate(self, t: Trigger, window: int) -> list[EarlyWarning]:
        self.evaluated += 1
        w = t.window_ms
        history = [window - i * w for i in range(t.baseline_windows, 0, -1)]
        current, used = self._values(t, window)
        totals: Counter[Key] = Counter()
        peaks: Counter[Key] = Counter()  # the highest value of each key in one baseline window
        inputs: list[SignedAggregate] = []
        for past in history:
            values, past_used = self._values(t, past)
            totals.update(values)
            for key, value in values.items():
                peaks[key] = max(peaks[key], value)
            inputs += past_used
        inputs += used
        missing = tuple(o for o in t.over if not self._complete(t, window, o))
        active = self._active[t.id]
        out: list[EarlyWarning] = []
        for key in sorted(set(current) | set(active)):
            value = current.get(key, 0)
            episode = active.get(key)
            # While a warning holds, its baseline stays the one it started against: a surge
            # lasting longer than a window must not become its own normal.
            baseline = episode.baseline if episode else totals.get(key, 0) / t.baseline_windows
            seen = episode is None and peaks.get(key, 0) >= t.threshold.min_count
            level = t.level(value, baseline, seen_before=seen)
            status: str | None = None
            if level is not None and episode is None:
                episode_id = str(uuid.uuid5(_NS, f"{t.id}/{'|'.join(key)}/{window}"))
                episode = active[key] = _Episode(episode_id, level, baseline)
                status = STARTED
            elif level is not None and episode is not None:
                episode.quiet = 0
                if level is not episode.level:
                    episode.level, status = level, CHANGED
            elif episode is not None:
                episode.quiet += 1
                if episode.quiet >= t.clear_after:
                    del active[key]
                    status = ENDED
            if status is None or episode is None:
                continue
            th = t.alert if episode.level is Level.ALERT and t.alert else t.threshold
            out.append(
                self._record(t, key, window, status, episode, value, baseline, th, missing, inputs)
            )
        return out

    def _record(
        self,
        t: Trigger,
        key: Key,
        window: int,
        status: str,
        episode: _Episode,
        value: int,
        baseline: float,
        th: Any,
        missing: tuple[str, ...],
        inputs: Iterable[SignedAggregate],
    ) -> EarlyWarning:
        subject = tuple((d.value, v) for d, v in zip(t.table.by, key, strict=True))
        place = dict(zip(t.table.by, key, strict=True)).get(Dimension.PLACE)
        refs = sorted(
            (sa.ref() for sa in inputs),
            key=lambda r: (r["window_start"], r["origin"], r["shard"]),
        )
        return EarlyWarning(
            warning_id=str(uuid.uuid5(_NS, f"{episode.episode_id}/{status}/{window}")),
            episode_id=episode.episode_id,
            status=status,
            trigger_id=t.id,
            triggers_version=self.triggers.version,
            level=episode.level,
            group=t.over_group,
            states=t.over,
            place=place,
            subject=subject,
            window_start=window,
            window_end=window + t.window_ms,
            measure=t.measure,
            value=value,
            baseline=baseline,
            baseline_windows=t.baseline_windows,
            threshold_ratio=float(th.ratio),
            threshold_min=th.min_count,
            missing=missing,
            notify=t.notify,
            inputs=tuple(refs),
        )


def recompute(triggers: TriggerSet, aggregates: Iterable[SignedAggregate]) -> list[EarlyWarning]:
    """Every warning a fresh evaluator derives from ``aggregates`` (in topic order): what a
    member runs to check the published warnings (docs/early-warning.md, "Recomputing")."""
    ev = Evaluator(triggers)
    out: list[EarlyWarning] = []
    for sa in aggregates:
        try:
            out += ev.add(sa)
        except AggregateRefused:
            continue
    return out


def by_digest(aggregates: Iterable[SignedAggregate]) -> Mapping[bytes, SignedAggregate]:
    """Aggregates indexed by the SHA-256 of their bytes (how warnings name them)."""
    return {digest(sa.body): sa for sa in aggregates}
