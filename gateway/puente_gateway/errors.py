"""The gateway's errors: one HTTP status and one stable reason code each, and the JSON body.

Every refusal has the same body, described once in the OpenAPI document::

    {"reason": "INVALID_NOTICE", "message": "...", "problems": [{"path": "...", "problem": "..."}]}

Reason codes (stable; used in bodies, metrics and tests):

=====  ===============================  =====================================================
401    AUTH_REQUIRED                    no bearer token and no client certificate
401    AUTH_INVALID                     not a well-formed token; unknown, revoked or expired
                                        token; unmapped or revoked certificate
403    ORIGIN_MISMATCH                  the notice's origin is not the caller's state
403    NOTICE_TYPE_FORBIDDEN            the caller's agency may not publish this notice type
403    RECIPIENT_MISMATCH               a receipt for another state
403    STATE_NOT_SERVED                 the caller's state is not one this gateway is the edge
                                        of (``states``)
400    MALFORMED_JSON                   the body is not JSON (or not UTF-8)
400    CURSOR_INVALID                   a cursor (or Last-Event-ID) the gateway did not issue
404    NOT_FOUND                        no such route or schema
405    METHOD_NOT_ALLOWED
406    NOT_ACCEPTABLE                   an Accept header none of the endpoint's types satisfy
408    HEAD_TIMEOUT                     the request line and headers took too long to arrive
408    BODY_TIMEOUT                     the body took longer than ``body_timeout_s``
409    NOTICE_ID_REUSED                 the notice id was already used for another notice
409    RECEIPT_ID_REUSED                the receipt id was already used for another receipt
413    BODY_TOO_LARGE                   more bytes than ``max_body_bytes`` (checked while reading)
414    URL_TOO_LONG                     a request line over ``max_url_bytes``
415    UNSUPPORTED_MEDIA_TYPE           not ``application/json``
422    ENVELOPE_INVALID                 the request's own fields are wrong (``problems``)
422    UNKNOWN_NOTICE_TYPE              ``type`` names no notice type
422    INVALID_NOTICE                   the notice does not fit its Avro schema (``problems``)
422    INVALID_RECEIPT                  the receipt does not fit its schema (``problems``)
422    RECEIPT_SIGNATURE_INVALID        the receipt's signature does not verify (or is missing)
422    REQUEST_INVALID                  a query parameter or header is invalid (``problems``)
429    RATE_LIMITED                     the caller's token bucket is empty (``Retry-After``)
429    AUTH_RATE_LIMITED                too many failed authentications from the client's
                                        address (``Retry-After``)
429    TOO_MANY_STREAMS                 the caller or its state holds its limit of event streams
429    TOO_MANY_READS                   the caller or its state holds its limit of pages
431    HEADERS_TOO_LARGE                request line and headers over ``max_head_bytes``
503    KAFKA_UNAVAILABLE                Kafka did not acknowledge in time, or the shared
                                        token state is not known to be current (``Retry-After``)
503    TRUST_LIST_UNAVAILABLE           no valid signed trust list is available (to serve, to seal
                                        a notice to its node, or to verify deliveries)
503    SEAL_KEY_UNKNOWN                 the trust list names no valid encryption key of the
                                        caller's node: the notice cannot be sealed (nothing is
                                        produced)
503    CLIENT_CERTIFICATES_UNAVAILABLE  the client map or revocation list cannot be used
503    BUSY                             every shared reader is in use (``Retry-After``)
500    INTERNAL_ERROR                   a bug; the log has the details (never the body)
=====  ===============================  =====================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import orjson
from pydantic import BaseModel, Field
from starlette.responses import Response

from puente.codec.errors import FieldProblem
from puente.errors import PuenteError


class Problem(BaseModel):
    """One problem with one field of the request."""

    path: str = Field(description="where, e.g. notice.persons[2].nationalities[0]")
    problem: str = Field(description="what is wrong there")


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx answer."""

    reason: str = Field(description="stable, upper-snake-case code", examples=["INVALID_NOTICE"])
    message: str = Field(description="what went wrong, for a person")
    problems: list[Problem] = Field(
        default_factory=list, description="field errors (422), empty otherwise"
    )


class GatewayError(PuenteError):
    """A request the gateway refuses, with its HTTP status."""

    status: int = 400
    reason = "BAD_REQUEST"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        problems: Iterable[FieldProblem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.problems = tuple(problems)
        self.headers = dict(headers or {})

    def body(self) -> bytes:
        """The JSON body."""
        return orjson.dumps(
            {
                "reason": self.reason,
                "message": self.message,
                "problems": [{"path": p.path, "problem": p.problem} for p in self.problems],
            }
        )

    def response(self) -> Response:
        """The HTTP response for this error."""
        return Response(self.body(), status_code=self.status, headers=self.headers, media_type=JSON)


JSON = "application/json"
BEARER_CHALLENGE = 'Bearer realm="puente"'


class Unauthenticated(GatewayError):
    """401: no or bad credentials. The message never says which."""

    status = 401
    reason = "AUTH_INVALID"

    def __init__(self, message: str = "authentication required", *, reason: str | None = None):
        super().__init__(message, reason=reason, headers={"WWW-Authenticate": BEARER_CHALLENGE})


class Forbidden(GatewayError):
    """403: authenticated, but this caller may not do this."""

    status = 403
    reason = "FORBIDDEN"


class BadRequest(GatewayError):
    """400: the request cannot be parsed."""

    status = 400


class NotFound(GatewayError):
    """404."""

    status = 404
    reason = "NOT_FOUND"


class Conflict(GatewayError):
    """409: an id already used for something else."""

    status = 409
    reason = "CONFLICT"


class RequestTimeout(GatewayError):
    """408: the request did not arrive in time; the connection is closed."""

    status = 408
    reason = "BODY_TIMEOUT"


class PayloadTooLarge(GatewayError):
    """413: the body is over the limit (found before it was all read)."""

    status = 413
    reason = "BODY_TOO_LARGE"


class UnsupportedMediaType(GatewayError):
    """415: the body is not JSON."""

    status = 415
    reason = "UNSUPPORTED_MEDIA_TYPE"


class Unprocessable(GatewayError):
    """422: well-formed JSON that does not say something valid."""

    status = 422
    reason = "REQUEST_INVALID"


class RateLimited(GatewayError):
    """429: the caller's bucket is empty."""

    status = 429
    reason = "RATE_LIMITED"

    def __init__(
        self, retry_after_s: int, *, reason: str | None = None, message: str | None = None
    ) -> None:
        super().__init__(
            message or f"rate limit exceeded; retry in {retry_after_s} s",
            reason=reason,
            headers={"Retry-After": str(retry_after_s)},
        )


class Unavailable(GatewayError):
    """503: a dependency (Kafka) is not answering; nothing was acknowledged."""

    status = 503
    reason = "KAFKA_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after_s: int, reason: str | None = None) -> None:
        super().__init__(message, reason=reason, headers={"Retry-After": str(retry_after_s)})


def problems_at(prefix: str, problems: Iterable[FieldProblem]) -> list[FieldProblem]:
    """``problems`` with their paths placed under ``prefix`` (a request-body field)."""
    out = []
    for p in problems:
        if not p.path:
            path = prefix
        elif p.path.startswith("["):
            path = prefix + p.path
        else:
            path = f"{prefix}.{p.path}"
        out.append(FieldProblem(path, p.problem))
    return out
