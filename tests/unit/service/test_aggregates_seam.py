"""The seam into a state's node (service/aggregates.py): its processor counts what it accepts,
publishes closed windows with the batch signed by the node's key, keeps its raw counts sealed to
itself, and forgets a batch whose transaction aborted."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from puente.evidence.errors import SealError
from puente.evidence.keys import SigningKey
from puente.evidence.trust import KeyEntry, TrustList, Usage, node_holder
from puente.notices import CONSULAR_NOTIFICATION
from puente.service.aggregates import STATE_KEY, Aggregation, sign_published, state_name
from puente.service.nodekeys import FixedKeys, NodeVault
from puente.service.processor import PartitionProcessor
from puente.synth.generator import Generator
from puente.warnings.combine import Combiner, Partial
from puente.warnings.loader import load_triggers
from puente.warnings.signing import open_aggregate
from tests.unit.service.conftest import NOW, NOW_MS, World
from tests.unit.warnings.conftest import ROOT

HOUR = 3_600_000
TRIGGERS = load_triggers(ROOT / "policies", ROOT / "schemas")


def _aggregation(world: World, origin: str = "MX") -> Aggregation:
    keys = FixedKeys(world.node_keys[origin], world.node_rings[origin])
    vault = NodeVault(world.trust, keys, origin)
    return Aggregation(origin, TRIGGERS, keys, vault, world.registry)


def _trust(world: World) -> TrustList:
    """The nodes' keys with usage early-warning (what the evaluator checks)."""
    entries = tuple(
        KeyEntry(k.public, node_holder(m), frozenset({Usage.EARLY_WARNING}), 0)
        for m, k in world.node_keys.items()
    )
    return TrustList(1, 0, 1 << 50, entries)


def _processor(world: World, aggregation: Aggregation, state: bytes | None) -> PartitionProcessor:
    return world.processor("MX", aggregates=aggregation.feed(0, 1, state))


def _detentions(world: World, gen: Generator, n: int, at: dt.datetime) -> list[bytes]:
    out = []
    for _ in range(n):
        record = gen.consular_notification("MX", "DETENTION", nationalities=["VE"])
        record["event_time"] = at
        record["created_at"] = at
        record["person"]["informed_of_rights_at"] = at
        out.append(world.encode(CONSULAR_NOTIFICATION, record))
    return out


def _state(out_state: list[tuple[bytes, bytes | None]]) -> bytes:
    found = [v for k, v in out_state if k == STATE_KEY]
    assert len(found) == 1 and found[0] is not None
    return found[0]


def test_accepted_notices_are_counted_and_windows_published_with_the_batch(
    world: World, gen: Generator
) -> None:
    proc = _processor(world, _aggregation(world), None)
    day = NOW - dt.timedelta(hours=1)
    values = _detentions(world, gen, 7, day)
    records = [world.record(v, offset=i) for i, v in enumerate(values)]
    records.append(world.record(values[0], offset=7))  # a re-sent notice: refused, not counted
    out = proc.process(records, NOW)
    assert out.outcomes["REJECTED"] == 1
    assert out.aggregates == []  # the day is not over
    _state(out.state)
    later = NOW + dt.timedelta(days=1, hours=7)
    assert proc.windows_due(int(later.timestamp() * 1000))
    closed = proc.process([], later)
    published = [
        open_aggregate(_trust(world), world.registry, value, headers, min_k=TRIGGERS.k)
        for _, value, headers in closed.aggregates
    ]
    assert {key for key, _, _ in closed.aggregates} == {b"MX"}  # keyed by origin
    det = [sa.aggregate for sa in published if sa.aggregate.table.events == ("DETENTION",)]
    hour_before = NOW_MS - HOUR
    assert [a.cells for a in det if a.window_start <= hour_before < a.window_end] == [
        ((("VE",), 7),)
    ]
    assert all(a.origin == "MX" and (a.shard, a.shards) == (0, 1) for a in det)
    assert {sa.signature.key_id for sa in published} == {world.node_keys["MX"].key_id}


def test_the_raw_counts_are_sealed_to_the_node_itself(world: World, gen: Generator) -> None:
    """Small cells never leave the node: the state record on the shared changelog is an
    envelope only MX's node opens, and only as its own partition's state."""
    aggregation = _aggregation(world)
    proc = _processor(world, aggregation, None)
    at = NOW - dt.timedelta(hours=1)
    values = _detentions(world, gen, 2, at)  # a cell of 2: under k
    out = proc.process([world.record(v, offset=i) for i, v in enumerate(values)], NOW)
    sealed = _state(out.state)
    plain = aggregation.vault.open(sealed, name=state_name(0))
    at_cell = plain.index(b'"VE"')
    cell = plain[max(0, at_cell - 8) : at_cell + 12]  # the cell in clear, long enough that
    assert len(cell) >= 18  # no ciphertext holds it by chance (a 2-letter code alone could)
    assert sealed[:2] == b"PS" and cell not in sealed and b"DETENTION" not in sealed
    raw = json.loads(plain)
    assert [[["VE"], 2]] in [cells for _, _, cells in raw["open"]]
    with pytest.raises(SealError) as err:
        aggregation.vault.open(sealed, name=state_name(1))  # another partition's
    assert err.value.reason == "SEAL_INVALID"
    other = NodeVault(world.trust, FixedKeys(world.node_keys["GT"], world.node_rings["GT"]), "GT")
    with pytest.raises(SealError):
        other.open(sealed, name=state_name(0))
    # A take-over that cannot open the state starts afresh instead of blocking the partition.
    fresh = _aggregation(world).feed(0, 1, b"PS\x01\x03" + bytes(60))
    assert list(fresh.aggregator.open_windows()) == []


