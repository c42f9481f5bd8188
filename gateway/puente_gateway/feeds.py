"""``GET /v1/deliveries`` and ``GET /v1/rejections``: the caller's own topics, as JSON pages
(``?cursor=&limit=&wait=``) or as Server-Sent Events (``Accept: text/event-stream``, resumable
with ``Last-Event-ID``).

A delivery item carries the record bytes verbatim (``delivery``, base64: the puente.Delivery
the recipient verifies) and, beside them, the verification material and decoded views of the
statement and the notice; only the bytes are evidence. A verified item says how final it is
(``finality``: ``signed`` by its origin's node, or ``witnessed`` — covered by a checkpoint a
quorum of other states' witnesses cosigned; puente_gateway.finality). Deliveries are sealed to
their recipient state: the gateway, that state's edge, verifies each one for the caller's state
against the trust list in force and opens it with the state's member key ring
(puente_gateway.edge). Only then does the item carry the notice (``notice``, and its bytes in
``notice_avro``); a delivery that does not verify for the caller's state, or does not open, is
given without them, with the reason code in ``error``. Without a valid trust list nothing is
shown: 503 ``TRUST_LIST_UNAVAILABLE``, and the cursor stays where it was.

An agency limited to some notice types sees only what is known to be of its types (the cursor
still moves past the rest): a delivery that does not verify, so whose type is unknown, is given
raw only to agencies of every type; a rejection is shown to a limited agency only when the
gateway's ledger holds the notice it is about (published through the gateway within the
idempotency TTL) and that notice is of one of its types.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query
from starlette.requests import Request
from starlette.responses import Response

from puente.codec.errors import DecodeError, EncodeError
from puente.codec.registry import Registry
from puente.evidence.delivery import BatchProof, Delivery, SignatureProof
from puente.evidence.enckeys import KeyRing
from puente.evidence.errors import EvidenceError
from puente.evidence.finality import Finality
from puente.evidence.verify import Verifier, open_verified
from puente.topics import DELIVER, REJECTED, TopicKind
from puente_gateway.auth import Caller, caller_of
from puente_gateway.body import JSON_TYPE
from puente_gateway.clock import iso_ms
from puente_gateway.context import GatewayContext, b64, context, json_of
from puente_gateway.cursor import MAX_CURSOR, Kind, decode_cursor
from puente_gateway.models import DeliveryPage, RejectionPage
from puente_gateway.openapi import error_responses
from puente_gateway.reader import Record, TopicReader
from puente_gateway.sse import EVENT_STREAM, event, event_stream, wants_events

router = APIRouter(tags=["feeds"])
Render = Callable[[GatewayContext, Caller, Record], Awaitable[dict[str, Any] | None]]
MAX_LIMIT = 1000
MAX_WAIT_S = 30.0


def _base(rec: Record) -> dict[str, Any]:
    return {
        "cursor": rec.cursor,
        "partition": rec.partition,
        "offset": rec.offset,
        "timestamp": iso_ms(rec.timestamp_ms),
    }


async def render_delivery(
    ctx: GatewayContext, caller: Caller, rec: Record
) -> dict[str, Any] | None:
    """A delivery item, verified and opened for the caller's state (503 without a valid trust
    list), or None when the caller's agency may not see its notice type."""
    verifier = await ctx.trust.require()
    keys = ctx.edge.keyring(caller.state)
    return delivery_item(ctx.registry, verifier, keys, caller, rec, finality=ctx.finality.finality)


