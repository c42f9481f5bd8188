"""The ASGI application: ``create_app(settings, gateway)``.

Middleware, outermost first: metrics (every request, by route template and status), then
authentication and rate limiting for ``/v1`` (before routing and before any body is read), then
FastAPI's routing and exception handling. Every refusal is an :class:`ErrorBody`. The app's
lifespan follows the shared state (tokens, first answers) and closes the Kafka clients.
"""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from puente import __version__
from puente.codec.errors import FieldProblem
from puente.codec.registry import Registry
from puente.config import GatewaySettings, Settings
from puente.errors import ConfigError
from puente.evidence.finality import default_quorum
from puente.logs import get_logger
from puente.members import load_members
from puente.secrets import Credential
from puente.topics import Naming
from puente_gateway import catalog, feeds, finality, health, notices, receipts, trust
from puente_gateway.auth import Authenticator, AuthMiddleware
from puente_gateway.broker import GatewayKafka, gateway_credentials
from puente_gateway.context import GatewayContext
from puente_gateway.edge import Edge
from puente_gateway.errors import GatewayError, NotFound, Unprocessable
from puente_gateway.metrics import GatewayMetrics, MetricsMiddleware
from puente_gateway.mtls import ClientCertificates
from puente_gateway.once import Once
from puente_gateway.openapi import TITLE, build_openapi
from puente_gateway.pool import Admission, Limits, ReaderPool
from puente_gateway.ratelimit import FailureLimiter, RateLimiter
from puente_gateway.shared import SharedState
from puente_gateway.warnings import router as warnings_router

log = get_logger("gateway")
# The gateway exports Prometheus metrics; FastAPI's OpenTelemetry hooks would only add a
# provider lookup to every request.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

DESCRIPTION = """\
Puente's HTTP front door for agencies of the member states of the Los Angeles Declaration.

Every `/v1` call is made by an agency of one member state, authenticated by a bearer token
(`puente gateway token create`) or a client certificate. It publishes only as its own state and
reads only its own state's deliveries and rejections. Errors are JSON bodies with a stable
`reason` code, a `message` and, for field errors, `problems` with field paths.
"""


def create_app(
    settings: Settings,
    gateway: GatewaySettings | None = None,
    *,
    registry: Registry | None = None,
    kafka: GatewayKafka | None = None,
    credentials: Mapping[str, Credential] | None = None,
) -> FastAPI:
    """The gateway app for one process. Raises ConfigError for missing files or settings.

    ``credentials``: the Kafka credential of each state's gateway it serves (by default read
    from the secrets directory); ignored when ``kafka`` is given."""
    gw = gateway or settings.gateway
    registry = registry or Registry.load(settings.schemas_dir)
    for name in gw.notice_types:
        if name not in registry.names():
            raise ConfigError(f"notice type {name} has no schema in {settings.schemas_dir}")
    members = load_members(settings.policies_dir).codes
    metrics = GatewayMetrics()
    edge = Edge.from_settings(settings, gw, members)
    if kafka is None:
        creds = (
            credentials if credentials is not None else gateway_credentials(settings, edge.states)
        )
        kafka = GatewayKafka(settings, gw, creds)
    shared = SharedState(
        kafka,
        ttl_s=gw.idempotency_ttl_s,
        max_lag_s=gw.state_max_lag_s,
        interval_s=gw.state_sync_s,
        max_entries=gw.ledger_max_entries,
    )
    metrics.state_lag.set_function(shared.lag_s)
    metrics.ledger_entries.set_function(lambda: len(shared.ledger))
    # Reserves only for the states this gateway serves: callers of other states never get in.
    readers = ReaderPool(kafka, _admission(gw, edge.states), metrics, max_idle=gw.max_idle_readers)
    kafka.readers = readers
    authenticator = Authenticator(
        shared.tokens,
        current=shared.current,
        members=members,
        served=edge.states,
        clients=_client_certificates(gw),
        retry_after_s=gw.retry_after_s,
    )
    trust_source = trust.TrustSource(kafka, gw, registry, settings)
    ctx = GatewayContext(
        gw=gw,
        naming=Naming(settings.kafka.topic_prefix),
        registry=registry,
        kafka=kafka,
        shared=shared,
        readers=readers,
        authenticator=authenticator,
        metrics=metrics,
        once=Once(shared, metrics),
        trust=trust_source,
        edge=edge,
        finality=finality.FinalityView(
            kafka,
            trust_source,
            quorum=settings.witness.quorum or default_quorum(members),
            lookback_s=settings.witness.finality_lookback_s,
        ),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("gateway started", prefix=ctx.naming.prefix, states=sorted(edge.states))
        shared.start()
        ctx.finality.start()
        try:
            yield
        finally:
            await ctx.finality.stop()
            await shared.stop()
            await readers.close()
            await kafka.close()
            log.info("gateway stopped")

    app = FastAPI(
        title=TITLE,
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=NO_TELEMETRY,
    )
    app.state.ctx = ctx
    routers = [m.router for m in (notices, feeds, receipts, trust, finality, catalog, health)]
    for router in routers:
        app.include_router(router)
    app.include_router(warnings_router)  # GET /v1/warnings (early warning, issue 19)
    # The hot path, also as a plain Starlette route ahead of FastAPI's: same handler, which
    # takes only the request, so FastAPI's parameter resolution would be pure cost. The
    # FastAPI route stays for the OpenAPI document (and would answer the same).
    app.router.routes.insert(0, Route("/v1/notices", notices.post_notice, methods=["POST"]))
    _install_handlers(app, metrics)
    document: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not document:
            document.update(build_openapi(app, registry, gw.notice_types))
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(
        AuthMiddleware,
        authenticator=authenticator,
        limiter=RateLimiter(gw.rate_per_s, gw.rate_burst),
        failures=FailureLimiter(
            gw.auth_fail_per_s, gw.auth_fail_burst, max_addresses=gw.auth_fail_addresses
        ),
        metrics=metrics,
    )
    # The routers' own routes: included without a prefix, their templates are the paths.
    templates = [*app.router.routes, *(r for router in routers for r in router.routes)]
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=templates)
    return app


