"""The auditor's record source on Kafka: ``puente audit verify kafka:`` and ``puente audit export``.

Reads the audit, checkpoints and trust topics as the auditor's own principal (read-only ACLs),
read_committed, every partition from its first offset to the end offset taken when the read
starts — so a live log is audited up to a consistent point and the reader never waits for more.
Record keys and values are passed on byte for byte: the auditor hashes what the broker stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from puente.config import Settings, get_settings
from puente.evidence.audit.source import RecordBatch, RecordSource, register_source
from puente.kafka.connection import KafkaEndpoint, credential, resolve_endpoint
from puente.secrets import Credential
from puente.topics import Naming, Scope, TopicKind

SCHEME = "kafka"
_POLL_MS = 1000
_MAX_EMPTY_POLLS = 30  # a partition that yields nothing for this long is reported, not waited on


class KafkaAuditSource:
    """A :class:`RecordSource` over a live cluster."""

    def __init__(self, endpoint: KafkaEndpoint, cred: Credential, naming: Naming) -> None:
        self.endpoint = endpoint
        self.cred = cred
        self.naming = naming

    def describe(self) -> str:
        return f"kafka {self.endpoint.bootstrap} as {self.cred.username}"

    def _consumer(self) -> Any:
        kwargs = self.endpoint.kafka_python_kwargs(self.cred)
        return KafkaConsumer(
            **kwargs,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=f"{self.cred.username}-audit",
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )

    def _topics(self, c: Any, kind: TopicKind) -> list[str]:
        if kind.scope is Scope.GLOBAL:
            return [self.naming.topic(kind)]
        stem = self.naming.topic_stem_prefix(kind)
        return sorted(t for t in c.topics() if t.startswith(stem) and len(t) == len(stem) + 2)

    def batches(self, kind: TopicKind) -> Iterator[RecordBatch]:
        """Every committed record of every topic of ``kind``, partition by partition."""
        c = self._consumer()
        try:
            for topic in self._topics(c, kind):
                for partition in sorted(c.partitions_for_topic(topic) or ()):
                    yield from self._partition(c, TopicPartition(topic, partition))
        finally:
            c.close()

    def _partition(self, c: Any, tp: TopicPartition) -> Iterator[RecordBatch]:
        c.assign([tp])
        c.seek_to_beginning(tp)
        end = c.end_offsets([tp])[tp]
        empty = 0
        while c.position(tp) < end and empty < _MAX_EMPTY_POLLS:
            got = c.poll(timeout_ms=_POLL_MS, max_records=10_000).get(tp, [])
            # Transaction markers take offsets; nothing may be returned past the last record.
            got = [m for m in got if m.offset < end]
            if not got:
                empty += 1
                continue
            empty = 0
            yield RecordBatch(
                tp.topic,
                tp.partition,
                [m.offset for m in got],
                [m.timestamp if m.timestamp is not None else -1 for m in got],
                [m.key for m in got],
                [m.value for m in got],
            )


def open_kafka(spec: str, naming: Naming, settings: Settings | None = None) -> RecordSource:
    """``kafka:`` (the configured cluster) or ``kafka:<bootstrap>``, as the auditor principal."""
    settings = settings or get_settings()
    endpoint = resolve_endpoint(settings)
    if spec:
        endpoint = KafkaEndpoint(
            spec,
            endpoint.security_protocol,
            endpoint.sasl_mechanism,
            endpoint.ssl_cafile,
            endpoint.request_timeout_s,
        )
    cred = credential(settings, naming.service_principal("auditor"))
    return KafkaAuditSource(endpoint, cred, naming)


def register() -> None:
    """Make ``kafka:`` sources openable by ``puente audit``."""
    register_source(SCHEME, open_kafka)
