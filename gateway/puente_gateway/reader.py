"""Reading one member topic from a cursor: as pages (long-poll) and as an endless stream.

Positions are tracked per partition as "the next offset the client has not been given". A
record's cursor is that map right after the record, so resuming from any item's cursor (or an
SSE ``Last-Event-ID``) gives every later record exactly once. Offsets a cursor names but the
topic no longer holds (retention) start at the partition's first offset; the page then says
``gap: true``. A page holds at most ``max_bytes`` of record values (and at least one record),
so its size does not depend on how large the records are. Readers come from the pool
(puente_gateway.pool), as the caller's page or stream, and go back to it for reuse.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from puente_gateway.cursor import Kind, encode_cursor
from puente_gateway.pool import ReaderPool, ReadKind

# After the last record of a partition comes a transaction marker that read_committed readers
# never see; the consumer steps over it only after one more fetch. A page waits at most this
# long for that, so a page without long-poll still answers promptly.
_SETTLE_S = 0.3


@dataclass(frozen=True)
class Record:
    """One Kafka record of the topic."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    cursor: str  # the position right after this record


@dataclass(frozen=True)
class Page:
    """Records in offset order per partition, and where to go on."""

    records: list[Record]
    next_cursor: str
    caught_up: bool
    gap: bool


class _Positions:
    def __init__(self, kind: Kind, start: Mapping[int, int]) -> None:
        self.kind = kind
        self.next = dict(start)

    def advance(self, partition: int, offset: int) -> str:
        self.next[partition] = offset + 1
        return encode_cursor(self.kind, self.next)

    def cursor(self) -> str:
        return encode_cursor(self.kind, self.next)


class TopicReader:
    """Reads ``topic`` for one caller, starting from per-partition offsets."""

    def __init__(self, pool: ReaderPool, topic: str, kind: Kind, *, caller: str, state: str):
        self.pool = pool
        self.kafka = pool.kafka.of(state)  # the state's topics, as the state's gateway
        self.topic = topic
        self.kind = kind
        self.caller = caller
        self.state = state

    async def _open(
        self, c: AIOKafkaConsumer, wanted: Mapping[int, int]
    ) -> tuple[list[TopicPartition], dict[int, int], dict[TopicPartition, int], bool]:
        parts = await self.kafka.partitions(self.topic)
        tps = [TopicPartition(self.topic, p) for p in parts]
        c.assign(tps)
        offsets = await self.kafka.offsets()
        begin = await offsets.beginning_offsets(tps)
        end = await offsets.end_offsets(tps)
        start: dict[int, int] = {}
        gap = False
        for tp in tps:
            want = wanted.get(tp.partition, begin[tp])
            if want < begin[tp]:
                gap = True
            pos = min(max(want, begin[tp]), end[tp])
            c.seek(tp, pos)
            start[tp.partition] = pos
        return tps, start, end, gap

    async def page(
        self, wanted: Mapping[int, int], *, limit: int, wait_s: float, max_bytes: int
    ) -> Page:
        """Up to ``limit`` records (and ``max_bytes``) after ``wanted``; waits up to ``wait_s``
        for the first one."""
        async with self.pool.reader(ReadKind.PAGE, self.caller, self.state) as c:
            try:
                return await self._page(c, wanted, limit, wait_s, max_bytes)
            except KafkaError as exc:
                raise self.kafka.unavailable(f"reading failed ({type(exc).__name__})") from None

    async def _page(
        self,
        c: AIOKafkaConsumer,
        wanted: Mapping[int, int],
        limit: int,
        wait_s: float,
        max_bytes: int,
    ) -> Page:
        tps, start, end, gap = await self._open(c, wanted)
        pos = _Positions(self.kind, start)
        records: list[Record] = []
        size = 0
        begun = time.monotonic()
        while len(records) < limit and size < max_bytes:
            caught_up = all(pos.next[tp.partition] >= end[tp] for tp in tps)
            elapsed = time.monotonic() - begun
            if caught_up and (records or elapsed >= wait_s):
                break
            if not caught_up and elapsed >= max(wait_s, _SETTLE_S):
                break
            timeout = max(wait_s, _SETTLE_S) - elapsed
            batch = await c.getmany(
                timeout_ms=max(1, int(timeout * 1000)), max_records=limit - len(records)
            )
            for tp, recs in batch.items():
                for r in recs:
                    if size >= max_bytes or tp.topic != self.topic:
                        break
                    records.append(_record(r, pos.advance(tp.partition, r.offset)))
                    size += len(r.value or b"")
            await self._step_over_markers(c, tps, pos, batch)
            if caught_up and not batch:
                # Long-poll: nothing yet; later records raise the end offsets.
                end = await (await self.kafka.offsets()).end_offsets(tps)
        caught_up = all(pos.next[tp.partition] >= end[tp] for tp in tps)
        return Page(records, pos.cursor(), caught_up, gap)

    async def _step_over_markers(
        self,
        c: AIOKafkaConsumer,
        tps: list[TopicPartition],
        pos: _Positions,
        batch: Mapping[TopicPartition, list[object]],
    ) -> None:
        # A partition the fetch returned nothing for may still have moved past transaction
        # markers; the consumer's position never passes a record it has not handed out.
        for tp in tps:
            if tp not in batch:
                here = await c.position(tp)
                if here > pos.next[tp.partition]:
                    pos.next[tp.partition] = here

    async def stream(
        self, wanted: Mapping[int, int], *, idle_s: float
    ) -> AsyncGenerator[Record | None, None]:
        """Every record after ``wanted``, for ever; ``None`` once the reader is open, then after
        each ``idle_s`` of silence."""
        async with self.pool.reader(ReadKind.STREAM, self.caller, self.state) as c:
            try:
                _, start, _, _ = await self._open(c, wanted)
                pos = _Positions(self.kind, start)
                yield None  # opened: a caller can await this before it commits to a response
                while True:
                    batch = await c.getmany(timeout_ms=int(idle_s * 1000), max_records=500)
                    if not batch:
                        yield None
                    for tp, recs in batch.items():
                        if tp.topic != self.topic:
                            continue  # a reused reader never hands over another topic's records
                        for r in recs:
                            yield _record(r, pos.advance(tp.partition, r.offset))
            except KafkaError as exc:
                raise self.kafka.unavailable(f"reading failed ({type(exc).__name__})") from None


def _record(r: Any, cursor: str) -> Record:
    # aiokafka's ConsumerRecord (untyped); a tombstone's value is None.
    return Record(r.partition, r.offset, r.timestamp, r.key, r.value or b"", cursor)
