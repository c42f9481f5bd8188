"""Keys of a federation, on a real key store: a node's signing key rotates while it runs
(evidence under the old key keeps verifying), a recipient's encryption key rotates (what was
sealed to the old key stays readable by its holder), and revocation stops a key at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from puente.codec.wire import decode
from puente.evidence.errors import EvidenceError, SealError
from puente.evidence.keys import SigningKey
from puente.evidence.keystore import KeyStore
from puente.evidence.trust import ROOT_HOLDER, TrustList, Usage, member_holder, node_holder
from puente.evidence.trustsource import TrustTracker
from puente.evidence.verify import Verifier, open_verified
from puente.service.nodekeys import StoreKeys, TrustSealer
from puente.service.processor import IngressRecord, PartitionProcessor
from puente.synth.generator import Generator
from puente.topics import INGRESS
from tests.unit.service.conftest import World

T0 = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
HOUR = 3_600_000


def _ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


class Federation:
    """A key store holding MX's node keys and GT's member keys, and its signed trust list."""

    def __init__(self, world: World, root_dir: Path) -> None:
        self.world = world
        self.store = KeyStore(root_dir)
        at = _ms(T0) - 24 * HOUR
        self.root, _ = self.store.generate(ROOT_HOLDER, valid_from=at)
        for holder in (node_holder("MX"), member_holder("GT")):
            self.store.generate(
                holder,
                valid_from=at,
                usages=(Usage.DELIVERY, Usage.CHECKPOINT) if holder.startswith("node") else None,
            )
            self.store.generate_encryption(holder, valid_from=at)
        self.serial = 0

    def trust_list(self) -> TrustList:
        """A freshly signed list of every key in the store (a new serial each time)."""
        self.serial += 1
        tl = self.store.trust_list(
            serial=self.serial,
            issued_at=_ms(T0) - 24 * HOUR,
            expires_at=_ms(T0) + 400 * 24 * HOUR,
            floor_digest=self.world.policies.current.digests.floor,
        )
        return TrustList.open(tl.sign(self.root), [self.root.public], now=_ms(T0))

    def processor(self, tl: TrustList) -> PartitionProcessor:
        tracker = TrustTracker([self.root.public], self.world.registry, clock=lambda: _ms(T0))
        tracker.offer(tl.sign(self.root) if not tl.signed_by else _signed(tl, self.root))
        return PartitionProcessor(
            origin="MX",
            partition=0,
            naming=self.world.naming,
            registry=self.world.registry,
            policies=self.world.policies,
            keys=StoreKeys(self.store, "MX", reload_s=0),
            sealer=TrustSealer(tracker),
        )

    def record(self, tl: TrustList, gen: Generator, offset: int, at: int) -> IngressRecord:
        from puente.publisher.core import seal_for_node

        # A GT national arrested in MX: MX's rules notify GT's consulate.
        scenario = gen.scenario("requested-arrest", origin="MX", nationality="GT")
        notice = dict(scenario.record)
        notice["created_at"] = dt.datetime.fromtimestamp(at / 1000 - 60, dt.UTC)
        notice["event_time"] = dt.datetime.fromtimestamp(at / 1000 - 300, dt.UTC)
        plain = self.world.encode(scenario.name, notice)
        sealed = seal_for_node(tl, "MX", plain, at=at)
        topic = self.world.naming.topic(INGRESS, "MX")
        return IngressRecord(topic, 0, offset, notice["notice_id"].encode(), sealed)


def _signed(tl: TrustList, root: SigningKey) -> bytes:
    return TrustList(
        tl.serial,
        tl.issued_at,
        tl.expires_at,
        tl.entries,
        encryption_entries=tl.encryption_entries,
        floor_digest=tl.floor_digest,
    ).sign(root)


def _to_gt(out: object, verifier: Verifier) -> list[bytes]:
    return [
        v
        for topic, _, v in out.deliveries  # type: ignore[attr-defined]
        if topic.endswith(".GT")
    ]


def test_a_rotated_node_key_signs_the_next_batch_and_old_evidence_still_verifies(
    world: World, gen: Generator, tmp_path: Path
) -> None:
    fed = Federation(world, tmp_path / "keys")
    before = fed.trust_list()
    proc = fed.processor(before)
    first = proc.process([fed.record(before, gen, 0, _ms(T0))], T0)
    old_key = proc.key
    assert old_key is not None
    # The node's state rotates its key while the node runs: a new key file, a new trust list.
    later = T0 + dt.timedelta(hours=2)
    fed.store.rotate(node_holder("MX"), at=_ms(later) - HOUR, overlap_ms=HOUR // 2)
    after = fed.trust_list()
    second = proc.process([fed.record(after, gen, 1, _ms(later))], later)
    assert proc.key is not None and proc.key.key_id != old_key.key_id
    verifier = Verifier(trust_list=after, registry=world.registry)
    for out in (first, second):
        deliveries = _to_gt(out, verifier)
        assert deliveries
        for value in deliveries:
            v = verifier.verify_delivery(value, recipient="GT")
            assert v.key_ids == ((old_key if out is first else proc.key).key_id,)


def test_what_was_sealed_to_a_rotated_recipient_key_opens_with_the_old_key(
    world: World, gen: Generator, tmp_path: Path
) -> None:
    fed = Federation(world, tmp_path / "keys")
    before = fed.trust_list()
    first = fed.processor(before).process([fed.record(before, gen, 0, _ms(T0))], T0)
    # GT rotates its encryption key: senders seal to the new one from then on.
    new_key, _ = fed.store.rotate_encryption(member_holder("GT"), at=_ms(T0), overlap_ms=0)
    after = fed.trust_list()
    second = fed.processor(after).process([fed.record(after, gen, 1, _ms(T0))], T0)
    verifier = Verifier(trust_list=after, registry=world.registry)
    ring = fed.store.keyring(member_holder("GT"))  # GT keeps its old private key
    [old] = [
        v
        for v in map(lambda d: verifier.verify_delivery(d, recipient="GT"), _to_gt(first, verifier))
    ]
    [new] = [
        v
        for v in map(
            lambda d: verifier.verify_delivery(d, recipient="GT"), _to_gt(second, verifier)
        )
    ]
    assert new.statement.sealed_key_id == new_key.key_id != old.statement.sealed_key_id
    for v in (old, new):
        assert decode(world.registry, open_verified(v, ring))["origin"] == "MX"
    # Without the old private key, only the new delivery opens.
    fed.store.delete_private(str(old.statement.sealed_key_id))
    with pytest.raises(SealError):
        open_verified(old, fed.store.keyring(member_holder("GT")))
    open_verified(new, fed.store.keyring(member_holder("GT")))


def test_a_revoked_node_key_stops_verifying_from_its_revocation(
    world: World, gen: Generator, tmp_path: Path
) -> None:
    fed = Federation(world, tmp_path / "keys")
    tl = fed.trust_list()
    out = fed.processor(tl).process([fed.record(tl, gen, 0, _ms(T0))], T0)
    [meta] = [
        m for m in fed.store.key_metas() if m.holder == node_holder("MX") and not m.is_encryption
    ]
    # Revoked from before the delivery was signed (a suspected compromise): refused.
    fed.store.revoke(meta.key_id, since=_ms(T0) - HOUR)
    revoked = Verifier(trust_list=fed.trust_list(), registry=world.registry)
    for value in _to_gt(out, revoked):
        with pytest.raises(EvidenceError) as exc:
            revoked.verify_delivery(value, recipient="GT")
        assert exc.value.reason == "KEY_REVOKED"
