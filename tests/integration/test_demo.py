"""README's main command, `puente demo`, runs end to end and ends with a verified audit."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.harness import KafkaHarness

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[1].parent


def test_demo_runs_the_whole_mission(kafka: KafkaHarness, tmp_path: Path) -> None:
    prefix = f"d{uuid.uuid4().hex[:8]}"
    env = dict(
        os.environ,
        PUENTE_STATE_DIR=str(tmp_path / "state"),
        PUENTE_KAFKA_BOOTSTRAP=kafka.endpoint.bootstrap,
        PUENTE_KAFKA_USERNAME=kafka.admin.username,
        PUENTE_KAFKA_PASSWORD=kafka.admin.password,
        PUENTE_KAFKA_TOPIC_PREFIX=prefix,
        PUENTE_LOCAL__PARTITIONS="1",
        PUENTE_POLICY__METRICS_PORT="0",
    )
    out = subprocess.run(
        [sys.executable, "-m", "puente", "demo", "--notices", "20", "--seed", "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "Puente audit report — VERIFIED" in text
    assert "FLOOR_ASYLUM_CONFIDENTIALITY" in text  # the asylum seeker never reached JM
    assert "ORIGIN_MISMATCH" in text and "DUPLICATE_NOTICE" in text
    assert "✓ verified" in text
    reports = tmp_path / "state" / "reports"
    assert (reports / "audit.json").is_file() and (reports / "audit.txt").is_file()
