"""A small world for the policy service's pure core: registry, policies, keys, trust list."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from puente.codec.registry import Registry
from puente.codec.wire import encode
from puente.config import Settings
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

    def record(self, value: bytes | None, origin: str = "MX", offset: int = 0) -> IngressRecord:
        return IngressRecord(self.naming.topic(INGRESS, origin), 0, offset, value)

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
