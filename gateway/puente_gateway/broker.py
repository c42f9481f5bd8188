"""The gateway's Kafka edge: one shared producer as ``<prefix>-svc-gateway``, and consumers.

The producer is idempotent with ``acks=all`` (puente.kafka.clients) and is started lazily, so the
gateway starts and answers ``/healthz`` while Kafka is down; every request that needs Kafka then
gets a 503 with ``Retry-After`` within bounded time and nothing is acknowledged. After a failed
connect, requests are refused for ``kafka_cooldown_s`` without a new attempt, so a dead broker
does not turn every request into a connection attempt.

Consumers are plain ``read_committed`` consumers with ``assign()`` and no consumer group
(nothing is committed: a client's cursor is the only position). Feeds take them from the
reader pool (puente_gateway.pool), which reuses them; the shared state follows its topics with
one of its own (puente_gateway.shared). Where partitions begin and end is asked of one more
consumer that never fetches (:meth:`GatewayKafka.offsets`): a broker answers the requests of a
connection in order, so asking a reader whose long-poll fetch is pending waits for that fetch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from puente.config import GatewaySettings, Settings
from puente.kafka.clients import KafkaAuthError, KafkaUnavailable, consumer, producer, start
from puente.kafka.connection import KafkaEndpoint, credential, resolve_endpoint
from puente.logs import get_logger
from puente.secrets import Credential
from puente.topics import Naming
from puente_gateway.errors import Unavailable

if TYPE_CHECKING:
    from puente_gateway.pool import ReaderPool

log = get_logger("gateway.kafka")
SERVICE = "gateway"


class GatewayKafka:
    """Producer and readers of one gateway process."""

    def __init__(
        self,
        settings: Settings,
        gateway: GatewaySettings,
        *,
        endpoint: KafkaEndpoint | None = None,
        cred: Credential | None = None,
    ) -> None:
        self.naming = Naming(settings.kafka.topic_prefix)
        # Kafka requests are bounded like the HTTP requests waiting on them.
        self.endpoint = replace(
            endpoint or resolve_endpoint(settings), request_timeout_s=gateway.produce_timeout_s
        )
        self.cred = cred or credential(settings, self.naming.service_principal(SERVICE))
        self.gw = gateway
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._failed_at = -1e9
        self._offsets: AIOKafkaConsumer | None = None
        self._offsets_lock = asyncio.Lock()
        self.readers: ReaderPool | None = None  # set by the app (puente_gateway.pool)

    def unavailable(self, message: str, reason: str = "KAFKA_UNAVAILABLE") -> Unavailable:
        """A 503 with this gateway's Retry-After."""
        return Unavailable(message, retry_after_s=self.gw.retry_after_s, reason=reason)

    async def producer(self) -> AIOKafkaProducer:
        """The started producer; Unavailable (503) if Kafka cannot be reached now."""
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is not None:
                return self._producer
            if time.monotonic() - self._failed_at < self.gw.kafka_cooldown_s:
                raise self.unavailable("Kafka is not reachable; retry later")
            p = producer(self.endpoint, self.cred, max_batch_size=self.gw.max_batch_bytes)
            try:
                await asyncio.wait_for(
                    start(p, self.endpoint, self.cred), timeout=self.gw.produce_timeout_s
                )
            except (KafkaUnavailable, KafkaAuthError, KafkaError, OSError, TimeoutError) as exc:
                self._failed_at = time.monotonic()
                log.warning("kafka connect failed", error=type(exc).__name__)
                await p.stop()
                raise self.unavailable("Kafka is not reachable; retry later") from None
            self._producer = p
            return p

    async def send(
        self, topic: str, value: bytes, *, key: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Any:
        """Produce one record and wait for the acknowledgement (acks=all); RecordMetadata.

        Unavailable (503) when it is not acknowledged within ``produce_timeout_s``: the record
        may still reach Kafka later, which a retry under the same id makes harmless.
        """
        p = await self.producer()
        try:
            # asyncio.timeout, not wait_for: no extra task per request on the hot path. A
            # cancelled delivery future is harmless (aiokafka skips futures already done).
            async with asyncio.timeout(self.gw.produce_timeout_s):
                fut = await p.send(topic, value, key=key, headers=list(headers))
                return await fut
        except TimeoutError:
            log.warning("produce not acknowledged in time", topic=topic)
            raise self.unavailable("Kafka did not acknowledge in time; retry later") from None
        except KafkaError as exc:
            log.warning("produce failed", topic=topic, error=type(exc).__name__)
            await self._reset()
            raise self.unavailable(f"Kafka refused the record ({type(exc).__name__})") from None

    async def _reset(self) -> None:
        async with self._lock:
            p, self._producer = self._producer, None
        if p is not None:
            await p.stop()

    async def partitions(self, topic: str) -> list[int]:
        """Partition ids of ``topic`` (from the producer's metadata)."""
        p = await self.producer()
        try:
            parts = await asyncio.wait_for(
                p.partitions_for(topic), timeout=self.gw.produce_timeout_s
            )
        except (TimeoutError, KafkaError) as exc:
            raise self.unavailable(f"no metadata for the topic ({type(exc).__name__})") from None
        return sorted(parts)

    async def ready(self) -> None:
        """A bounded metadata request to the cluster; Unavailable (503) if it fails."""
        p = await self.producer()
        try:
            await asyncio.wait_for(p.client.fetch_all_metadata(), timeout=self.gw.ready_timeout_s)
        except (TimeoutError, KafkaError) as exc:
            raise self.unavailable(
                f"Kafka metadata request failed ({type(exc).__name__})"
            ) from None

    async def consumer(self) -> AIOKafkaConsumer:
        """A started read_committed consumer without a group; Unavailable (503) if Kafka cannot
        be reached now. Its fetches are bounded so that many open readers stay small."""
        c = consumer(
            self.endpoint,
            self.cred,
            group_id=None,
            fetch_max_bytes=self.gw.reader_fetch_bytes,
            max_partition_fetch_bytes=self.gw.reader_fetch_bytes,
            # A broker answers a connection's requests in order: a short long-poll lets a
            # reused reader's next request (a seek's fetch, offsets) wait at most this long.
            fetch_max_wait_ms=self.gw.reader_fetch_wait_ms,
        )
        try:
            await asyncio.wait_for(
                start(c, self.endpoint, self.cred), timeout=self.gw.produce_timeout_s
            )
        except (KafkaUnavailable, KafkaAuthError, KafkaError, OSError, TimeoutError) as exc:
            log.warning("kafka reader failed to start", error=type(exc).__name__)
            await c.stop()
            raise self.unavailable("Kafka is not reachable; retry later") from None
        return c

    async def offsets(self) -> AIOKafkaConsumer:
        """The consumer to ask for beginning and end offsets: started once, never assigned, so
        it never has a fetch pending; Unavailable (503) if it cannot be started now."""
        if self._offsets is None:
            async with self._offsets_lock:
                if self._offsets is None:
                    self._offsets = await self.consumer()
        return self._offsets

    def reader(self) -> AbstractAsyncContextManager[AIOKafkaConsumer]:
        """A reader for the gateway's own reads (the trust list), from the readers reserved for
        them, so that members' pages and streams can never leave the gateway without one."""
        if self.readers is None:
            raise RuntimeError("no reader pool: the app sets GatewayKafka.readers")
        return self.readers.internal()

    async def close(self) -> None:
        """Flush and stop the producer; stop the offsets consumer."""
        await self._reset()
        offsets, self._offsets = self._offsets, None
        if offsets is not None:
            await offsets.stop()
