"""A real audit log, as the policy service writes it on Kafka, for the auditor's tests and the
benchmark: audit records per partition (offsets with transaction-marker gaps), one checkpoint
per batch on the checkpoints topic, the signed trust list on the trust topic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from puente.codec.registry import Registry
from puente.evidence.audit.source import ExportWriter, RecordBatch
from puente.evidence.keys import SigningKey
from puente.evidence.log import AuditLog, CheckpointRecord, audit_log_id
from puente.evidence.records import AuditDecision
from puente.topics import AUDIT, CHECKPOINTS, COSIGNATURES, EQUIVOCATIONS, TRUST, Naming

from .conftest import T0, audit_record

NAMING = Naming()
CHECKPOINT_TOPIC = NAMING.topic(CHECKPOINTS)
TRUST_TOPIC = NAMING.topic(TRUST)


@dataclass
class Exported:
    """Topic contents: (topic, partition) -> [(offset, value)]."""

    audit: dict[tuple[str, int], list[tuple[int, bytes]]] = field(default_factory=dict)
    checkpoints: list[tuple[int, bytes]] = field(default_factory=list)
    trust: list[tuple[int, bytes]] = field(default_factory=list)
    equivocations: list[tuple[int, bytes]] = field(default_factory=list)
    cosignatures: list[tuple[int, bytes]] = field(default_factory=list)

    def partition(self, member: str = "MX", partition: int = 0) -> list[tuple[int, bytes]]:
        return self.audit[(NAMING.topic(AUDIT, member), partition)]

    def write(self, path: Path, *, cut: int = 0) -> Path:
        with path.open("wb") as fh, ExportWriter(fh) as w:
            for topic, recs in [
                (TRUST_TOPIC, self.trust),
                (CHECKPOINT_TOPIC, self.checkpoints),
                (NAMING.topic(COSIGNATURES), self.cosignatures),
                (NAMING.topic(EQUIVOCATIONS), self.equivocations),
            ]:
                if recs:
                    w.write_batch(_batch(topic, 0, recs))
            for (topic, part), recs in sorted(self.audit.items()):
                if recs:
                    w.write_batch(_batch(topic, part, recs))
        if cut:
            data = path.read_bytes()
            path.write_bytes(data[:-cut])
        return path


def _batch(topic: str, partition: int, recs: list[tuple[int, bytes]]) -> RecordBatch:
    return RecordBatch(
        topic,
        partition,
        [o for o, _ in recs],
        [T0 + o for o, _ in recs],
        [None] * len(recs),
        [v for _, v in recs],
    )


DECISIONS = [
    AuditDecision.DELIVERED,
    AuditDecision.TRANSFORMED,
    AuditDecision.WITHHELD,
    AuditDecision.REJECTED,
]


def build(
    registry: Registry,
    key: SigningKey,
    trust: bytes,
    *,
    logs: tuple[tuple[str, int], ...] = (("MX", 0),),
    records: int = 200,
    batch: int = 16,
    floor: Callable[[int], bytes | None] | None = None,
) -> tuple[Exported, dict[str, AuditLog]]:
    """Write ``records`` decisions into each log, a checkpoint after every ``batch``."""
    exp = Exported(trust=[(0, trust)])
    writers = {}
    cp_offset = 0
    for member, part in logs:
        log = AuditLog(audit_log_id(member, part))
        writers[log.log_id] = log
        recs = exp.audit.setdefault((NAMING.topic(AUDIT, member), part), [])
        offset = 0
        for n in range(records):
            record = audit_record(n, decision=DECISIONS[n % 4])
            if floor is not None:
                record = replace(record, floor_digest=floor(n))
            _, data = log.append_record(registry, record)
            recs.append((offset, data))
            offset += 1
            if (n + 1) % batch == 0 or n == records - 1:
                cp = log.checkpoint(key, time_ms=T0 + 1000 + n)
                exp.checkpoints.append((cp_offset, cp.encode(registry)))
                cp_offset += 2  # transaction marker
                offset += 1  # transaction marker on the audit partition too
    return exp, writers


def checkpoint_records(registry: Registry, exp: Exported) -> list[CheckpointRecord]:
    return [CheckpointRecord.decode(registry, v) for _, v in exp.checkpoints]
