"""Server-Sent Events framing (text/event-stream) for the feeds.

Each record is one event: ``id:`` is the record's cursor (what the browser's EventSource sends
back as ``Last-Event-ID`` when it reconnects), ``event:`` its kind, ``data:`` one line of JSON.
A comment line every ``sse_heartbeat_s`` keeps proxies from closing an idle stream. A stream
that cannot go on (credentials revoked, Kafka lost) sends a last ``event: error`` with the usual
error body and ends; the client reconnects with its last id.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import StreamingResponse

from puente_gateway.errors import GatewayError

R = TypeVar("R")

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


async def event_stream(
    records: AsyncGenerator[R | None, None],
    render: Callable[[R], Awaitable[bytes | None]],
    *,
    recheck: Callable[[], None],
    recheck_s: float,
) -> StreamingResponse:
    """The event stream of ``records`` (``None``: a heartbeat is due): each record becomes the
    event ``render`` makes of it (``None``: nothing to send); the caller's credentials are
    re-checked (``recheck`` raises when they no longer hold) every ``recheck_s``; a GatewayError
    ends the stream with an ``error`` event. ``records`` is closed when the stream ends."""

    async def body() -> AsyncIterator[bytes]:
        checked = time.monotonic()
        try:
            yield preamble()
            async for rec in records:
                if time.monotonic() - checked >= recheck_s:
                    checked = time.monotonic()
                    recheck()  # its refusal ends the stream
                if rec is None:
                    yield HEARTBEAT
                    continue
                out = await render(rec)
                if out is not None:
                    yield out
        except GatewayError as err:
            yield event("error", err.body())
        finally:
            await records.aclose()

    return StreamingResponse(
        body(),
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
