"""Changelog restore: a partition's state, read back from ``<prefix>.state.<ORIGIN>``.

Each transaction of an input partition writes that partition's state to the same partition of
its origin's changelog: the audit log's compact state (key ``STATE_LOG_KEY``), the dedupe
chunks of the notice ids it accepted (``dedupe.py``; tombstones for the forgotten ones) and,
with early warning on, its counts sealed to the node (key ``aggregates``, ``aggregates.py``). A new
owner reads it to the end — read_committed, after its producer fenced the last owner — and has
the state the last committed transaction left, without replaying the audit log.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition

from puente.codec.registry import Registry
from puente.evidence.log import LogState
from puente.service.aggregates import STATE_KEY as AGGREGATES_KEY
from puente.service.dedupe import SeenIds
from puente.service.processor import STATE_LOG_KEY
from puente.topics import STATE, Naming


class PartitionState(NamedTuple):
    """What an input partition's changelog holds."""

    log_state: LogState | None  # None: the partition's audit log has no record yet
    seen: SeenIds  # the accepted notice ids still within the dedupe horizon
    aggregates: bytes | None = None  # early warning's counts, sealed to the node (None: none)


class Changelog:
    """Reads input partitions' changelogs with one (unsubscribed, read_committed) consumer."""

    def __init__(
        self,
        reader: AIOKafkaConsumer,
        *,
        naming: Naming,
        registry: Registry,
        dedupe_horizon_ms: int,
    ) -> None:
        self.reader = reader
        self.naming = naming
        self.registry = registry
        self.dedupe_horizon_ms = dedupe_horizon_ms
        self._lock = asyncio.Lock()  # the reader reads one set of partitions at a time

    async def restore(
        self, partitions: list[tuple[str, int]]
    ) -> dict[tuple[str, int], PartitionState]:
        """Each (origin, input partition)'s state, its changelog read to the end."""
        async with self._lock:
            return await self._read(partitions)

    async def _read(
        self, partitions: list[tuple[str, int]]
    ) -> dict[tuple[str, int], PartitionState]:
        reader = self.reader
        tps = {TopicPartition(self.naming.topic(STATE, o), p): (o, p) for o, p in partitions}
        reader.assign(list(tps))
        await reader.seek_to_beginning(*tps)
        ends = await reader.end_offsets(list(tps))
        out = {key: PartitionState(None, SeenIds(self.dedupe_horizon_ms)) for key in tps.values()}
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            got = await reader.getmany(*remaining, timeout_ms=1000)
            for tp, messages in got.items():
                log_state, seen, aggregates = out[tps[tp]]
                for msg in messages:
                    key = msg.key or b""
                    if key == STATE_LOG_KEY and msg.value is not None:
                        log_state = LogState.decode(self.registry, msg.value)
                    elif key == AGGREGATES_KEY:
                        aggregates = msg.value
                    else:
                        seen.restore(key, msg.value, msg.timestamp)
                out[tps[tp]] = PartitionState(log_state, seen, aggregates)
            for tp in list(remaining):
                if await reader.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        reader.unsubscribe()
        return out
