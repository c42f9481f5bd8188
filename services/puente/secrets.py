"""Generated credentials, kept as owner-only files in the secrets directory.

Passwords are generated locally (``secrets.token_urlsafe``), written with mode 0600 in a 0700
directory, and never logged or committed (the state directory is git-ignored). In a cluster
deployment the same files are mounted from the orchestrator's secret store.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from puente.errors import ConfigError


@dataclass(frozen=True)
class Credential:
    """A SASL username and password."""

    username: str
    password: str

    def __repr__(self) -> str:  # never print a password by accident
        return f"Credential(username={self.username!r}, password=<hidden>)"


def new_password() -> str:
    """A fresh random password (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only (created 0600, atomically)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class SecretStore:
    """Credentials by principal name, one JSON file each under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, username: str) -> Path:
        if not username or "/" in username or username.startswith("."):
            raise ValueError(f"not a principal name: {username!r}")
        return self.directory / f"{username}.json"

    def get(self, username: str) -> Credential | None:
        path = self._path(username)
        if not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return Credential(username=raw["username"], password=raw["password"])
        except (ValueError, KeyError) as exc:
            raise ConfigError(
                f"credential file {path} is unreadable",
                hint="delete it and re-run `puente kafka provision` to generate a new one",
            ) from exc

    def require(self, username: str) -> Credential:
        cred = self.get(username)
        if cred is None:
            raise ConfigError(
                f"no credentials for principal {username} in {self.directory}",
                hint="run `puente kafka up` and `puente kafka provision` first",
            )
        return cred

    def put(self, cred: Credential) -> None:
        body = json.dumps({"username": cred.username, "password": cred.password}).encode()
        write_private(self._path(cred.username), body)

    def get_or_create(self, username: str) -> tuple[Credential, bool]:
        """The stored credential, or a newly generated and stored one (second item True)."""
        existing = self.get(username)
        if existing is not None:
            return existing, False
        cred = Credential(username=username, password=new_password())
        self.put(cred)
        return cred, True
