"""The trust topic as a trust-list source: the newest signed list, read as any principal.

The operator publishes each signed trust list under the key ``trust-list`` of the compacted
``<prefix>.trust`` topic (one partition); every member, service and auditor may read it. A
:class:`TrustTopicReader` keeps one consumer (no group, read_committed) and reads the last few
records on each call, so a verifier refreshing every few seconds costs one fetch, not a login.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from puente.evidence.trust import TRUST_LIST_KEY
from puente.kafka.clients import consumer, start
from puente.kafka.connection import KafkaEndpoint
from puente.secrets import Credential
from puente.topics import TRUST, Naming

_TAIL = 8  # records read back from the end: the last offset may be a transaction marker


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
        async with self._lock:
            if self._consumer is None:
                c = consumer(self.endpoint, self.cred, client_id=f"{self.cred.username}-trust")
                await start(c, self.endpoint, self.cred)
                c.assign([self.tp])
                self._consumer = c
            try:
                return await self._read(self._consumer)
            except Exception:
                await self.close()  # a broken consumer is replaced on the next call
                raise

    async def _read(self, c: AIOKafkaConsumer) -> bytes | None:
        tp = self.tp
        begin = (await c.beginning_offsets([tp]))[tp]
        end = (await c.end_offsets([tp]))[tp]
        if end <= begin:
            return None
        c.seek(tp, max(begin, end - _TAIL))
        newest: bytes | None = None
        deadline = time.monotonic() + self.timeout_s
        while await c.position(tp) < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the trust topic did not answer within {self.timeout_s} s")
            batch = await c.getmany(tp, timeout_ms=200)
            for r in batch.get(tp, []):
                if r.key == TRUST_LIST_KEY and r.value is not None:
                    newest = r.value
        return newest
