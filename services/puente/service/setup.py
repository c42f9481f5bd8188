"""What a Puente deployment needs before the policy service signs anything, made idempotently:
an operator root key (the trust anchor), the policy service's key, one receipt key per member
state, the early-warning keys (aggregates, evaluator), a signed trust list, and the
pseudonymisation secret.

On the embedded default every key lives in ``<state>/keys`` (private parts 0600). In a real
deployment a member state keeps its own private key and the operator imports only its public
part (``puente keys import``); this module never needs a member's private key.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from puente.config import Settings
from puente.errors import ConfigError
from puente.evidence.errors import TrustListError
from puente.evidence.keys import PublicKey, SigningKey
from puente.evidence.keystore import KeyStore
from puente.evidence.trust import TrustList, Usage, member_holder, service_holder
from puente.kafka.connection import KafkaEndpoint
from puente.secrets import Credential, write_private
from puente.topics import TRUST, Naming

ROOT_HOLDER = "operator:root"
TRUST_LIST_FILE = "trust-list.note"
PSEUDONYM_SECRET_FILE = "policy-pseudonym.key"  # noqa: S105 - a file name, not a secret
PSEUDONYM_SECRET_MIN_BYTES = 32
TRUST_LIST_DAYS = 30
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class Evidence:
    """The keys and trust material of one deployment."""

    store: KeyStore
    service_key: SigningKey
    anchors: tuple[PublicKey, ...]  # who may sign trust lists
    trust_list: bytes  # the signed note

    def open_trust_list(self, now_ms: int | None = None) -> TrustList:
        return TrustList.open(
            self.trust_list, list(self.anchors), now=now_ms or int(time.time() * 1000)
        )


def keys_dir(settings: Settings) -> Path:
    return settings.state_dir / "keys"


def _has_key(store: KeyStore, holder: str, usage: Usage, at: int) -> bool:
    for meta in store.key_metas():
        if meta.holder != holder or usage.value not in meta.usages:
            continue
        if meta.entry(store.public(meta)).status_at(at) == "valid":
            return True
    return False


def ensure_evidence(settings: Settings, members: Sequence[str]) -> Evidence:
    """Create whatever is missing; re-sign the trust list when keys changed or it nears expiry."""
    store = KeyStore(keys_dir(settings))
    now = int(time.time() * 1000)
    changed = False
    if not _has_key(store, ROOT_HOLDER, Usage.TRUST_LIST, now):
        store.generate(ROOT_HOLDER, valid_from=now)
        changed = True
    if not _has_key(store, service_holder(), Usage.DELIVERY, now):
        store.generate(service_holder(), valid_from=now)
        changed = True
    for code in members:
        if not _has_key(store, member_holder(code), Usage.RECEIPT, now):
            store.generate(member_holder(code), valid_from=now)
            changed = True
    # Early warning: aggregates (signed today by the policy service) and the evaluator's warnings.
    for holder in (service_holder(), service_holder("warnings")):
        if not _has_key(store, holder, Usage.EARLY_WARNING, now):
            store.generate(holder, valid_from=now, usages=(Usage.EARLY_WARNING,))
            changed = True
    root = store.current(ROOT_HOLDER, usage=Usage.TRUST_LIST, at=now)
    anchors = tuple(store.public(m) for m in store.key_metas() if m.holder == ROOT_HOLDER)
    path = store.root / TRUST_LIST_FILE
    current: TrustList | None = None
    if path.is_file() and not changed:
        try:
            current = TrustList.open(path.read_bytes(), list(anchors), now=now, strict=False)
        except TrustListError:  # malformed: issue a new one
            current = None
    if current is None or current.problems or current.expires_at - now < 7 * _DAY_MS:
        serial = (current.serial + 1) if current else int(now // 1000)
        unsigned = store.trust_list(
            serial=serial, issued_at=now, expires_at=now + TRUST_LIST_DAYS * _DAY_MS
        )
        path.write_bytes(unsigned.sign(root))
    service_key = store.current(service_holder(), usage=Usage.DELIVERY, at=now)
    return Evidence(store, service_key, anchors, path.read_bytes())


def new_pseudonym_secret() -> bytes:
    """A fresh pseudonymisation secret: 256 random bits as 64 hex digits (text, so that any
    secret store carries it, e.g. a Kubernetes Secret's ``stringData``)."""
    return secrets.token_hex(32).encode("ascii")


def pseudonym_secret(settings: Settings) -> bytes:
    """The policy service's secret for keyed pseudonyms: the bytes of
    ``<secrets dir>/policy-pseudonym.key``.

    Every replica must use the same secret, or one person gets different pseudonyms depending on
    which replica decided. So a configured deployment (``signing_key_file`` set) only reads the
    file its secret store provides (``puente deploy compose secrets``, ``puente deploy k8s
    secrets``) and refuses to start without it; only the embedded default, whose single process
    owns its state directory, generates it on first use (0600).
    """
    path = settings.secrets_dir / PSEUDONYM_SECRET_FILE
    configured = settings.policy.signing_key_file is not None
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


TRUST_LIST_KEY = b"trust-list"


async def publish_trust_list(
    endpoint: KafkaEndpoint, operator: Credential, naming: Naming, trust_list: bytes
) -> None:
    """Put the signed trust list on the (compacted) trust topic, as the operator principal."""
    from puente.kafka.clients import producer, start

    p = producer(endpoint, operator)
    await start(p, endpoint, operator)
    try:
        await p.send_and_wait(naming.topic(TRUST), trust_list, key=TRUST_LIST_KEY)
    finally:
        await p.stop()
