"""``POST /v1/notices``: a JSON notice in, a sealed Avro record on the caller's ingress topic out.

Body: ``{"type": "CaseNotice" | "ConsularNotification" (or the full name), "notice": {...}}``
with the notice in its natural JSON form (puente.codec.jsonconv). The order of checks is the
order of cost: media type, size, JSON, envelope, notice type, the agency's right to it, origin,
the schema, then Kafka. The 202 comes only after Kafka acknowledged the record (acks=all).

The gateway is its state's edge: the notice, encoded, is sealed to the state's node encryption
key named by the trust list in force (HPKE, docs/evidence.md §9) before it is produced, so only
that node can read it; without a valid trust list or a valid node key the answer is a 503 and
nothing is produced — never a notice in clear. The idempotency ledger keeps the notice's
SHA-256, never the notice.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from puente.codec.errors import EncodeError, FieldProblem
from puente.codec.jsonconv import from_json
from puente.codec.wire import encode
from puente.evidence.errors import SealError
from puente.logs import get_logger
from puente.publisher.core import seal_for_node
from puente.topics import INGRESS
from puente_gateway.auth import Caller, caller_of
from puente_gateway.body import JSON_TYPE, read_json
from puente_gateway.clock import iso_ms, now_ms
from puente_gateway.context import GatewayContext, context
from puente_gateway.errors import Conflict, Forbidden, Unavailable, Unprocessable, problems_at
from puente_gateway.models import NoticeAccepted
from puente_gateway.openapi import error_responses, json_body

log = get_logger("gateway.notices")
router = APIRouter(tags=["notices"])

REPLAY_HEADER = "Idempotent-Replay"


def origin_headers(caller: Caller) -> list[tuple[str, bytes]]:
    """Kafka headers saying who sent a record through the gateway: ids only (the caller's
    token id or certificate digest; its agency's name stays with the token, off the topic)."""
    return [("puente.via", b"gateway"), ("puente.caller", caller.id.encode())]


def parse_envelope(ctx: GatewayContext, caller: Caller, body: Any) -> tuple[str, dict[str, Any]]:
    """The notice's full type name and its JSON object, or a 422/403."""
    if not isinstance(body, dict):
        raise Unprocessable(
            "the body must be an object {type, notice}",
            reason="ENVELOPE_INVALID",
            problems=[FieldProblem("", "expected an object")],
        )
    problems = [FieldProblem(str(k), "unknown field") for k in body if k not in ("type", "notice")]
    kind, notice = body.get("type"), body.get("notice")
    if not isinstance(kind, str):
        problems.append(
            FieldProblem("type", "required field missing" if kind is None else "expected a string")
        )
    if not isinstance(notice, dict):
        what = "required field missing" if notice is None else "expected an object"
        problems.append(FieldProblem("notice", what))
    if problems:
        raise Unprocessable(
            "invalid request envelope", reason="ENVELOPE_INVALID", problems=problems
        )
    assert isinstance(kind, str) and isinstance(notice, dict)
    full = ctx.notice_type(kind)
    if full is None:
        known = ", ".join(ctx.gw.notice_types)
        raise Unprocessable(
            f"unknown notice type; known: {known}",
            reason="UNKNOWN_NOTICE_TYPE",
            problems=[FieldProblem("type", f"not one of {known}")],
        )
    if not caller.may_use(full):
        raise Forbidden(f"your agency may not publish {full}", reason="NOTICE_TYPE_FORBIDDEN")
    origin = notice.get("origin")
    if isinstance(origin, str) and origin != caller.state:
        raise Forbidden(
            f"the notice's origin {origin[:8]!r} is not your state {caller.state}",
            reason="ORIGIN_MISMATCH",
        )
    return full, notice


async def publish(ctx: GatewayContext, caller: Caller, body: Any) -> tuple[bytes, bool]:
    """Validate, encode and produce a notice once; (202 body, whether it is a replay)."""
    full, notice = parse_envelope(ctx, caller, body)
    try:
        record = from_json(ctx.registry, full, notice)
    except EncodeError as exc:
        raise Unprocessable(
            f"the notice is not a valid {full}",
            reason="INVALID_NOTICE",
            problems=problems_at("notice", exc.problems),
        ) from None
    value = encode(ctx.registry, full, record)
    notice_id: str = record["notice_id"]
    digest = hashlib.sha256(value).digest()
    topic = ctx.topic(INGRESS, caller)

    async def produce() -> bytes:
        sealed = await seal(ctx, caller.state, value)
        md = await ctx.kafka.send(
            topic,
            sealed,
            key=notice_id.encode(),
            headers=[*origin_headers(caller), ("puente.type", full.encode())],
        )
        ctx.metrics.produced(caller.state, full)
        # Debug, not info: at thousands per second the record's own headers (caller, agency)
        # and the metrics are the trail; refusals are logged at info.
        log.debug(
            "notice accepted",
            notice_id=notice_id,
            state=caller.state,
            caller=caller.id,
            type=full,
            partition=md.partition,
            offset=md.offset,
        )
        return orjson.dumps(
            {
                "notice_id": notice_id,
                "type": full,
                "origin": caller.state,
                "topic": topic,
                "partition": md.partition,
                "offset": md.offset,
                "sha256": digest.hex(),
                "sealed_sha256": hashlib.sha256(sealed).hexdigest(),
                "accepted_at": iso_ms(now_ms()),
            }
        )

    def conflict() -> Conflict:
        log.info("notice id reused", notice_id=notice_id, state=caller.state, caller=caller.id)
        return Conflict(
            "this notice id was already used for another notice; give a new notice a new id",
            reason="NOTICE_ID_REUSED",
        )

    return await ctx.once.produce(
        "notice:" + notice_id,
        state=caller.state,
        digest=digest,
        conflict=conflict,
        produce=produce,
        notice_type=full,
    )


async def seal(ctx: GatewayContext, state: str, notice: bytes) -> bytes:
    """``notice`` sealed to ``state``'s node, or 503: ``TRUST_LIST_UNAVAILABLE`` without a
    valid trust list, ``SEAL_KEY_UNKNOWN`` when the list names no valid encryption key of
    ``node:<state>`` (nothing is then produced)."""
    verifier = await ctx.trust.require()
    try:
        return seal_for_node(verifier.trust_list, state, notice, at=now_ms())
    except SealError as exc:
        log.warning("notice not sealed", state=state, reason=exc.reason)
        raise Unavailable(
            f"the trust list in force names no valid encryption key of {state}'s node, so the "
            "notice cannot be sealed to it and was not published; retry later",
            retry_after_s=ctx.gw.retry_after_s,
            reason=exc.reason,
        ) from None


@router.post(
    "/v1/notices",
    status_code=202,
    summary="Publish a notice",
    response_model=None,
    responses={
        202: {"model": NoticeAccepted, "description": "Kafka acknowledged the notice"},
        **error_responses(400, 403, 408, 409, 413, 415, 422, 503),
    },
    openapi_extra={"requestBody": json_body("NoticeSubmission")},
)
async def post_notice(request: Request) -> Response:
    """Publish a CaseNotice or ConsularNotification as the caller's state.

    The notice is sealed to the state's node before it is produced (only that node can read
    it). Answers 202 once Kafka has acknowledged the record; a retry with the same notice id and
    the same content gets the same answer (header ``Idempotent-Replay: true``) and produces
    nothing new.
    """
    ctx = context(request)
    caller = caller_of(request.scope)
    body = await read_json(request, ctx.gw.max_body_bytes, timeout_s=ctx.gw.body_timeout_s)
    answer, replay = await publish(ctx, caller, body)
    headers = {REPLAY_HEADER: "true"} if replay else None
    return Response(answer, status_code=202, media_type=JSON_TYPE, headers=headers)
