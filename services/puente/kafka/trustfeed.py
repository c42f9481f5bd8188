"""The trust topic as a trust-list source: the newest signed list, and every list it keeps,
read as any principal.

The operator publishes each signed trust list under its own key ``trust-list/<serial>`` and then
under ``trust-list`` on the compacted ``<prefix>.trust`` topic (one partition); every member,
service and auditor may read it. Compaction keeps the newest value of each key: the newest list,
and every list ever published (the chain a verifier holding an old anchor follows). A
:class:`TrustTopicReader` keeps one consumer (no group, read_committed) and reads the last few
records on each call, so a verifier refreshing every few seconds costs one fetch, not a login;
the whole topic only when asked for the chain (:meth:`TrustTopicReader.history`).
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from puente.evidence.trust import TRUST_HISTORY_PREFIX, TRUST_LIST_KEY
from puente.kafka.clients import consumer, start
from puente.kafka.connection import KafkaEndpoint
from puente.secrets import Credential
from puente.topics import TRUST, Naming

NEWEST_TAIL = 8  # records read back from the end: the last offset may be a transaction marker


class TrustTopicReader:
    """Reads the newest trust list from the trust topic. Use as ``async with``, or call
    :meth:`close`; the consumer is opened on first use."""

    def __init__(
        self, endpoint: KafkaEndpoint, credential: Credential, naming: Naming, *, timeout_s: float
    ) -> None:
        self.endpoint = endpoint
        self.cred = credential
        self.tp = TopicPartition(naming.topic(TRUST), 0)
        self.timeout_s = timeout_s
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> TrustTopicReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the consumer (a later :meth:`newest` opens a new one)."""
        if self._consumer is not None:
            c, self._consumer = self._consumer, None
            await c.stop()

    async def newest(self) -> bytes | None:
        """The newest value under the trust-list key, or None if the topic holds none."""
        return newest_list(await self._records(NEWEST_TAIL))

    async def history(self) -> list[bytes]:
        """Every list the topic keeps (each under its serial's key), in offset order."""
        return history_lists(await self._records(None))

    async def _records(self, tail: int | None) -> list[tuple[bytes, bytes]]:
        async with self._lock:
            if self._consumer is None:
                c = consumer(self.endpoint, self.cred, client_id=f"{self.cred.username}-trust")
                await start(c, self.endpoint, self.cred)
                c.assign([self.tp])
                self._consumer = c
            try:
                return await trust_records(self._consumer, self.tp, tail, self.timeout_s)
            except Exception:
                await self.close()  # a broken consumer is replaced on the next call
                raise


async def trust_records(
    c: AIOKafkaConsumer, tp: TopicPartition, tail: int | None, timeout_s: float
) -> list[tuple[bytes, bytes]]:
    """(key, value) of the trust topic's records (``c`` assigned to ``tp``), from ``tail``
    records before its end (None: from its beginning) to its end now; TimeoutError when that
    takes over ``timeout_s``."""
    begin = (await c.beginning_offsets([tp]))[tp]
    end = (await c.end_offsets([tp]))[tp]
    if end <= begin:
        return []
    c.seek(tp, begin if tail is None else max(begin, end - tail))
    out: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + timeout_s
    while await c.position(tp) < end:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the trust topic did not answer within {timeout_s} s")
        batch = await c.getmany(tp, timeout_ms=200)
        out += [(r.key, r.value) for r in batch.get(tp, []) if r.key and r.value is not None]
    return out


def newest_list(records: list[tuple[bytes, bytes]]) -> bytes | None:
    """The last value under the trust-list key."""
    return next((v for k, v in reversed(records) if k == TRUST_LIST_KEY), None)


def history_lists(records: list[tuple[bytes, bytes]]) -> list[bytes]:
    """The values under each list's own key (``trust-list/<serial>``)."""
    return [v for k, v in records if k.startswith(TRUST_HISTORY_PREFIX)]
