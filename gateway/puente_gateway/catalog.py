"""``GET /v1/schemas`` and ``GET /v1/schemas/{name}``: the registry the gateway encodes with."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from puente.codec.errors import SchemaError
from puente.codec.fingerprint import format_fingerprint
from puente.codec.registry import SchemaVersion
from puente_gateway.body import JSON_TYPE
from puente_gateway.context import context
from puente_gateway.errors import NotFound
from puente_gateway.jsonschema import record_schema
from puente_gateway.models import SchemaDetail, SchemaList
from puente_gateway.openapi import error_responses

router = APIRouter(tags=["schemas"])


def _fingerprint(sv: SchemaVersion) -> str:
    return format_fingerprint(sv.fingerprint)


@router.get(
    "/v1/schemas",
    summary="Every record schema",
    response_model=None,
    responses={200: {"model": SchemaList}},
)
async def list_schemas(request: Request) -> Response:
    """Every record schema the gateway knows, with its versions."""
    ctx = context(request)
    out = []
    for name in ctx.registry.names():
        versions = ctx.registry.versions(name)
        out.append(
            {
                "name": name,
                "versions": [v.version for v in versions],
                "latest": versions[-1].version,
                "fingerprint": _fingerprint(versions[-1]),
                "notice_type": name in ctx.gw.notice_types,
            }
        )
    return Response(orjson.dumps({"schemas": out}), media_type=JSON_TYPE)


@router.get(
    "/v1/schemas/{name}",
    summary="One record schema",
    response_model=None,
    responses={200: {"model": SchemaDetail}, **error_responses(404, 422)},
)
async def get_schema(
    request: Request,
    name: Annotated[str, Path(max_length=200, description="full or short record name")],
    version: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="default: the latest")
    ] = None,
) -> Response:
    """One version of one record schema: the .avsc and the JSON Schema of its JSON form."""
    ctx = context(request)
    try:
        full = ctx.registry.full_name(name)
        sv = ctx.registry.latest(full) if version is None else ctx.registry.get(full, version)
    except SchemaError:
        raise NotFound("no such schema or version", reason="SCHEMA_NOT_FOUND") from None
    body = {
        "name": sv.full_name,
        "version": sv.version,
        "fingerprint": _fingerprint(sv),
        "avro": sv.schema,
        "json_schema": record_schema(sv),
    }
    return Response(orjson.dumps(body), media_type=JSON_TYPE)
