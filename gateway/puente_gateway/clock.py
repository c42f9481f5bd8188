"""Wall-clock time as Unix milliseconds, and its RFC 3339 form."""

from __future__ import annotations

import datetime as dt
import time


def now_ms() -> int:
    """Wall-clock Unix milliseconds."""
    return time.time_ns() // 1_000_000


def iso_ms(ms: int) -> str:
    """RFC 3339 UTC time with milliseconds, e.g. ``2025-05-01T12:00:00.000Z``."""
    when = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
