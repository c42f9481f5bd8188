"""The tracker's clock: real time, or real time sped up from the moment it starts."""

from __future__ import annotations

import pytest

from puente.evidence import _time
from puente.receipts import clock as clocks
from puente.receipts.clock import ScaledClock, clock


def test_a_scaled_clock_runs_faster_from_its_start(monkeypatch: pytest.MonkeyPatch) -> None:
    real = [1_000_000]
    monkeypatch.setattr(clocks, "now_ms", lambda: real[0])
    c = ScaledClock(3600.0)  # an hour a second
    assert c() == 1_000_000
    real[0] += 2_000  # two real seconds
    assert c() == 1_000_000 + 2 * 3_600_000
    assert ScaledClock(2.0, start=0)() == 2 * real[0]


def test_scale_one_is_the_real_clock() -> None:
    assert clock(1.0) is _time.now_ms
    assert isinstance(clock(10.0), ScaledClock)
    with pytest.raises(ValueError):
        ScaledClock(0)
