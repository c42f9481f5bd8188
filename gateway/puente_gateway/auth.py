"""Who is calling: bearer tokens or client certificates, resolved to an agency of one state.

Authentication runs as ASGI middleware in front of every ``/v1`` path, before routing and
before the body is read, so an unauthenticated caller learns nothing — not whether a path or a
schema exists, not how large a body may be — and is refused without costing a body read.
Nothing an unauthenticated caller sends is kept: a bearer value that is not exactly a Puente
token (``pgw_`` + 43 base64url characters) is refused before it is hashed or looked up, tokens
are found by their SHA-256 in the shared token table (puente_gateway.shared), and failed
attempts are counted per client address in a bounded table (429 ``AUTH_RATE_LIMITED`` beyond
the budget, before any lookup). Token callers are identified by their token id, certificate
callers by ``cert:`` and a digest of their subject (a subject may carry a person's name; logs
carry the digest only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.types import ASGIApp, Receive, Scope, Send

from puente.logs import get_logger
from puente_gateway.clock import now_ms
from puente_gateway.errors import (
    Forbidden,
    GatewayError,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from puente_gateway.metrics import GatewayMetrics
from puente_gateway.mtls import ClientCertificates, subject_id
from puente_gateway.ratelimit import FailureLimiter, RateLimiter, address_key
from puente_gateway.tokens import TokenTable, well_formed

log = get_logger("gateway.auth")
# "Bearer " and a token, with room for stray blanks; a longer value is refused unread.
_MAX_AUTHORIZATION = 96


@dataclass(frozen=True)
class Certificate:
    """What identifies a client certificate: its subject, serial and issuer."""

    subject: str
    serial: int | None
    issuer: str | None


@dataclass(frozen=True)
class Caller:
    """An authenticated agency of one member state."""

    id: str
    state: str
    agency: str
    types: frozenset[str] = field(default_factory=frozenset)  # empty: every notice type
    method: Literal["token", "mtls"] = "token"
    certificate: Certificate | None = None

    def may_use(self, full_name: str) -> bool:
        """Whether this agency may publish (and read) notices of record ``full_name``."""
        return not self.types or full_name in self.types

    @property
    def restricted(self) -> bool:
        """Whether the agency is limited to some notice types."""
        return bool(self.types)


class Authenticator:
    """Resolves a request's credentials to a :class:`Caller`, or raises :class:`Unauthenticated`.

    Tokens are looked up in the shared token table; ``current()`` says whether this replica
    knows that table to be current (within the bound on revocations), and token callers get
    ``503`` while it is not. Expiry is checked on every request.
    """

    def __init__(
        self,
        tokens: TokenTable,
        *,
        current: Callable[[], bool],
        members: Iterable[str],
        served: Iterable[str] | None = None,
        clients: ClientCertificates | None = None,
        retry_after_s: int = 5,
    ) -> None:
        """``served``: the states this gateway is the edge of (None: every member state);
        an authenticated caller of another state is refused, 403 ``STATE_NOT_SERVED``."""
        self.tokens = tokens
        self.current = current
        self.members = frozenset(members)
        self.served = self.members if served is None else frozenset(served)
        self.clients = clients
        self.retry_after_s = retry_after_s

    def authenticate(self, scope: Scope) -> Caller:
        """The caller of an HTTP request scope, if this gateway serves its state."""
        caller = self._identify(scope)
        if caller.state not in self.served:
            log.info("caller of a state not served", caller=caller.id, state=caller.state)
            served = ", ".join(sorted(self.served))
            raise Forbidden(
                f"this gateway is the edge of {served}, not of {caller.state}: agencies of "
                f"{caller.state} publish and read through their own state's gateway",
                reason="STATE_NOT_SERVED",
            )
        return caller

    def _identify(self, scope: Scope) -> Caller:
        auth = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
                break
        if auth is not None:
            return self._from_token(auth)
        cert = _client_certificate(scope)
        if cert is not None:
            return self._from_cert(cert)
        raise Unauthenticated("authentication required", reason="AUTH_REQUIRED")

    def _from_token(self, header: bytes) -> Caller:
        if len(header) > _MAX_AUTHORIZATION:
            raise Unauthenticated("invalid token")
        scheme, _, value = header.partition(b" ")
        if scheme.lower() != b"bearer" or not value.strip():
            raise Unauthenticated("use 'Authorization: Bearer <token>'")
        token = value.strip()
        if not well_formed(token):
            raise Unauthenticated("invalid token")
        if not self.current():
            raise self._not_current()
        record = self.tokens.lookup(token)
        if record is None:
            raise Unauthenticated("invalid token")
        status = record.status(now_ms())
        if status != "active" or record.state not in self.members:
            # The holder learns only that the token does not work; the log says why.
            log.info("token refused", token_id=record.id, status=status, state=record.state)
            raise Unauthenticated("invalid token")
        return Caller(record.id, record.state, record.agency, frozenset(record.types), "token")

    def _not_current(self) -> Unavailable:
        return Unavailable(
            "the gateway cannot confirm its token list is current; retry later",
            retry_after_s=self.retry_after_s,
        )

    def _from_cert(self, cert: Certificate) -> Caller:
        if self.clients is None:
            log.info("client certificate without a client map", caller=subject_id(cert.subject))
            raise Unauthenticated("client certificate not registered")
        entry = self.clients.resolve(cert.subject, serial=cert.serial, issuer=cert.issuer)
        if entry.state not in self.members:
            log.info("client certificate of a non-member", caller=subject_id(cert.subject))
            raise Unauthenticated("client certificate not registered")
        types = frozenset(t if "." in t else f"puente.{t}" for t in entry.types)
        return Caller(subject_id(cert.subject), entry.state, entry.agency, types, "mtls", cert)

    def recheck(self, caller: Caller) -> None:
        """Raise what a new request with the same credentials would get now (401, or 503 when
        this replica cannot tell); long event streams call this to decide whether to go on."""
        if caller.certificate is not None:
            self._from_cert(caller.certificate)
            return
        if not self.current():
            raise self._not_current()
        record = self.tokens.get(caller.id)
        if record is None or record.status(now_ms()) != "active":
            raise Unauthenticated("credentials no longer valid")


def _client_certificate(scope: Scope) -> Certificate | None:
    ext: dict[str, Any] = scope.get("extensions") or {}
    tls = ext.get("tls")
    if not tls:
        return None
    name = tls.get("client_cert_name")
    if not isinstance(name, str) or not name:
        return None
    serial, issuer = tls.get("client_cert_serial"), tls.get("client_cert_issuer")
    return Certificate(
        name,
        serial if isinstance(serial, int) else None,
        issuer if isinstance(issuer, str) else None,
    )


def caller_of(scope: Scope) -> Caller:
    """The caller the middleware put in the request scope."""
    caller = scope["state"]["caller"]
    assert isinstance(caller, Caller)
    return caller


PROTECTED_PREFIX = "/v1"


class AuthMiddleware:
    """ASGI middleware: authenticate and rate-limit every ``/v1`` request before routing."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        limiter: RateLimiter,
        failures: FailureLimiter,
        metrics: GatewayMetrics,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.limiter = limiter
        self.failures = failures
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (
            path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")
        ):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = address_key(client[0]) if client else "unknown"
        try:
            blocked = self.failures.blocked(address)
            if blocked is not None:
                raise RateLimited(
                    blocked,
                    reason="AUTH_RATE_LIMITED",
                    message=f"too many failed authentications; retry in {blocked} s",
                )
            try:
                caller = self.authenticator.authenticate(scope)
            except Unauthenticated:
                self.failures.failed(address)
                raise
            wait = self.limiter.take(caller.id)
            if wait is not None:
                log.info("rate limited", caller=caller.id, state=caller.state)
                raise RateLimited(wait)
        except GatewayError as err:
            self.metrics.refused(err.reason)
            await err.response()(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)
