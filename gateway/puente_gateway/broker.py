"""The gateway's Kafka edge: for each state it serves, Kafka clients as that state's gateway.

Each member state's gateway is its own Kafka principal, ``<prefix>-gateway-cc``, allowed only
CC's own topics (puente.kafka.plan): a gateway never reads or writes a topic of a state as any
principal but that state's gateway. A gateway serving one state (production) has one
:class:`StateKafka`; one serving several (the embedded default) has one per state, each with
its own credential — as a process hosting several nodes runs each as its own principal.

A state's producer is idempotent with ``acks=all`` (puente.kafka.clients) and is started
lazily, so the gateway starts and answers ``/healthz`` while Kafka is down; every request that
needs Kafka then gets a 503 with ``Retry-After`` within bounded time and nothing is
acknowledged. After a failed connect, requests are refused for ``kafka_cooldown_s`` without a
new attempt, so a dead broker does not turn every request into a connection attempt.

Consumers are plain ``read_committed`` consumers with ``assign()`` and no consumer group
(nothing is committed: a client's cursor is the only position). Feeds take them from the
reader pool (puente_gateway.pool), which reuses them; the shared state follows its topics with
one of its own (puente_gateway.shared). Where partitions begin and end is asked of one more
consumer that never fetches (:meth:`StateKafka.offsets`): a broker answers the requests of a
connection in order, so asking a reader whose long-poll fetch is pending waits for that fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from puente.config import GatewaySettings, Settings
from puente.errors import ConfigError
from puente.kafka.clients import KafkaAuthError, KafkaUnavailable, consumer, producer, start
from puente.kafka.connection import KafkaEndpoint, credential, resolve_endpoint
from puente.logs import get_logger
from puente.secrets import Credential
from puente.topics import Naming
from puente_gateway.errors import Unavailable

if TYPE_CHECKING:
    from puente_gateway.pool import ReaderPool

log = get_logger("gateway.kafka")


def gateway_credentials(settings: Settings, states: Iterable[str]) -> dict[str, Credential]:
    """Each state's gateway credential (``<prefix>-gateway-cc``) from the secrets directory;
    ConfigError naming the first one missing."""
    naming = Naming(settings.kafka.topic_prefix)
    return {s: credential(settings, naming.gateway_principal(s)) for s in states}


class StateKafka:
    """Producer and consumers of one state's gateway, as its own principal."""

    def __init__(
        self,
        state: str,
        naming: Naming,
        endpoint: KafkaEndpoint,
        cred: Credential,
        gateway: GatewaySettings,
    ) -> None:
        self.state = state
        self.naming = naming
        self.endpoint = endpoint
        self.cred = cred
        self.gw = gateway
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._failed_at = -1e9
        self._offsets: AIOKafkaConsumer | None = None
        self._offsets_lock = asyncio.Lock()

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
                log.warning("kafka connect failed", state=self.state, error=type(exc).__name__)
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
            log.warning("kafka reader failed to start", state=self.state, error=type(exc).__name__)
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

    async def close(self) -> None:
        """Flush and stop the producer; stop the offsets consumer."""
        await self._reset()
        offsets, self._offsets = self._offsets, None
        if offsets is not None:
            await offsets.stop()


class GatewayKafka:
    """The Kafka clients of one gateway process: a :class:`StateKafka` per state it serves,
    each as that state's gateway principal."""

    def __init__(
        self,
        settings: Settings,
        gateway: GatewaySettings,
        credentials: Mapping[str, Credential],
        *,
        endpoint: KafkaEndpoint | None = None,
    ) -> None:
        """``credentials``: each served state's gateway credential (see
        :func:`gateway_credentials`); at least one."""
        if not credentials:
            raise ConfigError("a gateway serves at least one state: no Kafka credential given")
        self.naming = Naming(settings.kafka.topic_prefix)
        # Kafka requests are bounded like the HTTP requests waiting on them.
        self.endpoint = replace(
            endpoint or resolve_endpoint(settings), request_timeout_s=gateway.produce_timeout_s
        )
        self.gw = gateway
        self.states: dict[str, StateKafka] = {
            state: StateKafka(state, self.naming, self.endpoint, cred, gateway)
            for state, cred in sorted(credentials.items())
        }
        self.readers: ReaderPool | None = None  # set by the app (puente_gateway.pool)

    def unavailable(self, message: str, reason: str = "KAFKA_UNAVAILABLE") -> Unavailable:
        """A 503 with this gateway's Retry-After."""
        return self.first.unavailable(message, reason)

    def of(self, state: str) -> StateKafka:
        """The clients of ``state``'s gateway; RuntimeError for a state this gateway does not
        serve (callers of such states are refused before any handler runs)."""
        found = self.states.get(state)
        if found is None:
            raise RuntimeError(f"this gateway holds no Kafka credential of {state}'s gateway")
        return found

    def of_topic(self, topic: str) -> StateKafka:
        """The clients of the state a per-state topic (``<prefix>.<kind>.CC``) belongs to: a
        state's topics are only ever read and written as that state's gateway."""
        return self.of(topic.rpartition(".")[2])

    @property
    def first(self) -> StateKafka:
        """The clients of the first state served: for what every state's gateway may read (the
        trust topic)."""
        return next(iter(self.states.values()))

    async def send(
        self, topic: str, value: bytes, *, key: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Any:
        """Produce one record to a state's topic as that state's gateway (see
        :meth:`StateKafka.send`)."""
        return await self.of_topic(topic).send(topic, value, key=key, headers=headers)

    async def ready(self) -> None:
        """A bounded metadata request as every state's gateway; Unavailable (503) if one
        fails."""
        await asyncio.gather(*(k.ready() for k in self.states.values()))

    def reader(self) -> AbstractAsyncContextManager[AIOKafkaConsumer]:
        """A reader for the gateway's own reads (the trust list), from the readers reserved for
        them, so that members' pages and streams can never leave the gateway without one."""
        if self.readers is None:
            raise RuntimeError("no reader pool: the app sets GatewayKafka.readers")
        return self.readers.internal()

    async def close(self) -> None:
        """Stop every state's clients."""
        for k in self.states.values():
            await k.close()


Follow = Callable[[AIOKafkaConsumer], Awaitable[None]]


class Following:
    """A background task that reads for ever as one state's gateway: ``follow`` gets a started
    consumer and returns only by raising; when Kafka fails (or anything else does: never die
    silently) the consumer is stopped, ``on_lost`` is called, and after the cooldown ``follow``
    starts again with a new one."""

    def __init__(
        self, kafka: StateKafka, follow: Follow, *, name: str, on_lost: Callable[[], None]
    ) -> None:
        self.kafka = kafka
        self.follow = follow
        self.name = name
        self.on_lost = on_lost
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start following in the background (retrying while Kafka is unreachable)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop following."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        cooldown = max(self.kafka.gw.kafka_cooldown_s, 0.5)
        while True:
            try:
                c = await self.kafka.consumer()
            except Unavailable:
                await asyncio.sleep(cooldown)
                continue
            try:
                await self.follow(c)
            except (KafkaError, OSError, TimeoutError, Unavailable) as exc:
                log.warning(
                    f"{self.name}: following failed",
                    state=self.kafka.state,
                    error=type(exc).__name__,
                )
            except Exception as exc:
                log.error(
                    f"{self.name}: follower error", state=self.kafka.state, error=type(exc).__name__
                )
            finally:
                self.on_lost()
                await c.stop()
            await asyncio.sleep(cooldown)
