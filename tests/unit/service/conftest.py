"""A small world for the policy service's pure core: registry, policies, keys, trust list."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from puente.codec.registry import Registry
from puente.codec.wire import decode, encode
from puente.config import Settings
from puente.errors import PuenteError
from puente.evidence.keys import SigningKey
from puente.evidence.trust import KeyEntry, TrustList, Usage, service_holder
from puente.evidence.verify import Verifier
from puente.policy.store import PolicyStore
from puente.service.processor import IngressRecord, PartitionProcessor, SigningMode
from puente.synth.generator import Generator
from puente.topics import INGRESS, Naming

# The synthetic generator dates everything in 2025; the service judges ages against "now".
NOW = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
NOW_MS = int(NOW.timestamp() * 1000)
DAY = 86_400_000


@dataclass
class World:
    registry: Registry
    policies: PolicyStore
    key: SigningKey
    verifier: Verifier
    naming: Naming

    def processor(
        self, origin: str = "MX", mode: SigningMode = SigningMode.BATCH, **kw: Any
    ) -> PartitionProcessor:
        return PartitionProcessor(
            origin=origin,
            partition=0,
            naming=self.naming,
            registry=self.registry,
            policies=self.policies,
            key=self.key,
            mode=mode,
            **kw,
        )

    def record(
        self, value: bytes | None, origin: str = "MX", offset: int = 0, key: bytes | None = None
    ) -> IngressRecord:
        """An ingress record keyed, as publishers must, by the notice id (when it decodes)."""
        if key is None and value:
            try:
                key = str(decode(self.registry, value)["notice_id"]).encode()
            except PuenteError:
                key = None
        return IngressRecord(self.naming.topic(INGRESS, origin), 0, offset, key, value)

    def encode(self, name: str, notice: dict[str, Any]) -> bytes:
        return encode(self.registry, name, notice)


@pytest.fixture(scope="session")
def world() -> World:
    settings = Settings()
    registry = Registry.load(settings.schemas_dir)
    policies = PolicyStore(settings.policies_dir, settings.schemas_dir, secret=b"s" * 32)
    assert policies.reload().ok
    root = SigningKey.generate("puente.operator/root")
    key = SigningKey.generate("puente.svc/policy")
    tl = TrustList(
        1,
        NOW_MS - 400 * DAY,
        NOW_MS + 400 * DAY,
        (
            KeyEntry(
                key.public,
                service_holder(),
                frozenset({Usage.DELIVERY, Usage.CHECKPOINT}),
                NOW_MS - 400 * DAY,
            ),
        ),
    )
    opened = TrustList.open(tl.sign(root), [root.public], now=NOW_MS)
    return World(
        registry, policies, key, Verifier(trust_list=opened, registry=registry), Naming("puente")
    )


@pytest.fixture
def gen() -> Generator:
    return Generator(7)
