"""Shared pieces for the early-warning tests: the registry, the shipped triggers, keys, and a
small builder of signed aggregates."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from puente.codec.registry import Registry
from puente.evidence.keys import SigningKey
from puente.evidence.trust import KeyEntry, TrustList, Usage, member_holder, node_holder
from puente.resources import project_root
from puente.warnings.aggregate import Aggregate
from puente.warnings.loader import load_triggers
from puente.warnings.signing import AGGREGATE_CONTEXT, SignedAggregate, sign
from puente.warnings.tables import Key, Table
from puente.warnings.triggers import TriggerSet

ROOT = project_root() or Path.cwd()
REGISTRY = Registry.load(ROOT / "schemas")
DAY = 86_400_000


@pytest.fixture(scope="session")
def registry() -> Registry:
    return REGISTRY


@pytest.fixture(scope="session")
def shipped() -> TriggerSet:
    return load_triggers(ROOT / "policies", ROOT / "schemas")


class Keys:
    """Each member's node key (usage early-warning, what signs its aggregates), a member's own
    key of that usage (which may not sign aggregates) and a receipt key, in a trust list."""

    def __init__(self, members: Sequence[str]) -> None:
        self.members = {m: SigningKey.generate(f"puente.node/{m}") for m in members}
        self.member_own = SigningKey.generate("puente.member/MX")
        self.receipt = SigningKey.generate("puente.member/receipts")
        entries = [
            KeyEntry(k.public, node_holder(m), frozenset({Usage.EARLY_WARNING}), 0)
            for m, k in self.members.items()
        ]
        own = KeyEntry(
            self.member_own.public, member_holder("MX"), frozenset({Usage.EARLY_WARNING}), 0
        )
        entries.append(own)
        entries.append(
            KeyEntry(self.receipt.public, member_holder("MX"), frozenset({Usage.RECEIPT}), 0)
        )
        self.trust = TrustList(1, 0, 1 << 50, tuple(entries))

    def signed(
        self,
        origin: str,
        table: Table,
        window: int,
        cells: dict[Key, int],
        *,
        k: int = 5,
        shard: int = 0,
        shards: int = 1,
    ) -> SignedAggregate:
        a = Aggregate(origin, shard, shards, table, window, k, tuple(sorted(cells.items())))
        body = a.encode(REGISTRY)
        sig = sign(self.members[origin], AGGREGATE_CONTEXT, body, signed_at=a.window_end + 1)
        return SignedAggregate(a, body, sig)
