"""``puente gateway token create`` refuses bad arguments before it contacts Kafka (the commands
themselves run against the real broker in tests/integration/gateway/test_token_cli.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from puente.app.commands.gateway import app
from puente.config import get_settings


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PUENTE_STATE_DIR", str(tmp_path))
    # Nothing answers here: a command that got as far as Kafka would fail differently.
    monkeypatch.setenv("PUENTE_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["token", "create", "--state", "ZZ", "--agency", "x"], "not a member state"),
        (
            ["token", "create", "--state", "MX", "--agency", "x", "--types", "DeliveryReceipt"],
            "not a notice type",
        ),
        (["token", "create", "--state", "MX", "--agency", "x", "--types", "Nope"], "not a notice"),
        (["token", "create", "--state", "MX"], "--agency"),
    ],
)
def test_bad_arguments_exit_non_zero(state: Path, args: list[str], complaint: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert complaint in result.output
    assert "pgw_" not in result.output


def test_a_token_of_a_state_the_gateway_does_not_serve_is_refused(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUENTE_GATEWAY__STATES", '["MX"]')
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["token", "create", "--state", "GT", "--agency", "x"])
    assert result.exit_code == 2
    assert "serves MX" in result.output
    assert "pgw_" not in result.output
