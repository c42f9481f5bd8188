"""Checking one audit log: recompute its tree from the records, against its signed checkpoints.

Two modes, so that a clean log costs little more than hashing it:

* **fast** — hash the records in arrival order, compare the root at each checkpoint size. No
  Avro decoding. The records since the last matching checkpoint stay buffered (a batch).
* **deep** — entered on the first mismatch (or a malformed record, a truncated log, a tail
  without checkpoint), replaying the buffer from the last good state. Every record is decoded
  for its claimed position (``leaf_index``) and ``previous_leaf_hash``, which locate the damage:

  - a record whose successor chains to another hash was **altered** (the successor's
    ``previous_leaf_hash`` is the original, so the tree is repaired and the next signed root
    confirms it);
  - a missing position whose successor chains across it was **removed** (repaired the same way);
  - a second record for a filled position is **inserted** (a different record) or
    **duplicated** (the same bytes); a position that comes after a higher one is **reordered**;
  - records after the last checkpoint are a **tail**: *pending* while the first of them is
    younger than the audit's bound (its writer may still sign them), an **uncheckpointed tail**
    (an anomaly) once older; a tail record that does not chain is an anomaly at any age;
    checkpoints beyond the last record mean records were removed from the end.

  Deep mode returns to fast mode at the next checkpoint it verifies with nothing pending.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from puente.codec.errors import DecodeError
from puente.codec.registry import Registry
from puente.codec.wire import decode
from puente.evidence._time import from_datetime
from puente.evidence.audit.report import Anomaly, AuditReport, Kind, LogSummary, PendingTail
from puente.evidence.errors import MalformedError
from puente.evidence.log import CheckpointRecord
from puente.evidence.merkle.compact import CompactRange
from puente.evidence.merkle.hasher import leaf_hash
from puente.evidence.records import AUDIT_RECORD

BUFFER_MAX = 1 << 18  # records kept for a replay before deep mode is entered anyway
REORDER_WINDOW = 64  # open positions tolerated before a gap is declared a removal
RECENT = 1 << 16  # committed leaf hashes kept to tell duplicates from insertions
LOOKBACK = 1024  # records skipped before a trusted start, kept in case the count was off


@dataclass
class KnownCheckpoint:
    """A checkpoint whose signature verified, as the log checker uses it."""

    size: int
    root: bytes
    time_ms: int
    offset: int | None
    record: CheckpointRecord
    forked: bool = False
    matched: bool = False
    _compact: CompactRange | None = field(default=None, repr=False)

    def compact(self) -> CompactRange | None:
        """Its compact range if it carries a valid one (folds to the signed root)."""
        if self._compact is None:
            try:
                self._compact = self.record.compact()
            except MalformedError:
                return None
        return self._compact.copy()


class _Cand(NamedTuple):
    offset: int
    position: int
    lh: bytes
    prev: bytes | None
    decided_at: int  # ms


@dataclass(frozen=True)
class TailBound:
    """When the audit happens and how old a tail may be before it is an anomaly."""

    now_ms: int
    pending_ms: int


class LogChecker:
    """Verifies one log (one audit topic partition) against its checkpoints."""

    def __init__(
        self,
        *,
        log_id: str,
        topic: str,
        partition: int,
        checkpoints: Sequence[KnownCheckpoint],
        registry: Registry,
        report: AuditReport,
        summary: LogSummary,
        bound: TailBound,
        start: KnownCheckpoint | None = None,
        floors: frozenset[bytes] = frozenset(),
    ) -> None:
        self.log_id = log_id
        self.bound = bound
        self.floors = floors  # the regional floors the federation pinned (none: not checked)
        self.topic = topic
        self.partition = partition
        self.registry = registry
        self.report = report
        self.summary = summary
        self.by_size: dict[int, list[KnownCheckpoint]] = {}
        for cp in checkpoints:
            self.by_size.setdefault(cp.size, []).append(cp)
        self.sizes = sorted(self.by_size)
        # decided_at of the records right after each checkpoint: the age of a tail
        self.boundaries = {0, *self.sizes}
        self.decided_at: dict[int, int] = {}
        self.tree = CompactRange()
        self._last_match = 0
        self._skip = 0
        self._skipped: list[tuple[int, bytes | None]] = []
        if start is not None:
            base = start.compact()
            assert base is not None  # checked by the auditor
            self.tree = base
            self._skip = start.size
            start.matched = True
            self._last_match = start.size
            summary.start_size = summary.verified_size = start.size
            summary.verified_root = start.root.hex()
        self._good = self.tree.copy()
        self._good_last: bytes | None = None
        self._buffer: list[tuple[Sequence[int], Sequence[bytes | None], int, int]] = []
        self._buffered = 0
        self._next = bisect.bisect_right(self.sizes, self.tree.size)
        self.deep: _Deep | None = None
        # Leaf hashes of the last RECENT leaves hashed in fast mode, in chunks: enough to tell
        # a duplicated record (same hash as its position's) from an inserted one.
        self._recent: deque[tuple[int, list[bytes]]] = deque()
        self._recent_count = 0
        self._unexamined = 0  # tail records past the last checkpoint, only counted
        if start is None:
            self._at_size(report_mismatch=True)  # a checkpoint of the empty tree, if any

    # --- positions and checkpoints ---------------------------------------------------------

    def anomaly(
        self,
        kind: Kind,
        detail: str,
        *,
        index: int | None = None,
        index_end: int | None = None,
        offset: int | None = None,
        checkpoint_size: int | None = None,
        on_partition: bool = True,
    ) -> None:
        """Report an anomaly of this log (on its partition unless ``on_partition`` is false)."""
        self.report.add(
            Anomaly(
                kind,
                detail,
                log_id=self.log_id,
                index=index,
                index_end=index_end,
                topic=self.topic if on_partition else None,
                partition=self.partition if on_partition else None,
                offset=offset,
                checkpoint_size=checkpoint_size,
            )
        )

    def checkpoints_at(self, size: int) -> list[KnownCheckpoint]:
        """The verified-signature checkpoints of this log at ``size``."""
        return self.by_size.get(size, [])

    def _at_size(self, *, report_mismatch: bool) -> bool | None:
        """Compare the tree with the checkpoints at its size: None if there are none, else
        whether one matched. Mismatches are reported (and the tree re-anchored on the signed
        state) only when ``report_mismatch``; the fast path leaves them to deep mode."""
        cps = self.by_size.get(self.tree.size)
        if not cps:
            return None
        root = self.tree.root()
        matched = False
        for cp in cps:
            if cp.root == root:
                matched = True
                if not cp.matched:
                    cp.matched = True
                    self.summary.checkpoints_verified += 1
                self._last_match = cp.size
                if cp.size >= self.summary.verified_size:
                    self.summary.verified_size = cp.size
                    self.summary.verified_root = root.hex()
        if not matched and report_mismatch:
            for cp in cps:
                if not cp.forked:
                    self.anomaly(
                        Kind.CHECKPOINT_ROOT_MISMATCH,
                        f"the records since the last verified checkpoint ({self._last_match}) do "
                        "not reproduce this signed root: some were altered and re-chained, or "
                        "the log signed a root its records do not have",
                        index=self._last_match,
                        index_end=cp.size,
                        checkpoint_size=cp.size,
                        on_partition=False,
                    )
            anchor = next((c for c in cps if c.compact() is not None), None)
            if anchor is not None:  # later intervals are then checked on their own
                base = anchor.compact()
                assert base is not None
                self.tree = base
        return matched

    # --- feeding ---------------------------------------------------------------------------

    def feed(self, offsets: Sequence[int], values: Sequence[bytes | None]) -> None:
        """The next records of the partition, in offset order."""
        self.summary.records += len(values)
        if self.floors:
            self._check_floors(offsets, values)
        pos = 0
        if self._skip:
            take = min(self._skip, len(values))
            self._skipped.extend(zip(offsets[:take], values[:take], strict=True))
            del self._skipped[:-LOOKBACK]
            self._skip -= take
            pos = take
        # A loop, not mutual recursion: a batch may switch modes at every checkpoint.
        while pos < len(values):
            if self.deep is None:
                pos = self._fast(offsets, values, pos)
            else:
                pos = self._deep_feed(offsets, values, pos)

    def _check_floors(self, offsets: Sequence[int], values: Sequence[bytes | None]) -> None:
        """Every decision names a pinned floor. A record holding a pinned digest's bytes needs
        no decoding (the common case costs one substring search); any other is decoded."""
        for offset, value in zip(offsets, values, strict=True):
            if value is None or any(f in value for f in self.floors):
                continue
            try:
                d = decode(self.registry, value, reader=AUDIT_RECORD)
            except DecodeError:
                continue  # reported by the tree's own checks
            if d["decision"] == "REJECTED":
                continue  # refused before any policy decided
            floor = d.get("floor_digest")
            self.anomaly(
                Kind.DECISION_UNPINNED_FLOOR,
                "decided under a regional floor no anchored trust list pinned "
                f"({floor.hex()[:16] + '…' if floor else 'none named'})",
                index=d["leaf_index"],
                offset=offset,
            )

    def _fast(self, offsets: Sequence[int], values: Sequence[bytes | None], start: int) -> int:
        """Hash from ``start`` on; returns where deep mode must take over (or the end)."""
        if None in values[start:]:
            self._to_deep()
            return start
        vals: Sequence[bytes] = values  # type: ignore[assignment]  # no None (checked above)
        tree, sizes = self.tree, self.sizes
        seg = i = start
        n = len(vals)
        kept: list[list[bytes]] = []
        while i < n:
            stop = sizes[self._next] if self._next < len(sizes) else 1 << 62
            first = tree.size
            i = tree.extend_data_until(vals, i, stop, kept)
            if kept:
                self._remember(first, kept.pop())
            if tree.size != stop:
                break
            if self._at_size(report_mismatch=False):
                self._next += 1
                self._good = tree.copy()
                self._good_last = leaf_hash(vals[i - 1])
                self._buffer, self._buffered = [], 0
                seg = i
            else:
                self._buffer.append((offsets, vals, seg, i))
                self._to_deep()
                return i
        self._buffer.append((offsets, vals, seg, n))
        self._buffered += n - seg
        if self._buffered > BUFFER_MAX:
            if self._next >= len(sizes):
                # No signed checkpoint ahead: nothing can prove these records, and decoding a
                # long tail only to say so would take the auditor's time. Count them instead.
                self._unexamined += self._buffered
                self._buffer, self._buffered = [], 0
            else:
                self._to_deep()
        return n

    def _remember(self, first: int, hashes: list[bytes]) -> None:
        recent = self._recent
        recent.append((first, hashes))
        self._recent_count += len(hashes)
        while self._recent_count - len(recent[0][1]) >= RECENT:
            self._recent_count -= len(recent.popleft()[1])

    def recent_hash(self, index: int) -> bytes | None:
        """The leaf hash at ``index`` if it was hashed recently in fast mode."""
        for first, hashes in reversed(self._recent):
            if first <= index < first + len(hashes):
                return hashes[index - first]
        return None

    def _to_deep(self) -> None:
        """Replay everything since the last good checkpoint in deep mode."""
        self.tree = self._good.copy()
        self._next = bisect.bisect_right(self.sizes, self.tree.size)
        while self._recent and self._recent[-1][0] >= self.tree.size:
            # hashed by count since the last good checkpoint: positions not established
            self._recent_count -= len(self._recent.pop()[1])
        deep = _Deep(self, last=self._good_last, floor=self._good.size)
        self.deep = deep
        for offs, vals, a, b in self._skipped_replay() + self._buffer:
            for k in range(a, b):
                deep.feed(offs[k], vals[k])
        self._buffer, self._buffered = [], 0

    def _skipped_replay(self) -> list[tuple[Sequence[int], Sequence[bytes | None], int, int]]:
        # After a trusted start, the records skipped by count go back in too (deep mode ignores
        # those before the start by their claimed position): the count may have been off.
        if not self._skipped:
            return []
        offs = [o for o, _ in self._skipped]
        vals = [v for _, v in self._skipped]
        self._skipped = []
        return [(offs, vals, 0, len(offs))]

    def _deep_feed(self, offsets: Sequence[int], values: Sequence[bytes | None], start: int) -> int:
        """Feed deep mode from ``start``; returns where fast mode may resume (or the end)."""
        deep = self.deep
        assert deep is not None
        for k in range(start, len(values)):
            deep.feed(offsets[k], values[k])
            if deep.resync:
                self._back_to_fast(deep)
                return k + 1
        return len(values)

    def _back_to_fast(self, deep: _Deep) -> None:
        self.deep = None
        self._good = self.tree.copy()
        self._good_last = deep.last
        self._next = bisect.bisect_right(self.sizes, self.tree.size)
        self._buffer, self._buffered = [], 0

    def finish(self) -> None:
        """End of the partition: settle what is open, then check the ends of the log."""
        if self.deep is None and self._unexamined:
            self._buffer, self._buffered = [], 0
        elif self.deep is None and (self._buffered or self._next < len(self.sizes)):
            self._to_deep()
        if self.deep is not None:
            self.deep.finish()
        n = self.tree.size
        beyond = [s for s in self.sizes if s > n]
        if beyond:
            self.anomaly(
                Kind.RECORD_REMOVED,
                f"the log ends at {n} records but a checkpoint of {max(beyond)} records was "
                "signed: records were removed from the end",
                index=n,
                index_end=max(beyond),
                checkpoint_size=max(beyond),
            )
        last_cp = max((s for s in self.sizes if s <= n), default=0)
        if n > last_cp and not beyond and not (self.deep is not None and self.deep.broken):
            self._tail(last_cp, n)

    def _tail(self, first: int, end: int) -> None:
        """Records ``first..end-1`` follow the last checkpoint: pending while the oldest is
        younger than the bound, an anomaly once older (or when its age is unknown)."""
        bound = self.bound
        decided = None if self._unexamined else self.decided_at.get(first)
        age_ms = None if decided is None else bound.now_ms - decided
        if age_ms is not None and -bound.pending_ms <= age_ms <= bound.pending_ms:
            self.report.pending.append(
                PendingTail(self.log_id, first, end, decided or 0, max(0, age_ms) / 1000)
            )
            return
        if age_ms is None:
            age = "of unknown age (too many to decode, or the first does not decode)"
        elif age_ms < 0:
            age = f"dated {-age_ms / 1000:.1f} s after the audit's time"
        else:
            age = f"{age_ms / 1000:.1f} s old"
        self.anomaly(
            Kind.UNCHECKPOINTED_TAIL,
            f"{end - first} record(s) after the last signed checkpoint (size {first}), {age}, "
            f"beyond the {bound.pending_ms / 1000:g} s a writer may leave records unsigned: not "
            "proven part of the log (appended without a checkpoint, or inserted)",
            index=first,
            index_end=end,
        )


class _Deep:
    """Deep mode of a :class:`LogChecker` (see the module docstring)."""

    def __init__(self, chk: LogChecker, *, last: bytes | None, floor: int) -> None:
        self.chk = chk
        self.last = last
        self.floor = floor  # positions below were settled before deep mode began
        self.cands: dict[int, list[_Cand]] = {}
        self.max_seen = chk.tree.size - 1
        self.recent: dict[int, bytes] = {}
        self.orphans: list[int] = []
        self.broken = False
        self.resync = False

    def feed(self, offset: int, value: bytes | None) -> None:
        chk = self.chk
        self.resync = False
        if self.broken:
            return
        try:
            if value is None:
                raise DecodeError("no value (a tombstone)", reason="INVALID_DATA")
            d = decode(chk.registry, value, reader=AUDIT_RECORD)
        except DecodeError as exc:
            chk.anomaly(Kind.RECORD_MALFORMED, f"not an audit record: {exc}", offset=offset)
            self.orphans.append(offset)
            return
        idx, prev, lid = d["leaf_index"], d["previous_leaf_hash"], d["log_id"]
        decided = from_datetime(d["decided_at"])
        if lid != chk.log_id:
            chk.anomaly(
                Kind.RECORD_INSERTED,
                f"a record of log {lid} in this log's partition",
                index=idx,
                offset=offset,
            )
            return
        if idx < self.floor and chk.summary.start_size and idx < chk.summary.start_size:
            return  # before the trusted start: not ours to check
        lh = leaf_hash(value)
        n = chk.tree.size
        if idx < n:
            known = self.recent.get(idx) or chk.recent_hash(idx)
            if known == lh:
                chk.anomaly(
                    Kind.RECORD_DUPLICATED,
                    f"a second copy of leaf {idx}",
                    index=idx,
                    offset=offset,
                )
            else:
                chk.anomaly(
                    Kind.RECORD_INSERTED,
                    f"claims position {idx}, already held by "
                    + ("another record" if known else "an earlier record"),
                    index=idx,
                    offset=offset,
                )
            return
        same = self.cands.get(idx)
        if same and any(c.lh == lh for c in same):
            chk.anomaly(
                Kind.RECORD_DUPLICATED, f"a second copy of leaf {idx}", index=idx, offset=offset
            )
            return
        if idx < self.max_seen:
            chk.anomaly(
                Kind.RECORD_REORDERED,
                f"leaf {idx} comes after leaf {self.max_seen} in the partition",
                index=idx,
                offset=offset,
            )
        else:
            self.max_seen = idx
        self.cands.setdefault(idx, []).append(_Cand(offset, idx, lh, prev, decided))
        self.advance()
        while len(self.cands) > REORDER_WINDOW and not self.broken:
            self.force_one()
            self.advance()

    def advance(self) -> None:
        chk = self.chk
        while not self.broken:
            n = chk.tree.size
            cs = self.cands.get(n)
            if cs is None:
                return
            succ = self.cands.get(n + 1)
            if succ is not None:
                prevs = [s.prev for s in succ]
                chosen = next((c for c in cs if c.lh in prevs), None)
                if chosen is not None:
                    self._others_inserted(n, cs, chosen, "the next record chains to the other")
                    self.commit(chosen.lh, chosen)
                else:
                    original = prevs[0]
                    for c in cs:
                        chk.anomaly(
                            Kind.RECORD_ALTERED,
                            "its hash is not the one the next record chains to "
                            "(previous_leaf_hash); the chained hash is used instead",
                            index=n,
                            offset=c.offset,
                        )
                    if original is None or len(original) != 32:
                        self._gap(n, n + 1)
                        continue
                    self.commit(original, None)
                continue
            if not self._oracle(n, cs):
                return

    def _others_inserted(self, n: int, cs: list[_Cand], chosen: _Cand, why: str) -> None:
        for c in cs:
            if c is not chosen:
                self.chk.anomaly(
                    Kind.RECORD_INSERTED,
                    f"a second, different record for position {n}; {why}",
                    index=n,
                    offset=c.offset,
                )

    def _oracle(self, n: int, cs: list[_Cand]) -> bool:
        """Settle position ``n`` by the signed root at size ``n + 1``, if there is one."""
        cps = self.chk.checkpoints_at(n + 1)
        if not cps:
            return False
        for c in cs:
            t = self.chk.tree.copy()
            t.append(c.lh)
            root = t.root()
            if any(cp.root == root for cp in cps):
                self._others_inserted(n, cs, c, "the signed root confirms the other")
                self.commit(c.lh, c)
                return True
        return False

    def commit(self, lh: bytes, cand: _Cand | None) -> None:
        chk = self.chk
        n = chk.tree.size
        if cand is not None and n > 0 and self.last is not None and cand.prev != self.last:
            chk.anomaly(
                Kind.RECORD_ALTERED,
                "its previous_leaf_hash is not the hash of the leaf before it",
                index=n,
                offset=cand.offset,
            )
        chk.tree.append(lh)
        if cand is not None and n in chk.boundaries:
            chk.decided_at[n] = cand.decided_at
        self.last = lh
        self.recent[n] = lh
        self.recent.pop(n - RECENT, None)
        self.cands.pop(n, None)
        if cand is not None and self.orphans:
            # A malformed record before this one cannot be the record of a later position.
            self.orphans = [o for o in self.orphans if o > cand.offset]
        matched = chk._at_size(report_mismatch=True)
        if matched and not self.cands:
            self.resync = True

    def _gap(self, n: int, j: int) -> None:
        """Positions ``n..j-1`` are missing and cannot be repaired: continue from the next
        checkpoint that carries its compact range."""
        chk = self.chk
        chk.anomaly(
            Kind.RECORD_REMOVED,
            f"leaves {n}..{j - 1} are missing" if j > n + 1 else f"leaf {n} is missing",
            index=n,
            index_end=j,
        )
        anchor = None
        for size in chk.sizes:
            if size >= j:
                anchor = next(
                    (c for c in chk.checkpoints_at(size) if c.compact() is not None), None
                )
                if anchor is not None:
                    break
        if anchor is None:
            chk.anomaly(
                Kind.LOG_UNVERIFIABLE,
                f"no later checkpoint carries a compact range: leaves from {n} on cannot be "
                "verified",
                index=n,
            )
            self.broken = True
            self.cands.clear()
            return
        base = anchor.compact()
        assert base is not None
        if anchor.size > j:
            chk.anomaly(
                Kind.LOG_UNVERIFIABLE,
                f"leaves {j}..{anchor.size - 1} follow the missing ones and cannot be verified "
                f"before checkpoint {anchor.size}",
                index=j,
                index_end=anchor.size,
            )
        before = self.cands.get(anchor.size - 1)
        self.last = before[0].lh if before else None
        for i in [i for i in self.cands if i < anchor.size]:
            del self.cands[i]
        chk.tree = base
        self.max_seen = max(self.max_seen, anchor.size - 1)
        if chk._at_size(report_mismatch=True) and not self.cands:
            self.resync = True

    def force_one(self) -> None:
        """Settle the lowest open position without waiting for more records."""
        chk = self.chk
        n = chk.tree.size
        cs = self.cands.get(n)
        if cs is not None:
            if self._oracle(n, cs):
                return
            if chk.checkpoints_at(n + 1):
                for c in cs:
                    chk.anomaly(
                        Kind.RECORD_ALTERED,
                        f"no record chains to it and it does not reproduce the signed root "
                        f"at size {n + 1}",
                        index=n,
                        offset=c.offset,
                    )
                self._reanchor_at(n + 1)
                return
            self._others_inserted(n, cs, cs[0], "neither is confirmed; the first is used")
            self.commit(cs[0].lh, cs[0])
            return
        j = min(self.cands)
        prevs = {c.prev for c in self.cands[j]}
        original = next(iter(prevs)) if len(prevs) == 1 else None
        if j == n + 1 and original is not None and len(original) == 32:
            succ_offset = self.cands[j][0].offset
            orphans = [o for o in self.orphans if o < succ_offset]
            if orphans:
                self.orphans = [o for o in self.orphans if o > succ_offset]
                chk.anomaly(
                    Kind.RECORD_ALTERED,
                    "it no longer decodes as an audit record; the next record's chain gives "
                    "its original hash",
                    index=n,
                    offset=orphans[-1],
                )
            else:
                chk.anomaly(
                    Kind.RECORD_REMOVED,
                    f"leaf {n} is missing; leaf {n + 1} chains to its hash, which is used instead",
                    index=n,
                    index_end=n + 1,
                    offset=self.cands[j][0].offset,
                )
            self.commit(original, None)
            return
        self._gap(n, j)

    def _reanchor_at(self, size: int) -> None:
        chk = self.chk
        anchor = next((c for c in chk.checkpoints_at(size) if c.compact() is not None), None)
        if anchor is None:
            cs = self.cands.get(chk.tree.size, [])
            if cs:
                self.commit(cs[0].lh, cs[0])
            return
        base = anchor.compact()
        assert base is not None
        cs = self.cands.pop(size - 1, [])
        self.last = cs[0].lh if cs else None
        chk.tree = base
        self.orphans.clear()
        if chk._at_size(report_mismatch=True) and not self.cands:
            self.resync = True

    def finish(self) -> None:
        while self.cands and not self.broken:
            self.force_one()
            self.advance()