def delivery_item(
    registry: Registry,
    verifier: Verifier,
    keys: KeyRing,
    caller: Caller,
    rec: Record,
    *,
    finality: Callable[[str, int], Finality] | None = None,
) -> dict[str, Any] | None:
    """The item of delivery record ``rec`` for ``caller``: verified for its state with
    ``verifier``, opened with its state's ``keys``, saying how final its log position is
    (``finality``: signed or witnessed); None when its agency may not see it."""
    item = _base(rec) | {"delivery": b64(rec.value)}
    try:
        verified = verifier.verify_delivery(rec.value, recipient=caller.state)
    except EvidenceError as exc:
        if caller.restricted:
            return None  # its type is unknown: never shown to an agency limited to some types
        item["error"] = {"reason": exc.reason, "message": exc.message}
        return item
    notice_type = verified.statement.payload_schema
    if not caller.may_use(notice_type):
        return None
    delivery = Delivery.decode(registry, rec.value)  # it verified: it decodes
    proof = delivery.proof
    if isinstance(proof, SignatureProof):
        item["verification"] = {
            "mode": "signature",
            "key_id": proof.key_id,
            "signature": b64(proof.signature),
        }
    else:
        assert isinstance(proof, BatchProof)
        item["verification"] = {
            "mode": "batch",
            "batch_note": proof.batch_note.decode("utf-8"),
            "leaf_index": proof.leaf_index,
            "inclusion_path": [b64(h) for h in proof.inclusion_path],
        }
    item["delivery_digest"] = verified.digest.hex()
    position = verified.statement.audit_log_id, verified.statement.audit_leaf_index
    item["log_position"] = {"log_id": position[0], "leaf_index": position[1]}
    if finality is not None:
        item["finality"] = finality(*position).value
    item["notice_type"] = notice_type
    try:
        _, item["statement"] = json_of(registry, delivery.statement)
        notice = open_verified(verified, keys)
        _, item["notice"] = json_of(registry, notice)
    except (DecodeError, EncodeError, EvidenceError) as exc:
        item.pop("notice", None)
        item["error"] = {"reason": exc.reason, "message": exc.message}
        return item
    item["notice_avro"] = b64(notice)
    return item


async def render_rejection(
    ctx: GatewayContext, caller: Caller, rec: Record
) -> dict[str, Any] | None:
    """A rejection item: the record decoded with its own writer schema, and its raw bytes; None
    when the caller's agency may not see it."""
    item = _base(rec) | {"raw": b64(rec.value)}
    try:
        item["record_type"], item["rejection"] = json_of(ctx.registry, rec.value)
    except (DecodeError, EncodeError) as exc:
        if caller.restricted:
            return None
        item["error"] = {"reason": exc.reason, "message": exc.message}
        return item
    if caller.restricted:
        notice_id = item["rejection"].get("notice_id")
        entry = (
            ctx.shared.answer(caller.state, f"notice:{notice_id}")
            if isinstance(notice_id, str)
            else None
        )
        if entry is None or entry.notice_type is None or not caller.may_use(entry.notice_type):
            return None
    return item


async def serve_feed(
    request: Request,
    *,
    kind: Kind,
    topic_kind: TopicKind,
    render: Render,
    event_name: str,
    cursor: str | None,
    limit: int,
    wait: float,
    last_event_id: str | None,
) -> Response:
    """A page or an event stream of the caller's ``topic_kind`` topic."""
    ctx = context(request)
    caller = caller_of(request.scope)
    # EventSource reconnects to the same URL and says where it was in Last-Event-ID.
    wanted = decode_cursor(kind, last_event_id if last_event_id is not None else cursor)
    reader = TopicReader(
        ctx.readers, ctx.topic(topic_kind, caller), kind, caller=caller.id, state=caller.state
    )
    if wants_events(request):
        return await _stream(ctx, caller, reader, wanted, render, event_name)
    page = await reader.page(
        wanted,
        limit=limit,
        wait_s=min(wait, ctx.gw.wait_max_s),
        max_bytes=ctx.gw.max_page_bytes,
    )
    items = [item for rec in page.records if (item := await render(ctx, caller, rec)) is not None]
    body = {
        "items": items,
        "next_cursor": page.next_cursor,
        "caught_up": page.caught_up,
        "gap": page.gap,
    }
    return Response(orjson.dumps(body), media_type=JSON_TYPE, headers={"Cache-Control": "no-store"})


