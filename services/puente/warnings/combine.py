"""A node's shards summed before suppression: one origin's counts, whatever its partitions.

A node's ingress partitions are its units of exactly-once processing (they may be owned by
different instances), so each counts its own notices (an :class:`~puente.warnings.aggregate.
Aggregator` per partition, a *shard*). Suppressing each shard's small cells on its own would lose
a cell of 8 split 4 + 4 over two partitions. So, when a node has more than one partition, each
shard hands its closed windows' raw counts on as a :class:`Partial` (sealed to the node itself,
on the node's private ``partials`` topic: :mod:`puente.service.combine`), and one
:class:`Combiner` per node sums the shards of each window and only then suppresses and
publishes, as shard 0 of 1: exactly what one counter over all the node's notices would publish.

A window is complete when every shard has either handed it on or handed on a later window of
the same length (shards close windows in order, so a shard that went past it will never send
it: it started counting after that window, which holds none of its notices). Pure.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from puente.warnings.aggregate import AggregateError, ClosedWindow
from puente.warnings.tables import Key, Table

PARTIAL_VERSION = 1
MAX_DONE = 4096  # completed windows remembered, to ignore a shard's repeat of one


@dataclass(frozen=True)
class Partial:
    """One shard's raw counts of one closed window (node-private: small cells included)."""

    shard: int
    shards: int
    closed: ClosedWindow

    @property
    def name(self) -> str:
        """What the partial is sealed under and keyed by: a record cannot pass for another
        shard's or another window's (no counts, no identity: a shard and a window)."""
        return partial_name(self.shard, self.closed.window_ms, self.closed.window_start)

    def encode(self) -> bytes:
        doc = {
            "v": PARTIAL_VERSION,
            "shard": self.shard,
            "shards": self.shards,
            "window_start": self.closed.window_start,
            "window_ms": self.closed.window_ms,
            "counts": [
                [t.id, [[list(key), n] for key, n in sorted(cells.items())]]
                for t, cells in sorted(self.closed.counts.items())
            ],
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes, tables: Mapping[str, Table], *, name: str) -> Partial:
        """A partial as :meth:`encode` wrote it, for the tables known by id (a table no
        trigger reads any more is dropped). :class:`AggregateError` (``PARTIAL_MALFORMED``)
        if it does not parse or does not match the ``name`` it was sealed under."""
        try:
            doc = json.loads(raw)
            if doc.get("v") != PARTIAL_VERSION:
                raise ValueError(f"partial version {doc.get('v')!r}")
            counts = {
                tables[tid]: {tuple(key): int(n) for key, n in cells}
                for tid, cells in doc["counts"]
                if tid in tables
            }
            p = cls(
                int(doc["shard"]),
                int(doc["shards"]),
                ClosedWindow(int(doc["window_start"]), int(doc["window_ms"]), counts),
            )
            if not 0 <= p.shard < p.shards or p.name != name:
                raise ValueError(f"shard {p.shard} of {p.shards} under name {name!r}")
        except (ValueError, KeyError, TypeError) as exc:
            raise AggregateError(
                f"a partial aggregate cannot be read: {exc}", reason="PARTIAL_MALFORMED"
            ) from None
        return p


def partial_name(shard: int, window_ms: int, window_start: int) -> str:
    """``partial/<shard>/<window length ms>/<window start ms>``."""
    return f"partial/{shard}/{window_ms}/{window_start}"


@dataclass
class _Pending:
    first_offset: int
    shards: int
    parts: dict[int, ClosedWindow] = field(default_factory=dict)


class Combiner:
    """Sums one origin's shards window by window (see the module docstring)."""

    def __init__(self) -> None:
        self._pending: dict[tuple[int, int], _Pending] = {}  # (window_ms, start) -> its parts
        self._newest: dict[tuple[int, int], int] = {}  # (window_ms, shard) -> newest start
        self._done: dict[tuple[int, int], None] = {}  # completed windows, oldest first
        self.repeats = 0  # partials of windows already completed (ignored)

    def add(self, partial: Partial, offset: int) -> list[ClosedWindow]:
        """Take one shard's partial (read at ``offset``); the windows it completes, summed,
        oldest first."""
        c = partial.closed
        window = (c.window_ms, c.window_start)
        if window in self._done:
            self.repeats += 1
            return []
        pending = self._pending.setdefault(window, _Pending(offset, partial.shards))
        pending.shards = max(pending.shards, partial.shards)
        pending.parts[partial.shard] = c
        newest = (c.window_ms, partial.shard)
        self._newest[newest] = max(self._newest.get(newest, c.window_start), c.window_start)
        return self._complete(c.window_ms)

    def _complete(self, window_ms: int) -> list[ClosedWindow]:
        out = []
        for window in sorted(w for w in self._pending if w[0] == window_ms):
            pending = self._pending[window]
            if not all(
                s in pending.parts or self._newest.get((window_ms, s), -1) > window[1]
                for s in range(pending.shards)
            ):
                break  # an older window waits: so do the newer (published in order)
            del self._pending[window]
            self._done[window] = None
            if len(self._done) > MAX_DONE:
                del self._done[next(iter(self._done))]
            out.append(_summed(window, pending.parts.values()))
        return out

    def low_water(self) -> int | None:
        """The offset of the oldest partial of a window still waiting (None: none waits):
        reading again from there after a restart loses nothing."""
        return min((p.first_offset for p in self._pending.values()), default=None)

    @property
    def waiting(self) -> int:
        """Windows waiting for a shard."""
        return len(self._pending)


def _summed(window: tuple[int, int], parts: Iterable[ClosedWindow]) -> ClosedWindow:
    window_ms, start = window
    totals: dict[Table, Counter[Key]] = {}
    for part in parts:
        for t, cells in part.counts.items():
            totals.setdefault(t, Counter()).update(cells)
    return ClosedWindow(start, window_ms, {t: dict(c) for t, c in totals.items()})