def test_an_aborted_batch_is_not_counted(world: World, gen: Generator) -> None:
    aggregation = _aggregation(world)
    proc = _processor(world, aggregation, None)
    at = NOW - dt.timedelta(hours=1)
    first = proc.process(
        [world.record(v, offset=i) for i, v in enumerate(_detentions(world, gen, 5, at))], NOW
    )
    proc.process(
        [world.record(v, offset=10 + i) for i, v in enumerate(_detentions(world, gen, 9, at))], NOW
    )
    proc.rollback()  # the second batch's transaction aborted
    # Taken over from the first batch's state record, the partition publishes 5, not 14.
    again = _processor(world, aggregation, _state(first.state))
    closed = again.process([], NOW + dt.timedelta(days=2))
    cells = [
        a.cells
        for a in (
            open_aggregate(_trust(world), world.registry, v, h, min_k=5).aggregate
            for _, v, h in closed.aggregates
        )
        if a.table.events == ("DETENTION",) and a.window_start <= NOW_MS - HOUR < a.window_end
    ]
    assert cells == [((("VE",), 5),)]


def test_early_warning_never_keeps_a_node_from_starting(world: World, tmp_path: Path) -> None:
    """Broken triggers, or a node key without usage early-warning: aggregation is off
    (logged), the node runs."""
    from puente.evidence.keystore import KeyStore
    from puente.service.nodekeys import StoreKeys

    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    store = KeyStore(tmp_path / "keys")
    store.generate(node_holder("MX"), valid_from=0, usages=(Usage.DELIVERY, Usage.CHECKPOINT))
    keys = StoreKeys(store, "MX")
    vault = NodeVault(world.trust, keys, "MX")

    def load() -> Aggregation | None:
        return Aggregation.load(
            "MX", policies, ROOT / "schemas", keys=keys, vault=vault, registry=world.registry
        )

    assert load() is None  # no key of usage early-warning
    store.generate(node_holder("MX"), valid_from=0)  # a node key as made today: it has the usage
    keys = StoreKeys(store, "MX")
    assert load() is not None
    (policies / "triggers.yaml").write_text("version: 1\nillustrative: true\ntriggers: [1]\n")
    assert load() is None  # triggers do not load


def test_a_signing_failure_withholds_the_window(world: World, gen: Generator) -> None:
    """No key valid when a window closes: the window is withheld (logged), nothing leaks."""

    class NoKey:
        def early_warning_key(self, at: int) -> SigningKey:
            raise KeyError("no key")

    keys = FixedKeys(world.node_keys["MX"], world.node_rings["MX"])
    aggregation = Aggregation(
        "MX", TRIGGERS, NoKey(), NodeVault(world.trust, keys, "MX"), world.registry
    )
    proc = _processor(world, aggregation, None)
    at = NOW - dt.timedelta(hours=1)
    proc.process(
        [world.record(v, offset=i) for i, v in enumerate(_detentions(world, gen, 6, at))], NOW
    )
    closed = proc.process([], NOW + dt.timedelta(days=2))
    assert closed.aggregates == []
    assert proc.aggregates is not None and proc.aggregates.failed > 0


def test_a_node_of_two_shards_hands_its_windows_on_sealed_and_the_sum_is_published(
    world: World, gen: Generator
) -> None:
    """3 + 3 VE detentions on two partitions: neither publishes (each alone is under k = 5);
    each hands its closed windows on sealed to its node, and their sum, 6, is what MX's
    combiner publishes — as shard 0 of 1, exactly as one counter over both would."""
    aggregation = _aggregation(world)
    at = NOW - dt.timedelta(hours=1)
    later = NOW + dt.timedelta(days=2)
    partials: list[tuple[bytes, bytes]] = []
    for shard in (0, 1):
        proc = world.processor("MX", aggregates=aggregation.feed(shard, 2, None))
        values = _detentions(world, gen, 3, at)
        proc.process([world.record(v, offset=i) for i, v in enumerate(values)], NOW)
        closed = proc.process([], later)
        assert closed.aggregates == []  # nothing published by a shard
        assert closed.partials
        partials += closed.partials
    combiner = Combiner()
    tables = {t.id: t for t in TRIGGERS.tables_for("MX")}
    published = []
    for offset, (key, sealed) in enumerate(partials):
        name = key.decode()
        assert sealed[:4] == b"PS\x01\x03"  # sealed to the node, as its own state
        assert name.startswith("partial/") and b"VE" not in key  # a shard and a window only
        raw = aggregation.vault.open(sealed, name=name)
        assert raw not in sealed
        with pytest.raises(SealError):  # bound to its name: not another shard's or window's
            aggregation.vault.open(sealed, name=name + "0")
        partial = Partial.decode(raw, tables, name=name)
        for whole in combiner.add(partial, offset):
            published += sign_published(
                whole,
                "MX",
                TRIGGERS.k,
                aggregation.keys,
                world.registry,
                int(later.timestamp() * 1000),
            )
    det = [
        a
        for a in (
            open_aggregate(_trust(world), world.registry, v, h, min_k=5).aggregate
            for _, v, h in published
        )
        if a.table.events == ("DETENTION",) and a.window_start <= NOW_MS - HOUR < a.window_end
    ]
    assert [(a.shard, a.shards, a.cells) for a in det] == [(0, 1, ((("VE",), 6),))]
    assert combiner.waiting == 0
