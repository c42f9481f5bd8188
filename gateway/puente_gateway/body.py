"""Reading a JSON request body: media type first, then size, counted while it arrives, and
time: a body still arriving after ``timeout_s`` is refused (408) and its connection closed."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request

from puente_gateway.errors import BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType

JSON_TYPE = "application/json"


def check_json_type(request: Request) -> None:
    """415 unless the request says ``application/json`` (UTF-8, the only JSON charset)."""
    raw = request.headers.get("content-type", "")
    media, _, params = raw.partition(";")
    if media.strip().lower() != JSON_TYPE:
        raise UnsupportedMediaType(
            f"send the body as {JSON_TYPE} (got {media.strip()[:60] or 'no content type'})"
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise UnsupportedMediaType("JSON bodies must be UTF-8")


async def read_json(request: Request, limit: int, *, timeout_s: float) -> Any:
    """The parsed JSON body; 415, 413 (before reading past ``limit`` bytes), 408 or 400."""
    check_json_type(request)
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("invalid Content-Length", reason="MALFORMED_REQUEST")
        if int(declared) > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    try:
        async with asyncio.timeout(timeout_s):
            body = await _read(request, limit, framed=declared is not None)
    except TimeoutError:
        raise RequestTimeout(f"the body took longer than {timeout_s:g} s to arrive") from None
    return _parse(body)


async def _read(request: Request, limit: int, *, framed: bool) -> bytes:
    if framed:
        # The server frames the body by Content-Length: it cannot exceed what was declared.
        return await request.body()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            # Chunked uploads declare no length: stop at the first byte over the limit.
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", reason="MALFORMED_JSON") from None
