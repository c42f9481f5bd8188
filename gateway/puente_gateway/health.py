"""``/healthz`` (the process answers), ``/readyz`` (Kafka answers a bounded metadata request
and the shared state is current) and ``/metrics`` (Prometheus text format). None of them needs
credentials; expose them to the orchestrator and the scraper only."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from puente_gateway.body import JSON_TYPE
from puente_gateway.context import context
from puente_gateway.models import Status
from puente_gateway.openapi import error_responses

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness", response_model=None, responses={200: {"model": Status}})
async def healthz() -> Response:
    """200 while the process serves requests."""
    return Response(b'{"status":"alive"}', media_type=JSON_TYPE)


@router.get(
    "/readyz",
    summary="Readiness",
    response_model=None,
    responses={200: {"model": Status}, **error_responses(503)},
)
async def readyz(request: Request) -> Response:
    """200 when Kafka answered a metadata request within ``ready_timeout_s`` and the shared
    state (tokens, first answers) is known to be current, else 503."""
    ctx = context(request)
    await ctx.kafka.ready()
    if not ctx.shared.current():
        raise ctx.kafka.unavailable("the shared state is not loaded or not current")
    return Response(b'{"status":"ready"}', media_type=JSON_TYPE)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_model=None,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """The gateway's metrics in the Prometheus text format."""
    data = generate_latest(context(request).metrics.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
