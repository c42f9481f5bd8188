"""Prometheus metrics of one gateway app (its own registry, so tests can run several apps).

Names: ``puente_gateway_requests_total{route,method,status}``,
``puente_gateway_request_seconds{route}``, ``puente_gateway_notices_produced_total{origin,type}``,
``puente_gateway_receipts_produced_total{recipient}``, ``puente_gateway_rejections_total{reason}``
(requests the gateway refused, by reason code), ``puente_gateway_idempotent_replays_total``,
``puente_gateway_readers`` (Kafka readers held by pages, streams and the gateway),
``puente_gateway_state_lag_seconds`` (since the shared state was last confirmed current) and
``puente_gateway_ledger_entries`` (first answers held in memory). Routes are templates
(``/v1/schemas/{name}``), never raw paths, so label sets stay bounded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    """The gateway's metrics, registered in ``self.registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "puente_gateway_requests", "HTTP requests", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "puente_gateway_request_seconds",
            "HTTP request latency (to the end of the response)",
            ["route"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.notices = Counter(
            "puente_gateway_notices_produced",
            "notices acknowledged by Kafka, by origin state and notice type",
            ["origin", "type"],
            registry=r,
        )
        self.receipts = Counter(
            "puente_gateway_receipts_produced",
            "delivery receipts acknowledged by Kafka, by recipient state",
            ["recipient"],
            registry=r,
        )
        self.rejections = Counter(
            "puente_gateway_rejections",
            "requests the gateway refused, by reason code",
            ["reason"],
            registry=r,
        )
        self.replays = Counter(
            "puente_gateway_idempotent_replays",
            "retried POSTs answered from the ledger without producing",
            registry=r,
        )
        self.readers = Gauge("puente_gateway_readers", "Kafka readers held", registry=r)
        self.state_lag = Gauge(
            "puente_gateway_state_lag_seconds",
            "seconds since the shared state (tokens, first answers) was confirmed current",
            registry=r,
        )
        self.ledger_entries = Gauge(
            "puente_gateway_ledger_entries", "first answers held in memory", registry=r
        )
        # Child lookups by label values cost more than the increments; keep them.
        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def refused(self, reason: str) -> None:
        """Count one refusal."""
        self._child(self.rejections, reason).inc()

    def produced(self, origin: str, notice_type: str) -> None:
        """Count one acknowledged notice."""
        self._child(self.notices, origin, notice_type).inc()

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self._child(self.requests, route, method, str(status)).inc()
        self._child(self.latency, route).observe(seconds)


class MetricsMiddleware:
    """ASGI middleware timing every HTTP request and counting it by route template and status."""

    def __init__(self, app: ASGIApp, *, metrics: GatewayMetrics, routes: Iterable[Any]) -> None:
        self.app = app
        self.metrics = metrics
        # (regex, template) of every route, to label requests refused before routing (401,
        # 429) or never routed (405) by their template; anything else is "unmatched".
        self._templates: list[tuple[re.Pattern[str], str]] = [
            (r.path_regex, r.path) for r in routes if hasattr(r, "path_regex")
        ]

    def _route(self, scope: Scope) -> str:
        path: str = scope.get("path", "")
        for regex, template in self._templates:
            if regex.match(path):
                return template
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.observe(
                self._route(scope), scope["method"], status, time.perf_counter() - start
            )
