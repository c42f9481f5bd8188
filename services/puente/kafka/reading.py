"""Reading topics with a consumer: their partitions, every key's newest value (the way a
compacted state topic is restored), and where to start following one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from puente.errors import PuenteError


async def topic_partitions(c: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics`` (from the cluster's metadata, as ``c`` may see it)."""
    # One metadata request: what the principal may describe, as it is now (aiokafka's public
    # partitions_for_topic only knows topics the consumer already tracks).
    cluster = await c._client.fetch_all_metadata()
    out = []
    for topic in topics:
        parts = cluster.partitions_for_topic(topic)
        if not parts:
            raise PuenteError(
                f"topic {topic} does not exist or this principal may not read it",
                hint="provision it (puente kafka provision) and check the principal's ACLs",
                reason="TOPIC_UNAVAILABLE",
            )
        out += [TopicPartition(topic, p) for p in sorted(parts)]
    return out


async def records_to_end(
    c: AIOKafkaConsumer, tps: list[TopicPartition]
) -> AsyncIterator[tuple[TopicPartition, ConsumerRecord[bytes, bytes]]]:
    """Every record of ``tps``, read with ``c`` from the beginning to the end offsets of now
    (in offset order within a partition)."""
    if not tps:
        return
    c.assign(tps)
    await c.seek_to_beginning(*tps)
    ends = await c.end_offsets(tps)
    remaining = {tp for tp in tps if ends[tp] > 0}
    while remaining:
        got = await c.getmany(*remaining, timeout_ms=1000)
        for tp, messages in got.items():
            for m in messages:
                yield tp, m
        for tp in list(remaining):
            if await c.position(tp) >= ends[tp]:
                remaining.discard(tp)


async def read_to_end(
    c: AIOKafkaConsumer, tps: list[TopicPartition]
) -> dict[bytes, tuple[TopicPartition, bytes | None, int]]:
    """Every key of ``tps`` with its newest value (None: a tombstone), read with ``c`` from the
    beginning to the end offsets of now: key → (partition, value, broker timestamp)."""
    newest: dict[bytes, tuple[TopicPartition, bytes | None, int]] = {}
    async for tp, m in records_to_end(c, tps):
        newest[m.key or b""] = (tp, m.value, m.timestamp)
    return newest


async def read_all(c: AIOKafkaConsumer, tps: list[TopicPartition]) -> list[bytes]:
    """Every value of ``tps`` (tombstones left out), read with ``c`` from the beginning to the
    end offsets of now, in offset order within a partition."""
    return [m.value async for _, m in records_to_end(c, tps) if m.value is not None]


async def caught_up(c: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
    """Whether ``c`` has read every partition of ``tps`` up to its end offset of now."""
    ends = await c.end_offsets(tps)
    for tp in tps:
        if await c.position(tp) < ends[tp]:
            return False
    return True


async def seek_to_beginnings(c: AIOKafkaConsumer, tps: Iterable[TopicPartition]) -> None:
    """Each of ``tps`` (assigned to ``c``) at its first offset of now, at once.

    Not ``seek_to_beginning`` once per partition: each call waits for an offset reset that
    the consumer's fetcher runs between two of its fetches, and a fetch the broker holds while
    nothing is new lasts ``fetch_max_wait_ms`` (2 s for a witness): twenty witnesses took 14 s
    to be positioned on 8 partitions each."""
    wanted = list(tps)
    if wanted:
        for tp, offset in (await c.beginning_offsets(wanted)).items():
            c.seek(tp, offset)


async def resume(c: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
    """Assign ``tps`` to ``c`` (a group's consumer), each at the group's committed position,
    else at its beginning."""
    c.assign(tps)
    committed = await asyncio.gather(*(c.committed(tp) for tp in tps))
    for tp, offset in zip(tps, committed, strict=True):
        if offset is not None:
            c.seek(tp, offset)
    await seek_to_beginnings(c, [tp for tp, o in zip(tps, committed, strict=True) if o is None])


async def seek_back(
    c: AIOKafkaConsumer, tps: list[TopicPartition], lookback_s: float | None
) -> int | None:
    """Assign ``tps`` to ``c`` (without a group), each at its first record written in the last
    ``lookback_s`` seconds (its end when there is none), or at its beginning when
    ``lookback_s`` is None; the write time it starts from (Unix ms), None for the beginning."""
    c.assign(tps)
    if lookback_s is None:
        await c.seek_to_beginning(*tps)
        return None
    since_ms = int(time.time() * 1000) - int(lookback_s * 1000)
    found = await c.offsets_for_times({tp: since_ms for tp in tps})
    ends = await c.end_offsets(tps)
    for tp in tps:
        at = found.get(tp)
        c.seek(tp, at.offset if at is not None else ends[tp])
    return since_ms
