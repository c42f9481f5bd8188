"""A node reads only what its own agencies sealed to it, and what it delivers only the recipient
can read; every decision records the floor and the origin's policy it was made under."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from puente.codec.wire import decode
from puente.evidence._time import now_ms
from puente.evidence.enckeys import EncryptionPublicKey
from puente.evidence.errors import SealError
from puente.evidence.records import AuditRecord
from puente.evidence.seal import sealing_key
from puente.evidence.trust import TrustList, member_holder
from puente.evidence.verify import open_verified
from puente.publisher.core import seal_for_node
from puente.service.processor import RECIPIENT_KEY_MISSING
from puente.synth.generator import Generator
from puente.synth.notice import CASE_NOTICE
from tests.unit.service.conftest import NOW, World


def _notice(world: World, gen: Generator, origin: str = "MX") -> bytes:
    return world.encode(CASE_NOTICE, gen.case_notice(origin=origin))


def _refusal(world: World, out: object) -> str:
    [(_, value)] = out.rejections  # type: ignore[attr-defined]
    return str(decode(world.registry, value)["reason_code"])


def test_an_unsealed_notice_is_refused(world: World, gen: Generator) -> None:
    out = world.processor("MX").process([world.record(_notice(world, gen), sealed=False)], NOW)
    assert out.outcomes == {"REJECTED": 1} and not out.deliveries
    assert _refusal(world, out) == "NOT_SEALED"


def test_a_notice_sealed_to_another_node_is_refused(world: World, gen: Generator) -> None:
    """An agency of GT sealed its notice to GT's node; on MX's ingress MX's node cannot open
    it (and would not read another state's notice if it could)."""
    plain = _notice(world, gen)
    other = seal_for_node(world.trust.verifier().trust_list, "GT", plain, at=now_ms())
    rec = dataclasses.replace(world.record(plain, sealed=False), value=other)
    out = world.processor("MX").process([rec], NOW)
    assert out.outcomes == {"REJECTED": 1}
    assert _refusal(world, out) in ("SEAL_WRONG_RECIPIENT", "SEAL_KEY_UNKNOWN", "SEAL_INVALID")


def test_only_the_recipient_opens_its_delivery(world: World, gen: Generator) -> None:
    out = world.processor("MX").process([world.record(_notice(world, gen))], NOW)
    assert out.deliveries
    topic, _, value = out.deliveries[0]
    recipient = topic.rsplit(".", 1)[1]
    v, plain = world.verify(value, recipient)
    assert decode(world.registry, plain)["origin"] == "MX"
    other = next(m for m in world.member_rings if m not in (recipient, "MX"))
    with pytest.raises(SealError):
        open_verified(v, world.member_rings[other])
    # What anyone (an auditor) checks without the key: the signed digest of what was sent.
    assert v.statement.sealed_sha256 == hashlib.sha256(v.payload).digest()


def test_a_resealed_copy_of_a_notice_is_a_duplicate(world: World, gen: Generator) -> None:
    """Every seal of one notice differs (a fresh ephemeral key); the node dedupes what is
    inside."""
    plain = _notice(world, gen)
    proc = world.processor("MX")
    first = proc.process([world.record(plain, offset=0)], NOW)
    again = proc.process([world.record(plain, offset=1)], NOW)
    assert first.outcomes.get("REJECTED", 0) == 0
    assert again.outcomes == {"REJECTED": 1} and _refusal(world, again) == "DUPLICATE_NOTICE"


def test_every_decision_records_the_floor_and_the_origins_policy(
    world: World, gen: Generator
) -> None:
    out = world.processor("MX").process([world.record(_notice(world, gen))], NOW)
    digests = world.policies.current.digests
    records = [AuditRecord.decode(world.registry, leaf) for leaf in out.audit]
    assert records and {r.floor_digest for r in records} == {digests.floor}
    assert {r.policy_digest for r in records} == {digests.policy("MX")}


@dataclasses.dataclass(frozen=True)
class ListSealer:
    """Recipients' keys from one fixed trust list."""

    trust_list: TrustList

    def recipient_key(self, recipient: str, at: int) -> EncryptionPublicKey:
        return sealing_key(self.trust_list, member_holder(recipient), at=at)


def test_a_recipient_without_an_encryption_key_is_withheld_not_sent_in_clear(
    world: World, gen: Generator
) -> None:
    tl = world.trust.verifier().trust_list
    stripped = dataclasses.replace(
        tl,
        encryption_entries=tuple(
            e for e in tl.encryption_entries if not e.holder.startswith("member:")
        ),
    )
    proc = world.processor("MX")
    proc.sealer = ListSealer(stripped)
    out = proc.process([world.record(_notice(world, gen))], NOW)
    assert not out.deliveries
    records = [AuditRecord.decode(world.registry, leaf) for leaf in out.audit]
    assert records and all(r.decision == "WITHHELD" for r in records)
    assert any(r.reason_code == RECIPIENT_KEY_MISSING for r in records)


@dataclasses.dataclass
class CountingSealer:
    """Recipients' keys from one fixed trust list, counting the look-ups."""

    trust_list: TrustList
    lookups: int = 0

    def recipient_key(self, recipient: str, at: int) -> EncryptionPublicKey:
        self.lookups += 1
        return sealing_key(self.trust_list, member_holder(recipient), at=at)


def test_a_batch_is_sealed_with_one_data_key_per_recipient(world: World, gen: Generator) -> None:
    """Deliveries are batch-sealed (kind 0x04): one key look-up and one HPKE seal per batch and
    recipient, every delivery still opening on its own for its recipient only."""
    proc = world.processor("MX")
    proc.sealer = sealer = CountingSealer(world.trust.verifier().trust_list)
    batches = [
        proc.process([world.record(_notice(world, gen), offset=o) for o in offsets], NOW)
        for offsets in ([0, 1, 2], [3, 4])
    ]
    heads: dict[tuple[int, str], set[bytes]] = {}
    for b, out in enumerate(batches):
        for topic, _, value in out.deliveries:
            recipient = topic.rsplit(".", 1)[1]
            v, plain = world.verify(value, recipient)
            assert decode(world.registry, plain)["origin"] == "MX"
            assert v.payload[:4] == b"PS\x01\x04"
            heads.setdefault((b, recipient), set()).add(v.payload[:92])
    per_batch = [sum(1 for b, _ in heads if b == i) for i in range(2)]
    assert all(n > 0 for n in per_batch)
    assert sealer.lookups == sum(per_batch)  # not one per delivery
    assert all(len(h) == 1 for h in heads.values())  # one sealed data key per batch, recipient
    assert len(set().union(*heads.values())) == len(heads)  # never shared across them
    deliveries = sum(len(out.deliveries) for out in batches)
    assert deliveries > sum(per_batch)  # some recipient got several deliveries of one batch
