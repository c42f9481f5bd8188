"""Schemathesis against the published OpenAPI document of a real server on the real broker.

Every check runs (no server errors, status codes, content types, headers and bodies as
documented, negative data refused, authentication enforced, unsupported methods refused)
except ``positive_data_acceptance``: a schema-valid body can still be refused for reasons a JSON
Schema cannot express — a cursor this endpoint did not issue, a signature that does not verify,
a notice id already used — and those are 4xx by design. Negative data must be refused with a
4xx: besides schemathesis' defaults, the HTTP protocol's own refusals (408, 413, 414, 431 — a
generated cursor can make the request line longer than the gateway accepts) count as refusals.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from puente_gateway.app import create_app
from tests.harness import KafkaHarness, Tenant
from tests.integration.gateway.support import Keys, issue_token, serving

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def fuzz_target(kafka: KafkaHarness, gw_tenant: Tenant, keys: Keys) -> Iterator[tuple[str, str]]:
    gw = keys.gateway(rate_per_s=10_000, rate_burst=10_000, auth_fail_burst=10_000, wait_max_s=1)
    app = create_app(kafka.settings_for(gw_tenant), gw)
    with serving(app, gw) as url:
        yield url, issue_token(app, url, "MX", agency="fuzzing agency")[1]


REFUSALS = ["400", "401", "403", "404", "405", "406", "408", "409", "413", "414", "415", "422"]
REFUSALS += ["428", "429", "431"]


def test_schemathesis_finds_no_failures(fuzz_target: tuple[str, str], tmp_path: Path) -> None:
    url, token = fuzz_target
    cli = Path(sys.executable).with_name("schemathesis")
    # The token reaches schemathesis through its environment and a config file that refers to
    # it, never through its command line (readable by every local user in /proc). A JSON
    # array of strings is a TOML array.
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        'headers = { Authorization = "Bearer ${PUENTE_FUZZ_TOKEN}" }\n'
        f"[checks.negative_data_rejection]\nexpected-statuses = {json.dumps(REFUSALS)}\n"
    )
    cmd = [
        str(cli),
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        "20",
        "--seed",
        "20261128",
        "--workers",
        "1",
        "--request-timeout",
        "30",
    ]
    env = os.environ | {
        "SCHEMATHESIS_HOOKS": "tests.integration.gateway.st_hooks",
        "PUENTE_FUZZ_TOKEN": token,
    }
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    report = proc.stdout[-20_000:] + proc.stderr[-5_000:]
    assert proc.returncode == 0, report
    assert "passed" in proc.stdout
    # The run reached Kafka: schema-valid notices were acknowledged, not only refused.
    metrics = httpx.get(f"{url}/metrics").text
    produced = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("puente_gateway_notices_produced_total{")
    ]
    assert sum(produced) > 0, report
    assert 'status="500"' not in metrics
