"""Token buckets: burst, refill, Retry-After, independence of callers."""

from __future__ import annotations

from puente_gateway.ratelimit import RateLimiter


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
