"""``puente audit verify`` as a library: replay audit logs and checkpoints, report anomalies.

Order of work: (1) the trust list — anchored, unexpired, else reported; (2) every checkpoint —
signature by a key of the trust list valid at the checkpoint's own time, forks (two roots for
one size), time going backwards, the consistency proof from the previous checkpoint; (3) every
record of every audit partition — the tree recomputed and compared with each signed root, with
each anomaly located (see :mod:`.logcheck`); (4) finality — the witnesses' cosignatures
counted against the quorum: how far each log is witnessed, and whether the witnesses were shown
the history the audit was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from puente.codec.errors import DecodeError
from puente.codec.registry import Registry
from puente.config import max_checkpoint_wait_s
from puente.evidence._time import format_ms, now_ms
from puente.evidence.audit.logcheck import KnownCheckpoint, LogChecker, TailBound
from puente.evidence.audit.report import Anomaly, AuditReport, Kind, LogSummary
from puente.evidence.audit.source import RecordSource
from puente.evidence.equivocation import EquivocationReport, verify_report
from puente.evidence.errors import (
    EvidenceError,
    MalformedError,
    ProofError,
    SignatureError,
    TrustListError,
    UntrustedKeyError,
)
from puente.evidence.finality import FinalityBook, add_all, default_quorum
from puente.evidence.keys import PublicKey
from puente.evidence.log import CheckpointRecord, audit_log_id
from puente.evidence.merkle.proof import verify_consistency
from puente.evidence.note import Note
from puente.evidence.trust import TrustAnchor, TrustList, holder_state
from puente.evidence.verify import Verifier
from puente.logs import get_logger
from puente.topics import AUDIT, CHECKPOINTS, COSIGNATURES, EQUIVOCATIONS, TRUST, Naming

log = get_logger("evidence.audit")

Progress = Callable[[int], None]
"""Called now and then with the number of audit records read so far."""


@dataclass(frozen=True, kw_only=True)
class AuditOptions:
    """How to audit."""

    naming: Naming = field(default_factory=Naming)
    now: int | None = None  # the audit's "now" (trust-list expiry); default: the clock
    logs: tuple[str, ...] = ()  # only logs whose id starts with one of these
    start: Mapping[str, CheckpointRecord] = field(default_factory=dict)  # trusted start per log
    progress: Progress | None = None
    progress_every: int = 1 << 16
    # How old the records after a log's last checkpoint may be and still count as PENDING
    # rather than UNCHECKPOINTED_TAIL: the writer's promise (checkpoint interval + slack).
    pending_bound_s: float = field(default_factory=max_checkpoint_wait_s)
    # The highest trust-list serial an earlier audit saw (its state file): a lower one now is
    # a rollback (an old list re-published, e.g. from before a key was revoked).
    min_trust_serial: int = 0
    # Finality (docs/evidence.md §5.5): cosignatures of this many distinct other states'
    # witnesses make a checkpoint final (None: a majority of the other states the trust list
    # names); with require_witnessed, a verified checkpoint older than witness_bound_s that no
    # final checkpoint covers is an anomaly (CHECKPOINT_UNWITNESSED).
    quorum: int | None = None
    require_witnessed: bool = False
    witness_bound_s: float = 60.0


class Auditor:
    """Audits a :class:`RecordSource` against the trust anchors."""

    def __init__(
        self,
        *,
        registry: Registry,
        anchors: TrustAnchor | Sequence[PublicKey],
        trust_list: bytes | None = None,
        options: AuditOptions | None = None,
    ) -> None:
        """``trust_list``: the signed trust list to use; None takes the newest one found on the
        source's trust topic."""
        self.registry = registry
        self.anchors = (
            anchors if isinstance(anchors, TrustAnchor) else TrustAnchor.from_keys(anchors)
        )
        self.trust_list_bytes = trust_list
        self.options = options or AuditOptions()
        self.verified: dict[str, CheckpointRecord] = {}
        self.trust_serial = 0  # the serial of the trust list the audit used
        self._floors: frozenset[bytes] = frozenset()
        self._bound = TailBound(0, 0)

    def run(self, source: RecordSource) -> AuditReport:
        """Audit everything the source holds; the report says what was found."""
        opts = self.options
        now = opts.now if opts.now is not None else now_ms()
        t0 = time.perf_counter()
        report = AuditReport(
            source=source.describe(), started_at=now, pending_bound_s=opts.pending_bound_s
        )
        self._bound = TailBound(now, int(opts.pending_bound_s * 1000))
        verifier = self._verifier(source, report, now)
        cps = self._checkpoints(source, verifier, report)
        self._equivocations(source, verifier, report)
        checkers = self._records(source, verifier, report, cps)
        for log_id in sorted(set(cps) - set(checkers)):
            if self._wanted(log_id):
                checker = self._checker(log_id, cps, verifier, report, topic=None, partition=None)
                if checker is not None:
                    checkers[log_id] = checker
        for checker in checkers.values():
            checker.finish()
        for log_id, known in cps.items():
            best = max((c for c in known if c.matched), key=lambda c: c.size, default=None)
            if best is not None:
                self.verified[log_id] = best.record
        self._finality(source, verifier, report, cps, now)
        status = getattr(source, "status", None)
        if status is not None and getattr(status, "truncated", False):
            report.add(
                Anomaly(
                    Kind.EXPORT_TRUNCATED,
                    "the export file ends without its END frame: it was cut short, "
                    "so records may be missing from its end",
                )
            )
        report.sort()
        report.elapsed_s = time.perf_counter() - t0
        report.finished_at = now + int(report.elapsed_s * 1000)
        log.info(
            "audit finished",
            records=report.records,
            checkpoints=report.checkpoints,
            anomalies=len(report.anomalies),
        )
        return report

    # --- trust list ------------------------------------------------------------------------

    def _verifier(self, source: RecordSource, report: AuditReport, now: int) -> Verifier:
        data = self.trust_list_bytes
        highest = (self.options.min_trust_serial, "an earlier audit")
        seen = [data] if data is not None else []
        if data is None:
            for batch in source.batches(TRUST):
                for offset, value in zip(batch.offsets, batch.values, strict=True):
                    if value is not None:
                        data = value  # the newest on the (compacted) topic wins
                        seen.append(value)
                        serial = _serial_of(value)
                        if serial > highest[0]:
                            highest = (serial, f"{batch.topic}@{offset}")
        if self.anchors.pin is not None:  # given as the genesis list's digest: find it
            try:
                self.anchors = self.anchors.resolve(seen)
            except TrustListError as exc:
                report.add(Anomaly(Kind.TRUST_LIST_UNTRUSTED, exc.message))
        # The floors the federation pinned, in any anchored trust list it published: a
        # decision made under any other is flagged (DECISION_UNPINNED_FLOOR).
        self._floors = frozenset(f for f in (self._pinned_floor(d, seen, now) for d in seen) if f)
        if data is None:
            report.add(
                Anomaly(
                    Kind.TRUST_LIST_MISSING,
                    "no trust list given or found: no checkpoint signature can be trusted",
                )
            )
            tl = TrustList(0, 0, 1)
        else:
            try:
                tl = TrustList.open(data, self._anchor_before(data, seen), now=now, strict=False)
            except TrustListError as exc:
                report.add(Anomaly(Kind.TRUST_LIST_MALFORMED, exc.message))
                tl = TrustList(0, 0, 1)
            for problem in tl.problems:
                report.add(Anomaly(Kind(problem), _TRUST_PROBLEMS[problem]))
            if tl.serial < highest[0]:
                report.add(
                    Anomaly(
                        Kind.TRUST_LIST_ROLLBACK,
                        f"the trust list in force has serial {tl.serial}, lower than serial "
                        f"{highest[0]} seen before ({highest[1]}): an older list was "
                        "re-published",
                    )
                )
            self.trust_serial = max(tl.serial, highest[0])
            report.trust_list = {
                "serial": tl.serial,
                "issued": format_ms(tl.issued_at),
                "expires": format_ms(tl.expires_at),
                "keys": len(tl.entries),
                "signed_by": list(tl.signed_by),
                "problems": list(tl.problems),
            }
        return Verifier(trust_list=tl, registry=self.registry, allow_untrusted_list=True)

    def _anchor_before(self, data: bytes, seen: Sequence[bytes]) -> TrustAnchor:
        """The trust anchor, followed through the lists seen with a serial lower than
        ``data``'s: what judges ``data`` (docs/evidence.md §3.1)."""
        serial = _serial_of(data)
        return self.anchors.follow(d for d in seen if _serial_of(d) < serial)

    def _pinned_floor(self, data: bytes, seen: Sequence[bytes], now: int) -> bytes | None:
        """The floor an anchored trust list pins (None: unsigned, untrusted, malformed, or
        pinning none); its expiry does not matter here: it pinned that floor while in force."""
        try:
            tl = TrustList.open(data, self._anchor_before(data, seen), now=now, strict=False)
        except TrustListError:
            return None
        return tl.floor_digest if tl.signed_by else None

    # --- checkpoints -----------------------------------------------------------------------

    def _wanted(self, log_id: str) -> bool:
        logs = self.options.logs
        return not logs or any(log_id.startswith(p) for p in logs)

    def _equivocations(self, source: RecordSource, verifier: Verifier, report: AuditReport) -> None:
        """The witnesses' equivocation reports that verify (docs/evidence.md §5.4): one anomaly
        per fork, naming every witness that reported it. A report that proves nothing is not
        the log's anomaly: it is logged and left out."""
        forks: dict[tuple[str, int, bytes, int, bytes], tuple[_Where, EquivocationReport]] = {}
        witnesses: dict[tuple[str, int, bytes, int, bytes], set[str]] = {}
        for batch in source.batches(EQUIVOCATIONS):
            for offset, value in zip(batch.offsets, batch.values, strict=True):
                try:
                    r = verify_report(value or b"", verifier)
                except (EvidenceError, ValueError) as exc:
                    log.warning(
                        "audit.equivocation_unverified", reason=getattr(exc, "reason", None)
                    )
                    continue
                if not self._wanted(r.fork.log_id):
                    continue
                key = r.fork.key
                forks.setdefault(key, (_Where(batch.topic, batch.partition, offset), r))
                witnesses.setdefault(key, set()).add(r.witness)
        for key, (where, r) in forks.items():
            report.add(
                where.anomaly(
                    Kind.LOG_EQUIVOCATION,
                    f"the log signed two histories ({r.fork.kind.value}: sizes {key[1]} and "
                    f"{key[3]}), proven by the witnesses of {', '.join(sorted(witnesses[key]))}",
                    log_id=r.fork.log_id,
                    checkpoint_size=key[3],
                    reason=r.fork.kind.value,
                )
            )

    def _finality(
        self,
        source: RecordSource,
        verifier: Verifier,
        report: AuditReport,
        cps: Mapping[str, list[KnownCheckpoint]],
        now: int,
    ) -> None:
        """How far each log is witnessed (docs/evidence.md §5.5): the witnesses' cosigned
        checkpoints counted against the quorum. A final checkpoint whose root is not the one
        the log showed this audit at that size proves two histories (``LOG_EQUIVOCATION``);
        with ``require_witnessed``, a verified checkpoint older than the bound that no final
        one covers is ``CHECKPOINT_UNWITNESSED`` (one per log: the oldest)."""
        opts = self.options
        quorum = opts.quorum or default_quorum(sorted(_node_states(verifier.trust_list)))
        report.quorum = quorum
        book = FinalityBook(quorum, all_cosigners=True)  # witnessed_by names them all
        for batch in source.batches(COSIGNATURES):
            refused = add_all(book, [v for v in batch.values if v is not None], verifier)
            if refused:
                log.warning("audit.cosignatures_refused", count=refused, topic=batch.topic)
        for log_id, known in sorted(cps.items()):
            if not self._wanted(log_id):
                continue
            held = book.logs.get(log_id)
            witnessed = held.final_size if held is not None else 0
            summary = report.logs.get(log_id)
            if summary is not None and held is not None:
                summary.witnessed_size = witnessed
                summary.witnessed_by = sorted(held.cosigners.get(witnessed, {}))
            final_root = held.roots.get(witnessed) if held is not None else None
            for c in known:
                if c.size == witnessed and final_root is not None and c.root != final_root:
                    report.add(
                        Anomaly(
                            Kind.LOG_EQUIVOCATION,
                            f"the witnesses cosigned root {final_root.hex()[:16]}… at size "
                            f"{witnessed}, the log showed this audit {c.root.hex()[:16]}…",
                            log_id=log_id,
                            checkpoint_size=witnessed,
                            offset=c.offset,
                        )
                    )
            late = [
                c
                for c in known
                if c.size > witnessed and now - c.time_ms > opts.witness_bound_s * 1000
            ]
            if opts.require_witnessed and late:
                oldest = min(late, key=lambda c: c.time_ms)
                report.add(
                    Anomaly(
                        Kind.CHECKPOINT_UNWITNESSED,
                        f"checkpoint of size {oldest.size} signed "
                        f"{(now - oldest.time_ms) / 1000:.0f} s ago has no quorum of {quorum} "
                        f"other states' witnesses (witnessed up to size {witnessed})",
                        log_id=log_id,
                        index=witnessed,
                        index_end=oldest.size,
                        checkpoint_size=oldest.size,
                        offset=oldest.offset,
                    )
                )

    def _checkpoints(
        self, source: RecordSource, verifier: Verifier, report: AuditReport
    ) -> dict[str, list[KnownCheckpoint]]:
        by_log: dict[str, list[KnownCheckpoint]] = {}
        for batch in source.batches(CHECKPOINTS):
            for offset, value in zip(batch.offsets, batch.values, strict=True):
                report.checkpoints += 1
                where = _Where(batch.topic, batch.partition, offset)
                try:
                    if value is None:
                        raise MalformedError("no value")
                    rec = CheckpointRecord.decode(self.registry, value)
                    cp = rec.checkpoint
                except (DecodeError, MalformedError) as exc:
                    report.add(where.anomaly(Kind.CHECKPOINT_MALFORMED, str(exc)))
                    continue
                if not self._wanted(cp.log_origin):
                    continue
                try:
                    vc = verifier.verify_checkpoint(rec.note)
                except (UntrustedKeyError, SignatureError) as exc:
                    report.add(
                        where.anomaly(
                            Kind.CHECKPOINT_UNTRUSTED,
                            f"checkpoint signature not trusted at its time "
                            f"({format_ms(cp.time_ms)}): {exc.message}",
                            log_id=cp.log_origin,
                            checkpoint_size=cp.size,
                            reason=exc.reason,
                        )
                    )
                    continue
                except EvidenceError as exc:
                    report.add(
                        where.anomaly(
                            Kind.CHECKPOINT_MALFORMED,
                            exc.message,
                            log_id=cp.log_origin,
                            checkpoint_size=cp.size,
                            reason=exc.reason,
                        )
                    )
                    continue
                by_log.setdefault(cp.log_origin, []).append(
                    KnownCheckpoint(cp.size, cp.root, vc.time_ms, offset, rec)
                )
        for log_id, known in by_log.items():
            known.sort(key=lambda c: c.size)
            self._fork_and_time(log_id, known, report)
        return by_log

    def _fork_and_time(
        self, log_id: str, known: list[KnownCheckpoint], report: AuditReport
    ) -> None:
        sizes: dict[int, list[KnownCheckpoint]] = {}
        for c in known:
            sizes.setdefault(c.size, []).append(c)
        for size, same in sizes.items():
            if len({c.root for c in same}) > 1:
                for c in same:
                    c.forked = True
                report.add(
                    Anomaly(
                        Kind.CHECKPOINT_FORK,
                        f"{len({c.root for c in same})} different roots signed for size {size} "
                        f"(checkpoint offsets {', '.join(str(c.offset) for c in same)}): the log "
                        "showed different histories",
                        log_id=log_id,
                        checkpoint_size=size,
                    )
                )
        latest = None
        for c in known:
            if latest is not None and c.time_ms < latest.time_ms and c.size > latest.size:
                report.add(
                    Anomaly(
                        Kind.CHECKPOINT_TIME_REGRESSION,
                        f"signed at {format_ms(c.time_ms)}, before the smaller checkpoint of "
                        f"size {latest.size} ({format_ms(latest.time_ms)})",
                        log_id=log_id,
                        checkpoint_size=c.size,
                        offset=c.offset,
                    )
                )
            if latest is None or c.time_ms >= latest.time_ms:
                latest = c
        for c in known:
            prev = c.record.previous_size
            if prev is None or prev == 0 or prev >= c.size:
                continue
            earlier = sizes.get(prev, [])
            if not earlier:
                continue
            ok = False
            for e in earlier:
                try:
                    verify_consistency(prev, c.size, c.record.consistency_proof, e.root, c.root)
                    ok = True
                except ProofError:
                    pass
            if not ok:
                report.add(
                    Anomaly(
                        Kind.CHECKPOINT_INCONSISTENT,
                        f"its consistency proof from size {prev} does not verify: the two "
                        "signed checkpoints are not one append-only history (a fork)",
                        log_id=log_id,
                        checkpoint_size=c.size,
                        offset=c.offset,
                    )
                )

    # --- records ---------------------------------------------------------------------------

    def _checker(
        self,
        log_id: str,
        cps: dict[str, list[KnownCheckpoint]],
        verifier: Verifier,
        report: AuditReport,
        *,
        topic: str | None,
        partition: int | None,
    ) -> LogChecker | None:
        if topic is None or partition is None:
            topic, partition = self._topic_of(log_id)
        summary = report.logs.setdefault(log_id, LogSummary(log_id))
        known = cps.get(log_id, [])
        summary.checkpoints = len(known)
        start = self._start(log_id, verifier, report)
        if start is not None:
            known = [c for c in known if c.size >= start.size]
        return LogChecker(
            log_id=log_id,
            topic=topic,
            partition=partition,
            checkpoints=known,
            registry=self.registry,
            report=report,
            summary=summary,
            bound=self._bound,
            start=start,
            floors=self._floors,
        )

    def _topic_of(self, log_id: str) -> tuple[str, int]:
        naming = self.options.naming
        try:
            _, member, part = log_id.rsplit("/", 2)
            return naming.topic(AUDIT, member), int(part)
        except ValueError:
            return log_id, -1

    def _start(
        self, log_id: str, verifier: Verifier, report: AuditReport
    ) -> KnownCheckpoint | None:
        rec = self.options.start.get(log_id)
        if rec is None:
            return None
        try:
            vc = verifier.verify_checkpoint(rec.note, log_origin=log_id)
            base = rec.compact()
        except EvidenceError as exc:
            report.add(
                Anomaly(
                    Kind.CHECKPOINT_UNTRUSTED,
                    f"the trusted starting checkpoint does not verify ({exc.message}); "
                    "verifying from the start of the log instead",
                    log_id=log_id,
                    reason=exc.reason,
                )
            )
            return None
        cp = vc.checkpoint
        return KnownCheckpoint(cp.size, cp.root, vc.time_ms, None, rec, _compact=base)

    def _records(
        self,
        source: RecordSource,
        verifier: Verifier,
        report: AuditReport,
        cps: dict[str, list[KnownCheckpoint]],
    ) -> dict[str, LogChecker]:
        naming = self.options.naming
        progress, every = self.options.progress, self.options.progress_every
        checkers: dict[str, LogChecker] = {}
        by_partition: dict[tuple[str, int], LogChecker | None] = {}
        seen = 0
        next_tick = every
        for batch in source.batches(AUDIT):
            key = (batch.topic, batch.partition)
            if key not in by_partition:
                member = naming.member_of(batch.topic, AUDIT)
                log_id = audit_log_id(member, batch.partition, topic_prefix=naming.prefix)
                by_partition[key] = (
                    self._checker(
                        log_id,
                        cps,
                        verifier,
                        report,
                        topic=batch.topic,
                        partition=batch.partition,
                    )
                    if self._wanted(log_id)
                    else None
                )
                checker = by_partition[key]
                if checker is not None:
                    checkers[log_id] = checker
            checker = by_partition[key]
            if checker is None:
                continue
            checker.feed(batch.offsets, batch.values)
            seen += len(batch)
            if progress is not None and seen >= next_tick:
                progress(seen)
                next_tick = seen + every
        report.records = seen
        if progress is not None:
            progress(seen)
        return checkers


