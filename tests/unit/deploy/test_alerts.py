"""deploy/monitoring/puente-alerts.yaml: a well-formed Prometheus rule file about real metrics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "deploy" / "monitoring" / "puente-alerts.yaml"
GUIDE = REPO / "deploy" / "README.md"
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
METRIC = re.compile(r"\b((?:puente|kafka)_[a-z0-9_]+|up)\b")


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    assert set(doc) == {"groups"}
    names = [g["name"] for g in doc["groups"]]
    assert len(names) == len(set(names))
    out = []
    for group in doc["groups"]:
        assert set(group) <= {"name", "interval", "rules"}
        assert group["rules"], group["name"]
        out += group["rules"]
    return out


def test_every_rule_is_a_complete_alert(rules: list[dict[str, Any]]) -> None:
    alerts = [r["alert"] for r in rules]
    assert len(alerts) == len(set(alerts))
    for r in rules:
        assert set(r) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, r
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", r["alert"])
        assert isinstance(r["expr"], str) and r["expr"].strip()
        if "for" in r:
            assert DURATION.match(r["for"]), r["for"]
        assert r["labels"]["severity"] in {"page", "ticket"}
        assert r["annotations"]["summary"] and r["annotations"]["description"]


def test_expressions_are_balanced(rules: list[dict[str, Any]]) -> None:
    pairs = {")": "(", "]": "[", "}": "{"}
    for r in rules:
        stack: list[str] = []
        in_string = False
        for ch in r["expr"]:
            if ch == '"':
                in_string = not in_string
            elif in_string:
                continue
            elif ch in "([{":
                stack.append(ch)
            elif ch in pairs:
                assert stack and stack.pop() == pairs[ch], r["alert"]
        assert not stack and not in_string, r["alert"]
        for window in re.findall(r"\[([^\]]+)\]", r["expr"]):
            assert DURATION.match(window), (r["alert"], window)


def test_the_issue_s_signals_are_covered(rules: list[dict[str, Any]]) -> None:
    exprs = " ".join(r["expr"] for r in rules)
    for signal in (
        "kafka_consumergroup_lag",  # consumer lag
        "puente_policy_transactions_total",  # transaction aborts (and fencing)
        "puente_policy_decisions_total",  # decisions by reason
        "kafka_server_replicamanager_underreplicatedpartitions",  # under-replicated partitions
        "puente_policy_checkpoint_age_seconds",  # checkpoint age
        'kafka_consumergroup_lag{topic=~"puente',  # deliveries a partner leaves unread
    ):
        assert signal in exprs, signal


def _assert_exported(rules: list[dict[str, Any]], prefix: str, families: dict[str, str]) -> None:
    """Every series the rules name under ``prefix`` belongs to a family of the right type
    (``families``: name → type, as a registry collects them; a counter's family drops _total)."""
    used = {m for r in rules for m in METRIC.findall(r["expr"]) if m.startswith(prefix)}
    assert used
    for name in used:
        base, _, suffix = name.rpartition("_")
        if suffix == "total":
            assert families.get(base) == "counter", name
        elif suffix in ("bucket", "sum", "count"):
            assert families.get(base) == "histogram", name
        elif suffix == "info":
            assert families.get(base) == "info", name
        else:
            assert families.get(name) == "gauge", name


def test_gateway_metrics_exist(rules: list[dict[str, Any]]) -> None:
    """The gateway's metric names in the rules are ones the gateway really exports."""
    from puente_gateway.metrics import GatewayMetrics

    families = {f.name: f.type for f in GatewayMetrics().registry.collect()}
    _assert_exported(rules, "puente_gateway", families)


def test_policy_service_metrics_exist(rules: list[dict[str, Any]]) -> None:
    """The policy service's metric names in the rules are ones it really exports."""
    from puente.service.metrics import registry

    families = {f.name: f.type for f in registry().collect()}
    _assert_exported(rules, "puente_policy", families)


def test_receipt_tracker_metrics_exist(rules: list[dict[str, Any]]) -> None:
    """The receipt trackers' metric names in the rules are ones they really export."""
    from prometheus_client import REGISTRY

    import puente.receipts.metrics  # noqa: F401 - registers them

    families = {f.name: f.type for f in REGISTRY.collect()}
    _assert_exported(rules, "puente_receipts", families)


def test_witness_metrics_exist(rules: list[dict[str, Any]]) -> None:
    """The witnesses' metric names in the rules are ones they really export."""
    from prometheus_client import REGISTRY

    import puente.witness.metrics  # noqa: F401 - registers them

    families = {f.name: f.type for f in REGISTRY.collect()}
    _assert_exported(rules, "puente_witness", families)


def test_early_warning_metrics_exist(rules: list[dict[str, Any]]) -> None:
    """The evaluator's metric names in the rules are ones it really exports."""
    from puente.warnings.metrics import registry

    families = {f.name: f.type for f in registry().collect()}
    _assert_exported(rules, "puente_warnings", families)


def test_the_guide_documents_every_puente_metric_the_rules_use(rules: list[dict[str, Any]]) -> None:
    guide = GUIDE.read_text()
    used = {m for r in rules for m in METRIC.findall(r["expr"]) if m.startswith("puente_")}
    # A histogram is documented by its name; the rules use its _bucket series.
    missing = {m for m in used if re.sub(r"_(bucket|sum|count)$", "", m) not in guide}
    assert not missing, missing
