"""Who is calling: bearer tokens or client certificates, resolved to an agency of one state.

Authentication runs as ASGI middleware in front of every ``/v1`` path, before routing and
before the body is read, so an unauthenticated caller learns nothing — not whether a path or a
schema exists, not how large a body may be — and is refused without costing a body read.
Token callers are identified by their token id, certificate callers by ``cert:`` and a digest
of their subject (a subject may carry a person's name; logs carry the digest only).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from puente.errors import ConfigError
from puente.logs import get_logger
from puente_gateway.clock import now_ms
from puente_gateway.errors import GatewayError, RateLimited, Unauthenticated
from puente_gateway.metrics import GatewayMetrics
from puente_gateway.ratelimit import RateLimiter
from puente_gateway.tokens import TokenRecord, TokenStore

log = get_logger("gateway.auth")


@dataclass(frozen=True)
class Caller:
    """An authenticated agency of one member state."""

    id: str
    state: str
    agency: str
    types: frozenset[str] = field(default_factory=frozenset)  # empty: every notice type
    method: Literal["token", "mtls"] = "token"

    def may_use(self, full_name: str) -> bool:
        """Whether this agency may publish (and read) notices of record ``full_name``."""
        return not self.types or full_name in self.types


class ClientEntry(BaseModel, frozen=True):
    """One client certificate subject and the agency it stands for."""

    subject: str = Field(description="RFC 4514 subject as cryptography renders it")
    state: str = Field(pattern=r"^[A-Z]{2}$")
    agency: str = Field(min_length=1)
    types: tuple[str, ...] = ()


class _ClientFile(BaseModel, frozen=True):
    clients: tuple[ClientEntry, ...] = ()


def load_clients(path: Path) -> dict[str, ClientEntry]:
    """Read the YAML map of client-certificate subjects (``clients: [{subject, state, ...}]``)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        parsed = _ClientFile.model_validate(raw)
    except FileNotFoundError as exc:
        raise ConfigError(f"client certificate map not found: {path}") from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: invalid client certificate map: {exc}") from exc
    out: dict[str, ClientEntry] = {}
    for entry in parsed.clients:
        if entry.subject in out:
            raise ConfigError(f"{path}: subject {entry.subject!r} is listed twice")
        out[entry.subject] = entry
    return out


def _subject_id(subject: str) -> str:
    return "cert:" + hashlib.sha256(subject.encode("utf-8")).hexdigest()[:16]


class Authenticator:
    """Resolves a request's credentials to a :class:`Caller`, or raises :class:`Unauthenticated`.

    Token lookups are cached for ``cache_s`` seconds (a revocation by the CLI, another process,
    takes effect within that delay); expiry is checked on every request.
    """

    def __init__(
        self,
        tokens: TokenStore,
        *,
        members: Iterable[str],
        notice_types: Iterable[str],
        clients: dict[str, ClientEntry] | None = None,
        cache_s: float = 2.0,
    ) -> None:
        self.tokens = tokens
        self.members = frozenset(members)
        self.notice_types = frozenset(notice_types)
        self.clients = clients or {}
        self.cache_s = cache_s
        self._cache: dict[str, tuple[TokenRecord | None, float]] = {}

    def _record(self, token: str) -> TokenRecord | None:
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and now - hit[1] < self.cache_s:
            return hit[0]
        record = self.tokens.lookup(token)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (record, now)
        return record

    def authenticate(self, scope: Scope) -> Caller:
        """The caller of an HTTP request scope."""
        auth = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
                break
        if auth is not None:
            return self._from_token(auth)
        subject = _client_subject(scope)
        if subject is not None:
            return self._from_cert(subject)
        raise Unauthenticated("authentication required", reason="AUTH_REQUIRED")

    def _from_token(self, header: bytes) -> Caller:
        scheme, _, value = header.partition(b" ")
        if scheme.lower() != b"bearer" or not value.strip():
            raise Unauthenticated("use 'Authorization: Bearer <token>'")
        try:
            token = value.strip().decode("ascii")
        except UnicodeDecodeError:
            raise Unauthenticated("invalid token") from None
        record = self._record(token)
        if record is None:
            raise Unauthenticated("invalid token")
        status = record.status(now_ms())
        if status != "active" or record.state not in self.members:
            # The holder learns only that the token does not work; the log says why.
            log.info("token refused", token_id=record.id, status=status, state=record.state)
            raise Unauthenticated("invalid token")
        return Caller(record.id, record.state, record.agency, frozenset(record.types), "token")

    def _from_cert(self, subject: str) -> Caller:
        entry = self.clients.get(subject)
        if entry is None or entry.state not in self.members:
            log.info("client certificate not mapped", caller=_subject_id(subject))
            raise Unauthenticated("client certificate not registered")
        types = frozenset(t if "." in t else f"puente.{t}" for t in entry.types)
        return Caller(_subject_id(subject), entry.state, entry.agency, types, "mtls")

    def still_valid(self, caller: Caller) -> bool:
        """Whether a caller authenticated earlier may go on (long streams re-check this)."""
        if caller.method == "mtls":
            return True
        record = self.tokens.get(caller.id)
        return record is not None and record.status(now_ms()) == "active"


def _client_subject(scope: Scope) -> str | None:
    ext: dict[str, Any] = scope.get("extensions") or {}
    tls = ext.get("tls")
    if not tls:
        return None
    name = tls.get("client_cert_name")
    return name if isinstance(name, str) and name else None


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
        metrics: GatewayMetrics,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.limiter = limiter
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (
            path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")
        ):
            await self.app(scope, receive, send)
            return
        try:
            caller = self.authenticator.authenticate(scope)
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
