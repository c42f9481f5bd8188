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
from puente.warnings.evaluator import EarlyWarning, Evaluator
from puente.warnings.loader import load_triggers
from puente.warnings.signing import AGGREGATE_CONTEXT, SignedAggregate, sign
from puente.warnings.tables import CONSULAR, Dimension, Gazetteer, Key, Table
from puente.warnings.triggers import Measure, Threshold, Trigger, TriggerSet

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


def surge_episode(states: Sequence[str] = ("GT", "MX", "US")) -> list[EarlyWarning]:
    """The evaluator's real output for a surge of VE detentions in MX and US over a baseline
    of 5 a day in MX: STARTED, then ENDED (for tests of what reads the warnings topic)."""
    table = Table(CONSULAR, DAY, events=("DETENTION",), by=(Dimension.NATIONALITY,))
    trigger = Trigger(
        id="test.detentions",
        description="VE detentions",
        purposes=("HUMANITARIAN_ASSISTANCE",),
        legal_basis="Los Angeles Declaration (2022)",
        table=table,
        over=tuple(states),
        over_group="border",
        baseline_windows=3,
        threshold=Threshold(3, 10),
        alert=None,
        measure=Measure.COUNT,
        new_only=False,
        clear_after=1,
        notify=("ALL",),
    )
    keys = Keys(states)
    ev = Evaluator(TriggerSet("sha256:test", 1, 5, 0, 1, (trigger,), Gazetteer()))
    out: list[EarlyWarning] = []
    w0 = 20_000 * DAY
    for day, counts in enumerate([{"MX": 5}] * 4 + [{"MX": 8, "US": 9}, {"MX": 5}]):
        for state in states:
            n = counts.get(state, 0)
            cells: dict[Key, int] = {("VE",): n} if n >= 5 else {}
            out += ev.add(keys.signed(state, table, w0 + day * DAY, cells))
    assert [w.status for w in out] == ["STARTED", "ENDED"]
    return out
