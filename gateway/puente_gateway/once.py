"""Produce a record at most once per id: the shared ledger for retries, a future for concurrent
twins.

A retried POST (same id, same bytes) gets the first answer and produces nothing, on whichever
replica it lands; the same id with other bytes is a 409. Ids are per state: each state's
gateway keeps its own answers (puente_gateway.shared), so the same id from another state is
that state's own. An id this replica has not seen waits until its state's shared state is
current (one end-offset round trip, shared by every request waiting at the time) before it
counts as new. Two identical requests arriving
together at one replica are coalesced: the second waits for the first and then answers from
the ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from puente.logs import get_logger
from puente_gateway.clock import now_ms
from puente_gateway.errors import Conflict, Unavailable
from puente_gateway.ledger import Entry
from puente_gateway.metrics import GatewayMetrics
from puente_gateway.shared import SharedState

log = get_logger("gateway.once")


class Once:
    """Idempotent production over the shared ledger."""

    def __init__(self, shared: SharedState, metrics: GatewayMetrics) -> None:
        self.shared = shared
        self.metrics = metrics
        self._inflight: dict[str, asyncio.Future[None]] = {}

    async def produce(
        self,
        key: str,
        *,
        state: str,
        digest: bytes,
        conflict: Callable[[], Conflict],
        produce: Callable[[], Awaitable[bytes]],
        notice_type: str | None = None,
    ) -> tuple[bytes, bool]:
        """The answer for ``key`` and whether it is a replay; ``produce()`` runs only if new."""
        inflight = f"{state}/{key}"
        while (pending := self._inflight.get(inflight)) is not None:
            await asyncio.shield(pending)
        entry = self.shared.answer(state, key)
        pending = asyncio.get_running_loop().create_future()
        self._inflight[inflight] = pending
        try:
            if entry is None:
                # Another replica may have answered it an instant ago.
                await self.shared.sync(state)
                entry = self.shared.answer(state, key)
            if entry is not None:
                if entry.digest != digest:
                    raise conflict()
                self.metrics.replays.inc()
                return entry.body, True
            body = await produce()
            first = Entry(state, digest, body, now_ms(), notice_type)
            try:
                await self.shared.put_answer(key, first)
            except Unavailable:
                # Kafka took the record: answer 202. A retry may produce it again, which the
                # policy service drops as a re-sent notice id.
                log.warning("first answer not recorded", key=key)
            return body, False
        finally:
            del self._inflight[inflight]
            pending.set_result(None)
