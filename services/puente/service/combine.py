"""A node's combiner: its shards' sealed partial counts in, its signed aggregates out.

When a state's ingress topic has several partitions, each partition's feed hands its closed
windows on to ``<prefix>.partials.CC`` (one partition), sealed to the node itself, in its batch's
transaction (:mod:`puente.service.aggregates`). One instance of the node — whichever the
consumer group ``<prefix>.node.CC.combine`` gives that partition — opens them, sums the shards
of each window (:class:`~puente.warnings.combine.Combiner`), suppresses the small cells of the
sum and publishes the signed aggregates, shard 0 of 1, to the aggregates topic. Each turn is one
transaction (transactional id ``<prefix>.node.CC.combine``, which fences an earlier owner): the
aggregates and the read position, which stays at the oldest partial of a window still waiting,
so that a new owner reads those partials again and loses nothing. Windows completed after that
point are published once more after a take-over, byte for byte the same (an aggregate's value is
a pure function of its counts): the evaluator ignores such a repeat (``AGGREGATE_DUPLICATE``).

A partial that does not open or read is logged and skipped (``aggregates.partial_unreadable``):
its shard's counts for that window are lost, never leaked, and the window completes once that
shard has sent a later one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from puente.errors import PuenteError
from puente.kafka.clients import consumer, producer, start
from puente.kafka.connection import KafkaEndpoint
from puente.logs import get_logger
from puente.secrets import Credential
from puente.service import metrics
from puente.service.aggregates import AggregateRecord, Aggregation, sign_published
from puente.service.outbox import send_batches
from puente.topics import AGGREGATES, PARTIALS, Naming
from puente.warnings.combine import Combiner, Partial

log = get_logger("node.combine")

COMBINE_SUFFIX = "combine"


class ShardCombiner:
    """State ``origin``'s combiner (see the module docstring)."""

    def __init__(
        self,
        origin: str,
        aggregation: Aggregation,
        *,
        endpoint: KafkaEndpoint,
        credential: Credential,
        naming: Naming,
        instance: str = "node",
        poll_s: float = 0.5,
        retry_s: float = 2.0,
        clock: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.origin = origin
        self.aggregation = aggregation
        self.endpoint = endpoint
        self.cred = credential
        self.naming = naming
        self.instance = instance
        self.poll_s = poll_s
        self.retry_s = retry_s
        self.clock = clock
        self.group = f"{naming.node_group(origin)}.{COMBINE_SUFFIX}"
        self.transactional_id = naming.node_transactional_id_prefix(origin) + COMBINE_SUFFIX
        self.topic = naming.topic(PARTIALS, origin)
        self.tables = {t.id: t for t in aggregation.triggers.tables_for(origin)}
        self.combiner = Combiner()
        self.published = 0  # aggregates published (each window's tables)
        self.unreadable = 0  # partials that did not open or read

    async def run(self, stop: asyncio.Event) -> None:
        """Combine until ``stop`` is set; a failed session restarts from the committed state."""
        while not stop.is_set():
            try:
                await self._session(stop)
            except (KafkaError, PuenteError, OSError) as exc:
                log.error(
                    "aggregates.combine_failed",
                    origin=self.origin,
                    error=type(exc).__name__,
                    reason=getattr(exc, "reason", None),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.retry_s)

    async def _session(self, stop: asyncio.Event) -> None:
        prod: AIOKafkaProducer | None = None
        c = consumer(
            self.endpoint, self.cred, group_id=self.group, client_id=f"{self.instance}-combine"
        )
        c.subscribe([self.topic], listener=_Reset(self))
        try:
            await start(c, self.endpoint, self.cred)
            while not stop.is_set():
                fetched = await c.getmany(timeout_ms=int(self.poll_s * 1000))
                records = [m for messages in fetched.values() for m in messages]
                if not records:
                    continue
                if prod is None:  # the first turn as the owner: fences an earlier one
                    prod = producer(
                        self.endpoint,
                        self.cred,
                        transactional_id=self.transactional_id,
                        client_id=f"{self.instance}-combine",
                    )
                    await start(prod, self.endpoint, self.cred)
                await self._turn(prod, records)
        finally:
            for client in (c, prod):
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.stop()
            self.combiner = Combiner()

    async def _turn(self, prod: AIOKafkaProducer, records: list[Any]) -> None:
        """Take a turn's partials; publish what they complete and the new read position."""
        now = self.clock()
        out: list[AggregateRecord] = []
        for m in records:
            name = (m.key or b"").decode(errors="replace")
            try:
                raw = self.aggregation.vault.open(m.value or b"", name=name)
                partial = Partial.decode(raw, self.tables, name=name)
            except PuenteError as exc:
                self.unreadable += 1
                metrics.AGGREGATES.labels(self.origin, "withheld").inc()
                log.error(
                    "aggregates.partial_unreadable",
                    origin=self.origin,
                    offset=m.offset,
                    reason=exc.reason,
                )
                continue
            for closed in self.combiner.add(partial, m.offset):
                out += sign_published(
                    closed,
                    self.origin,
                    self.aggregation.triggers.k,
                    self.aggregation.keys,
                    self.aggregation.registry,
                    now,
                )
        low = self.combiner.low_water()
        position = records[-1].offset + 1 if low is None else low
        tp = TopicPartition(self.topic, 0)
        await prod.begin_transaction()
        await send_batches(prod, {}, {(self.naming.topic(AGGREGATES), 0): out} if out else None)
        await prod.send_offsets_to_transaction({tp: OffsetAndMetadata(position, "")}, self.group)
        await prod.commit_transaction()
        self.published += len(out)
        if out:
            metrics.AGGREGATES.labels(self.origin, "published").inc(len(out))
        log.info(
            "aggregates.combined",
            origin=self.origin,
            published=len(out),
            waiting=self.combiner.waiting,
        )


class _Reset(ConsumerRebalanceListener):  # type: ignore[misc]
    """A combiner that loses or gains the partials partition starts afresh: the partition's
    committed position is the oldest partial of a window still waiting."""

    def __init__(self, owner: ShardCombiner) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.owner.combiner = Combiner()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.owner.combiner = Combiner()
