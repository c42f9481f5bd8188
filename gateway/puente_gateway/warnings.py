"""``GET /v1/warnings``: the early warnings (docs/early-warning.md), which every member state's
agencies may read — as one JSON document (``puente.warnings.list/v1``, what ``puente warnings
list --json`` prints), or as Server-Sent Events (``Accept: text/event-stream``): every record of
the warnings topic, then each new one as the evaluator publishes it, resumable with
``Last-Event-ID``.

Each record's signature is checked against the trust list the gateway follows (with its trust
anchors; without them every record says ``TRUST_LIST_MISSING``); a record that does not verify
is listed with its reason, never dropped. The warnings topic has one partition, so a position is
one offset: an event's id is the offset after it.

The document is kept per gateway process (``WarningsView``) and brought up to date from the
offset it reached by each request, reading as the caller (the pool's fairness applies); it is
rebuilt from the start when the trust list changes (a revoked key stops verifying).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Annotated, Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from puente.evidence.trust import TrustList
from puente.topics import WARNINGS
from puente.warnings.listing import LIST_CONTRACT, Listing, WarningRecord, select
from puente_gateway.auth import Caller, caller_of
from puente_gateway.body import JSON_TYPE
from puente_gateway.context import GatewayContext, context
from puente_gateway.errors import BadRequest
from puente_gateway.openapi import error_responses
from puente_gateway.pool import ReadKind
from puente_gateway.sse import EVENT_STREAM, event, event_stream, wants_events

router = APIRouter(tags=["early warning"])
MAX_EVENT_ID = 19  # digits of an offset


class WarningEntry(BaseModel):
    """One record of the warnings topic (``puente.warnings.list/v1``)."""

    model_config = {"extra": "allow"}

    offset: int = Field(description="its offset in the warnings topic")
    verified: bool = Field(description="its signature verified against the trust list")
    reason: str | None = Field(
        description="why it did not verify (or is not a warning); null when verified"
    )
    warning_id: str | None = None
    episode_id: str | None = None
    status: str | None = Field(default=None, description="STARTED, CHANGED or ENDED")
    trigger_id: str | None = None
    level: str | None = Field(default=None, description="WARNING or ALERT")
    signed_by: str | None = Field(default=None, description="the signer's holder name")


class WarningsList(BaseModel):
    """Every warning on the topic (the first copy of each id) and those in force."""

    contract: str = Field(description=LIST_CONTRACT)
    warnings: list[WarningEntry]
    active: list[WarningEntry] = Field(description="the last record of each episode not ended")


class WarningsView:
    """The listing of the warnings topic as far as this process has read it."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.listing: Listing | None = None
        self.next_offset = 0
        self.trust: TrustList | None = None

    async def document(self, ctx: GatewayContext, caller: Caller) -> dict[str, Any]:
        """The listing, first brought up to the topic's end (as ``caller`` reads)."""
        trust = await _trust_list(ctx)
        async with self.lock:
            if self.listing is None or trust is not self.trust:
                self.listing, self.next_offset, self.trust = Listing(ctx.registry, trust), 0, trust
            listing = self.listing
            async with ctx.readers.reader(ReadKind.PAGE, caller.id, caller.state) as c:
                for rec in await _read_to_end(ctx, c, self.next_offset, caller.state):
                    listing.add(rec)
                    self.next_offset = rec.offset + 1
            return listing.document()


async def _trust_list(ctx: GatewayContext) -> TrustList | None:
    verifier = await ctx.trust.verifier()
    return None if verifier is None else verifier.trust_list


def _view(request: Request) -> WarningsView:
    state = request.app.state
    view = getattr(state, "warnings_view", None)
    if view is None:
        view = state.warnings_view = WarningsView()
    assert isinstance(view, WarningsView)
    return view


def _tp(ctx: GatewayContext) -> TopicPartition:
    return TopicPartition(ctx.naming.topic(WARNINGS), 0)


def _record(r: Any) -> WarningRecord:
    # aiokafka's ConsumerRecord (untyped)
    return WarningRecord(r.offset, r.value, tuple(r.headers or ()))


