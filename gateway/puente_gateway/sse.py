"""Server-Sent Events framing (text/event-stream) for the feeds.

Each record is one event: ``id:`` is the record's cursor (what the browser's EventSource sends
back as ``Last-Event-ID`` when it reconnects), ``event:`` its kind, ``data:`` one line of JSON.
A comment line every ``sse_heartbeat_s`` keeps proxies from closing an idle stream. A stream
that cannot go on (credentials revoked, Kafka lost) sends a last ``event: error`` with the usual
error body and ends; the client reconnects with its last id.
"""

from __future__ import annotations

from starlette.requests import Request

EVENT_STREAM = "text/event-stream"
HEARTBEAT = b": keepalive\n\n"
RETRY_MS = 3000


def wants_events(request: Request) -> bool:
    """Whether the client asked for an event stream rather than a JSON page."""
    return EVENT_STREAM in request.headers.get("accept", "")


def event(kind: str, data: bytes, event_id: str | None = None) -> bytes:
    """One event; ``data`` must be a single line (compact JSON is)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\n".encode() + b"data: " + data + b"\n\n"


def preamble() -> bytes:
    """The first bytes of a stream: the reconnection delay."""
    return f"retry: {RETRY_MS}\n\n".encode()
