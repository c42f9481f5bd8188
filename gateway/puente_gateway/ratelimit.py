"""Rate limits in this process's memory: a token bucket per authenticated caller, and a budget
of failed authentications per client address.

With several gateway replicas behind a load balancer each replica keeps its own buckets, so a
caller gets up to ``replicas x rate``; size the rate for that (docs/gateway.md).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
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


def address_key(host: str) -> str:
    """The unit failed authentications are counted by: an IPv4 address, or an IPv6 /64 (one
    subscriber usually holds a whole /64, so single IPv6 addresses would be free to rotate)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]  # not an IP (a Unix socket path): one bucket per name
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class FailureLimiter:
    """Failed authentications per client address: ``burst`` at once, then ``rate`` per second.

    Only failures are counted, so a working token is never slowed down by this; an address over
    its budget is refused before its credentials are looked at. At most ``max_addresses`` are
    remembered; beyond that the least recently failing address is forgotten (it starts again
    with a full budget), so the limiter's own memory is bounded whatever an attacker sends.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_addresses: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._max = max_addresses
        self._spent: OrderedDict[str, tuple[float, float]] = OrderedDict()  # (failures, when)

    def __len__(self) -> int:
        return len(self._spent)

    def _level(self, key: str, now: float) -> float:
        spent, last = self._spent.get(key, (0.0, now))
        return max(0.0, spent - (now - last) * self.rate)

    def blocked(self, key: str) -> int | None:
        """None if ``key`` may try to authenticate, else whole seconds until it may."""
        if key not in self._spent:
            return None
        level = self._level(key, self._clock())
        if level + 1.0 <= self.burst:
            return None
        return max(1, math.ceil((level + 1.0 - self.burst) / self.rate))

    def failed(self, key: str) -> None:
        """Count one failed authentication from ``key``."""
        now = self._clock()
        level = self._level(key, now)
        self._spent[key] = (level + 1.0, now)
        self._spent.move_to_end(key)
        while len(self._spent) > self._max:
            self._spent.popitem(last=False)