async def _read_to_end(
    ctx: GatewayContext, c: AIOKafkaConsumer, start: int, state: str
) -> list[WarningRecord]:
    """The records from ``start`` to the topic's end now, read as ``state``'s gateway (503 when
    Kafka does not answer in ``wait_max_s``)."""
    tp = _tp(ctx)
    try:
        c.assign([tp])
        offsets = await ctx.kafka.of(state).offsets()
        begin = (await offsets.beginning_offsets([tp]))[tp]
        end = (await offsets.end_offsets([tp]))[tp]
        c.seek(tp, min(max(start, begin), end))
        out: list[WarningRecord] = []
        deadline = time.monotonic() + ctx.gw.wait_max_s
        while await c.position(tp) < end:
            if time.monotonic() > deadline:
                raise ctx.kafka.unavailable("the warnings topic could not be read in time")
            out += [_record(r) for r in (await c.getmany(tp, timeout_ms=200)).get(tp, [])]
        return out
    except KafkaError as exc:
        raise ctx.kafka.unavailable(f"reading failed ({type(exc).__name__})") from None


def _from_event_id(last_event_id: str | None) -> int:
    if last_event_id is None:
        return 0
    if not (last_event_id.isascii() and last_event_id.isdigit()):
        raise BadRequest(
            "Last-Event-ID is the id of an event this stream sent (an offset)",
            reason="CURSOR_INVALID",
        )
    return int(last_event_id)


async def _records(
    ctx: GatewayContext, caller: Caller, start: int
) -> AsyncGenerator[Any | None, None]:
    """The warnings topic's records from ``start``, for ever, read as ``caller``'s stream;
    ``None`` once the reader is open, then after each ``sse_heartbeat_s`` of silence."""
    async with ctx.readers.reader(ReadKind.STREAM, caller.id, caller.state) as c:
        tp = _tp(ctx)
        try:
            c.assign([tp])
            offsets = await ctx.kafka.of(caller.state).offsets()
            begin = (await offsets.beginning_offsets([tp]))[tp]
            end = (await offsets.end_offsets([tp]))[tp]
            c.seek(tp, min(max(start, begin), end))  # an id past the end: from the end
            yield None  # opened: the caller can await this before it commits to a response
            while True:
                batch = await c.getmany(tp, timeout_ms=int(ctx.gw.sse_heartbeat_s * 1000))
                found = batch.get(tp, [])
                if not found:
                    yield None
                for r in found:
                    yield r
        except KafkaError as exc:
            raise ctx.kafka.unavailable(f"reading failed ({type(exc).__name__})") from None


async def _stream(ctx: GatewayContext, caller: Caller, start: int, trigger: str | None) -> Response:
    records = _records(ctx, caller, start)
    await records.__anext__()  # refused or failing here: still a plain 429 / 503

    listing = Listing(ctx.registry, None)  # skips copies; each entry verified as it comes

    async def one(r: Any) -> bytes | None:
        listing.trust_list = await _trust_list(ctx)
        e = listing.add(_record(r))
        if e is not None and (trigger is None or e.get("trigger_id") == trigger):
            return event("warning", orjson.dumps(e), str(r.offset + 1))
        return None

    return await event_stream(
        records,
        one,
        recheck=lambda: ctx.authenticator.recheck(caller),
        recheck_s=ctx.gw.sse_recheck_s,
    )


_SSE_DOC = {
    "schema": {"type": "string"},
    "description": "events `warning` (data: one entry of `warnings` as JSON; id: the offset "
    "after it), and `error` (data: an ErrorBody) before the stream ends",
}


@router.get(
    "/v1/warnings",
    summary="Early warnings (every member state may read them)",
    response_model=None,
    responses={
        200: {"model": WarningsList, "content": {EVENT_STREAM: _SSE_DOC}},
        **error_responses(400, 422, 429, 503),
    },
)
async def get_warnings(
    request: Request,
    trigger: Annotated[
        str | None, Query(max_length=200, description="only this trigger's records")
    ] = None,
    active: Annotated[bool, Query(description="only the warnings in force")] = False,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=MAX_EVENT_ID,
            description="SSE resume point: the id of the last event received",
        ),
    ] = None,
) -> Response:
    """Every early warning on the warnings topic, its signature checked against the trust
    list, and which are in force; as an event stream, each record then each new one."""
    ctx = context(request)
    caller = caller_of(request.scope)
    if wants_events(request):
        return await _stream(ctx, caller, _from_event_id(last_event_id), trigger)
    doc = select(await _view(request).document(ctx, caller), trigger=trigger, active=active)
    return Response(orjson.dumps(doc), media_type=JSON_TYPE, headers={"Cache-Control": "no-store"})
