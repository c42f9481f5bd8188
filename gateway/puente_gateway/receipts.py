"""``POST /v1/receipts``: a partner state acknowledges a delivery.

Body: ``{"receipt": {DeliveryReceipt JSON}}`` or ``{"receipt_avro": "<base64>"}`` (the exact
single-object bytes a signature covers), optionally with ``"signature": {"key_id", "signature"}``
— the recipient state's Ed25519 signature over ``puente/delivery-receipt/v1 || 0x00 || bytes``
(puente.evidence.verify). The receipt's ``recipient`` must be the caller's state. The gateway
verifies the signature against the trust list in force (a bad one is a 422; with no valid list
it is forwarded unverified, ``signature_verified: false``); either way the signature travels
with the record in the Kafka headers the evidence layer defines
(``puente.topics.RECEIPT_KEY_ID_HEADER`` and ``RECEIPT_SIGNATURE_HEADER``) for the
receipt tracker, which verifies it itself. With ``require_signed_receipts`` the gateway fails
closed: a receipt whose signature it cannot verify now (no valid trust list) is a 503
``TRUST_LIST_UNAVAILABLE``, never accepted on the shape of its signature.

A receipt is a machine receipt, or a consular officer's acknowledgment (``acknowledgment``:
ACKNOWLEDGED, or DECLINED with a reason code, with an optional case reference); one that breaks
the receipt rules (puente.evidence.receipt.receipt_problems) is a 422 ``INVALID_RECEIPT``.

``GET /v1/receipts/status``: what the receipt trackers say of the caller's state's pairs — the
deliveries it sent and the ones it received, never another pair (docs/receipts.md; contract
``puente.receipts.status/v1``, the same document as ``puente receipts status --as CC --json``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
from typing import Annotated, Any, Literal

import orjson
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from puente.codec.errors import DecodeError, EncodeError, FieldProblem
from puente.codec.jsonconv import from_json
from puente.codec.wire import decode, encode
from puente.errors import PuenteError
from puente.evidence.errors import EvidenceError
from puente.evidence.receipt import receipt_problems
from puente.evidence.verify import DELIVERY_RECEIPT
from puente.logs import get_logger
from puente.receipts.report import CONTRACT, Show, status_document
from puente.receipts.track import Track
from puente.receipts.view import read_tracks, status_topics
from puente.topics import RECEIPT_KEY_ID_HEADER, RECEIPT_SIGNATURE_HEADER, RECEIPTS
from puente_gateway.auth import Caller, caller_of
from puente_gateway.body import JSON_TYPE, read_json
from puente_gateway.clock import iso_ms, now_ms
from puente_gateway.context import GatewayContext, context
from puente_gateway.errors import Conflict, Forbidden, Unavailable, Unprocessable, problems_at
from puente_gateway.models import ReceiptAccepted
from puente_gateway.notices import REPLAY_HEADER, origin_headers
from puente_gateway.openapi import error_responses, json_body
from puente_gateway.pool import ReadKind

log = get_logger("gateway.receipts")
router = APIRouter(tags=["receipts"])
_FIELDS = ("receipt", "receipt_avro", "signature")


def _signature(value: Any) -> tuple[str, bytes] | None:
    if value is None:
        return None
    problems = []
    if not isinstance(value, dict):
        raise Unprocessable(
            "invalid signature",
            reason="ENVELOPE_INVALID",
            problems=[FieldProblem("signature", "expected an object {key_id, signature}")],
        )
    problems += [
        FieldProblem(f"signature.{k}", "unknown field")
        for k in value
        if k not in ("key_id", "signature")
    ]
    key_id, sig = value.get("key_id"), value.get("signature")
    if not isinstance(key_id, str) or len(key_id) != 16:
        problems.append(FieldProblem("signature.key_id", "expected 16 hex digits"))
    raw = b""
    with contextlib.suppress(binascii.Error, ValueError):
        raw = base64.b64decode(sig, validate=True) if isinstance(sig, str) else b""
    if len(raw) != 64:
        problems.append(FieldProblem("signature.signature", "expected 64 bytes in base64"))
    if problems:
        raise Unprocessable("invalid signature", reason="ENVELOPE_INVALID", problems=problems)
    assert isinstance(key_id, str)
    return key_id, raw


def _receipt_bytes(ctx: GatewayContext, body: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    if "receipt" in body:
        try:
            record = from_json(ctx.registry, DELIVERY_RECEIPT, body["receipt"])
        except EncodeError as exc:
            raise Unprocessable(
                "the receipt is not a valid DeliveryReceipt",
                reason="INVALID_RECEIPT",
                problems=problems_at("receipt", exc.problems),
            ) from None
        return encode(ctx.registry, DELIVERY_RECEIPT, record), record
    text = body["receipt_avro"]
    try:
        value = base64.b64decode(text, validate=True) if isinstance(text, str) else None
    except (binascii.Error, ValueError):
        value = None
    if value is None:
        raise Unprocessable(
            "receipt_avro must be base64",
            reason="ENVELOPE_INVALID",
            problems=[FieldProblem("receipt_avro", "expected base64 text")],
        )
    try:
        return value, decode(ctx.registry, value, reader=DELIVERY_RECEIPT)
    except DecodeError as exc:
        raise Unprocessable(
            "receipt_avro is not a DeliveryReceipt",
            reason="INVALID_RECEIPT",
            problems=[FieldProblem("receipt_avro", f"{exc.reason}: {exc.message}")],
        ) from None


async def submit(ctx: GatewayContext, caller: Caller, body: Any) -> tuple[bytes, bool]:
    """Check and produce a receipt once; (202 body, whether it is a replay)."""
    if not isinstance(body, dict):
        raise Unprocessable(
            "the body must be an object",
            reason="ENVELOPE_INVALID",
            problems=[FieldProblem("", "expected an object")],
        )
    problems = [FieldProblem(str(k), "unknown field") for k in body if k not in _FIELDS]
    if ("receipt" in body) == ("receipt_avro" in body):
        problems.append(FieldProblem("receipt", "give exactly one of receipt and receipt_avro"))
    if problems:
        raise Unprocessable(
            "invalid request envelope", reason="ENVELOPE_INVALID", problems=problems
        )
    signature = _signature(body.get("signature"))
    value, record = _receipt_bytes(ctx, body)
    broken = receipt_problems(record)
    if broken:
        where = "receipt" if "receipt" in body else "receipt_avro"
        raise Unprocessable(
            "the receipt breaks the receipt rules",
            reason="INVALID_RECEIPT",
            problems=[FieldProblem(f"{where}.{path}", message) for path, message in broken],
        )
    if record["recipient"] != caller.state:
        raise Forbidden(
            f"a receipt's recipient must be your state {caller.state}", reason="RECIPIENT_MISMATCH"
        )
    verified = await _verify(ctx, value, signature)
    receipt_id: str = record["receipt_id"]
    notice_id: str = record["notice_id"]
    key_id, sig = signature if signature is not None else ("", b"")
    digest = hashlib.sha256(value + key_id.encode() + sig).digest()
    topic = ctx.topic(RECEIPTS, caller)
    headers = origin_headers(caller)
    if signature is not None:
        headers += [(RECEIPT_KEY_ID_HEADER, key_id.encode()), (RECEIPT_SIGNATURE_HEADER, sig)]

    async def produce() -> bytes:
        md = await ctx.kafka.send(topic, value, key=notice_id.encode(), headers=headers)
        ctx.metrics.receipts.labels(caller.state).inc()
        log.info(
            "receipt accepted",
            receipt_id=receipt_id,
            notice_id=notice_id,
            state=caller.state,
            caller=caller.id,
            signed=signature is not None,
            verified=verified,
        )
        return orjson.dumps(
            {
                "receipt_id": receipt_id,
                "notice_id": notice_id,
                "recipient": caller.state,
                "signed": signature is not None,
                "signature_verified": verified,
                "topic": topic,
                "partition": md.partition,
                "offset": md.offset,
                "sha256": hashlib.sha256(value).hexdigest(),
                "accepted_at": iso_ms(now_ms()),
            }
        )

    def conflict() -> Conflict:
        return Conflict(
            "this receipt id was already used for another receipt", reason="RECEIPT_ID_REUSED"
        )

    return await ctx.once.produce(
        "receipt:" + receipt_id,
        state=caller.state,
        digest=digest,
        conflict=conflict,
        produce=produce,
    )


async def _verify(ctx: GatewayContext, value: bytes, signature: tuple[str, bytes] | None) -> bool:
    if signature is None:
        if ctx.gw.require_signed_receipts:
            raise Unprocessable(
                "this gateway requires signed receipts", reason="RECEIPT_SIGNATURE_INVALID"
            )
        return False
    verifier = await ctx.trust.verifier()
    if verifier is None:
        if ctx.gw.require_signed_receipts:
            raise Unavailable(
                "no valid trust list to verify the receipt's signature with; retry later",
                retry_after_s=ctx.gw.retry_after_s,
                reason="TRUST_LIST_UNAVAILABLE",
            )
        return False
    try:
        verifier.verify_receipt(value, key_id=signature[0], signature=signature[1])
    except EvidenceError as exc:
        raise Unprocessable(
            f"the receipt's signature does not verify ({exc.reason}): {exc.message}",
            reason="RECEIPT_SIGNATURE_INVALID",
        ) from None
    return True


@router.post(
    "/v1/receipts",
    status_code=202,
    summary="Acknowledge a delivery",
    response_model=None,
    responses={
        202: {"model": ReceiptAccepted, "description": "Kafka acknowledged the receipt"},
        **error_responses(400, 403, 408, 409, 413, 415, 422, 503),
    },
    openapi_extra={"requestBody": json_body("ReceiptSubmission")},
)
async def post_receipt(request: Request) -> Response:
    """Send a DeliveryReceipt for the caller's state (idempotent on ``receipt_id``)."""
    ctx = context(request)
    caller = caller_of(request.scope)
    body = await read_json(request, ctx.gw.max_body_bytes, timeout_s=ctx.gw.body_timeout_s)
    answer, replay = await submit(ctx, caller, body)
    headers = {REPLAY_HEADER: "true"} if replay else None
    return Response(answer, status_code=202, media_type=JSON_TYPE, headers=headers)


