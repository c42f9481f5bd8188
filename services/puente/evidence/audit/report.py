"""Anomalies and the audit report (JSON for machines, text for people)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from puente.evidence._time import format_ms

TEXT_PER_GROUP = 20  # anomalies of one kind, log and reason spelled out in the text report


class Kind(StrEnum):
    """Every anomaly the auditor names. Stable codes: reports and tests rely on them."""

    RECORD_ALTERED = "RECORD_ALTERED"
    RECORD_REMOVED = "RECORD_REMOVED"
    RECORD_INSERTED = "RECORD_INSERTED"
    RECORD_REORDERED = "RECORD_REORDERED"
    RECORD_DUPLICATED = "RECORD_DUPLICATED"
    UNCHECKPOINTED_TAIL = "UNCHECKPOINTED_TAIL"
    RECORD_MALFORMED = "RECORD_MALFORMED"
    CHECKPOINT_ROOT_MISMATCH = "CHECKPOINT_ROOT_MISMATCH"
    CHECKPOINT_FORK = "CHECKPOINT_FORK"
    CHECKPOINT_INCONSISTENT = "CHECKPOINT_INCONSISTENT"
    CHECKPOINT_UNTRUSTED = "CHECKPOINT_UNTRUSTED"
    CHECKPOINT_MALFORMED = "CHECKPOINT_MALFORMED"
    CHECKPOINT_TIME_REGRESSION = "CHECKPOINT_TIME_REGRESSION"
    LOG_UNVERIFIABLE = "LOG_UNVERIFIABLE"
    TRUST_LIST_MISSING = "TRUST_LIST_MISSING"
    TRUST_LIST_MALFORMED = "TRUST_LIST_MALFORMED"
    TRUST_LIST_UNSIGNED = "TRUST_LIST_UNSIGNED"
    TRUST_LIST_UNTRUSTED = "TRUST_LIST_UNTRUSTED"
    TRUST_QUORUM_MISSING = "TRUST_QUORUM_MISSING"
    TRUST_LIST_EXPIRED = "TRUST_LIST_EXPIRED"
    TRUST_LIST_NOT_YET_VALID = "TRUST_LIST_NOT_YET_VALID"
    TRUST_LIST_ROLLBACK = "TRUST_LIST_ROLLBACK"
    DECISION_UNPINNED_FLOOR = "DECISION_UNPINNED_FLOOR"
    EXPORT_TRUNCATED = "EXPORT_TRUNCATED"
    LOG_EQUIVOCATION = "LOG_EQUIVOCATION"
    CHECKPOINT_UNWITNESSED = "CHECKPOINT_UNWITNESSED"


@dataclass(frozen=True)
class Anomaly:
    """One finding, with every coordinate that locates it."""

    kind: Kind
    detail: str
    log_id: str | None = None
    index: int | None = None  # leaf index (first of a range)
    index_end: int | None = None  # exclusive end of a range of leaves, if a range
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None  # Kafka offset of the record or checkpoint concerned
    checkpoint_size: int | None = None
    reason: str | None = None  # e.g. KEY_REVOKED for CHECKPOINT_UNTRUSTED

    def where(self) -> str:
        """The position, for people: log, leaves, checkpoint, topic/partition@offset."""
        parts: list[str] = []
        if self.log_id:
            parts.append(self.log_id)
        if self.index is not None:
            if self.index_end is not None and self.index_end > self.index + 1:
                parts.append(f"leaves {self.index}..{self.index_end - 1}")
            else:
                parts.append(f"leaf {self.index}")
        if self.checkpoint_size is not None:
            parts.append(f"checkpoint size {self.checkpoint_size}")
        if self.topic is not None:
            loc = self.topic if self.partition is None else f"{self.topic}[{self.partition}]"
            parts.append(loc if self.offset is None else f"{loc}@{self.offset}")
        return ", ".join(parts) or "-"

    def to_json(self) -> dict[str, Any]:
        """A JSON object (no nulls)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class PendingTail:
    """Records after a log's last checkpoint that are younger than the audit's bound: its
    writer may still sign them (they are not an anomaly yet; audit again later)."""

    log_id: str
    index: int  # first record without a checkpoint
    index_end: int  # exclusive
    oldest_decided_at: int  # ms: when the first of them was decided
    age_s: float  # at the audit's now

    def to_json(self) -> dict[str, Any]:
        """A JSON object."""
        return asdict(self)


@dataclass
class LogSummary:
    """Per-log figures."""

    log_id: str
    records: int = 0
    checkpoints: int = 0
    checkpoints_verified: int = 0
    start_size: int = 0
    verified_size: int = 0
    verified_root: str | None = None
    # Records below this leaf index are covered by a checkpoint a quorum of other states'
    # witnesses cosigned (final); the states that cosigned it.
    witnessed_size: int = 0
    witnessed_by: list[str] = field(default_factory=list)
    anomalies: int = 0


