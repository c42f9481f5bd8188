"""The auditor on a real generated log: a clean log verifies, and every kind of tampering is
detected and located (leaf index and Kafka offset), with nothing else reported."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from puente.evidence.audit.auditor import AuditOptions, Auditor
from puente.evidence.audit.report import AuditReport, Kind
from puente.evidence.audit.source import ExportFile
from puente.evidence.checkpoint import Checkpoint
from puente.evidence.cosignature import cosign
from puente.evidence.equivocation import EquivocationReport
from puente.evidence.keys import SigningKey
from puente.evidence.log import AuditLog
from puente.evidence.merkle import leaf_hash
from puente.evidence.note import Note
from puente.evidence.records import AuditDecision, AuditRecord
from puente.evidence.trust import KeyEntry, Usage, node_holder, service_holder
from puente.evidence.witness import Fork, ForkKind

from .auditlog import Exported, build, checkpoint_records
from .conftest import DAY, T0, World

AUDIT_MX = "puente.audit.MX"


def run(world: World, exp: Exported, tmp_path: Path, **opts: Any) -> AuditReport:
    path = exp.write(tmp_path / "export.pxp", cut=int(opts.pop("cut", 0)))
    auditor = Auditor(
        registry=world.registry,
        anchors=[world.root.public],
        options=AuditOptions(**{"now": T0 + DAY, **opts}),
    )
    return auditor.run(ExportFile(path))


def found(report: AuditReport) -> list[tuple[str, int | None, int | None]]:
    return [(a.kind.value, a.index, a.offset) for a in report.anomalies]


@pytest.fixture
def log200(world: World) -> Exported:
    exp, _ = build(world.registry, world.service, world.trust_bytes, records=200, batch=16)
    return exp


def offset_of(exp: Exported, index: int) -> int:
    return exp.partition()[index][0]


def test_a_clean_log_verifies(world: World, tmp_path: Path) -> None:
    exp, _ = build(
        world.registry,
        world.service,
        world.trust_bytes,
        logs=(("MX", 0), ("MX", 1), ("GT", 0)),
        records=300,
        batch=32,
    )
    report = run(world, exp, tmp_path)
    assert report.ok, report.to_text()
    assert report.records == 900 and report.checkpoints == 30
    assert {
        s.log_id: (s.records, s.verified_size, s.checkpoints_verified) for s in report.logs.values()
    } == {
        "puente.audit/MX/0": (300, 300, 10),
        "puente.audit/MX/1": (300, 300, 10),
        "puente.audit/GT/0": (300, 300, 10),
    }
    assert "verdict: VERIFIED" in report.to_text()
    assert orjson.loads(report.to_json())["verdict"] == "VERIFIED"


def rewrite(world: World, data: bytes, **changes: Any) -> bytes:
    rec = AuditRecord.decode(world.registry, data)
    return replace(rec, **changes).encode(world.registry)


def test_altered_record_is_located(world: World, log200: Exported, tmp_path: Path) -> None:
    part = log200.partition()
    off, data = part[37]
    part[37] = (
        off,
        rewrite(
            world,
            data,
            reason_code="EDITED",
            decision=AuditDecision.WITHHELD,
            delivered_sha256=None,
            delivery_id=None,
            delivery_digest=None,
            recipient="GT",
        ),
    )
    report = run(world, log200, tmp_path)
    assert found(report) == [("RECORD_ALTERED", 37, off)]
    # The repaired tree reproduces every signed root: the location is confirmed, not guessed.
    assert report.logs["puente.audit/MX/0"].verified_size == 200


def test_corrupted_bytes_are_located(world: World, log200: Exported, tmp_path: Path) -> None:
    part = log200.partition()
    off, data = part[90]
    part[90] = (off, data[:20] + bytes([data[20] ^ 0xFF]) + data[21:])
    report = run(world, log200, tmp_path)
    kinds = {(k, i, o) for k, i, o in found(report)}
    assert ("RECORD_ALTERED", 90, off) in kinds
    assert all(o == off for _, _, o in kinds)  # everything reported points at that record
    assert report.logs["puente.audit/MX/0"].verified_size == 200


def test_removed_record_is_located(world: World, log200: Exported, tmp_path: Path) -> None:
    part = log200.partition()
    del part[37]
    report = run(world, log200, tmp_path)
    assert [(k, i) for k, i, _ in found(report)] == [("RECORD_REMOVED", 37)]
    assert report.logs["puente.audit/MX/0"].verified_size == 200


def test_inserted_record_is_located(world: World, log200: Exported, tmp_path: Path) -> None:
    part = log200.partition()
    genuine = AuditRecord.decode(world.registry, part[37][1])
    forged = replace(genuine, decision=AuditDecision.DELIVERED, recipient="US").encode(
        world.registry
    )
    part.insert(37, (part[37][0], forged))  # same claimed position, right before the genuine one
    report = run(world, log200, tmp_path)
    assert found(report) == [("RECORD_INSERTED", 37, part[37][0])]


def test_reordered_records_are_located(world: World, log200: Exported, tmp_path: Path) -> None:
    part = log200.partition()
    part[37], part[38] = part[38], part[37]
    report = run(world, log200, tmp_path)
    assert found(report) == [("RECORD_REORDERED", 37, part[38][0])]
    assert report.logs["puente.audit/MX/0"].verified_size == 200


def test_reordering_across_a_checkpoint_is_located(
    world: World, log200: Exported, tmp_path: Path
) -> None:
    part = log200.partition()
    part[47], part[48] = part[48], part[47]  # leaf 47 is the last of checkpoint 48
    report = run(world, log200, tmp_path)
    assert [(k, i) for k, i, _ in found(report)] == [("RECORD_REORDERED", 47)]


def test_duplicated_records_are_located(world: World, log200: Exported, tmp_path: Path) -> None:
    part = log200.partition()
    part.insert(38, part[37])  # right after itself
    part.insert(120, part[100])  # leaf 99, far later (in another checkpoint interval)
    report = run(world, log200, tmp_path)
    assert [(k, i) for k, i, _ in found(report)] == [
        ("RECORD_DUPLICATED", 37),
        ("RECORD_DUPLICATED", 99),
    ]


def test_truncated_log_and_uncovered_tail(world: World, log200: Exported, tmp_path: Path) -> None:
    part = log200.partition()
    del part[195:]
    report = run(world, log200, tmp_path)
    assert [(a.kind.value, a.index, a.index_end) for a in report.anomalies] == [
        ("RECORD_REMOVED", 195, 200)
    ]
    exp, writers = build(world.registry, world.service, world.trust_bytes, records=40, batch=16)
    log = writers["puente.audit/MX/0"]
    _, extra = log.append_record(
        world.registry,
        replace(
            AuditRecord.decode(world.registry, exp.partition()[0][1]),
            log_id="",
            leaf_index=-1,
            previous_leaf_hash=None,
        ),
    )
    exp.partition().append((999, extra))
    report = run(world, exp, tmp_path)
    assert [(a.kind.value, a.index, a.index_end) for a in report.anomalies] == [
        ("UNCHECKPOINTED_TAIL", 40, 41)
    ]


def test_rechained_rewrite_is_caught_by_the_signed_root(
    world: World, log200: Exported, tmp_path: Path
) -> None:
    """An attacker who edits a record and re-chains every later one fools the chain, never
    the checkpoint: the damage is pinned to the checkpoint interval."""
    part = log200.partition()
    prev = leaf_hash(part[35][1])
    for i in range(36, 48):
        off, data = part[i]
        changes: dict[str, object] = {"previous_leaf_hash": prev}
        if i == 36:
            changes["rule_ids"] = ("mx.share", "forged.rule")
        new = rewrite(world, data, **changes)
        part[i] = (off, new)
        prev = leaf_hash(new)
    report = run(world, log200, tmp_path)
    assert [(a.kind.value, a.index, a.index_end) for a in report.anomalies] == [
        # the signed root pins the damage to the interval since checkpoint 32
        ("CHECKPOINT_ROOT_MISMATCH", 32, 48),
        # and the last re-chained record is not what the untouched leaf 48 chains to
        ("RECORD_ALTERED", 47, None),
    ]
    # Re-anchored on checkpoint 48's compact range: later intervals verify on their own.
    assert report.logs["puente.audit/MX/0"].verified_size == 200


def signed_checkpoint(
    key: SigningKey,
    origin: str,
    size: int,
    root: bytes,
    t: int,
    compact: tuple[bytes, ...] = (),
    previous: int | None = None,
    proof: tuple[bytes, ...] = (),
) -> bytes:
    return Checkpoint.make(origin, size, root, time_ms=t).sign(key).to_bytes()


def test_fork_and_inconsistent_checkpoints(world: World, log200: Exported, tmp_path: Path) -> None:
    # The log signs a second history: same records up to 40, different from there.
    other = AuditLog("puente.audit/MX/0")
    for i, (_, data) in enumerate(log200.partition()[:64]):
        other.append(data if i < 40 else data + b"fork")
    other_cp = other.checkpoint(world.service, time_ms=T0 + 5000)  # size 64, fork of 64
    log200.checkpoints.append((1001, other_cp.encode(world.registry)))
    # And a checkpoint at an unused size whose consistency proof from 48 cannot verify.
    for _ in range(6):
        other.append(b"more")
    inconsistent = replace(
        other.checkpoint(world.service, time_ms=T0 + 6000),
        previous_size=48,
        consistency_proof=tuple(checkpoint_records(world.registry, log200)[2].compact_range),
    )
    log200.checkpoints.append((1003, inconsistent.encode(world.registry)))
    report = run(world, log200, tmp_path)
    kinds = [(a.kind.value, a.checkpoint_size) for a in report.anomalies]
    assert ("CHECKPOINT_FORK", 64) in kinds
    assert ("CHECKPOINT_INCONSISTENT", 70) in kinds
    # The records match the genuine history; the forged roots are the anomalies, not the records.
    assert not [k for k, _ in kinds if k.startswith("RECORD_")]


def test_checkpoints_by_unknown_expired_or_revoked_keys(world: World, tmp_path: Path) -> None:
    old = SigningKey.generate("puente.svc/policy")
    usages = frozenset({Usage.CHECKPOINT, Usage.DELIVERY})
    tl = world.trust_list.with_entry(
        KeyEntry(old.public, service_holder(), usages, T0 - DAY, T0 + 500)
    ).revoke(world.service.key_id, since=T0 + 1040)
    trust = tl.sign(world.root)
    exp, _ = build(world.registry, world.service, trust, records=64, batch=16)
    stranger = SigningKey.generate("puente.svc/policy")
    recs = checkpoint_records(world.registry, exp)
    # Re-sign: checkpoint 16 by a stranger, 32 by the old key after its end; 48 and 64 are
    # signed by the service key after its revocation (T0+1040).
    resigned = [
        replace(
            recs[0], note=Checkpoint.from_text(recs[0].checkpoint.text()).sign(stranger).to_bytes()
        ),
        replace(recs[1], note=Checkpoint.from_text(recs[1].checkpoint.text()).sign(old).to_bytes()),
        recs[2],
        recs[3],
    ]
    exp.checkpoints = [(i * 2, r.encode(world.registry)) for i, r in enumerate(resigned)]
    report = run(world, exp, tmp_path)
    untrusted = [
        (a.checkpoint_size, a.reason, a.offset)
        for a in report.anomalies
        if a.kind is Kind.CHECKPOINT_UNTRUSTED
    ]
    assert untrusted == [
        (16, "KEY_UNKNOWN", 0),
        (32, "KEY_EXPIRED", 2),
        (48, "KEY_REVOKED", 4),
        (64, "KEY_REVOKED", 6),
    ]
    # With no trusted checkpoint left, every record is an old unsigned tail: nothing proves them.
    assert [
        (a.kind.value, a.index, a.index_end)
        for a in report.anomalies
        if a.kind is not Kind.CHECKPOINT_UNTRUSTED
    ] == [("UNCHECKPOINTED_TAIL", 0, 64)]


def test_trust_list_unsigned_or_expired(world: World, log200: Exported, tmp_path: Path) -> None:
    log200.trust = [(0, world.trust_list.text().encode())]
    report = run(world, log200, tmp_path)
    kinds = {a.kind for a in report.anomalies}
    assert Kind.TRUST_LIST_UNSIGNED in kinds and not report.ok
    log200.trust = [(0, world.trust_bytes)]
    report = run(world, log200, tmp_path, now=T0 + 400 * DAY)
    assert [a.kind for a in report.anomalies] == [Kind.TRUST_LIST_EXPIRED]
    log200.trust = []
    report = run(world, log200, tmp_path)
    assert Kind.TRUST_LIST_MISSING in {a.kind for a in report.anomalies}


def test_start_from_a_trusted_checkpoint(world: World, log200: Exported, tmp_path: Path) -> None:
    recs = checkpoint_records(world.registry, log200)
    start = recs[5]  # size 96
    assert start.checkpoint.size == 96
    part = log200.partition()
    off, data = part[10]
    part[10] = (off, rewrite(world, data, reason_code="BEFORE-START"))  # not re-audited
    off2, data2 = part[150]
    part[150] = (off2, rewrite(world, data2, reason_code="AFTER-START"))
    report = run(world, log200, tmp_path, start={"puente.audit/MX/0": start})
    assert found(report) == [("RECORD_ALTERED", 150, off2)]
    summary = report.logs["puente.audit/MX/0"]
    assert summary.start_size == 96 and summary.verified_size == 200


def test_start_survives_tampering_before_it(world: World, log200: Exported, tmp_path: Path) -> None:
    recs = checkpoint_records(world.registry, log200)
    del log200.partition()[5]  # the skip-by-count is now off by one
    report = run(world, log200, tmp_path, start={"puente.audit/MX/0": recs[5]})
    assert report.ok, report.to_text()


def test_cut_export_is_reported(world: World, log200: Exported, tmp_path: Path) -> None:
    report = run(world, log200, tmp_path, cut=100)
    kinds = [a.kind for a in report.anomalies]
    assert Kind.EXPORT_TRUNCATED in kinds
    assert Kind.RECORD_REMOVED in kinds  # the records cut off are missing from the log


def test_report_names_each_anomaly_with_its_position(
    world: World, log200: Exported, tmp_path: Path
) -> None:
    part = log200.partition()
    del part[37]
    part[60], part[61] = part[61], part[60]
    report = run(world, log200, tmp_path)
    assert [(a.kind.value, a.index) for a in report.anomalies] == [
        ("RECORD_REMOVED", 37),
        ("RECORD_REORDERED", 61),  # leaves 61 and 62 (list positions 60 and 61 after the removal)
    ]
    text = report.to_text()
    assert "1. RECORD_REMOVED at puente.audit/MX/0, leaf 37" in text
    reordered = report.anomalies[1]
    assert (
        f"2. RECORD_REORDERED at puente.audit/MX/0, leaf 61, {AUDIT_MX}[0]@{reordered.offset}"
        in text
    )
    assert reordered.offset == log200.partition()[61][0]
    doc = orjson.loads(report.to_json())
    assert doc["verdict"] == "ANOMALIES FOUND" and doc["anomaly_counts"]["RECORD_REMOVED"] == 1
    assert doc["anomalies"][0] == {
        "kind": "RECORD_REMOVED",
        "detail": "leaf 37 is missing; leaf 38 chains to its hash, which is used instead",
        "log_id": "puente.audit/MX/0",
        "index": 37,
        "index_end": 38,
        "topic": AUDIT_MX,
        "partition": 0,
        "offset": log200.partition()[37][0],
    }


def test_many_tamperings_with_a_checkpoint_per_record(world: World, tmp_path: Path) -> None:
    """Modes switch at every checkpoint inside one read batch: no recursion, every one found."""
    exp, _ = build(world.registry, world.service, world.trust_bytes, records=1500, batch=1)
    part = exp.partition()
    for i in range(5, 1500, 10):
        off, data = part[i]
        part[i] = (off, rewrite(world, data, reason_code=f"EDIT-{i}"))
    report = run(world, exp, tmp_path)
    assert [(a.kind.value, a.index) for a in report.anomalies] == [
        ("RECORD_ALTERED", i) for i in range(5, 1500, 10)
    ]
    text = report.to_text()
    assert "  20. RECORD_ALTERED at puente.audit/MX/0, leaf 195," in text
    assert (
        "... and 130 more RECORD_ALTERED in puente.audit/MX/0, from puente.audit/MX/0, leaf 205"
        in text
    )
    assert len(orjson.loads(report.to_json())["anomalies"]) == 150


def test_a_long_tail_without_checkpoints_is_counted_not_decoded(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from puente.evidence.audit import logcheck

    monkeypatch.setattr(logcheck, "BUFFER_MAX", 50)
    exp, _ = build(world.registry, world.service, world.trust_bytes, records=500, batch=100)
    exp.checkpoints = exp.checkpoints[:2]  # signed up to 200; 300 records after
    report = run(world, exp, tmp_path)
    assert [(a.kind.value, a.index, a.index_end) for a in report.anomalies] == [
        ("UNCHECKPOINTED_TAIL", 200, 500)
    ]


def _tail_log(world: World) -> Exported:
    """200 records, signed up to 192; records 192..199 (decided at T0+192..T0+199) unsigned."""
    exp, _ = build(world.registry, world.service, world.trust_bytes, records=200, batch=16)
    exp.checkpoints = exp.checkpoints[:-1]
    return exp


def test_a_young_tail_is_pending_not_an_anomaly(world: World, tmp_path: Path) -> None:
    """Records younger than the bound may still be signed by their writer: PENDING, exit 3."""
    report = run(world, _tail_log(world), tmp_path, now=T0 + 192 + 3_000, pending_bound_s=7.0)
    assert report.ok and not report.complete, report.to_text()
    assert [(p.log_id, p.index, p.index_end, p.age_s) for p in report.pending] == [
        ("puente.audit/MX/0", 192, 200, 3.0)
    ]
    assert (report.verdict, report.exit_code) == ("PENDING", 3)
    doc = orjson.loads(report.to_json())
    assert doc["verdict"] == "PENDING" and doc["pending"][0]["index"] == 192
    assert "pending: puente.audit/MX/0 leaves 192..199" in report.to_text()


def test_an_old_tail_is_an_anomaly(world: World, tmp_path: Path) -> None:
    report = run(world, _tail_log(world), tmp_path, now=T0 + 192 + 8_000, pending_bound_s=7.0)
    assert [(a.kind.value, a.index, a.index_end) for a in report.anomalies] == [
        ("UNCHECKPOINTED_TAIL", 192, 200)
    ]
    assert not report.pending
    assert (report.verdict, report.exit_code) == ("ANOMALIES FOUND", 1)
    assert "8.0 s old" in report.anomalies[0].detail


def test_a_tail_dated_in_the_future_is_an_anomaly(world: World, tmp_path: Path) -> None:
    """A writer cannot keep a tail 'pending' for ever by dating it ahead of the clock."""
    report = run(world, _tail_log(world), tmp_path, now=T0 - 60_000, pending_bound_s=7.0)
    assert [a.kind.value for a in report.anomalies] == ["UNCHECKPOINTED_TAIL"]
    assert "after the audit's time" in report.anomalies[0].detail


def test_a_young_tail_that_does_not_chain_is_an_anomaly(world: World, tmp_path: Path) -> None:
    """Age excuses a missing checkpoint, never a broken chain."""
    exp = _tail_log(world)
    part = exp.partition()
    offset, value = part[195]
    part[195] = (offset, rewrite(world, value, previous_leaf_hash=bytes(32)))
    report = run(world, exp, tmp_path, now=T0 + 192 + 3_000, pending_bound_s=7.0)
    assert ("RECORD_ALTERED", 195) in [(a.kind.value, a.index) for a in report.anomalies]
    assert report.verdict == "ANOMALIES FOUND" and report.exit_code == 1


def test_a_rolled_back_trust_list_is_reported(world: World, tmp_path: Path) -> None:
    """The newest list on the trust topic has a lower serial than one published before it."""
    exp, _ = build(world.registry, world.service, world.trust_bytes, records=32, batch=16)
    newer = replace(world.trust_list, serial=5).sign(world.root)
    exp.trust = [(0, newer), (1, world.trust_bytes)]  # serial 5, then serial 1 re-published
    report = run(world, exp, tmp_path)
    assert [a.kind.value for a in report.anomalies] == ["TRUST_LIST_ROLLBACK"]
    assert "serial 1, lower than serial 5" in report.anomalies[0].detail


def test_a_trust_serial_below_an_earlier_audit_is_a_rollback(world: World, tmp_path: Path) -> None:
    exp, _ = build(world.registry, world.service, world.trust_bytes, records=32, batch=16)
    assert run(world, exp, tmp_path, min_trust_serial=1).ok
    report = run(world, exp, tmp_path, min_trust_serial=2)
    assert [a.kind.value for a in report.anomalies] == ["TRUST_LIST_ROLLBACK"]


def test_a_decision_under_an_unpinned_floor_is_flagged(world: World, tmp_path: Path) -> None:
    """The trust list pins the agreed regional floor; every decision names the floor it was
    made under, and one made under another, or under none, is an anomaly at its position. A
    refused notice (REJECTED) was decided by no policy and names none."""
    pinned, other = bytes(range(32)), bytes(32)
    floors = {21: other, 30: None, 31: None}  # 21 and 30 are decisions, 31 a refusal (n % 4 == 3)
    exp, _ = build(
        world.registry,
        world.service,
        world.trust_bytes,
        records=40,
        batch=16,
        floor=lambda n: floors.get(n, pinned),
    )
    exp.trust = [(0, replace(world.trust_list, serial=2, floor_digest=pinned).sign(world.root))]
    report = run(world, exp, tmp_path)
    assert [(a.kind.value, a.index) for a in report.anomalies] == [
        ("DECISION_UNPINNED_FLOOR", 21),
        ("DECISION_UNPINNED_FLOOR", 30),
    ], report.to_text()


def test_equivocation_reports_are_reported_once_per_fork(
    world: World, log200: Exported, tmp_path: Path
) -> None:
    """Two witnesses prove one fork (same size, two roots signed for MX's log): one
    LOG_EQUIVOCATION naming both; a report that proves nothing is left out."""
    gt, hn = SigningKey.generate("puente.witness/GT"), SigningKey.generate("puente.witness/HN")
    tl = world.trust_list.reissued(issued_at=T0, expires_at=T0 + 30 * DAY)
    for code, key in (("GT", gt), ("HN", hn)):
        tl = tl.with_entry(KeyEntry(key.public, node_holder(code), frozenset({Usage.WITNESS}), T0))
    log200.trust = [(0, tl.sign(world.root))]
    genuine = next(r for r in checkpoint_records(world.registry, log200) if r.checkpoint.size == 64)
    other = AuditLog("puente.audit/MX/0")
    for i, (_, data) in enumerate(log200.partition()[:64]):
        other.append(data if i < 40 else data + b"fork")
    forged = other.checkpoint(world.service, time_ms=T0 + 5000)
    fork = Fork(ForkKind.SAME_SIZE, "puente.audit/MX/0", genuine.note, forged.note)
    nothing = Fork(ForkKind.SAME_SIZE, "puente.audit/MX/0", genuine.note, genuine.note)
    log200.equivocations = [
        (0, EquivocationReport(fork, "GT", T0 + 9000).sign(gt)),
        (1, EquivocationReport(fork, "HN", T0 + 9100).sign(hn)),
        (2, EquivocationReport(nothing, "GT", T0 + 9200).sign(gt)),
    ]
    report = run(world, log200, tmp_path)
    found_ = [a for a in report.anomalies if a.kind is Kind.LOG_EQUIVOCATION]
    assert len(found_) == 1
    (a,) = found_
    assert (a.log_id, a.checkpoint_size, a.reason, a.offset) == (
        "puente.audit/MX/0",
        64,
        "same-size",
        0,
    )
    assert "GT, HN" in a.detail
    assert not report.ok


def _witnessed(world: World, exp: Exported) -> dict[str, SigningKey]:
    """GT's and HN's witness keys in the export's trust list (MX's log needs 2 of its 2
    others: the default quorum among MX, GT and HN)."""
    keys = {c: SigningKey.generate(f"puente.witness/{c}") for c in ("GT", "HN")}
    tl = world.trust_list.reissued(issued_at=T0, expires_at=T0 + 30 * DAY)
    for code, key in keys.items():
        tl = tl.with_entry(KeyEntry(key.public, node_holder(code), frozenset({Usage.WITNESS}), T0))
    for code in ("MX", "GT", "HN"):  # three member states' nodes: 2 of the others count
        node = SigningKey.generate(f"puente.node/{code}")
        usages = frozenset({Usage.DELIVERY, Usage.CHECKPOINT})
        tl = tl.with_entry(KeyEntry(node.public, node_holder(code), usages, T0))
    exp.trust = [(0, tl.sign(world.root))]
    return keys


def _cosigned(note: bytes, *keys: SigningKey) -> bytes:
    cosigned = Note.parse(note)
    for key in keys:
        cosigned = cosign(cosigned, key, time_s=(T0 + 6000) // 1000)
    return cosigned.to_bytes()


def test_the_report_says_how_far_each_log_is_witnessed(
    world: World, log200: Exported, tmp_path: Path
) -> None:
    w = _witnessed(world, log200)
    at = {r.checkpoint.size: r for r in checkpoint_records(world.registry, log200)}
    log200.cosignatures = [
        (0, _cosigned(at[64].note, w["GT"])),
        (1, _cosigned(at[64].note, w["HN"])),  # 64: final
        (2, _cosigned(at[80].note, w["GT"])),  # 80: one of two
    ]
    report = run(world, log200, tmp_path)
    assert report.ok, report.to_text()
    summary = report.logs["puente.audit/MX/0"]
    assert (summary.witnessed_size, summary.witnessed_by, report.quorum) == (64, ["GT", "HN"], 2)
    assert "witnessed up to size 64" in report.to_text()
    assert orjson.loads(report.to_json())["logs"][0]["witnessed_size"] == 64
    # Demanded: the checkpoints above 64 waited longer than the bound for their quorum.
    strict = run(world, log200, tmp_path, require_witnessed=True)
    assert [(a.kind.value, a.index, a.index_end) for a in strict.anomalies] == [
        ("CHECKPOINT_UNWITNESSED", 64, 80)
    ]
    # Within the bound, they are not (yet) an anomaly.
    assert run(world, log200, tmp_path, require_witnessed=True, witness_bound_s=2 * 86_400).ok
    # A stricter quorum than the cosigners: nothing is witnessed.
    assert run(world, log200, tmp_path, quorum=3).logs["puente.audit/MX/0"].witnessed_size == 0


def test_a_quorum_that_cosigned_another_history_is_an_equivocation(
    world: World, log200: Exported, tmp_path: Path
) -> None:
    """The log showed this audit one root at size 64 and the witnesses another (the same key
    signed both): the cosignatures prove the log forked."""
    w = _witnessed(world, log200)
    other = AuditLog("puente.audit/MX/0")
    for i, (_, data) in enumerate(log200.partition()[:64]):
        other.append(data if i < 40 else data + b"fork")
    forged = other.checkpoint(world.service, time_ms=T0 + 5000)
    log200.cosignatures = [(0, _cosigned(forged.note, w["GT"], w["HN"]))]
    report = run(world, log200, tmp_path)
    (a,) = [a for a in report.anomalies if a.kind is Kind.LOG_EQUIVOCATION]
    assert (a.log_id, a.checkpoint_size) == ("puente.audit/MX/0", 64)
    assert not report.ok
