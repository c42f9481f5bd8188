"""Prometheus metrics of the policy service (names use the project's words: notice, decision,
delivery, checkpoint). Labels carry codes, member states and topic names, never personal data.

deploy/monitoring/puente-alerts.yaml alerts on these; tests/unit/deploy/test_alerts.py checks
that every name the rules use is exported here.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Info

NOTICES = Counter(
    "puente_policy_notices_total",
    "Ingress records processed, by origin and outcome (DELIVERED, WITHHELD, REJECTED)",
    ["origin", "outcome"],
)
DECISIONS = Counter(
    "puente_policy_decisions_total",
    "Per-recipient decisions (DELIVERED, TRANSFORMED, WITHHELD) and notice rejections "
    "(REJECTED), in the audit log's words, by reason code",
    ["decision", "reason"],
)
TRANSACTIONS = Counter(
    "puente_policy_transactions_total",
    "Kafka transactions, by result (committed, aborted, fenced, replaced)",
    ["result"],
)
BATCH_SECONDS = Histogram(
    "puente_policy_batch_seconds",
    "Time to process and commit one poll's batches",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge(
    "puente_policy_consumer_lag",
    "Ingress records not yet processed, per owned partition",
    ["topic", "partition"],
)
OWNED_PARTITIONS = Gauge("puente_policy_owned_partitions", "Ingress partitions this instance owns")
CHECKPOINT_AGE = Gauge(
    "puente_policy_checkpoint_age_seconds",
    "Seconds since the last checkpoint of an audit log with records not yet checkpointed "
    "(0 when every record is under a checkpoint)",
    ["log"],
)
POLICY_RELOADS = Counter(
    "puente_policy_reloads_total",
    "Policy-set reloads, by result (activated, refused)",
    ["result"],
)
AGGREGATES = Counter(
    "puente_policy_aggregates_total",
    "Early-warning aggregates of this node, by result: published, or withheld (a window that "
    "could not be signed or would break the small-cell guarantee: its counts are lost)",
    ["origin", "result"],
)
POLICY_SET = Info("puente_policy_set", "The active policy-set version")


def registry() -> CollectorRegistry:
    """Where these metrics are registered (the process default registry)."""
    return REGISTRY
