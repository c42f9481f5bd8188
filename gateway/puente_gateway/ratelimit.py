"""Per-caller rate limits: one token bucket per caller id, in this process's memory.

With several gateway replicas behind a load balancer each replica keeps its own buckets, so a
caller gets up to ``replicas x rate``; size the rate for that (docs/gateway.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimiter:
    """Token buckets refilled at ``rate`` per second up to ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_callers: int = 100_000,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._max = max_callers
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> int | None:
        """Take one token for ``key``: None if allowed, else whole seconds until one is free."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= self._max and key not in self._buckets:
                # A full table holds only idle callers' history; forgetting it is harmless
                # (they start again with a full bucket) and bounds memory.
                self._buckets.clear()
            self._buckets[key] = (tokens - 1.0, now)
            return None
        self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate))
