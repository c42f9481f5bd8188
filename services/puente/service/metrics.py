"""Prometheus metrics of the policy service (names use the project's words: notice, decision,
delivery, checkpoint). Labels carry codes and topic names, never personal data."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

NOTICES = Counter("puente_notices_total", "Ingress records processed, by outcome", ["outcome"])
DECISIONS = Counter(
    "puente_decisions_total",
    "Per-recipient decisions and notice rejections, by action and reason code",
    ["action", "reason"],
)
TRANSACTIONS = Counter("puente_transactions_total", "Kafka transactions, by result", ["result"])
BATCH_SECONDS = Histogram(
    "puente_batch_seconds",
    "Time to process and commit one poll's batches",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge(
    "puente_consumer_lag", "Ingress records not yet processed", ["topic", "partition"]
)
OWNED_PARTITIONS = Gauge("puente_owned_partitions", "Ingress partitions this instance owns")
POLICY_RELOADS = Counter("puente_policy_reloads_total", "Policy-set reloads, by result", ["result"])
POLICY_VERSION = Info("puente_policy_set", "The active policy-set version")