def _admission(gw: GatewaySettings, states: Iterable[str]) -> Admission:
    limits = Limits(
        total=gw.max_readers,
        reserve_per_state=gw.reader_reserve_per_state,
        streams_per_caller=gw.max_streams_per_caller,
        streams_per_state=gw.max_streams_per_state,
        pages_per_caller=gw.max_pages_per_caller,
        pages_per_state=gw.max_pages_per_state,
    )
    return Admission(limits, states, retry_after_s=gw.retry_after_s)


def _client_certificates(gw: GatewaySettings) -> ClientCertificates | None:
    if gw.mtls_clients is None:
        if gw.client_crl is not None:
            raise ConfigError("a client revocation list needs a client map (mtls_clients)")
        return None
    return ClientCertificates(
        gw.mtls_clients,
        crl=gw.client_crl,
        ca=gw.tls_client_ca,
        reload_s=gw.mtls_reload_s,
        retry_after_s=gw.retry_after_s,
    )


def _install_handlers(app: FastAPI, metrics: GatewayMetrics) -> None:
    async def on_gateway_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        metrics.refused(exc.reason)
        return exc.response()

    async def on_validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = [
            FieldProblem(".".join(str(x) for x in e.get("loc", ())), str(e.get("msg", "")))
            for e in exc.errors()
        ]
        return await on_gateway_error(
            _,
            Unprocessable(
                "invalid request parameters", reason="REQUEST_INVALID", problems=problems
            ),
        )

    async def on_http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            err: GatewayError = NotFound("no such resource")
        else:
            err = GatewayError(str(exc.detail), reason=f"HTTP_{exc.status_code}")
            err.status = exc.status_code
            if exc.status_code == 405:
                err.reason = "METHOD_NOT_ALLOWED"
            err.headers.update(exc.headers or {})
        return await on_gateway_error(_, err)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        route = getattr(request.scope.get("route"), "path", "unmatched")
        # Frames only: exception messages and locals may hold request data (tokens, notices).
        frames = [
            f"{f.filename}:{f.lineno}:{f.name}" for f in traceback.extract_tb(exc.__traceback__)
        ]
        log.error("unhandled error", route=route, error=type(exc).__name__, frames=frames[-8:])
        err = GatewayError(
            "internal error; the gateway's log has the details", reason="INTERNAL_ERROR"
        )
        err.status = 500
        metrics.refused(err.reason)
        return err.response()

    app.add_exception_handler(GatewayError, on_gateway_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
