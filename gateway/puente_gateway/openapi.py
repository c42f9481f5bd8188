"""The OpenAPI 3.1 document: FastAPI's, completed with what FastAPI cannot see.

Handlers read their bodies themselves (size limit, media type, precise errors), so the request
schemas come from here: notices and receipts as JSON Schemas derived from the Avro schemas
(puente_gateway.jsonschema). Authentication runs in middleware, so the security schemes and the
401/403/429/503 answers of every ``/v1`` operation are added here too, and the HTTP protocol's
408/414/431 of every operation.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from puente.codec.registry import Registry
from puente_gateway.errors import ErrorBody
from puente_gateway.jsonschema import record_schema

_DESCRIPTIONS = {
    400: "Malformed request (reason MALFORMED_JSON, CURSOR_INVALID, ...)",
    401: "Authentication failed (reason AUTH_REQUIRED or AUTH_INVALID)",
    403: "Authenticated, but not allowed (ORIGIN_MISMATCH, NOTICE_TYPE_FORBIDDEN, "
    "STATE_NOT_SERVED, ...)",
    404: "No such resource",
    408: "The request or its body did not arrive in time (HEAD_TIMEOUT, BODY_TIMEOUT)",
    409: "The id was already used for something else",
    413: "Body over the configured limit",
    414: "Request line too long (URL_TOO_LONG)",
    415: "Body is not application/json",
    422: "Invalid content; `problems` names each field",
    429: "Rate limit exceeded (RATE_LIMITED, AUTH_RATE_LIMITED, TOO_MANY_STREAMS, TOO_MANY_READS)",
    431: "Request headers too large (HEADERS_TOO_LARGE)",
    503: "Kafka, the trust list or a key to seal with unavailable (KAFKA_UNAVAILABLE, "
    "TRUST_LIST_UNAVAILABLE, SEAL_KEY_UNKNOWN, ...); nothing was acknowledged",
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_HEADERS = {
    401: {"WWW-Authenticate": {"description": "Bearer challenge", "schema": {"type": "string"}}},
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}
TITLE = "Puente gateway"
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"mutualTLS": []}]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` entries for these error statuses (ErrorBody)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        out[status] = entry
    return out


def json_body(component: str) -> dict[str, Any]:
    """A required JSON request body of schema ``#/components/schemas/<component>``."""
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
    }


def _error_entry(status: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "description": _DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    if status in _HEADERS:
        entry["headers"] = _HEADERS[status]
    return entry


def _short(full: str) -> str:
    return full.rpartition(".")[2]


def build_openapi(
    app: FastAPI, registry: Registry, notice_types: tuple[str, ...]
) -> dict[str, Any]:
    """The complete document for ``app``."""
    doc = get_openapi(
        title=TITLE,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    variants = []
    for full in notice_types:
        short = _short(full)
        schemas[short] = record_schema(registry.latest(full))
        variants.append(
            {
                "type": "object",
                "title": f"{short}Submission",
                "properties": {
                    "type": {"type": "string", "enum": [short, full]},
                    "notice": {"$ref": f"#/components/schemas/{short}"},
                },
                "required": ["type", "notice"],
                "additionalProperties": False,
            }
        )
    schemas["NoticeSubmission"] = {
        "description": "A notice and its type (short or full record name).",
        "oneOf": variants,
    }
    schemas["DeliveryReceipt"] = record_schema(registry.latest("puente.DeliveryReceipt"))
    schemas["ReceiptSignature"] = {
        "type": "object",
        "description": "Ed25519 signature (RFC 8032) of the recipient state's key over "
        "'puente/delivery-receipt/v1' || 0x00 || the receipt's Avro single-object encoding.",
        "properties": {
            "key_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
            "signature": {
                "type": "string",
                "contentEncoding": "base64",
                "pattern": "^[A-Za-z0-9+/]{86}==$",
                "description": "64 bytes, base64",
            },
        },
        "required": ["key_id", "signature"],
        "additionalProperties": False,
    }
    signature = {"anyOf": [{"$ref": "#/components/schemas/ReceiptSignature"}, {"type": "null"}]}
    schemas["ReceiptSubmission"] = {
        "description": "A DeliveryReceipt as JSON, or as its Avro single-object encoding "
        "(base64; the exact bytes a signature covers), and optionally its signature.",
        "oneOf": [
            {
                "type": "object",
                "title": "JsonReceipt",
                "properties": {
                    "receipt": {"$ref": "#/components/schemas/DeliveryReceipt"},
                    "signature": signature,
                },
                "required": ["receipt"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "title": "AvroReceipt",
                "properties": {
                    "receipt_avro": {"type": "string", "contentEncoding": "base64"},
                    "signature": signature,
                },
                "required": ["receipt_avro"],
                "additionalProperties": False,
            },
        ],
    }
    schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
    doc["components"]["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "an agency token (`puente gateway token create`)",
        },
        "mutualTLS": {
            "type": "mutualTLS",
            "description": "a client certificate whose subject the gateway maps to an agency",
        },
    }
    for path, operations in doc["paths"].items():
        for op in operations.values():
            # The HTTP protocol bounds every request's head, whatever its path.
            for status in (408, 414, 431):
                op["responses"].setdefault(str(status), _error_entry(status))
            if path.startswith("/v1/"):
                op["security"] = SECURITY
                # Refusals of the authentication middleware, before any handler runs (403: a
                # caller of a state this gateway does not serve).
                for status in (401, 403, 429, 503):
                    op["responses"].setdefault(str(status), _error_entry(status))
            else:
                op["security"] = []
    return doc