# --- GET /v1/receipts/status --------------------------------------------------------------------

STATUS_READ_TIMEOUT_S = 30.0


class Quantiles(BaseModel):
    """The median and 95th percentile of a time, in ms (null: no such time yet)."""

    median: int | None
    p95: int | None


class PairReport(BaseModel):
    """One (origin, recipient) pair's deliveries decided in one period."""

    origin: str
    recipient: str
    period: str = Field(description="2026-12-02 (day), 2026-W49 (ISO week), 2026-12, or all")
    deliveries: int
    received: int
    acknowledged: int
    declined: int
    overdue: int = Field(description="went overdue (escalated), answered late or not")
    awaiting: int = Field(description="a deadline still runs")
    time_to_receipt_ms: Quantiles
    time_to_acknowledgment_ms: Quantiles


class DeliveryStatus(BaseModel):
    """One delivery's status: ids, type, state and times (UTC) only."""

    delivery_id: str
    notice_id: str
    origin: str
    recipient: str
    type: str = Field(description="<notice type>/<event>, e.g. ConsularNotification/DEATH")
    state: Literal["DELIVERED", "RECEIVED", "ACKNOWLEDGED", "DECLINED", "OVERDUE"]
    decided_at: str
    receive_by: str | None
    acknowledge_by: str | None
    received_at: str | None
    answered_at: str | None
    decline_reason: str | None
    case_reference: str | None
    missed: Literal["RECEIVE", "ACKNOWLEDGE"] | None
    escalated_at: str | None


