"""The trust list of a federation: node keys (``node:CC``), encryption keys (``enc`` lines) and
the pinned floor; who may sign a state's evidence; node-key rotation; and lists, deliveries and
checkpoints made before any of this still verifying byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from puente.codec.registry import Registry
from puente.evidence.delivery import DeliveryBatch, DeliverySigner
from puente.evidence.enckeys import EncryptionKey
from puente.evidence.errors import FloorError, MalformedError, UntrustedKeyError
from puente.evidence.keys import PublicKey, SigningKey
from puente.evidence.log import AuditLog, CheckpointRecord, audit_log_id
from puente.evidence.note import Note
from puente.evidence.trust import (
    EncKeyEntry,
    KeyEntry,
    TrustList,
    Usage,
    member_holder,
    node_holder,
    service_holder,
)
from puente.evidence.verify import Verifier, check_evidence_signer
from tests.unit.evidence.conftest import DAY, T0, World, audit_record

OLD = Path(__file__).resolve().parents[2] / "fixtures" / "evidence-v0"
NODE_USAGES = frozenset({Usage.DELIVERY, Usage.CHECKPOINT})
FLOOR = bytes.fromhex("5e" * 32)


def federation_list() -> tuple[TrustList, dict[str, SigningKey | EncryptionKey]]:
    keys: dict[str, SigningKey | EncryptionKey] = {
        "node-mx": SigningKey.generate("puente.node/MX"),
        "enc-node-mx": EncryptionKey.generate("puente.node/MX"),
        "enc-gt": EncryptionKey.generate("puente.member/GT"),
    }
    node, enc_node, enc_gt = keys["node-mx"], keys["enc-node-mx"], keys["enc-gt"]
    assert isinstance(node, SigningKey)
    assert isinstance(enc_node, EncryptionKey) and isinstance(enc_gt, EncryptionKey)
    tl = TrustList(
        3,
        T0,
        T0 + 30 * DAY,
        (KeyEntry(node.public, node_holder("MX"), NODE_USAGES, T0),),
        (
            EncKeyEntry(enc_node.public, node_holder("MX"), T0),
            EncKeyEntry(enc_gt.public, member_holder("GT"), T0, T0 + DAY, None),
        ),
        FLOOR,
    )
    return tl, keys


def test_the_text_carries_node_keys_encryption_keys_and_the_floor() -> None:
    tl, keys = federation_list()
    node, enc_node, enc_gt = keys["node-mx"], keys["enc-node-mx"], keys["enc-gt"]
    assert isinstance(node, SigningKey) and isinstance(enc_node, EncryptionKey)
    assert isinstance(enc_gt, EncryptionKey)
    assert tl.text().splitlines() == [
        "puente.trust-list",
        "serial 3",
        f"issued-ms {T0}",
        f"expires-ms {T0 + 30 * DAY}",
        f"floor {'5e' * 32}",
        f"key {node.public.vkey} node:MX delivery,checkpoint {T0} - -",
        f"enc {enc_node.public.ekey} node:MX {T0} - -",
        f"enc {enc_gt.public.ekey} member:GT {T0} {T0 + DAY} -",
    ]
    assert TrustList.from_text(tl.text()) == tl
    root = SigningKey.generate("puente.operator/root")
    opened = TrustList.open(tl.sign(root), [root.public], now=T0 + 1)
    assert opened == tl and opened.floor_digest == FLOOR
    assert opened.reissued(issued_at=T0 + 1, expires_at=T0 + 2).encryption_entries == (
        tl.encryption_entries
    )


def test_non_canonical_or_ill_formed_lists_are_refused() -> None:
    tl, _ = federation_list()
    text = tl.text()
    lines = text.splitlines(keepends=True)
    key_line, enc_line, floor_line = lines[5], lines[6], lines[4]
    for bad in [
        text.replace(key_line + enc_line, enc_line + key_line),  # enc before key
        text.replace(floor_line, "").replace(key_line, key_line + floor_line),  # floor late
        text.replace("floor 5e5e", "floor 5E5E"),  # upper-case hex
        text.replace("floor " + "5e" * 32, "floor " + "5e" * 31),  # short digest
        text.replace(enc_line, enc_line.replace("node:MX", "operator:root")),
        text.replace(enc_line, enc_line.replace("node:MX", "service:policy")),
        text.replace("delivery,checkpoint", "delivery,checkpoint,encryption"),
        text.replace(f"member:GT {T0} {T0 + DAY} -", f"member:GT {T0} {T0 + DAY}"),
        text.replace(f"member:GT {T0} {T0 + DAY} -", f"member:GT {T0} {T0 + DAY} - -"),
        text.replace("node:MX delivery", "node:mx delivery"),
        text.replace("enc puente", "enc  puente", 1),
        text + enc_line,  # the same encryption key twice
        text.replace("enc puente.node/MX+", "encryption puente.node/MX+"),
    ]:
        assert bad != text
        with pytest.raises(MalformedError):
            TrustList.from_text(bad)
    enc = tl.encryption_entries[0]
    with pytest.raises(MalformedError, match="twice"):
        TrustList(1, T0, T0 + 1, (), (enc, enc))
    with pytest.raises(MalformedError, match="floor"):
        TrustList(1, T0, T0 + 1, floor_digest=bytes(31))
    with pytest.raises(MalformedError, match="cannot hold"):
        EncKeyEntry(enc.key, service_holder(), T0)


def test_a_list_written_before_the_federation_parses_and_verifies_unchanged(
    registry: Registry,
) -> None:
    """Bytes made by the code before this change (tests/fixtures/evidence-v0): a signed trust
    list, a per-delivery signed delivery and a checkpoint."""
    anchor = PublicKey.from_vkey((OLD / "anchor.vkey").read_text())
    data = (OLD / "trust-list.note").read_bytes()
    tl = TrustList.open(data, [anchor], now=T0 + 1)
    assert tl.floor_digest is None and tl.encryption_entries == ()
    assert Note.parse(data).text == tl.text()  # re-rendered byte for byte
    v = Verifier(trust_list=tl, registry=registry)
    got = v.verify_delivery((OLD / "delivery-GT.bin").read_bytes(), recipient="GT")
    assert got.statement.origin == "MX" and got.mode == "signature"
    rec = CheckpointRecord.decode(registry, (OLD / "checkpoint.bin").read_bytes())
    vc = v.verify_checkpoint(rec.note, log_origin="puente.audit/MX/0")
    assert vc.key_ids == tuple(e.key_id for e in tl.entries_of(service_holder()))
    with pytest.raises(FloorError) as exc:
        tl.check_floor(FLOOR)
    assert exc.value.reason == "FLOOR_UNPINNED"


def test_lookups_encryption_key_node_keys_and_floor() -> None:
    gt1, gt2, gt3 = (EncryptionKey.generate("puente.member/GT") for _ in range(3))
    n1, n2 = SigningKey.generate("puente.node/MX"), SigningKey.generate("puente.node/MX")
    tl = TrustList(
        1,
        T0,
        T0 + 30 * DAY,
        (
            KeyEntry(n1.public, node_holder("MX"), NODE_USAGES, T0, T0 + 2 * DAY),
            KeyEntry(n2.public, node_holder("MX"), NODE_USAGES, T0 + DAY),
        ),
        (
            EncKeyEntry(gt1.public, member_holder("GT"), T0, T0 + 2 * DAY),
            EncKeyEntry(gt2.public, member_holder("GT"), T0 + DAY, None, T0 + 5 * DAY),
            EncKeyEntry(gt3.public, member_holder("GT"), T0 + 6 * DAY),
        ),
        FLOOR,
    )
    gt = member_holder("GT")
    assert tl.encryption_key(gt, at=T0).key == gt1.public
    assert tl.encryption_key(gt, at=T0 + DAY).key == gt2.public  # the newer key during overlap
    assert tl.encryption_key(gt, at=T0 + 5 * DAY - 1).key == gt2.public
    with pytest.raises(UntrustedKeyError) as exc:  # gt2 revoked, gt1 ended, gt3 not yet valid
        tl.encryption_key(gt, at=T0 + 5 * DAY)
    assert exc.value.reason == "KEY_UNKNOWN"
    assert tl.encryption_key(gt, at=T0 + 6 * DAY).key == gt3.public
    with pytest.raises(UntrustedKeyError):
        tl.encryption_key(member_holder("HN"), at=T0)
    assert tl.encryption_entry(gt2.key_id).revoked_since == T0 + 5 * DAY
    assert [e.key for e in tl.node_keys("MX")] == [n1.public, n2.public]
    assert [e.key for e in tl.node_keys("MX", at=T0)] == [n1.public]
    assert [e.key for e in tl.node_keys("MX", at=T0 + 3 * DAY)] == [n2.public]
    assert tl.node_keys("GT") == []
    tl.check_floor(FLOOR)
    with pytest.raises(FloorError) as exc2:
        tl.check_floor(bytes(32))
    assert exc2.value.reason == "FLOOR_MISMATCH"
    assert tl.with_floor(bytes(32)).floor_digest == bytes(32)
    # Rotation and revocation edit encryption keys like signing keys.
    assert tl.retire(gt3.key_id, until=T0 + 7 * DAY).encryption_entry(gt3.key_id).valid_until
    assert tl.revoke(gt1.key_id, since=T0).encryption_entry(gt1.key_id).revoked_since == T0


@pytest.mark.parametrize(
    ("holder", "state", "allowed"),
    [
        ("node:MX", "MX", True),
        ("node:GT", "MX", False),  # another state's node
        ("node:MX", None, False),  # a log whose state is unknown
        ("service:policy", "MX", True),  # the policy service, as before the federation
        ("service:policy", None, True),
        ("member:MX", "MX", False),
        ("operator:root", "MX", False),
    ],
)
def test_who_may_sign_a_states_evidence(holder: str, state: str | None, allowed: bool) -> None:
    entry = KeyEntry(SigningKey.generate("k").public, holder, NODE_USAGES, T0)
    if allowed:
        assert check_evidence_signer(entry, state=state) is entry
    else:
        with pytest.raises(UntrustedKeyError) as exc:
            check_evidence_signer(entry, state=state)
        assert exc.value.reason == "KEY_WRONG_HOLDER"


def test_service_keys_can_be_refused_once_every_state_runs_its_node() -> None:
    entry = KeyEntry(SigningKey.generate("k").public, "service:policy", NODE_USAGES, T0)
    with pytest.raises(UntrustedKeyError) as exc:
        check_evidence_signer(entry, state="MX", allow_service=False)
    assert exc.value.reason == "KEY_WRONG_HOLDER"


def _reopen(world: World, tl: TrustList) -> TrustList:
    return TrustList.open(tl.sign(world.root), [world.root.public], now=tl.issued_at)


def _with_nodes(world: World, *entries: KeyEntry) -> TrustList:
    tl = world.trust_list
    for e in entries:
        tl = tl.with_entry(e)
    return _reopen(world, tl)


def test_verifier_accepts_a_states_own_node_key_and_no_other(world: World) -> None:
    reg = world.registry
    mx, gt = SigningKey.generate("puente.node/MX"), SigningKey.generate("puente.node/GT")
    tl = _with_nodes(
        world,
        KeyEntry(mx.public, node_holder("MX"), NODE_USAGES, T0 - DAY),
        KeyEntry(gt.public, node_holder("GT"), NODE_USAGES, T0 - DAY),
    )
    v = Verifier(trust_list=tl, registry=reg)
    payload = world.payload()
    st = world.statement(payload)  # origin MX, recipient GT
    assert v.verify_delivery(DeliverySigner(mx, reg).sign(st, payload), recipient="GT").key_ids
    with pytest.raises(UntrustedKeyError) as exc:
        v.verify_delivery(DeliverySigner(gt, reg).sign(st, payload), recipient="GT")
    assert exc.value.reason == "KEY_WRONG_HOLDER"
    # Batch mode: the batch note must be by the origin's node too.
    for key, ok in ((mx, True), (gt, False)):
        batch = DeliveryBatch(reg, f"MX/0/{key.key_id}")
        batch.add(st, payload)
        (d,) = batch.seal(key, time_ms=T0 + 1000)
        if ok:
            assert v.verify_delivery(d, recipient="GT").mode == "batch"
        else:
            with pytest.raises(UntrustedKeyError):
                v.verify_delivery(d, recipient="GT")
    # Checkpoints: the log id names the state (puente.audit/MX/0 is MX's).
    for key, ok in ((mx, True), (gt, False)):
        log = AuditLog(audit_log_id("MX", 0))
        log.append_record(reg, audit_record(0))
        note = log.checkpoint(key, time_ms=T0 + 1000).note
        if ok:
            assert v.verify_checkpoint(note).key_ids == (key.key_id,)
        else:
            with pytest.raises(UntrustedKeyError) as exc:
                v.verify_checkpoint(note)
            assert exc.value.reason == "KEY_WRONG_HOLDER"


def test_node_key_rotation_keeps_old_evidence_verifying(world: World) -> None:
    reg = world.registry
    old, new = SigningKey.generate("puente.node/MX"), SigningKey.generate("puente.node/MX")
    rotation = T0 + 10 * DAY
    tl = _with_nodes(world, KeyEntry(old.public, node_holder("MX"), NODE_USAGES, T0 - DAY))
    payload = world.payload()
    before = DeliverySigner(old, reg).sign(world.statement(payload), payload)
    log = AuditLog(audit_log_id("MX", 0))
    log.append_record(reg, audit_record(0))
    cp_before = log.checkpoint(old, time_ms=T0 + 1000).note
    # The rotation: the new key from `rotation`, the old one ends an hour later.
    tl = _reopen(
        world,
        tl.retire(old.key_id, until=rotation + 3_600_000)
        .with_entry(KeyEntry(new.public, node_holder("MX"), NODE_USAGES, rotation))
        .reissued(issued_at=rotation, expires_at=rotation + 30 * DAY),
    )
    v = Verifier(trust_list=tl, registry=reg)
    assert v.verify_delivery(before, recipient="GT").key_ids == (old.key_id,)
    assert v.verify_checkpoint(cp_before).key_ids == (old.key_id,)
    log.append_record(reg, audit_record(1))
    assert v.verify_checkpoint(log.checkpoint(new, time_ms=rotation + 1).note).key_ids == (
        new.key_id,
    )
    # After the overlap the old key signs nothing new; once revoked, nothing dated later.
    log.append_record(reg, audit_record(2))
    with pytest.raises(UntrustedKeyError) as exc:
        v.verify_checkpoint(log.checkpoint(old, time_ms=rotation + 3_600_000).note)
    assert exc.value.reason == "KEY_EXPIRED"
    revoked = Verifier(trust_list=_reopen(world, tl.revoke(old.key_id, since=T0)), registry=reg)
    with pytest.raises(UntrustedKeyError) as exc:
        revoked.verify_checkpoint(cp_before)
    assert exc.value.reason == "KEY_REVOKED"
