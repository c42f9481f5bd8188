"""Kafka readers for the feeds: admitted so that no member can starve another, and reused.

A page holds a reader for at most its long-poll; an event stream holds one for as long as the
client stays. Without limits one token could open every reader with streams, after which every
state's pages would be refused. :class:`Admission` (pure) decides who gets a reader:

- every state the gateway serves has ``reserve_per_state`` readers only its pages may use, and
  the gateway keeps ``internal`` readers for itself (the trust-list refresh), so each state can
  always read a page and the trust list can always be refreshed;
- the rest is shared: streams only ever take shared readers, pages take one when their state's
  reserve is in use;
- a caller may hold at most ``streams_per_caller`` streams and ``pages_per_caller`` pages at a
  time, a state (all its agencies together) ``streams_per_state`` and ``pages_per_state``.

Going over a caller's or state's limit is the caller's doing: ``429 TOO_MANY_STREAMS`` or
``TOO_MANY_READS`` with Retry-After. No shared reader left is ``503 BUSY``.

:class:`ReaderPool` keeps up to ``max_idle`` started consumers for reuse: a page then costs an
``assign`` and a seek instead of a new SCRAM-authenticated connection and its metadata. A
reader is a consumer of the state it reads for, as that state's gateway principal
(puente_gateway.broker), and is reused for that state only; the gateway's own reads (the trust
topic) use the first served state's. Offsets (where a partition begins and ends) are asked of
the state's consumer that never fetches (:meth:`StateKafka.offsets`).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from enum import Enum

from aiokafka import AIOKafkaConsumer

from puente.errors import ConfigError
from puente.logs import get_logger
from puente_gateway.broker import GatewayKafka
from puente_gateway.errors import RateLimited, Unavailable
from puente_gateway.metrics import GatewayMetrics

log = get_logger("gateway.pool")


class ReadKind(Enum):
    """What a reader is held for."""

    PAGE = "page"
    STREAM = "stream"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Limits:
    """How many readers, and who may hold how many."""

    total: int
    reserve_per_state: int
    streams_per_caller: int
    streams_per_state: int
    pages_per_caller: int
    pages_per_state: int
    internal: int = 1


@dataclass(frozen=True)
class Ticket:
    """One admitted reader: returned to :meth:`Admission.release`."""

    kind: ReadKind
    caller: str
    state: str
    reserved: bool  # from the state's (or the gateway's) reserve, not the shared readers


class Admission:
    """Who may hold a reader now (no I/O)."""

    def __init__(self, limits: Limits, members: Iterable[str], *, retry_after_s: int) -> None:
        self.limits = limits
        self.members = frozenset(members)
        self.retry_after_s = retry_after_s
        self.shared = limits.total - limits.internal - limits.reserve_per_state * len(self.members)
        if self.shared < 1:
            raise ConfigError(
                f"max_readers {limits.total} leaves no shared reader after the reserves "
                f"({limits.reserve_per_state} per state x {len(self.members)} states + "
                f"{limits.internal} for the gateway)",
                hint="raise PUENTE_GATEWAY__MAX_READERS or lower _READER_RESERVE_PER_STATE",
            )
        self.shared_in_use = 0
        self.internal_in_use = 0
        self._held: Counter[tuple[ReadKind, str]] = Counter()  # (kind, caller or "@state")
        self._reserved: Counter[str] = Counter()

    @property
    def in_use(self) -> int:
        """Readers held now."""
        return self.shared_in_use + self.internal_in_use + sum(self._reserved.values())

    def admit(self, kind: ReadKind, caller: str, state: str) -> Ticket:
        """A ticket, or RateLimited (429, over a limit of the caller or its state) or
        Unavailable (503 BUSY, no shared reader left)."""
        if kind is ReadKind.INTERNAL:
            if self.internal_in_use < self.limits.internal:
                self.internal_in_use += 1
                return Ticket(kind, caller, state, reserved=True)
            return self._shared(kind, caller, state)
        streams = kind is ReadKind.STREAM
        per_caller = self.limits.streams_per_caller if streams else self.limits.pages_per_caller
        per_state = self.limits.streams_per_state if streams else self.limits.pages_per_state
        if self._held[(kind, caller)] >= per_caller or self._held[(kind, "@" + state)] >= per_state:
            what = "event streams" if streams else "concurrent reads"
            raise RateLimited(
                self.retry_after_s,
                reason="TOO_MANY_STREAMS" if streams else "TOO_MANY_READS",
                message=f"too many {what} open for your agency or state; close one or retry "
                f"in {self.retry_after_s} s",
            )
        if (
            not streams
            and state in self.members
            and self._reserved[state] < self.limits.reserve_per_state
        ):
            self._reserved[state] += 1
            return self._hold(Ticket(kind, caller, state, reserved=True))
        return self._hold(self._shared(kind, caller, state))

    def _shared(self, kind: ReadKind, caller: str, state: str) -> Ticket:
        if self.shared_in_use >= self.shared:
            raise Unavailable(
                "every shared reader is in use; retry later",
                retry_after_s=self.retry_after_s,
                reason="BUSY",
            )
        self.shared_in_use += 1
        return Ticket(kind, caller, state, reserved=False)

    def _hold(self, ticket: Ticket) -> Ticket:
        self._held[(ticket.kind, ticket.caller)] += 1
        self._held[(ticket.kind, "@" + ticket.state)] += 1
        return ticket

    def release(self, ticket: Ticket) -> None:
        """Give a reader back."""
        if ticket.kind is ReadKind.INTERNAL and ticket.reserved:
            self.internal_in_use -= 1
            return
        if ticket.reserved:
            self._reserved[ticket.state] -= 1
        else:
            self.shared_in_use -= 1
        if ticket.kind is not ReadKind.INTERNAL:
            for key in ((ticket.kind, ticket.caller), (ticket.kind, "@" + ticket.state)):
                self._held[key] -= 1
                if self._held[key] <= 0:
                    del self._held[key]


class ReaderPool:
    """Admitted, reused Kafka consumers."""

    def __init__(
        self,
        kafka: GatewayKafka,
        admission: Admission,
        metrics: GatewayMetrics,
        *,
        max_idle: int,
    ) -> None:
        self.kafka = kafka
        self.admission = admission
        self.metrics = metrics
        self.max_idle = max_idle
        self._idle: dict[str, list[AIOKafkaConsumer]] = {}  # by the state they read as
        self.opened = 0  # readers started (each a SCRAM login), for tests and benchmarks

    @asynccontextmanager
    async def reader(
        self, kind: ReadKind, caller: str, state: str
    ) -> AsyncIterator[AIOKafkaConsumer]:
        """A started consumer of ``state``'s gateway without an assignment, held for the
        block."""
        ticket = self.admission.admit(kind, caller, state)
        self.metrics.readers.set(self.admission.in_use)
        kafka = self.kafka.of(state) if state else self.kafka.first
        try:
            idle = self._idle.get(kafka.state)
            if idle:
                c = idle.pop()
            else:
                c = await kafka.consumer()
                self.opened += 1
            reusable = False
            try:
                yield c
                reusable = True
            finally:
                await self._give_back(kafka.state, c, reusable)
        finally:
            self.admission.release(ticket)
            self.metrics.readers.set(self.admission.in_use)

    def internal(self) -> AbstractAsyncContextManager[AIOKafkaConsumer]:
        """A reader for the gateway itself, from its reserve."""
        return self.reader(ReadKind.INTERNAL, "gateway", "")

    async def _give_back(self, state: str, c: AIOKafkaConsumer, reusable: bool) -> None:
        if reusable and sum(map(len, self._idle.values())) < self.max_idle:
            try:
                c.unsubscribe()
            except Exception as exc:  # an unexpected state: do not reuse it
                log.warning("reader not reusable", error=type(exc).__name__)
            else:
                self._idle.setdefault(state, []).append(c)
                return
        await c.stop()

    async def close(self) -> None:
        """Stop the idle consumers."""
        idle, self._idle = self._idle, {}
        for c in (c for readers in idle.values() for c in readers):
            with contextlib.suppress(Exception):
                await c.stop()
