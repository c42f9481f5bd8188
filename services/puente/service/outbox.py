"""The outbox: one processed batch's output and its consumed offset, produced in one transaction.

A ``BatchOutput`` names topics, keys and values; here each record gets its partition — the
input's partition for what belongs to that partition (audit records, its changelog), Kafka's
default partition of the key for the rest (deliveries, checkpoints, rejections), the one
partition of the aggregates topic for early warning's signed aggregates (their signature in the
record headers) — and the records go out in as few producer batches as fit. What to do when
the transaction fails is the commit policy's question (``commit.py``), not this module's.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import OffsetAndMetadata

from puente.service.processor import BatchOutput
from puente.topics import AGGREGATES, AUDIT, CHECKPOINTS, PARTIALS, REJECTED, STATE, Naming

Record = tuple[bytes | None, bytes | None]  # key, value
Headers = list[tuple[str, bytes]]
Batches = Mapping[tuple[str, int], Sequence[Record]]  # (topic, partition) -> records, in order

_PARTITIONER = DefaultPartitioner()
_CACHE_LIMIT = 100_000


def default_partition(key: bytes, partitions: Sequence[int]) -> int:
    """Kafka's default partition for ``key`` (murmur2, as the Java client): the same key goes to
    the same partition of every topic with as many partitions."""
    return int(_PARTITIONER(key, partitions, partitions))


async def send_batches(
    producer: AIOKafkaProducer,
    batches: Batches,
    signed: Mapping[tuple[str, int], Sequence[tuple[bytes, bytes, Headers]]] | None = None,
) -> None:
    """Append each partition's records (and ``signed``'s, records with headers) to producer
    batches (a new one when one is full), send them all, and wait until every one is
    acknowledged."""
    sends = []
    for (topic, partition), items in batches.items():
        if items:
            records = ((key, value, None) for key, value in items)
            sends += await _send(producer, topic, partition, records)
    for (topic, partition), with_headers in (signed or {}).items():
        sends += await _send(producer, topic, partition, with_headers)
    if sends:
        await asyncio.gather(*sends)


async def _send(
    producer: AIOKafkaProducer,
    topic: str,
    partition: int,
    records: Iterable[tuple[bytes | None, bytes | None, Headers | None]],
) -> list[asyncio.Future[Any]]:
    """One partition's records in as few producer batches as fit; the sends' futures."""
    sends = []
    builder = producer.create_batch()
    for key, value, headers in records:
        if builder.append(key=key, value=value, timestamp=None, headers=headers or []) is None:
            sends.append(await producer.send_batch(builder, topic, partition=partition))
            builder = producer.create_batch()
            builder.append(key=key, value=value, timestamp=None, headers=headers or [])
    sends.append(await producer.send_batch(builder, topic, partition=partition))
    return sends


class Outbox:
    """Produces the output of one input partition's batches, each in one transaction."""

    def __init__(self, naming: Naming, group: str) -> None:
        self.naming = naming
        self.group = group  # whose consumed offsets the transactions commit
        self._partition_cache: dict[tuple[int, bytes], int] = {}

    async def commit(
        self, producer: AIOKafkaProducer, tp: TopicPartition, origin: str, out: BatchOutput
    ) -> None:
        """Produce ``out`` (read from ``tp``, a partition of ``origin``'s ingress) and its
        consumed offset in one transaction; raise whatever makes it fail."""
        await producer.begin_transaction()
        signed = {(self.naming.topic(AGGREGATES), 0): out.aggregates} if out.aggregates else None
        await send_batches(
            producer, await self.batches(producer, tp.partition, origin, out), signed
        )
        if out.next_offset is not None:
            await producer.send_offsets_to_transaction(
                {tp: OffsetAndMetadata(out.next_offset, "")}, self.group
            )
        await producer.commit_transaction()

    async def batches(
        self, producer: AIOKafkaProducer, partition: int, origin: str, out: BatchOutput
    ) -> Batches:
        """Where each record of ``out`` goes; ``partition`` is the input's."""
        batches: dict[tuple[str, int], list[Record]] = defaultdict(list)
        await self._by_key(producer, batches, out.deliveries)
        batches[(self.naming.topic(AUDIT, origin), partition)].extend((None, v) for v in out.audit)
        batches[(self.naming.topic(STATE, origin), partition)].extend(out.state)
        batches[(self.naming.topic(PARTIALS, origin), 0)].extend(out.partials)
        checkpoints, rejected = self.naming.topic(CHECKPOINTS), self.naming.topic(REJECTED, origin)
        await self._by_key(producer, batches, ((checkpoints, k, v) for k, v in out.checkpoints))
        await self._by_key(producer, batches, ((rejected, k, v) for k, v in out.rejections))
        return batches

    async def _by_key(
        self,
        producer: AIOKafkaProducer,
        batches: dict[tuple[str, int], list[Record]],
        records: Iterable[tuple[str, bytes, bytes]],
    ) -> None:
        for topic, key, value in records:
            batches[(topic, await self.partition_for(producer, topic, key))].append((key, value))

    async def partition_for(self, producer: AIOKafkaProducer, topic: str, key: bytes) -> int:
        """The default partition of ``key`` in ``topic`` (partition counts from the producer's
        metadata), remembered per (partition count, key)."""
        partitions = sorted(await producer.partitions_for(topic))
        cache_key = (len(partitions), key)
        found = self._partition_cache.get(cache_key)
        if found is None:
            found = default_partition(key, partitions)
            if len(self._partition_cache) > _CACHE_LIMIT:
                self._partition_cache.clear()
            self._partition_cache[cache_key] = found
        return found
