"""The pseudonymisation secret: a configured deployment reads the one it is given (the same for
every replica) and never makes one; only the embedded default generates it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from puente.config import PolicyServiceSettings, Settings
from puente.errors import ConfigError
from puente.service.secret import PSEUDONYM_SECRET_FILE, pseudonym_secret


def _settings(tmp_path: Path, *, configured: bool) -> Settings:
    policy = (
        PolicyServiceSettings(keys_dir=tmp_path / "keys") if configured else PolicyServiceSettings()
    )
    return Settings(state_dir=tmp_path / "state", secrets_dir=tmp_path / "secrets", policy=policy)


def test_the_embedded_default_generates_it_once_privately(tmp_path: Path) -> None:
    settings = _settings(tmp_path, configured=False)
    first = pseudonym_secret(settings)
    path = settings.secrets_dir / PSEUDONYM_SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert pseudonym_secret(settings) == first  # kept, not regenerated


def test_a_configured_deployment_never_makes_one(tmp_path: Path) -> None:
    settings = _settings(tmp_path, configured=True)
    with pytest.raises(ConfigError, match=r"pseudonymisation secret .* is missing"):
        pseudonym_secret(settings)
    assert not (settings.secrets_dir / PSEUDONYM_SECRET_FILE).exists()


def test_replicas_read_the_provided_secret(tmp_path: Path) -> None:
    settings = _settings(tmp_path, configured=True)
    settings.secrets_dir.mkdir()
    (settings.secrets_dir / PSEUDONYM_SECRET_FILE).write_bytes(b"k" * 64)
    assert pseudonym_secret(settings) == pseudonym_secret(settings) == b"k" * 64


@pytest.mark.parametrize("content", [b"", b"short\n"])
def test_a_short_secret_is_refused(tmp_path: Path, content: bytes) -> None:
    settings = _settings(tmp_path, configured=True)
    settings.secrets_dir.mkdir()
    (settings.secrets_dir / PSEUDONYM_SECRET_FILE).write_bytes(content)
    with pytest.raises(ConfigError, match="fewer than 32"):
        pseudonym_secret(settings)
