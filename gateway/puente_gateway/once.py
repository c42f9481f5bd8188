"""Produce a record at most once per id: the ledger for retries, a future for concurrent twins.

A retried POST (same id, same bytes) gets the first answer and produces nothing; the same id
with other bytes — or from another state — is a 409. Two identical requests arriving together
are coalesced in this process: the second waits for the first and then answers from the ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from puente_gateway.clock import now_ms
from puente_gateway.errors import Conflict
from puente_gateway.ledger import Entry, Ledger
from puente_gateway.metrics import GatewayMetrics


class Once:
    """Idempotent production over one :class:`Ledger`."""

    def __init__(self, ledger: Ledger, metrics: GatewayMetrics) -> None:
        self.ledger = ledger
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
    ) -> tuple[bytes, bool]:
        """The answer for ``key`` and whether it is a replay; ``produce()`` runs only if new."""
        while (pending := self._inflight.get(key)) is not None:
            await asyncio.shield(pending)
        entry = self.ledger.get(key, now_ms=now_ms())
        if entry is not None:
            if entry.state != state or entry.digest != digest:
                raise conflict()
            self.metrics.replays.inc()
            return entry.body, True
        pending = asyncio.get_running_loop().create_future()
        self._inflight[key] = pending
        try:
            body = await produce()
            self.ledger.put(key, Entry(state, digest, body), now_ms=now_ms())
            return body, False
        finally:
            del self._inflight[key]
            pending.set_result(None)
