"""The receipt tracker's clock: real time, or real time sped up (the demo, ``clock_scale``).

A deadline is hours away; a demo cannot wait hours. A :class:`ScaledClock` runs ``scale`` times
faster than real time from the moment it starts, so that a 24-hour deadline passes in seconds.
It only moves the tracker's *now* (when deadlines pass and reports are dated); receipts are
still judged by when they really reached Puente. Tests pass a clock of their own (any
``Callable[[], int]`` giving Unix ms).
"""

from __future__ import annotations

from collections.abc import Callable

from puente.evidence._time import now_ms

Clock = Callable[[], int]
"""The time now, in Unix ms."""


class ScaledClock:
    """Real time from ``start`` (default: now), sped up ``scale`` times."""

    def __init__(self, scale: float = 1.0, *, start: int | None = None) -> None:
        if scale <= 0:
            raise ValueError("the clock's scale must be positive")
        self.scale = scale
        self.start = now_ms() if start is None else start

    def __call__(self) -> int:
        return self.start + int((now_ms() - self.start) * self.scale)


def clock(scale: float = 1.0) -> Clock:
    """The real clock (``scale`` 1), or a :class:`ScaledClock` starting now."""
    return now_ms if scale == 1.0 else ScaledClock(scale)
