"""Prometheus metrics of the witnesses (``puente serve witness``). Labels carry state codes,
fork kinds and reason codes, never ids or personal data.

deploy/monitoring/puente-alerts.yaml alerts on ``puente_witness_equivocations_total``;
tests/unit/deploy/test_alerts.py checks that every name the rules use is exported here.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

COSIGNED = Counter(
    "puente_witness_cosigned_total",
    "Cosignatures a state's witness published (per log and turn, of the newest checkpoint it "
    "checked), by the log's state",
    ["witness", "origin"],
)
SKIPPED = Counter(
    "puente_witness_skipped_total",
    "Checkpoints a witness did not cosign without any fork: seen (already cosigned), older "
    "(smaller than the cosigned size), gap (a proof from another size than the cosigned one)",
    ["witness", "reason"],
)
REFUSED = Counter(
    "puente_witness_refused_total",
    "Checkpoints and cosignatures a witness refused (not signed by the log's node key, "
    "malformed), by reason code",
    ["witness", "reason"],
)
EQUIVOCATIONS = Counter(
    "puente_witness_equivocations_total",
    "Equivocations a witness proved and reported (two checkpoints of one log that contradict "
    "each other), by the log's state and kind (same-size, inconsistent)",
    ["witness", "origin", "kind"],
)
COSIGN_DELAY = Histogram(
    "puente_witness_cosign_delay_seconds",
    "From a checkpoint's signing time (its puente-time-ms) to the witness's cosignature being "
    "committed",
    ["witness"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LOGS = Gauge("puente_witness_logs", "Logs a witness has cosigned a checkpoint of", ["witness"])
