"""`puente kafka provision` against the real broker: idempotent, additive, least privilege."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from puente.kafka.admin import admin_client
from puente.kafka.plan import build_plan
from puente.kafka.provision import Action, diff, read_state
from puente.topics import Naming
from tests.harness import KafkaHarness

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[2]


def _members_file(directory: Path, codes: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["members:"] + [f"  - {{code: {c}, name: State {c}}}" for c in codes]
    (directory / "members.yaml").write_text("\n".join(lines) + "\n")


def _provision(kafka: KafkaHarness, tmp: Path, prefix: str, *args: str) -> str:
    env = dict(
        os.environ,
        PUENTE_STATE_DIR=str(tmp / "state"),
        PUENTE_POLICIES_DIR=str(tmp / "policies"),
        PUENTE_KAFKA_BOOTSTRAP=kafka.endpoint.bootstrap,
        PUENTE_KAFKA_USERNAME=kafka.admin.username,
        PUENTE_KAFKA_PASSWORD=kafka.admin.password,
        PUENTE_KAFKA_TOPIC_PREFIX=prefix,
        PUENTE_LOCAL__PARTITIONS="2",
    )
    out = subprocess.run(
        [sys.executable, "-m", "puente", "kafka", "provision", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_provision_is_idempotent_and_adds_exactly_a_new_member(
    kafka: KafkaHarness, tmp_path: Path
) -> None:
    prefix = f"p{uuid.uuid4().hex[:8]}"
    _members_file(tmp_path / "policies", ["AR", "MX"])

    dry = _provision(kafka, tmp_path, prefix, "--dry-run")
    assert "would make" in dry and f"{prefix}-mx" in dry
    with admin_client(kafka.endpoint, kafka.admin) as admin:
        assert not [t for t in admin.list_topics() if t.startswith(prefix + ".")]

    first = _provision(kafka, tmp_path, prefix)
    assert "made 0 change(s)" not in first
    assert "made 0 change(s)" in _provision(kafka, tmp_path, prefix)

    secrets = tmp_path / "state" / "secrets"
    assert {p.name for p in secrets.iterdir()} >= {f"{prefix}-ar.json", f"{prefix}-mx.json"}
    assert all(p.stat().st_mode & 0o077 == 0 for p in secrets.iterdir())
    assert "password" not in first.lower() or "password in" in first.lower()

    _members_file(tmp_path / "policies", ["AR", "MX", "US"])
    naming = Naming(prefix)
    with admin_client(kafka.endpoint, kafka.admin) as admin:
        plan = build_plan(naming, ["AR", "MX", "US"], partitions=2, brokers=kafka.brokers)
        pending = [c for c in diff(plan, read_state(admin, plan)) if c.action is not Action.EXISTS]
    assert pending
    # US's own principal, its node's, its gateway's, its receipt tracker's and its witness's,
    # and its topics: nothing else.
    us = {naming.member_principal("US"), naming.node_principal("US")}
    us |= {naming.gateway_principal("US"), naming.tracker_principal("US")}
    us |= {naming.witness_principal("US")}
    assert all(c.target in us or c.target.endswith(".US") for c in pending)

    _provision(kafka, tmp_path, prefix)
    with admin_client(kafka.endpoint, kafka.admin) as admin:
        state = read_state(admin, plan)
        assert {c.action for c in diff(plan, state)} == {Action.EXISTS}
        assert f"{prefix}.ingress.US" in state.topics