@dataclass
class AuditReport:
    """The whole result of one audit."""

    source: str
    started_at: int
    trust_list: dict[str, Any] = field(default_factory=dict)
    finished_at: int = 0
    elapsed_s: float = 0.0
    records: int = 0
    checkpoints: int = 0
    logs: dict[str, LogSummary] = field(default_factory=dict)
    anomalies: list[Anomaly] = field(default_factory=list)
    pending: list[PendingTail] = field(default_factory=list)
    pending_bound_s: float = 0.0
    quorum: int = 0  # witnesses that make a checkpoint final (distinct other states)

    @property
    def ok(self) -> bool:
        """True when no anomaly was found (tails younger than the bound may be pending)."""
        return not self.anomalies

    @property
    def complete(self) -> bool:
        """True when no anomaly was found and every record is covered by a checkpoint."""
        return self.ok and not self.pending

    @property
    def verdict(self) -> str:
        """``VERIFIED`` (every record signed), ``PENDING`` (no anomaly, but young records
        await their checkpoint) or ``ANOMALIES FOUND``."""
        if not self.ok:
            return "ANOMALIES FOUND"
        return "PENDING" if self.pending else "VERIFIED"

    @property
    def exit_code(self) -> int:
        """``puente audit verify``'s exit code: 0 VERIFIED, 3 PENDING, 1 ANOMALIES FOUND."""
        return {"VERIFIED": 0, "PENDING": 3}.get(self.verdict, 1)

    def add(self, anomaly: Anomaly) -> None:
        """Record an anomaly (and count it against its log)."""
        self.anomalies.append(anomaly)
        if anomaly.log_id is not None and anomaly.log_id in self.logs:
            self.logs[anomaly.log_id].anomalies += 1

    def sort(self) -> None:
        """Order anomalies for reading: exchange-wide first, then per log by position."""

        def key(a: Anomaly) -> tuple[int, str, int, int]:
            pos = a.index if a.index is not None else a.checkpoint_size
            return (
                0 if a.log_id is None else 1,
                a.log_id or "",
                -1 if pos is None else pos,
                -1 if a.offset is None else a.offset,
            )

        self.anomalies.sort(key=key)

    def counts(self) -> dict[str, int]:
        """Anomalies per kind."""
        out: dict[str, int] = {}
        for a in self.anomalies:
            out[a.kind.value] = out.get(a.kind.value, 0) + 1
        return out

    def to_json(self) -> bytes:
        """The JSON report."""
        doc = {
            "verdict": self.verdict,
            "ok": self.ok,
            "source": self.source,
            "started_at": format_ms(self.started_at),
            "finished_at": format_ms(self.finished_at),
            "elapsed_s": round(self.elapsed_s, 3),
            "records": self.records,
            "records_per_s": round(self.records / self.elapsed_s) if self.elapsed_s else None,
            "checkpoints": self.checkpoints,
            "trust_list": self.trust_list,
            "anomaly_counts": self.counts(),
            "pending_bound_s": self.pending_bound_s,
            "pending": [p.to_json() for p in self.pending],
            "quorum": self.quorum,
            "logs": [asdict(s) for s in sorted(self.logs.values(), key=lambda s: s.log_id)],
            "anomalies": [a.to_json() for a in self.anomalies],
        }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"

    def to_text(self) -> str:
        """The human-readable report."""
        lines = [
            f"Puente audit report — {self.verdict}",
            f"source:      {self.source}",
            f"audited:     {format_ms(self.started_at)} ({self.elapsed_s:.2f} s)",
            f"trust list:  {_trust_line(self.trust_list)}",
            f"records:     {self.records} in {len(self.logs)} log(s); "
            f"checkpoints: {self.checkpoints}",
            f"finality:    a quorum of {self.quorum} other states' witnesses",
            "",
            "logs:",
        ]
        for s in sorted(self.logs.values(), key=lambda s: s.log_id):
            status = "ok" if not s.anomalies else f"{s.anomalies} anomaly(ies)"
            start = f" from size {s.start_size}" if s.start_size else ""
            lines.append(
                f"  {s.log_id}: {s.records} records{start}, "
                f"{s.checkpoints_verified}/{s.checkpoints} checkpoints verified, "
                f"verified up to size {s.verified_size}, witnessed up to size "
                f"{s.witnessed_size} — {status}"
            )
        lines.append("")
        for p in self.pending:
            lines.append(
                f"pending: {p.log_id} leaves {p.index}..{p.index_end - 1} await their "
                f"checkpoint ({p.age_s:.1f} s old, bound {self.pending_bound_s:g} s); "
                "audit again later"
            )
        if self.pending:
            lines.append("")
        if self.complete:
            lines.append(
                "No anomaly: every checkpoint is signed by a trusted key valid at its "
                "time, and every record is covered, in order, by the signed roots."
            )
        elif self.ok:
            lines.append(
                "No anomaly: every checkpoint is signed by a trusted key valid at its time and "
                "covers its records in order; the pending records above are younger than the "
                "bound and not yet checkpointed."
            )
        else:
            lines.append(f"{len(self.anomalies)} anomaly(ies):")
            shown: dict[tuple[str, str | None, str | None], int] = {}
            hidden: dict[tuple[str, str | None, str | None], list[Anomaly]] = {}
            for i, a in enumerate(self.anomalies, 1):
                group = (a.kind.value, a.log_id, a.reason)
                shown[group] = shown.get(group, 0) + 1
                if shown[group] > TEXT_PER_GROUP:
                    hidden.setdefault(group, []).append(a)
                    continue
                why = f" [{a.reason}]" if a.reason else ""
                lines.append(f"  {i}. {a.kind.value}{why} at {a.where()}")
                lines.append(f"     {a.detail}")
            for (kind, log_id, code), rest in hidden.items():
                # One line for the rest of a repeated anomaly; the JSON report lists them all.
                tag = f" [{code}]" if code else ""
                lines.append(
                    f"  ... and {len(rest)} more {kind}{tag} in {log_id or 'the exchange'}, "
                    f"from {rest[0].where()} to {rest[-1].where()} (all in the JSON report)"
                )
        lines.append("")
        lines.append(f"verdict: {self.verdict}")
        return "\n".join(lines) + "\n"


def _trust_line(info: dict[str, Any]) -> str:
    if not info:
        return "none"
    problems = info.get("problems") or []
    state = "ok" if not problems else ", ".join(problems)
    return (
        f"serial {info.get('serial')}, expires {info.get('expires')}, "
        f"signed by {', '.join(info.get('signed_by') or []) or 'no anchor'} — {state}"
    )
