"""A state's witness key beside its node key in one key store: rotating one leaves the other."""

from __future__ import annotations

from pathlib import Path

from puente.evidence.keystore import KeyStore
from puente.evidence.trust import Usage, node_holder
from puente.evidence.witness import witness_key_name
from tests.unit.witness.federation import DAY, T0


def test_rotating_the_node_key_leaves_the_witness_key_and_the_reverse(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    holder = node_holder("MX")
    node, _ = store.generate(holder, valid_from=T0)
    witness, _ = store.generate(
        holder, valid_from=T0, usages=(Usage.WITNESS,), name=witness_key_name("MX")
    )
    new_node, retired = store.rotate(holder, at=T0 + DAY, overlap_ms=1000)
    assert [m.key_id for m in retired] == [node.key_id]
    assert new_node.name == "puente.node/MX"
    later = T0 + 2 * DAY
    assert store.current(holder, usage=Usage.WITNESS, at=later).key_id == witness.key_id
    assert store.current(holder, usage=Usage.DELIVERY, at=later).key_id == new_node.key_id
    new_witness, retired = store.rotate(
        holder, at=T0 + 3 * DAY, overlap_ms=1000, usages=(Usage.WITNESS,)
    )
    assert [m.key_id for m in retired] == [witness.key_id]
    assert new_witness.name == "puente.witness/MX"  # it keeps its name
    assert store.current(holder, usage=Usage.DELIVERY, at=T0 + 4 * DAY).key_id == new_node.key_id
