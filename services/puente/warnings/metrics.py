"""Prometheus metrics of the early-warning evaluator (``puente serve warnings``). Labels carry
reason codes and statuses, never counts of a cell or anything about a person.

deploy/monitoring/puente-alerts.yaml alerts on these; tests/unit/deploy/test_alerts.py checks
that every name the rules use is exported here.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

AGGREGATES = Counter(
    "puente_warnings_aggregates_total",
    "Aggregates read from the aggregates topic, by result: used, or the reason code they were "
    "refused with (SIGNATURE_INVALID, KEY_WRONG_HOLDER, AGGREGATE_CONFLICT…)",
    ["result"],
)
PUBLISHED = Counter(
    "puente_warnings_published_total",
    "Early warnings this instance published, by status (STARTED, CHANGED, ENDED)",
    ["status"],
)
CAUGHT_UP = Gauge(
    "puente_warnings_caught_up",
    "1 once every aggregate present at start has been read and evaluated, else 0",
)


def registry() -> CollectorRegistry:
    """Where these metrics are registered (the process default registry)."""
    return REGISTRY
