"""What the witnesses say, as any member reads it: every log's latest checkpoint, its cosigners
and whether it is final (``puente witness status``), and the equivocation reports that verify."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer

from puente.evidence.equivocation import EquivocationReport, verify_report
from puente.evidence.errors import EvidenceError
from puente.evidence.finality import FinalityBook, add_all
from puente.evidence.verify import Verifier
from puente.kafka.reading import read_all, topic_partitions
from puente.topics import COSIGNATURES, EQUIVOCATIONS, Naming


@dataclass
class WitnessStatus:
    """Finality of every log, the verified equivocation reports, and how many records were
    refused (cosigned notes whose log signature fails, reports that prove nothing)."""

    book: FinalityBook
    reports: list[EquivocationReport]
    refused: int

    def document(self) -> dict[str, Any]:
        """The JSON document of ``puente witness status --json``."""
        return {
            "quorum": self.book.quorum,
            "logs": self.book.status(),
            "equivocations": [
                {
                    "log": r.fork.log_id,
                    "kind": r.fork.kind.value,
                    "witness": r.witness,
                    "time_ms": r.time_ms,
                }
                for r in self.reports
            ],
            "refused": self.refused,
        }


async def read_status(
    c: AIOKafkaConsumer, naming: Naming, verifier: Verifier, *, quorum: int
) -> WitnessStatus:
    """Read the cosignatures and equivocations topics to their end (``c``: a started consumer
    of a principal that may read them, a member's) and count."""
    book = FinalityBook(quorum, all_cosigners=True)  # the report lists them all
    cosigned = await read_all(c, await topic_partitions(c, [naming.topic(COSIGNATURES)]))
    refused = add_all(book, cosigned, verifier)
    reports: list[EquivocationReport] = []
    for data in await read_all(c, await topic_partitions(c, [naming.topic(EQUIVOCATIONS)])):
        try:
            reports.append(verify_report(data, verifier))
        except (EvidenceError, ValueError):
            refused += 1
    return WitnessStatus(book, reports, refused)
