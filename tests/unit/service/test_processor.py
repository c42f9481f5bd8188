"""The policy service's pure core: every input ends in exactly one outcome, with evidence."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from puente.codec.wire import decode
from puente.evidence.checkpoint import parse_signed_checkpoint
from puente.evidence.log import CheckpointRecord, LogState
from puente.evidence.merkle.compact import CompactRange
from puente.evidence.merkle.hasher import leaf_hash
from puente.evidence.records import AuditRecord
from puente.service.dedupe import SeenIds
from puente.service.processor import STATE_LOG_KEY, SigningMode
from puente.service.validate import Limits
from puente.synth.generator import Generator
from puente.synth.notice import CASE_NOTICE, CONSULAR_NOTIFICATION
from tests.unit.service.conftest import NOW, NOW_MS, World


def _audit(world: World, leaves: list[bytes]) -> list[AuditRecord]:
    return [AuditRecord.decode(world.registry, leaf) for leaf in leaves]


@pytest.mark.parametrize("mode", [SigningMode.BATCH, SigningMode.EACH])
def test_batch_of_notices_each_ends_in_one_outcome_with_verifiable_deliveries(
    world: World, gen: Generator, mode: SigningMode
) -> None:
    proc = world.processor("MX", mode)
    notices = [gen.case_notice(origin="MX") for _ in range(10)]
    notices += [gen.consular_notification("MX") for _ in range(10)]
    records = [
        world.record(
            world.encode(CASE_NOTICE if "crime_types" in n else CONSULAR_NOTIFICATION, n), offset=i
        )
        for i, n in enumerate(notices)
    ]
    out = proc.process(records, NOW, force_checkpoint=True)

    assert sum(out.outcomes.values()) == len(records)
    assert out.outcomes["REJECTED"] == 0
    assert out.next_offset == len(records)
    audit = _audit(world, out.audit)
    # One record per candidate recipient (every member but the origin), per notice.
    members = len(world.policies.current.members)
    assert len(audit) == len(records) * (members - 1)
    assert [a.leaf_index for a in audit] == list(range(len(audit)))
    assert all(a.origin == "MX" and a.recipient != "MX" for a in audit)
    delivered = {
        (a.notice_id, a.recipient): a for a in audit if a.decision in ("DELIVERED", "TRANSFORMED")
    }
    assert len(out.deliveries) == len(delivered) > 0
    for topic, key, value in out.deliveries:
        recipient = topic.rsplit(".", 1)[1]
        v, plain = world.verify(value, recipient)
        assert v.mode == ("batch" if mode is SigningMode.BATCH else "signature")
        rec = delivered[(v.statement.notice_id, recipient)]
        assert rec.delivery_digest == v.digest
        assert rec.delivered_sha256 == hashlib.sha256(plain).digest()
        assert v.sealed and v.payload != plain  # only the recipient's key reads it
        assert key == v.statement.notice_id.encode()
        assert v.statement.audit_leaf_index == rec.leaf_index
        decoded = decode(world.registry, plain)
        assert decoded["notice_id"] == v.statement.notice_id
    # The checkpoint signs the root of exactly these leaves.
    [(log_key, cp_bytes)] = out.checkpoints
    assert log_key == b"puente.audit/MX/0"
    cp = CheckpointRecord.decode(world.registry, cp_bytes)
    checkpoint, _ = parse_signed_checkpoint(cp.note)
    tree = CompactRange()
    for leaf in out.audit:
        tree.append(leaf_hash(leaf))
    assert (checkpoint.size, checkpoint.root) == (tree.size, tree.root())
    world.verifier.verify_checkpoint(cp.note)


def test_untransformed_delivery_is_the_published_bytes(world: World, gen: Generator) -> None:
    proc = world.processor("MX")
    out = proc.process([world.record(world.encode(CASE_NOTICE, gen.case_notice(origin="MX")))], NOW)
    audit = _audit(world, out.audit)
    for a in audit:
        if a.decision == "DELIVERED":
            assert a.delivered_sha256 == a.original_sha256
        if a.decision == "TRANSFORMED":
            assert a.delivered_sha256 != a.original_sha256


def test_duplicate_and_reused_notice_ids(world: World, gen: Generator) -> None:
    proc = world.processor("MX")
    notice = gen.case_notice(origin="MX")
    first = world.encode(CASE_NOTICE, notice)
    changed = world.encode(CASE_NOTICE, {**notice, "summary": notice["summary"] + " (update)"})
    out = proc.process(
        [
            world.record(first, offset=0),
            world.record(first, offset=1),
            world.record(changed, offset=2),
        ],
        NOW,
    )
    rejected = [a for a in _audit(world, out.audit) if a.decision == "REJECTED"]
    assert [(a.ingress_offset, a.reason_code) for a in rejected] == [
        (1, "DUPLICATE_NOTICE"),
        (2, "NOTICE_ID_REUSED"),
    ]
    assert out.outcomes["REJECTED"] == 2
    assert len(out.rejections) == 2
    # The notice was delivered once: deliveries all come from offset 0.
    assert len({k for _, k, _ in out.deliveries}) <= 1


def _reason(world: World, value: bytes | None, origin: str = "MX") -> str:
    proc = world.processor(origin)
    out = proc.process([world.record(value, origin)], NOW)
    assert out.outcomes == {"REJECTED": 1} and not out.deliveries
    [(_, rejection)] = out.rejections
    r = decode(world.registry, rejection)
    assert r["scope"] == "NOTICE" and r["message"]
    [audit] = _audit(world, out.audit)
    assert audit.decision == "REJECTED" and audit.reason_code == r["reason_code"]
    return str(r["reason_code"])


def test_every_refusal_has_its_reason(world: World, gen: Generator) -> None:
    good = world.encode(CASE_NOTICE, gen.case_notice(origin="MX"))
    assert _reason(world, None) == "EMPTY_RECORD"
    assert _reason(world, b"not avro at all") == "BAD_MAGIC"
    assert _reason(world, b"\xc3\x01" + b"\x00" * 8 + good[10:]) == "UNKNOWN_SCHEMA"
    assert _reason(world, good[:-3]) == "TRUNCATED"
    assert _reason(world, good + b"\x00") == "TRAILING_BYTES"
    assert _reason(world, b"\x00" * 300_000) == "TOO_LARGE"
    receipt = world.encode("puente.DeliveryReceipt", gen.delivery_receipt())
    assert _reason(world, receipt) == "NOT_A_NOTICE"
    assert _reason(world, good, origin="GT") == "ORIGIN_MISMATCH"
    future = gen.case_notice(origin="MX", created_at=NOW + dt.timedelta(hours=2))
    assert _reason(world, world.encode(CASE_NOTICE, future)) == "CREATED_IN_FUTURE"
    old = gen.case_notice(origin="MX", created_at=NOW - dt.timedelta(days=1000))
    assert _reason(world, world.encode(CASE_NOTICE, old)) == "TOO_OLD"
    bad = gen.case_notice(origin="MX", retention_days=0, crime_types=[])
    assert _reason(world, world.encode(CASE_NOTICE, bad)) == "INVALID_FIELD"
    proc = world.processor("MX")
    out = proc.process([world.record(good, key=b"some-other-key")], NOW)
    assert decode(world.registry, out.rejections[0][1])["reason_code"] == "KEY_NOT_NOTICE_ID"


def test_invalid_field_names_paths_not_values(world: World, gen: Generator) -> None:
    notice = gen.case_notice(origin="MX")
    notice["persons"][0]["nationalities"] = ["Honduras"]
    proc = world.processor("MX")
    out = proc.process([world.record(world.encode(CASE_NOTICE, notice))], NOW)
    r = decode(world.registry, out.rejections[0][1])
    assert r["field_paths"] == ["persons[0].nationalities[0]"]
    assert "Honduras" not in r["message"]


def test_asylum_seeker_withheld_from_nationality_state_and_origin_told(
    world: World, gen: Generator
) -> None:
    notice = gen.scenario("asylum-seeker-detention", origin="MX", nationality="HN")
    proc = world.processor("MX")
    out = proc.process([world.record(world.encode(notice.name, notice.record))], NOW)
    to_hn = [a for a in _audit(world, out.audit) if a.recipient == "HN"]
    assert [a.decision for a in to_hn] == ["WITHHELD"]
    assert "FLOOR_ASYLUM_CONFIDENTIALITY" in (to_hn[0].reason_code or "")
    assert not [t for t, _, _ in out.deliveries if t.endswith(".HN")]
    reports = [decode(world.registry, v) for _, v in out.rejections]
    assert [(r["scope"], r["recipient"], r["reason_code"]) for r in reports] == [
        ("RECIPIENT", "HN", "FLOOR_ASYLUM_CONFIDENTIALITY")
    ]


def test_rollback_forgets_the_batch(world: World, gen: Generator) -> None:
    proc = world.processor("MX")
    proc.process([world.record(world.encode(CASE_NOTICE, gen.case_notice(origin="MX")))], NOW)
    size, root, seen = proc.log.size, proc.log.root(), dict(proc.seen.items())
    notice = gen.case_notice(origin="MX")
    proc.process([world.record(world.encode(CASE_NOTICE, notice), offset=1)], NOW)
    assert proc.log.size > size and notice["notice_id"] in proc.seen
    proc.rollback()
    assert (proc.log.size, proc.log.root(), dict(proc.seen.items())) == (size, root, seen)


def test_state_round_trip_resumes_the_same_log(world: World, gen: Generator) -> None:
    proc = world.processor("MX")
    out = proc.process(
        [
            world.record(world.encode(CASE_NOTICE, gen.case_notice(origin="MX")), offset=i)
            for i in range(3)
        ],
        NOW,
    )
    state = dict(out.state)
    log_state = LogState.decode(world.registry, state[STATE_LOG_KEY] or b"")
    seen = SeenIds(Limits().dedupe_horizon_ms)
    assert all(seen.restore(k, v, NOW_MS) for k, v in out.state if k != STATE_LOG_KEY)
    again = world.processor("MX", log_state=log_state, seen=seen)
    assert (again.log.size, again.log.root()) == (proc.log.size, proc.log.root())
    # A re-sent notice is still recognised after the restart.
    first = decode(world.registry, world.encode(CASE_NOTICE, gen.case_notice(origin="MX")))
    assert first["notice_id"] not in again.seen
    assert dict(again.seen.items()) == dict(proc.seen.items())
