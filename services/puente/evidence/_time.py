"""Evidence time: integer milliseconds since the Unix epoch, UTC (Avro ``timestamp-millis``).

One representation everywhere (signed text, Avro records, trust-list validity) avoids the
ambiguity of formatted dates in signed bytes; formatting is for people only.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

DAY_MS = 24 * 60 * 60 * 1000


def now_ms() -> int:
    """The current time in Unix milliseconds."""
    return time.time_ns() // 1_000_000


def format_ms(ms: int | None) -> str:
    """``2025-01-31T12:00:00.000Z`` for people; ``-`` for no time."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(text: str) -> int:
    """Unix milliseconds from digits or an ISO 8601 time (a naive time is taken as UTC)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_datetime(ms: int) -> datetime:
    """The aware UTC datetime of ``ms`` (what the Avro codec takes for ``timestamp-millis``)."""
    return _EPOCH + timedelta(milliseconds=ms)


def from_datetime(value: datetime) -> int:
    """Unix milliseconds of an aware datetime (what the Avro codec gives for timestamps)."""
    return (value - _EPOCH) // timedelta(milliseconds=1)


def to_datetime_or_none(ms: int | None) -> datetime | None:
    """:func:`to_datetime` of an optional time (an Avro ``["null", timestamp-millis]``)."""
    return None if ms is None else to_datetime(ms)


def from_datetime_or_none(value: datetime | None) -> int | None:
    """:func:`from_datetime` of an optional time."""
    return None if value is None else from_datetime(value)
