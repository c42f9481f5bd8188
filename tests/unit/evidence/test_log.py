"""The audit log writer: positions, checkpoints with consistency proofs, persistence and
recovery, several logs side by side."""

from __future__ import annotations

from dataclasses import replace

import pytest

from puente.evidence.checkpoint import parse_signed_checkpoint
from puente.evidence.errors import MalformedError
from puente.evidence.log import AuditLog, CheckpointRecord, LogState, audit_log_id
from puente.evidence.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion
from puente.evidence.records import AuditDecision, AuditRecord
from puente.evidence.verify import Verifier

from .conftest import T0, World, audit_record


def test_log_ids_name_member_and_partition() -> None:
    assert audit_log_id("MX", 0) == "puente.audit/MX/0"
    assert audit_log_id("GT", 3, topic_prefix="test-1") == "test-1.audit/GT/3"
    with pytest.raises(MalformedError):
        audit_log_id("M X", 0)


def test_records_are_positioned_chained_and_round_trip(world: World) -> None:
    log = AuditLog("puente.audit/MX/0")
    tree = MerkleTree()
    prev = None
    for n, decision in enumerate(
        [AuditDecision.DELIVERED, AuditDecision.WITHHELD, AuditDecision.REJECTED] * 3
    ):
        placed, data = log.append_record(world.registry, audit_record(n, decision=decision))
        assert (placed.log_id, placed.leaf_index, placed.previous_leaf_hash) == (
            "puente.audit/MX/0",
            n,
            prev,
        )
        assert AuditRecord.decode(world.registry, data) == placed
        prev = leaf_hash(data)
        tree.append(prev)
        assert log.root() == tree.root() and log.last_leaf_hash == prev


def test_records_refuse_inconsistent_decisions() -> None:
    with pytest.raises(MalformedError):
        replace(audit_record(0), delivered_sha256=None)
    with pytest.raises(MalformedError):
        replace(audit_record(1, decision=AuditDecision.REJECTED), recipient="GT")
    with pytest.raises(MalformedError):
        replace(audit_record(2, decision=AuditDecision.WITHHELD), recipient=None)
    with pytest.raises(MalformedError):
        replace(audit_record(0), original_sha256=b"short")


def test_checkpoints_chain_with_consistency_proofs(world: World) -> None:
    v = Verifier(trust_list=world.trust_list, registry=world.registry)
    logs = {p: AuditLog(audit_log_id("MX", p)) for p in range(2)}  # two logs, one process
    trees = {p: MerkleTree() for p in logs}
    previous: dict[int, CheckpointRecord] = {}
    n = 0
    for batch_size in [1, 5, 0, 8, 3, 16]:
        for p, log in logs.items():
            for _ in range(batch_size + p):
                _, data = log.append_record(world.registry, audit_record(n))
                trees[p].append(leaf_hash(data))
                n += 1
            rec = log.checkpoint(world.service, time_ms=T0 + n)
            again = CheckpointRecord.decode(world.registry, rec.encode(world.registry))
            assert again == rec
            vc = v.verify_checkpoint(rec.note, log_origin=log.log_id)
            cp = vc.checkpoint
            assert cp.size == trees[p].size and cp.root == trees[p].root()
            assert rec.compact().root() == cp.root
            if p in previous:
                prev_cp = previous[p].checkpoint
                assert rec.previous_size == prev_cp.size
                if 0 < prev_cp.size < cp.size:
                    verify_consistency(
                        prev_cp.size, cp.size, rec.consistency_proof, prev_cp.root, cp.root
                    )
                else:
                    assert rec.consistency_proof == ()
            else:
                assert rec.previous_size is None
            previous[p] = rec
    assert logs[0].size != logs[1].size


def test_checkpoint_time_never_goes_backwards(world: World) -> None:
    log = AuditLog("puente.audit/MX/0")
    log.append(b"x")
    first = log.checkpoint(world.service, time_ms=T0 + 100).checkpoint
    log.append(b"y")
    second = log.checkpoint(world.service, time_ms=T0 + 50).checkpoint  # clock went back
    assert first.time_ms == second.time_ms == T0 + 100


def test_state_persists_and_recovers_mid_batch(world: World) -> None:
    log = AuditLog("puente.audit/GT/1")
    for n in range(10):
        log.append_record(world.registry, audit_record(n))
    first = log.checkpoint(world.service, time_ms=T0 + 1)
    for n in range(10, 13):
        log.append_record(world.registry, audit_record(n))
    blob = log.state().encode(world.registry)
    assert len(blob) < 400  # O(log n) + one batch, not O(n)
    recovered = AuditLog.from_state(LogState.decode(world.registry, blob))
    assert recovered.size == 13 and recovered.root() == log.root()
    assert recovered.last_leaf_hash == log.last_leaf_hash
    a, b = (
        log.checkpoint(world.service, time_ms=T0 + 2),
        recovered.checkpoint(world.service, time_ms=T0 + 2),
    )
    assert a == b  # Ed25519 is deterministic: the same checkpoint, byte for byte
    assert a.previous_size == first.checkpoint.size == 10
    verify_consistency(10, 13, a.consistency_proof, first.checkpoint.root, a.checkpoint.root)
    bad = replace(log.state(), last_leaf_hash=None)
    with pytest.raises(MalformedError):
        AuditLog.from_state(bad)


def test_writer_recovers_from_its_last_published_checkpoint(world: World) -> None:
    log = AuditLog("puente.audit/MX/2")
    datas = [log.append_record(world.registry, audit_record(n))[1] for n in range(11)]
    rec = log.checkpoint(world.service, time_ms=T0)
    tail = [log.append_record(world.registry, audit_record(n))[1] for n in range(11, 14)]
    resumed = AuditLog.from_checkpoint(rec, last_leaf_hash=leaf_hash(datas[-1]), later_leaves=tail)
    assert resumed.root() == log.root() and resumed.last_leaf_hash == log.last_leaf_hash
    placed, _ = resumed.append_record(world.registry, audit_record(14))
    assert placed.previous_leaf_hash == leaf_hash(tail[-1]) and placed.leaf_index == 14
    broken = replace(rec, compact_range=rec.compact_range[::-1])
    with pytest.raises(MalformedError):
        AuditLog.from_checkpoint(broken, last_leaf_hash=leaf_hash(datas[-1]))


def test_an_inclusion_proof_for_any_record_from_a_full_tree(world: World) -> None:
    log = AuditLog("puente.audit/MX/0")
    tree = MerkleTree()
    for n in range(21):
        tree.append(leaf_hash(log.append_record(world.registry, audit_record(n))[1]))
    cp, _ = parse_signed_checkpoint(log.checkpoint(world.service, time_ms=T0).note)
    for i in range(21):
        verify_inclusion(i, cp.size, tree.leaf(i), tree.inclusion_proof(i, cp.size), cp.root)
