"""Reading the trackers' tracks back from Kafka: for ``puente receipts status``, ``puente
receipts ack``, ``GET /v1/receipts/status`` and the tracker's own restore.

``tracker.<CC>`` holds the deliveries CC sent (written by CC's tracker), ``due.<CC>`` the ones
CC received (written by each origin's tracker); both are compacted and keyed by delivery id, so
reading one to its end (read_committed) gives each delivery's newest state. A state's own
principal reads exactly its two topics: the pairs it is part of, never another.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer

from puente.codec.errors import DecodeError
from puente.codec.registry import Registry
from puente.errors import PuenteError
from puente.kafka.reading import read_to_end, topic_partitions
from puente.logs import get_logger
from puente.receipts.track import Track
from puente.topics import DUE, TRACKER, Naming

log = get_logger("receipts.view")


def status_topics(naming: Naming, states: Iterable[str]) -> list[str]:
    """The topics holding the pairs of ``states``: each one's ``tracker`` and ``due`` topic."""
    return [naming.topic(kind, s) for s in states for kind in (TRACKER, DUE)]


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