async def _stream(
    ctx: GatewayContext,
    caller: Caller,
    reader: TopicReader,
    wanted: Mapping[int, int],
    render: Render,
    event_name: str,
) -> Response:
    records = reader.stream(wanted, idle_s=ctx.gw.sse_heartbeat_s)
    # Open the Kafka reader before answering, so that failing to is still a plain 503.
    await records.__anext__()

    async def one(rec: Any) -> bytes | None:
        item = await render(ctx, caller, rec)
        return None if item is None else event(event_name, orjson.dumps(item), rec.cursor)

    return await event_stream(
        records,
        one,
        recheck=lambda: ctx.authenticator.recheck(caller),
        recheck_s=ctx.gw.sse_recheck_s,
    )


_SSE_DOC = {
    "schema": {"type": "string"},
    "description": "events `delivery` / `rejection` (data: one item as JSON, id: its cursor), "
    "and `error` (data: an ErrorBody) before the stream ends",
}


def _cursor_query(kind: Kind) -> Any:
    # The pattern is documented, not enforced here: decode_cursor answers 400 CURSOR_INVALID.
    return Query(
        max_length=MAX_CURSOR,
        description="where to go on: a next_cursor or an item's cursor",
        json_schema_extra={"pattern": f"^{kind}1\\.[A-Za-z0-9_-]*$"},
    )


def _last_event_id(kind: Kind) -> Any:
    return Header(
        alias="Last-Event-ID",
        max_length=MAX_CURSOR,
        description="SSE resume point: the id of the last event received (a cursor)",
        json_schema_extra={"pattern": f"^{kind}1\\.[A-Za-z0-9_-]*$"},
    )


LimitQ = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]
WaitQ = Annotated[
    float,
    Query(ge=0, le=MAX_WAIT_S, description="seconds to wait for a first item (long-poll)"),
]


@router.get(
    "/v1/deliveries",
    summary="Deliveries to the caller's state",
    response_model=None,
    responses={
        200: {"model": DeliveryPage, "content": {EVENT_STREAM: _SSE_DOC}},
        **error_responses(400, 422, 503),
    },
)
async def get_deliveries(
    request: Request,
    cursor: Annotated[str | None, _cursor_query("d")] = None,
    limit: LimitQ = 100,
    wait: WaitQ = 0.0,
    last_event_id: Annotated[str | None, _last_event_id("d")] = None,
) -> Response:
    """The deliveries addressed to the caller's state, verified and opened, oldest first, as a
    JSON page or, with ``Accept: text/event-stream``, as an endless event stream."""
    await context(request).trust.require()  # nothing is shown, not even "nothing", without one
    return await serve_feed(
        request,
        kind="d",
        topic_kind=DELIVER,
        render=render_delivery,
        event_name="delivery",
        cursor=cursor,
        limit=limit,
        wait=wait,
        last_event_id=last_event_id,
    )


@router.get(
    "/v1/rejections",
    summary="The caller's refused notices and why",
    response_model=None,
    responses={
        200: {"model": RejectionPage, "content": {EVENT_STREAM: _SSE_DOC}},
        **error_responses(400, 422, 503),
    },
)
async def get_rejections(
    request: Request,
    cursor: Annotated[str | None, _cursor_query("r")] = None,
    limit: LimitQ = 100,
    wait: WaitQ = 0.0,
    last_event_id: Annotated[str | None, _last_event_id("r")] = None,
) -> Response:
    """Rejections of the caller's state's notices (the policy service's reasons), oldest first;
    pages or, with ``Accept: text/event-stream``, events."""
    return await serve_feed(
        request,
        kind="r",
        topic_kind=REJECTED,
        render=render_rejection,
        event_name="rejection",
        cursor=cursor,
        limit=limit,
        wait=wait,
        last_event_id=last_event_id,
    )
