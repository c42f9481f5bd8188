"""An origin's counts: fed each accepted notice, asked for its closed windows, published as
signed :class:`Aggregate` records with the small cells suppressed.

:class:`Aggregator` is what an origin's node (today: the owner of one ingress partition in the
policy service, see :mod:`puente.service.aggregates`) keeps. It counts each accepted notice in
the window of its event time, for the tables the triggers read *from this origin*, and closes a
window ``lateness`` after it ends: from then on, a notice of that window is late and not counted
(a count once published is never revised, so that no two versions of one window can be
differenced). Closing emits every window in turn, empty ones too: an empty aggregate tells the
evaluator "zero, or only small cells", which it must tell apart from "not received".

The raw counts (small cells included) never leave the node: they live in the aggregator and in
its state record (the node's private changelog). Only :func:`publish` output is published. Pure.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from puente.errors import PuenteError
from puente.evidence._avro import AvroRecord
from puente.evidence._time import from_datetime, to_datetime
from puente.warnings.privacy import disclosure_problems, suppress
from puente.warnings.tables import Dimension, Gazetteer, Key, Table, features

AGGREGATE = "puente.Aggregate"
STATE_VERSION = 1
MAX_CATCH_UP = 10_000  # windows one close may emit per table (a node down for years skips ahead)


class AggregateError(PuenteError):
    """Aggregation state that cannot be read, or a result that would break the guarantee."""

    reason = "AGGREGATE_ERROR"


class AggregateRefused(PuenteError):
    """A published aggregate a reader will not use (its reason says why)."""

    reason = "AGGREGATE_REFUSED"


def table_to_avro(t: Table) -> dict[str, Any]:
    return {
        "notice_type": t.notice_type,
        "events": list(t.events),
        "crime_types": list(t.crime_types),
        "minor": t.minor,
        "unaccompanied_minor": t.unaccompanied_minor,
        "by": [d.name for d in t.by],
        "window_ms": t.window_ms,
    }


def table_from_avro(d: Mapping[str, Any]) -> Table:
    return Table(
        notice_type=d["notice_type"],
        window_ms=d["window_ms"],
        events=tuple(d["events"]),
        crime_types=tuple(d["crime_types"]),
        minor=d["minor"],
        unaccompanied_minor=d["unaccompanied_minor"],
        by=tuple(Dimension[name] for name in d["by"]),
    )


@dataclass(frozen=True)
class Aggregate(AvroRecord):
    """One origin's published counts of one table in one window (``puente.Aggregate``)."""

    AVRO_NAME: ClassVar[str] = AGGREGATE

    origin: str
    shard: int
    shards: int
    table: Table
    window_start: int
    k: int
    cells: tuple[tuple[Key, int], ...]  # sorted by key

    @property
    def window_end(self) -> int:
        return self.window_start + self.table.window_ms

    def to_avro(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "shard": self.shard,
            "shards": self.shards,
            "table": table_to_avro(self.table),
            "window_start": to_datetime(self.window_start),
            "window_end": to_datetime(self.window_end),
            "k": self.k,
            "cells": [{"key": list(key), "count": n} for key, n in self.cells],
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> Aggregate:
        table = table_from_avro(d["table"])
        start = from_datetime(d["window_start"])
        if from_datetime(d["window_end"]) != start + table.window_ms:
            raise ValueError("window_end is not window_start + window_ms")
        return cls(
            origin=d["origin"],
            shard=d["shard"],
            shards=d["shards"],
            table=table,
            window_start=start,
            k=d["k"],
            cells=tuple((tuple(c["key"]), c["count"]) for c in d["cells"]),
        )


def check_published(a: Aggregate, min_k: int) -> None:
    """What any reader can check in an aggregate beyond its signature: a coherent shape, k at
    least ``min_k`` (the trigger set's), and no cell under k. :class:`AggregateRefused` if not:
    ``AGGREGATE_MALFORMED``, ``AGGREGATE_K_TOO_SMALL`` or ``AGGREGATE_CELL_TOO_SMALL``."""

    def refuse(reason: str, message: str) -> AggregateRefused:
        return AggregateRefused(
            f"aggregate of {a.origin} for window {a.window_start}: {message}", reason=reason
        )

    if not 0 <= a.shard < a.shards:
        raise refuse("AGGREGATE_MALFORMED", f"shard {a.shard} of {a.shards}")
    if a.window_start % a.table.window_ms:
        raise refuse("AGGREGATE_MALFORMED", "the window is not aligned on its length")
    if a.k < min_k:
        raise refuse("AGGREGATE_K_TOO_SMALL", f"k={a.k} is below the triggers' k={min_k}")
    keys = [key for key, _ in a.cells]
    if keys != sorted(set(keys)) or any(len(key) != len(a.table.by) for key in keys):
        raise refuse("AGGREGATE_MALFORMED", "cells are not unique, sorted keys of the table")
    if any(n < a.k for _, n in a.cells):
        raise refuse("AGGREGATE_CELL_TOO_SMALL", f"a published cell is under k={a.k}")


@dataclass(frozen=True)
class ClosedWindow:
    """The raw counts of every table of one window length for one window (node-private)."""

    window_start: int
    window_ms: int
    counts: Mapping[Table, Mapping[Key, int]]


def publish(
    closed: ClosedWindow, *, origin: str, k: int, shard: int = 0, shards: int = 1
) -> list[Aggregate]:
    """The aggregates to publish for a closed window: one per table, small cells suppressed.

    The guarantee is checked once more on the result before anything leaves
    (:func:`~puente.warnings.privacy.disclosure_problems`); a violation is a bug and raises.
    """
    published = suppress(closed.counts, k)
    problems = disclosure_problems(published, k)
    if problems:
        raise AggregateError(
            f"refusing to publish window {closed.window_start} of {origin}: {problems[0]}",
            reason="AGGREGATE_DISCLOSURE",
        )
    return [
        Aggregate(origin, shard, shards, t, closed.window_start, k, tuple(sorted(cells.items())))
        for t, cells in sorted(published.items())
    ]


class Aggregator:
    """The windowed counts of one origin (or one shard of it), for its tables."""

    def __init__(
        self,
        origin: str,
        tables: Sequence[Table],
        *,
        gazetteer: Gazetteer,
        lateness_ms: int,
        state: bytes | None = None,
    ) -> None:
        self.origin = origin
        self.tables = tuple(sorted(set(tables)))
        self.gazetteer = gazetteer
        self.lateness_ms = lateness_ms
        self._by_id = {t.id: t for t in self.tables}
        # Per table: the first window not yet closed (set at first use), and the open counts.
        self._next: dict[Table, int] = {}
        self._open: dict[tuple[Table, int], Counter[Key]] = {}
        self._saved: tuple[dict[Table, int], dict[tuple[Table, int], Counter[Key]]] | None = None
        self.late = 0  # notices of windows already closed (not counted), since start
        self.dirty = False  # counts or windows changed since the last state record
        if state is not None:
            self._restore(state)

    # --- counting ------------------------------------------------------------------------------

    def _start(self, table: Table, now_ms: int) -> int:
        """The first open window of ``table``. On first use of the aggregator every table
        starts with the window holding now - lateness (the oldest that may still be counted)."""
        nxt = self._next.get(table)
        if nxt is None:
            for t in self.tables:
                self._next.setdefault(t, t.window_of(now_ms - self.lateness_ms))
            self.dirty = True
            nxt = self._next[table]
        return nxt

    def feed(self, notice: Mapping[str, Any], notice_type: str, now_ms: int) -> int:
        """Count one accepted notice; returns in how many tables it counted."""
        if not self.tables:
            return 0
        f = features(notice, notice_type, self.gazetteer)
        counted = 0
        for t in self.tables:
            keys = t.keys(f)
            if not keys:
                continue
            window = t.window_of(f.time_ms)
            if window < self._start(t, now_ms):
                self.late += 1
                continue
            cell = self._open.setdefault((t, window), Counter())
            for key in keys:
                cell[key] += 1
            counted += 1
            self.dirty = True
        return counted

    # --- closing -------------------------------------------------------------------------------

    def next_due(self, now_ms: int) -> int | None:
        """When the next window can be closed (None: no table)."""
        return min(
            (self._start(t, now_ms) + t.window_ms + self.lateness_ms for t in self.tables),
            default=None,
        )

    def due(self, now_ms: int) -> bool:
        """Whether a window can be closed at ``now_ms``."""
        when = self.next_due(now_ms)
        return when is not None and when <= now_ms

    def close(self, now_ms: int) -> list[ClosedWindow]:
        """Every window that ended at least ``lateness`` ago, in order, grouped by window (each
        group holds every table of that window length, counted or empty)."""
        groups: dict[tuple[int, int], dict[Table, Mapping[Key, int]]] = {}
        for t in self.tables:
            start = self._start(t, now_ms)
            last = t.window_of(now_ms - self.lateness_ms) - t.window_ms  # the newest closable
            if last < start:
                continue
            if (last - start) // t.window_ms >= MAX_CATCH_UP:
                start = last - (MAX_CATCH_UP - 1) * t.window_ms  # skip; older counts are dropped
                for key in [key for key in self._open if key[0] == t and key[1] < start]:
                    del self._open[key]
            for window in range(start, last + 1, t.window_ms):
                counts = self._open.pop((t, window), Counter())
                groups.setdefault((window, t.window_ms), {})[t] = dict(counts)
            self._next[t] = last + t.window_ms
            self.dirty = True
        return [ClosedWindow(w, ms, counts) for (w, ms), counts in sorted(groups.items())]

    # --- transactions and state ---------------------------------------------------------------

    def begin(self) -> None:
        """Remember the current state: :meth:`rollback` returns to it."""
        self._saved = (dict(self._next), copy.deepcopy(self._open))

    def rollback(self) -> None:
        """Forget what happened since :meth:`begin` (its transaction was aborted)."""
        if self._saved is not None:
            self._next, self._open = self._saved
            self._saved = None
            self.dirty = True

    def state(self) -> bytes:
        """The node-private state record: open windows' raw counts, per table the next window."""
        doc = {
            "v": STATE_VERSION,
            "next": {t.id: n for t, n in sorted(self._next.items())},
            "open": [
                [t.id, w, [[list(key), n] for key, n in sorted(c.items())]]
                for (t, w), c in sorted(self._open.items())
            ],
        }
        self.dirty = False
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    def _restore(self, state: bytes) -> None:
        try:
            doc = json.loads(state)
            if doc.get("v") != STATE_VERSION:
                raise ValueError(f"state version {doc.get('v')!r}")
            for tid, n in doc["next"].items():
                if tid in self._by_id:  # a table no trigger reads any more is forgotten
                    self._next[self._by_id[tid]] = int(n)
            for tid, w, cells in doc["open"]:
                if tid in self._by_id:
                    self._open[(self._by_id[tid], int(w))] = Counter(
                        {tuple(key): int(n) for key, n in cells}
                    )
        except (ValueError, KeyError, TypeError) as exc:
            raise AggregateError(
                f"the aggregation state of {self.origin} cannot be read: {exc}",
                reason="AGGREGATE_STATE_MALFORMED",
            ) from None

    def open_windows(self) -> Iterable[tuple[Table, int]]:
        """The (table, window start) pairs counted and not yet closed."""
        return sorted(self._open)
