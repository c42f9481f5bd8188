"""The life of a keyed, exactly-once service on Kafka (a receipt tracker, a witness): it follows
the trust list while it runs, and runs sessions — fence the last instance, restore its state,
loop in transactions — restarting a failed one from the committed state after a pause, until
told to stop or fenced."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import ClassVar, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from puente.errors import PuenteError
from puente.evidence.trustsource import Fetch, TrustTracker, follow
from puente.kafka.clients import consumer, producer, start
from puente.kafka.connection import KafkaEndpoint
from puente.secrets import Credential


@dataclass
class Clients:
    """One session's clients: the transactional producer (started: earlier instances are
    fenced), the reader that restores state (started) and the group's consumer (started by
    :meth:`restored`)."""

    endpoint: KafkaEndpoint
    cred: Credential
    producer: AIOKafkaProducer
    reader: AIOKafkaConsumer
    main: AIOKafkaConsumer

    async def restored(self) -> AIOKafkaConsumer:
        """Done restoring: the reader stops, the group's consumer starts."""
        await self.reader.stop()
        await start(self.main, self.endpoint, self.cred)
        return self.main


@contextlib.asynccontextmanager
async def session_clients(
    endpoint: KafkaEndpoint,
    cred: Credential,
    *,
    group: str,
    client_id: str,
    restore_client_id: str,
    max_poll_records: int,
    fetch_max_wait_ms: int = 500,
) -> AsyncIterator[Clients]:
    """The clients of one session of the service whose group and transactional id is
    ``group``, all stopped when it ends. ``fetch_max_wait_ms``: how long the broker holds the
    group consumer's fetch while nothing is new (it answers as soon as a record is: a longer
    wait costs no latency, only fewer idle requests)."""
    prod = producer(endpoint, cred, transactional_id=group, client_id=client_id)
    await start(prod, endpoint, cred)  # init_transactions: fences the last one
    reader = consumer(endpoint, cred, client_id=restore_client_id)
    main = consumer(
        endpoint,
        cred,
        group_id=group,
        client_id=client_id,
        max_poll_records=max_poll_records,
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    try:
        await start(reader, endpoint, cred)
        yield Clients(endpoint, cred, prod, reader, main)
    finally:
        for client in (reader, main, prod):
            with contextlib.suppress(Exception):
                await client.stop()


class SessionConfig(Protocol):
    """What a session service's configuration has."""

    @property
    def max_batch(self) -> int: ...  # records per poll

    @property
    def trust_refresh_s(self) -> float: ...

    @property
    def retry_s(self) -> float: ...  # after a failed session, before restoring and resuming


class SessionService:
    """A keyed, exactly-once service (one instance per key: the transactional id ``group``).
    Subclasses set the attributes and implement :meth:`_restore`, :meth:`_loop` and
    :meth:`_failed`; ``fenced`` is the error that ends :meth:`run` for good."""

    fenced: ClassVar[type[Exception]]
    fetch_max_wait_ms: ClassVar[int] = 500  # the broker's hold of an idle fetch
    endpoint: KafkaEndpoint
    cred: Credential
    group: str
    client_id: str
    instance: str
    trust: TrustTracker
    trust_sources: tuple[Fetch, ...]
    config: SessionConfig

    async def run(self, stop: asyncio.Event) -> None:
        """Run sessions until ``stop`` is set, following the trust list. A session that fails
        (Kafka, a Puente error, the network) is reported to :meth:`_failed` and started again
        from the committed state after ``retry_s``; :attr:`fenced` ends it all."""
        if self.trust_sources:
            await self.trust.refresh(self.trust_sources)
        following = asyncio.create_task(
            follow(
                self.trust, self.trust_sources, interval_s=self.config.trust_refresh_s, stop=stop
            )
        )
        try:
            while not stop.is_set():
                try:
                    await self._session(stop)
                except self.fenced:
                    raise
                except (KafkaError, PuenteError, OSError) as exc:
                    self._failed(exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.config.retry_s)
        finally:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)

    async def _session(self, stop: asyncio.Event) -> None:
        """Fence earlier instances, restore, then loop until ``stop``."""
        async with session_clients(
            self.endpoint,
            self.cred,
            group=self.group,
            client_id=self.client_id,
            restore_client_id=f"{self.instance}-restore",
            max_poll_records=self.config.max_batch,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
        ) as clients:
            await self._restore(clients.reader)
            main = await clients.restored()
            await self._loop(stop, clients.producer, main)

    async def _restore(self, reader: AIOKafkaConsumer) -> None:
        raise NotImplementedError

    async def _loop(
        self, stop: asyncio.Event, prod: AIOKafkaProducer, main: AIOKafkaConsumer
    ) -> None:
        raise NotImplementedError

    def _failed(self, exc: Exception) -> None:
        raise NotImplementedError
