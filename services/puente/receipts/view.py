"""Reading the trackers' tracks back from Kafka: for ``puente receipts status``, ``puente
receipts ack``, ``GET /v1/receipts/status`` and the tracker's own restore.

``tracker.<CC>`` holds the deliveries CC sent (written by CC's tracker), ``due.<CC>`` the ones
CC received (written by each origin's tracker); both are compacted and keyed by delivery id, so
reading one to its end (read_committed) gives each delivery's newest state. A state's own
principal reads exactly its two topics: the pairs it is part of, never another.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from puente.codec.errors import DecodeError
from puente.codec.registry import Registry
from puente.errors import PuenteError
from puente.logs import get_logger
from puente.receipts.track import Track
from puente.topics import DUE, TRACKER, Naming

log = get_logger("receipts.view")


def status_topics(naming: Naming, states: Iterable[str]) -> list[str]:
    """The topics holding the pairs of ``states``: each one's ``tracker`` and ``due`` topic."""
    return [naming.topic(kind, s) for s in states for kind in (TRACKER, DUE)]


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


async def read_to_end(
    c: AIOKafkaConsumer, tps: list[TopicPartition]
) -> dict[bytes, tuple[TopicPartition, bytes | None, int]]:
    """Every key of ``tps`` with its newest value (None: a tombstone), read with ``c`` from the
    beginning to the end offsets of now: key → (partition, value, broker timestamp)."""
    newest: dict[bytes, tuple[TopicPartition, bytes | None, int]] = {}
    if not tps:
        return newest
    c.assign(tps)
    await c.seek_to_beginning(*tps)
    ends = await c.end_offsets(tps)
    remaining = {tp for tp in tps if ends[tp] > 0}
    while remaining:
        got = await c.getmany(*remaining, timeout_ms=1000)
        for tp, messages in got.items():
            for m in messages:
                newest[m.key or b""] = (tp, m.value, m.timestamp)
        for tp in list(remaining):
            if await c.position(tp) >= ends[tp]:
                remaining.discard(tp)
    return newest


def decode_tracks(registry: Registry, values: Iterable[bytes | None]) -> tuple[list[Track], int]:
    """The tracks among ``values`` and how many did not decode (skipped, logged)."""
    tracks, bad = [], 0
    for value in values:
        if value is None:
            continue
        try:
            tracks.append(Track.decode(registry, value))
        except (DecodeError, PuenteError, ValueError, KeyError, TypeError) as exc:
            bad += 1
            log.warning("receipts.track_undecodable", error=type(exc).__name__)
    return tracks, bad


async def read_tracks(
    c: AIOKafkaConsumer, registry: Registry, topics: Iterable[str]
) -> list[Track]:
    """The newest state of every delivery in ``topics`` (read with ``c``, a started consumer
    without an assignment), one per delivery id."""
    newest = await read_to_end(c, await topic_partitions(c, topics))
    tracks, _ = decode_tracks(registry, (v for _, v, _ in newest.values()))
    by_id = {t.delivery_id: t for t in tracks}  # a delivery is in its origin's and recipient's
    return list(by_id.values())
