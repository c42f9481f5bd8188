"""Token buckets: burst, refill, Retry-After, independence of callers; failed authentications
per client address, in bounded memory."""

from __future__ import annotations

import pytest

from puente_gateway.ratelimit import FailureLimiter, RateLimiter, address_key


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_burst_then_refusal_with_whole_seconds_to_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    assert limiter.take("a") == 1  # half a second at 2/s, rounded up
    slow = RateLimiter(0.1, 1, clock=clock)
    assert slow.take("a") is None
    assert slow.take("a") == 10


def test_refill_at_the_rate_up_to_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 2, clock=clock)
    assert limiter.take("a") is None and limiter.take("a") is None
    assert limiter.take("a") is not None
    clock.t += 1.0
    assert limiter.take("a") is None
    assert limiter.take("a") is not None
    clock.t += 100.0  # a long pause refills only up to the burst
    assert limiter.take("a") is None and limiter.take("a") is None
    assert limiter.take("a") is not None


def test_refused_requests_do_not_drain_the_bucket_further() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 1, clock=clock)
    assert limiter.take("a") is None
    for _ in range(10):
        assert limiter.take("a") == 1
    clock.t += 1.0
    assert limiter.take("a") is None


def test_callers_have_their_own_buckets() -> None:
    limiter = RateLimiter(1.0, 1, clock=Clock())
    assert limiter.take("a") is None
    assert limiter.take("a") is not None
    assert limiter.take("b") is None


def test_the_table_is_bounded() -> None:
    limiter = RateLimiter(1.0, 1, clock=Clock(), max_callers=10)
    for i in range(25):
        assert limiter.take(f"caller-{i}") is None
    assert len(limiter._buckets) <= 10


def test_failures_block_an_address_after_the_burst_until_it_has_waited() -> None:
    clock = Clock()
    limiter = FailureLimiter(0.5, 3, max_addresses=100, clock=clock)
    for _ in range(3):
        assert limiter.blocked("a") is None
        limiter.failed("a")
    assert limiter.blocked("a") == 2  # one failure leaks away in 2 s at 0.5/s
    assert limiter.blocked("b") is None  # another address is not affected
    clock.t += 1.9
    assert limiter.blocked("a") is not None
    clock.t += 0.1
    assert limiter.blocked("a") is None
    limiter.failed("a")
    assert limiter.blocked("a") == 2


def test_the_failure_table_forgets_the_least_recent_address_beyond_its_size() -> None:
    clock = Clock()
    limiter = FailureLimiter(0.01, 1, max_addresses=3, clock=clock)
    for i in range(10_000):
        limiter.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 3
    assert limiter.blocked("10.0.39.15") is not None  # the last one is still remembered
    assert limiter.blocked("10.0.0.0") is None


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("/run/gateway.sock", "/run/gateway.sock"),
    ],
)
def test_addresses_are_counted_per_ipv4_address_and_per_ipv6_64(host: str, key: str) -> None:
    assert address_key(host) == key
