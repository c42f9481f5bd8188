"""``puente gateway token create|list|revoke`` write and read the shared token topic: a running
gateway learns what the operator did, with no file in between. The commands run as an operator
runs them, in their own process (logs on stderr, the answer on stdout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from puente.config import get_settings
from puente_gateway.app import create_app
from tests.harness import KafkaHarness, Tenant
from tests.integration.gateway.support import Keys, context_of, serving, wait_until

pytestmark = pytest.mark.kafka


@pytest.fixture
def tenant(
    kafka: KafkaHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Tenant]:
    tenant = kafka.provision(["MX", "GT"], partitions=1)
    keys = Keys.make(("MX", "GT"), tmp_path / "federation-keys")
    monkeypatch.setenv("PUENTE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("PUENTE_GATEWAY__TRUST_ANCHORS_FILE", str(keys.anchors))
    # A gateway of the tenant's two states: it connects as each one's gateway principal.
    monkeypatch.setenv("PUENTE_GATEWAY__STATES", '["MX", "GT"]')
    monkeypatch.setenv("PUENTE_GATEWAY__KEYS_DIR", str(keys.store.root))
    monkeypatch.setenv("PUENTE_SECRETS_DIR", str(tenant.secrets.directory))
    monkeypatch.setenv("PUENTE_KAFKA_BOOTSTRAP", kafka.endpoint.bootstrap)
    monkeypatch.setenv("PUENTE_KAFKA_TOPIC_PREFIX", tenant.naming.prefix)
    get_settings.cache_clear()
    yield tenant
    get_settings.cache_clear()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``puente gateway token ...`` (as ``python -m puente``) with the test's environment."""
    cmd = [sys.executable, "-m", "puente", "gateway", "token", *args]
    return subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=120)


def test_create_list_revoke_reach_a_running_gateway(tenant: Tenant) -> None:
    gw = get_settings().gateway
    server = create_app(get_settings(), gw)
    with serving(server, gw) as url:
        tokens = context_of(server).shared.tokens
        made = cli(
            "create", "--state", "mx", "--agency", "Fiscalía", "--types", "CaseNotice", "--json"
        )
        assert made.returncode == 0, made.stderr
        row = json.loads(made.stdout)
        assert row["state"] == "MX" and row["types"] == ["puente.CaseNotice"]
        assert row["status"] == "active" and row["expires"] != "-"
        wait_until(lambda: tokens.get(row["id"]) is not None, what="the new token")
        auth = {"Authorization": f"Bearer {row['token']}"}
        assert httpx.get(f"{url}/v1/schemas", headers=auth).status_code == 200

        human = cli("create", "--state", "GT", "--agency", "PNC", "--expires-in-days", "0")
        assert human.returncode == 0
        token = human.stdout.strip().splitlines()[-1]
        assert token.startswith("pgw_")
        assert "cannot be shown again" in human.stdout

        listed = cli("list", "--json")
        rows = json.loads(listed.stdout)
        assert [r["state"] for r in rows] == ["MX", "GT"]
        assert all("token" not in r for r in rows)
        assert rows[1]["expires"] == "-" and rows[1]["types"] == ["*"]
        everything = listed.stdout + listed.stderr + made.stderr
        assert row["token"] not in everything and token not in everything

        revoked = cli("revoke", row["id"])
        assert revoked.returncode == 0 and row["id"] in revoked.stdout
        again = cli("revoke", row["id"])
        assert again.returncode == 0 and again.stdout == revoked.stdout  # its first time kept
        table = cli("list", "--state", "MX")
        assert "revoked" in table.stdout and "PNC" not in table.stdout
        wait_until(
            lambda: httpx.get(f"{url}/v1/schemas", headers=auth).status_code == 401,
            what="the revocation",
        )
        unknown = cli("revoke", "0123456789abcdef")
        assert unknown.returncode == 2 and "no token with id" in unknown.stderr
