"""The policy service's pseudonymisation secret: read from the deployment's secrets, and made
only by the embedded default (one process owning its state directory)."""

from __future__ import annotations

import secrets

from puente.config import Settings
from puente.errors import ConfigError
from puente.secrets import write_private

PSEUDONYM_SECRET_FILE = "policy-pseudonym.key"  # noqa: S105 - a file name, not a secret
PSEUDONYM_SECRET_MIN_BYTES = 32


def new_pseudonym_secret() -> bytes:
    """A fresh pseudonymisation secret: 256 random bits as 64 hex digits (text, so that any
    secret store carries it, e.g. a Kubernetes Secret's ``stringData``)."""
    return secrets.token_hex(32).encode("ascii")


def pseudonym_secret(settings: Settings) -> bytes:
    """The policy service's secret for keyed pseudonyms: the bytes of
    ``<secrets dir>/policy-pseudonym.key``.

    Every replica must use the same secret, or one person gets different pseudonyms depending on
    which replica decided. So a configured deployment (``keys_dir`` set) only reads the
    file its secret store provides (``puente deploy compose secrets``, ``puente deploy k8s
    secrets``) and refuses to start without it; only the embedded default, whose single process
    owns its state directory, generates it on first use (0600).
    """
    path = settings.secrets_dir / PSEUDONYM_SECRET_FILE
    configured = settings.policy.keys_dir is not None
    if not path.is_file():
        if configured:
            raise ConfigError(
                f"the pseudonymisation secret {path} is missing",
                hint="provision it with the deployment's other secrets (`puente deploy compose "
                "secrets` or `puente deploy k8s secrets`); every replica must read the same one",
            )
        write_private(path, new_pseudonym_secret())
    try:
        secret = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the pseudonymisation secret {path}: {exc}") from exc
    if len(secret) < PSEUDONYM_SECRET_MIN_BYTES:
        raise ConfigError(
            f"the pseudonymisation secret {path} holds {len(secret)} bytes, fewer than "
            f"{PSEUDONYM_SECRET_MIN_BYTES}",
            hint="generate it with `puente deploy compose secrets` or `puente deploy k8s secrets`",
        )
    return secret
