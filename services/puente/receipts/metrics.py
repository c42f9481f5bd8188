"""Prometheus metrics of the receipt trackers (``puente serve receipts``). Labels carry state
codes, notice types, reason codes and results, never ids or personal data.

deploy/monitoring/puente-alerts.yaml alerts on ``puente_receipts_overdue``;
tests/unit/deploy/test_alerts.py checks that every name the rules use is exported here.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OVERDUE = Gauge(
    "puente_receipts_overdue",
    "Deliveries past a deadline without the answer it waited for (escalated, not answered "
    "since), by origin, recipient and type (<notice type>/<event>)",
    ["origin", "recipient", "type"],
)
ESCALATIONS = Counter(
    "puente_receipts_escalations_total",
    "Deliveries escalated as overdue (a signed report to the origin, a reminder to the "
    "recipient): once per delivery",
    ["origin", "recipient", "type"],
)
ESCALATION_DELAY = Histogram(
    "puente_receipts_escalation_delay_seconds",
    "From a deadline passing (the tracker's clock) to its escalation being committed",
    ["origin"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
ACCEPTED = Counter(
    "puente_receipts_accepted_total",
    "Receipts that moved a delivery, by kind (receipt: a machine receipt; ACKNOWLEDGED, "
    "DECLINED: an officer's answer)",
    ["origin", "recipient", "kind"],
)
REFUSED = Counter(
    "puente_receipts_refused_total",
    "Receipts refused without changing any delivery, by the receipts topic's state and reason",
    ["origin", "recipient", "reason"],
)
TRACKED = Gauge("puente_receipts_tracked", "Deliveries the tracker holds in memory", ["origin"])
TRANSACTIONS = Counter(
    "puente_receipts_transactions_total",
    "Tracker transactions, by result (committed, failed, fenced)",
    ["origin", "result"],
)