class ReceiptStatusDocument(BaseModel):
    """The receipt status of the caller's state's pairs (contract puente.receipts.status/v1)."""

    contract: Literal["puente.receipts.status/v1"]
    as_: str | None = Field(alias="as", description="the state whose pairs these are")
    generated_at: str
    period: Literal["day", "week", "month", "all"]
    show: Literal["awaiting", "overdue", "all"]
    report: list[PairReport]
    deliveries: list[DeliveryStatus]


def _visible_types(caller: Caller, tracks: list[Track]) -> list[Track]:
    """An agency limited to some notice types sees the deliveries of those types only."""
    if not caller.restricted:
        return tracks
    return [t for t in tracks if caller.may_use("puente." + t.type.split("/", 1)[0])]


@router.get(
    "/v1/receipts/status",
    summary="Receipts and deadlines of the caller's state's deliveries",
    response_model=None,
    responses={
        200: {"model": ReceiptStatusDocument, "description": CONTRACT},
        **error_responses(422, 503),
    },
)
async def get_receipt_status(
    request: Request,
    overdue: Annotated[bool, Query(description="list only the deliveries overdue now")] = False,
    all_deliveries: Annotated[
        bool, Query(alias="all", description="list every delivery, not only those awaited")
    ] = False,
    period: Annotated[
        Literal["day", "week", "month", "all"], Query(description="the report's period")
    ] = "month",
) -> Response:
    """The deliveries the caller's state sent and received, as the receipt trackers track them:
    per pair and period, how many, received, acknowledged, declined and overdue, and the
    median and p95 time to receipt and to acknowledgment; then the deliveries still awaited
    (``overdue``: only the overdue ones; ``all``: every one). Never another pair's."""
    ctx = context(request)
    caller = caller_of(request.scope)
    if overdue and all_deliveries:
        raise Unprocessable(
            "give overdue or all, not both",
            reason="REQUEST_INVALID",
            problems=[FieldProblem("overdue", "not with all")],
        )
    topics = status_topics(ctx.naming, [caller.state])
    async with ctx.readers.reader(ReadKind.PAGE, caller.id, caller.state) as c:
        try:
            tracks = await asyncio.wait_for(
                read_tracks(c, ctx.registry, topics), timeout=STATUS_READ_TIMEOUT_S
            )
        except (KafkaError, TimeoutError, PuenteError) as exc:
            log.warning("receipt status unavailable", state=caller.state, error=type(exc).__name__)
            raise Unavailable(
                "the receipt trackers' topics cannot be read now; retry later",
                retry_after_s=ctx.gw.retry_after_s,
            ) from None
    show: Show = "overdue" if overdue else "all" if all_deliveries else "awaiting"
    doc = status_document(
        _visible_types(caller, tracks),
        viewer=caller.state,
        now_ms=now_ms(),
        period=period,
        show=show,
    )
    return Response(orjson.dumps(doc), media_type=JSON_TYPE)
