"""A small federation for the node's pure core: registry, policies, and for every member state
its node's signing and encryption keys and its own encryption key, in a trust list that pins
the regional floor."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from puente.codec.registry import Registry
from puente.codec.wire import decode, encode
from puente.config import Settings
from puente.errors import PuenteError
from puente.evidence._time import now_ms
from puente.evidence.enckeys import EncryptionKey, KeyRing
from puente.evidence.keys import SigningKey
from puente.evidence.trust import (
    EncKeyEntry,
    KeyEntry,
    TrustList,
    Usage,
    member_holder,
    node_holder,
)
from puente.evidence.trustsource import TrustTracker
from puente.evidence.verify import VerifiedDelivery, Verifier, open_verified
from puente.policy.store import PolicyStore
from puente.publisher.core import seal_for_node
from puente.service.nodekeys import FixedKeys, TrustSealer
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
    node_keys: dict[str, SigningKey]  # member -> its node's signing key
    node_rings: dict[str, KeyRing]  # member -> its node's encryption keys (opens ingress)
    member_rings: dict[str, KeyRing]  # member -> its own encryption keys (opens deliveries)
    trust: TrustTracker
    verifier: Verifier
    naming: Naming

    @property
    def key(self) -> SigningKey:
        """MX's node key (what most tests sign with)."""
        return self.node_keys["MX"]

    def processor(
        self,
        origin: str = "MX",
        mode: SigningMode = SigningMode.BATCH,
        *,
        sealed: bool = True,
        **kw: Any,
    ) -> PartitionProcessor:
        """``origin``'s node processor; ``sealed=False``: ingress and deliveries in clear."""
        keys = FixedKeys(self.node_keys[origin], self.node_rings[origin] if sealed else None)
        kw.setdefault("registry", self.registry)
        kw.setdefault("policies", self.policies)
        return PartitionProcessor(
            origin=origin,
            partition=0,
            naming=self.naming,
            keys=keys,
            sealer=TrustSealer(self.trust) if sealed else None,
            mode=mode,
            **kw,
        )

    def record(
        self,
        value: bytes | None,
        origin: str = "MX",
        offset: int = 0,
        key: bytes | None = None,
        *,
        sealed: bool = True,
    ) -> IngressRecord:
        """An ingress record keyed, as publishers must, by the notice id (when it decodes),
        and sealed by ``origin``'s agency to its node (unless ``sealed=False``)."""
        if key is None and value:
            try:
                key = str(decode(self.registry, value)["notice_id"]).encode()
            except PuenteError:
                key = None
        if sealed and value:
            value = seal_for_node(self.trust.verifier().trust_list, origin, value, at=now_ms())
        return IngressRecord(self.naming.topic(INGRESS, origin), 0, offset, key, value)

    def encode(self, name: str, notice: dict[str, Any]) -> bytes:
        return encode(self.registry, name, notice)

    def verify(self, value: bytes, recipient: str) -> tuple[VerifiedDelivery, bytes]:
        """A delivery verified for ``recipient`` and the notice it opens to."""
        v = self.verifier.verify_delivery(value, recipient=recipient)
        return v, open_verified(v, self.member_rings[recipient])


def make_world() -> World:
    settings = Settings()
    registry = Registry.load(settings.schemas_dir)
    policies = PolicyStore(settings.policies_dir, settings.schemas_dir, secret=b"s" * 32)
    assert policies.reload().ok
    members = policies.current.members
    root = SigningKey.generate("puente.operator/root")
    since = NOW_MS - 400 * DAY
    node_keys = {m: SigningKey.generate(f"puente.node/{m}") for m in members}
    node_enc = {m: EncryptionKey.generate(f"puente.node/{m}") for m in members}
    member_enc = {m: EncryptionKey.generate(f"puente.member/{m}") for m in members}
    tl = TrustList(
        1,
        since,
        now_ms() + 400 * DAY,
        tuple(
            KeyEntry(k.public, node_holder(m), frozenset({Usage.DELIVERY, Usage.CHECKPOINT}), since)
            for m, k in node_keys.items()
        ),
        encryption_entries=tuple(
            EncKeyEntry(k.public, holder(m), since)
            for keys, holder in ((node_enc, node_holder), (member_enc, member_holder))
            for m, k in keys.items()
        ),
        floor_digest=policies.current.digests.floor,
    )
    signed = tl.sign(root)
    trust = TrustTracker.with_list(signed, [root.public], registry)
    opened = TrustList.open(signed, [root.public], now=NOW_MS)
    return World(
        registry,
        policies,
        node_keys,
        {m: KeyRing(node_holder(m), (k,)) for m, k in node_enc.items()},
        {m: KeyRing(member_holder(m), (k,)) for m, k in member_enc.items()},
        trust,
        Verifier(trust_list=opened, registry=registry),
        Naming("puente"),
    )


@pytest.fixture(scope="session")
def world() -> World:
    return make_world()


@pytest.fixture
def gen() -> Generator:
    return Generator(7)
