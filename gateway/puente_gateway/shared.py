"""What every replica of a state's gateway shares: agency tokens, their revocations, and first
answers.

Each state has two topics of its own (puente.topics), which only its gateway's principal may
read or write: ``gateway-tokens.CC``, compacted (one record per token id; a revocation is a
newer record), and ``gateway-answers.CC`` (one entry per notice or receipt id, kept as long as
a retry may come). Every replica follows both from the beginning into its
:class:`~puente_gateway.tokens.TokenTable` and :class:`~puente_gateway.ledger.Ledger`, and
writes with ``acks=all``. Nothing is kept on a local disk, so a replica may run on a read-only
file system and a new replica knows every token at once. A gateway serving several states
follows each state's topics as that state's gateway (one :class:`Follower` each) and takes
from a state's topics only records of that state.

How current a replica is, stated and enforced: every ``sync_interval_s`` a follower asks
for its topics' end offsets and reads up to them; the time it asked is ``synced_at``. Every
record acknowledged before that instant is applied. A replica that could not confirm it is
current (for every state it serves) for longer than ``max_lag_s`` refuses token callers (503)
rather than risk accepting a revoked token: so a revocation takes effect on every replica
within ``max_lag_s``. A notice or receipt id this replica has not seen waits for one more
round of its state's follower (:meth:`SharedState.sync`) before it counts as new, so a retry on
another replica finds the first answer once it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from puente.kafka.reading import seek_to_beginnings
from puente.logs import get_logger
from puente.topics import GATEWAY_ANSWERS, GATEWAY_TOKENS
from puente_gateway.broker import Following, GatewayKafka, StateKafka
from puente_gateway.clock import now_ms
from puente_gateway.errors import Unavailable
from puente_gateway.ledger import Entry, Ledger
from puente_gateway.tokens import TokenRecord, TokenTable

log = get_logger("gateway.shared")
# (partition, offset, key, value) of one record of the handler's topic
Apply = Callable[[int, int, bytes | None, bytes | None], None]
_PURGE_EVERY_S = 60.0
_NEVER = float("-inf")


class Follower:
    """Reads topics from their beginning for ever, applying every record, and knows up to when
    it has read everything that was acknowledged."""

    def __init__(
        self,
        kafka: StateKafka,
        handlers: Mapping[str, Apply],
        *,
        interval_s: float,
        timeout_s: float,
    ) -> None:
        self.kafka = kafka
        self.handlers = dict(handlers)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.synced_at = _NEVER  # monotonic time of the last confirmed catch-up
        self._positions: dict[TopicPartition, int] = {}
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []
        self._wanted = asyncio.Event()
        self._following = Following(kafka, self._follow, name="shared state", on_lost=lambda: None)

    def start(self) -> None:
        """Start following in the background (retrying while Kafka is unreachable)."""
        self._following.start()

    async def stop(self) -> None:
        """Stop following."""
        await self._following.stop()

    def lag_s(self) -> float:
        """Seconds since the last confirmed catch-up (infinite before the first)."""
        return time.monotonic() - self.synced_at

    async def sync(self) -> None:
        """Return once every record acknowledged before this call has been applied;
        Unavailable (503) if that cannot be confirmed within ``timeout_s``."""
        asked = time.monotonic()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((asked, fut))
        self._wanted.set()
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout=self.timeout_s)
        except TimeoutError:
            raise self.kafka.unavailable(
                "the gateway cannot confirm its shared state is current; retry later"
            ) from None
        finally:
            if not fut.done():
                fut.cancel()

    async def _follow(self, c: AIOKafkaConsumer) -> None:
        tps = [
            TopicPartition(topic, p)
            for topic in self.handlers
            for p in await self.kafka.partitions(topic)
        ]
        c.assign(tps)
        for tp in tps:
            if tp in self._positions:
                c.seek(tp, self._positions[tp])
        await seek_to_beginnings(c, [tp for tp in tps if tp not in self._positions])
        while True:
            began = time.monotonic()
            self._wanted.clear()
            # Asked of the consumer that never fetches: this one's pending long-poll would
            # hold the request up on its connection.
            offsets = await self.kafka.offsets()
            ends = await asyncio.wait_for(offsets.end_offsets(tps), timeout=self.timeout_s)
            while not await self._reached(c, ends):
                self._apply(await c.getmany(timeout_ms=int(self.timeout_s * 1000)))
            self._synced(began)
            await self._idle(c, began + self.interval_s)

    async def _reached(self, c: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            position = await c.position(tp)
            self._positions[tp] = position
            if position < end:
                return False
        return True

    async def _idle(self, c: AIOKafkaConsumer, until: float) -> None:
        """Apply what arrives until the next round is due or someone waits for one."""
        while not self._wanted.is_set() and (left := until - time.monotonic()) > 0:
            get = asyncio.ensure_future(c.getmany(timeout_ms=max(1, int(left * 1000))))
            want = asyncio.ensure_future(self._wanted.wait())
            done, _ = await asyncio.wait({get, want}, return_when=asyncio.FIRST_COMPLETED)
            want.cancel()
            if get in done:
                self._apply(get.result())
            else:
                # Safe: aiokafka keeps fetched records buffered until a getmany drains them.
                get.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await get

    def _apply(self, batch: Mapping[TopicPartition, list[Any]]) -> None:
        for tp, records in batch.items():
            handler = self.handlers.get(tp.topic)
            if handler is None:
                continue
            for r in records:
                handler(tp.partition, r.offset, r.key, r.value)

    def _synced(self, began: float) -> None:
        self.synced_at = began
        keep = []
        for asked, fut in self._waiters:
            if asked <= began:
                if not fut.done():
                    fut.set_result(None)
            elif not fut.done():
                keep.append((asked, fut))
        self._waiters = keep


class SharedState:
    """Tokens and first answers every replica shares, and the writes that change them."""

    def __init__(
        self,
        kafka: GatewayKafka,
        *,
        ttl_s: int,
        max_lag_s: float,
        interval_s: float,
        max_entries: int = 250_000,
        tokens_only: bool = False,
    ) -> None:
        self.kafka = kafka
        self.tokens = TokenTable()
        self.ledger = Ledger(ttl_s=ttl_s, max_entries=max_entries)
        self.max_lag_s = max_lag_s
        naming = kafka.naming
        states = sorted(kafka.states)  # every state it serves, each as its own gateway
        self.tokens_topics = {s: naming.topic(GATEWAY_TOKENS, s) for s in states}
        self.answers_topics = {s: naming.topic(GATEWAY_ANSWERS, s) for s in states}
        self.followers: dict[str, Follower] = {}
        for state in states:
            handlers: dict[str, Apply] = {self.tokens_topics[state]: self._on_token(state)}
            if not tokens_only:
                handlers[self.answers_topics[state]] = self._on_answer(state)
            self.followers[state] = Follower(
                kafka.of(state),
                handlers,
                interval_s=interval_s,
                timeout_s=kafka.gw.produce_timeout_s,
            )
        self._purged = time.monotonic()

    def start(self) -> None:
        """Start following the shared topics."""
        for follower in self.followers.values():
            follower.start()

    async def stop(self) -> None:
        """Stop following them."""
        for follower in self.followers.values():
            await follower.stop()

    def lag_s(self) -> float:
        """Seconds since the least current state was last confirmed current."""
        return max(f.lag_s() for f in self.followers.values())

    def current(self) -> bool:
        """Whether this replica confirmed within ``max_lag_s`` that it knows every record of
        every state it follows."""
        return self.lag_s() <= self.max_lag_s

    async def sync(self, state: str | None = None) -> None:
        """Wait until every record of ``state``'s shared state (default: every state's)
        acknowledged before now is applied (503 if it cannot)."""
        if state is not None:
            await self._follower(state).sync()
            return
        await asyncio.gather(*(f.sync() for f in self.followers.values()))

    async def loaded(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the first complete read; whether it happened."""
        try:
            await asyncio.wait_for(self.sync(), timeout=timeout_s)
        except (TimeoutError, Unavailable):
            return False
        return True

    def answer(self, state: str, key: str) -> Entry | None:
        """The first answer ``state``'s gateway gave under ``key`` (``notice:<id>``,
        ``receipt:<id>``), if it is younger than the TTL."""
        return self.ledger.get(_ledger_key(state, key), now_ms=now_ms())

    async def put_token(self, record: TokenRecord) -> None:
        """Publish a token record to its state's topic (acks=all) and apply it."""
        self._follower(record.state)
        topic = self.tokens_topics[record.state]
        md = await self.kafka.send(topic, record.value(), key=record.key(), headers=())
        self.tokens.apply(record)
        log.info("token record written", token_id=record.id, partition=md.partition)

    async def put_answer(self, key: str, entry: Entry) -> None:
        """Publish a first answer to its state's topic (acks=all) and apply it."""
        self._follower(entry.state)
        topic = self.answers_topics[entry.state]
        md = await self.kafka.send(topic, entry.value(), key=key.encode(), headers=())
        self.ledger.apply(
            _ledger_key(entry.state, key), entry, (md.partition, md.offset), now_ms=now_ms()
        )

    def _follower(self, state: str) -> Follower:
        found = self.followers.get(state)
        if found is None:
            raise RuntimeError(f"this gateway does not keep {state}'s shared state")
        return found

    def _on_token(self, state: str) -> Apply:
        def apply(partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
            if value is None:
                return  # no one deletes tokens; a tombstone is ignored
            try:
                record = TokenRecord.from_value(value)
            except ValueError as exc:
                _skipped("token record", state, partition, offset, str(exc))
                return
            if key != record.key() or record.state != state:
                log.warning("token record under a foreign key skipped", state=state, offset=offset)
                return
            self.tokens.apply(record)

        return apply

    def _on_answer(self, state: str) -> Apply:
        def apply(partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
            if value is None or key is None:
                return
            try:
                entry = Entry.from_value(value)
                name = key.decode("ascii")
            except (ValueError, UnicodeDecodeError) as exc:
                _skipped("ledger entry", state, partition, offset, str(exc))
                return
            if entry.state != state:
                log.warning("ledger entry of another state skipped", state=state, offset=offset)
                return
            now = now_ms()
            self.ledger.apply(_ledger_key(state, name), entry, (partition, offset), now_ms=now)
            if time.monotonic() - self._purged > _PURGE_EVERY_S:
                self._purged = time.monotonic()
                self.ledger.purge(now_ms=now)

        return apply


def _skipped(what: str, state: str, partition: int, offset: int, error: str) -> None:
    log.warning(f"{what} skipped", state=state, partition=partition, offset=offset, error=error)


def _ledger_key(state: str, key: str) -> str:
    # Each state's ids are its own: the same notice id of two states are two entries.
    return f"{state}/{key}"
