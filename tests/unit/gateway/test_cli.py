"""``puente gateway token create|revoke|list`` on a temporary state directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from puente.config import get_settings
from puente_gateway.cli import app
from puente_gateway.tokens import TOKENS_FILE, TokenStore


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PUENTE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("PUENTE_GATEWAY_DATA_DIR", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_create_list_revoke(state: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(
        app,
        [
            "token",
            "create",
            "--state",
            "mx",
            "--agency",
            "Fiscalía",
            "--types",
            "CaseNotice",
            "--json",
        ],
    )
    assert made.exit_code == 0, made.output
    row = json.loads(made.output)
    assert row["state"] == "MX" and row["types"] == ["puente.CaseNotice"]
    assert row["status"] == "active" and row["expires"] != "-"
    store = TokenStore(state / "gateway" / TOKENS_FILE)
    assert store.lookup(row["token"]) is not None
    store.close()

    human = runner.invoke(
        app, ["token", "create", "--state", "GT", "--agency", "PNC", "--expires-in-days", "0"]
    )
    assert human.exit_code == 0
    token = human.output.strip().splitlines()[-1]
    assert token.startswith("pgw_")
    assert "cannot be shown again" in human.output

    listed = runner.invoke(app, ["token", "list", "--json"])
    rows = json.loads(listed.output)
    assert [r["state"] for r in rows] == ["MX", "GT"]
    assert all("token" not in r for r in rows)
    assert row["token"] not in listed.output and token not in listed.output
    assert rows[1]["expires"] == "-" and rows[1]["types"] == ["*"]

    revoked = runner.invoke(app, ["token", "revoke", row["id"]])
    assert revoked.exit_code == 0 and row["id"] in revoked.output
    table = runner.invoke(app, ["token", "list", "--state", "MX"])
    assert "revoked" in table.output and "PNC" not in table.output


@pytest.mark.parametrize(
    "args",
    [
        ["token", "create", "--state", "ZZ", "--agency", "x"],
        ["token", "create", "--state", "MX", "--agency", "x", "--types", "DeliveryReceipt"],
        ["token", "create", "--state", "MX", "--agency", "x", "--types", "Nope"],
        ["token", "create", "--state", "MX"],
    ],
)
def test_bad_arguments_exit_non_zero(state: Path, args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert not (state / "gateway" / TOKENS_FILE).exists() or "pgw_" not in result.output