def _serial_of(data: bytes) -> int:
    """The serial a trust-list record claims (0 if it is not one): for rollback detection,
    unverified — a forged high serial only makes a real list look rolled back, loudly."""
    try:
        return TrustList.from_text(Note.parse(data).text).serial
    except (EvidenceError, UnicodeDecodeError, ValueError):
        return 0


@dataclass(frozen=True)
class _Where:
    topic: str
    partition: int
    offset: int

    def anomaly(
        self,
        kind: Kind,
        detail: str,
        *,
        log_id: str | None = None,
        checkpoint_size: int | None = None,
        reason: str | None = None,
    ) -> Anomaly:
        return Anomaly(
            kind,
            detail,
            log_id=log_id,
            topic=self.topic,
            partition=self.partition,
            offset=self.offset,
            checkpoint_size=checkpoint_size,
            reason=reason,
        )


_TRUST_PROBLEMS = {
    "TRUST_LIST_UNSIGNED": "the trust list carries no signature: nothing it says can be trusted",
    "TRUST_LIST_UNTRUSTED": "the trust list is not signed by any of the trust anchors given",
    "TRUST_QUORUM_MISSING": "the trust list is not signed by a quorum of the trust anchor's "
    "roots, or of its own (fewer member states signed it than it needs)",
    "TRUST_LIST_EXPIRED": "the trust list has expired: fetch the current one and audit again",
    "TRUST_LIST_NOT_YET_VALID": "the trust list is not valid yet (issued in the future)",
}


def _node_states(trust_list: TrustList) -> set[str]:
    """The states whose nodes the trust list names: the members whose witnesses may count."""
    found = (holder_state(e.holder) for e in trust_list.entries if e.holder.startswith("node:"))
    return {state for state in found if state is not None}
