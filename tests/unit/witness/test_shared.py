"""What witnesses hosted in one process share: a record parsed once, a log signature checked
once per equal trust list — and a refusal, or another list, never taken from another witness."""

from __future__ import annotations

from typing import Any

import pytest

from puente.evidence.cosignature import cosign
from puente.evidence.errors import EvidenceError
from puente.evidence.keys import SigningKey
from puente.evidence.note import Note
from puente.evidence.verify import VerifiedCheckpoint, Verifier
from puente.witness.shared import Reads
from tests.unit.witness.federation import Federation


class Counting(Verifier):
    """A verifier that counts the checkpoints it really verifies."""

    checked = 0

    def verify_checkpoint(self, data: bytes, **kwargs: Any) -> VerifiedCheckpoint:
        self.checked += 1
        return super().verify_checkpoint(data, **kwargs)


def verifier(fed: Federation) -> Counting:
    return Counting(trust_list=fed.trust_list(), registry=fed.registry)


def test_a_log_signature_is_checked_once_for_witnesses_with_equal_trust_lists(
    fed: Federation,
) -> None:
    reads = Reads()
    note = fed.grow(fed.log(), 3).note
    gt, hn = verifier(fed), verifier(fed)  # each witness opened its own copy of the list
    assert gt.trust_list is not hn.trust_list
    first = reads.verified(gt, note)
    assert reads.verified(hn, note) is first
    assert reads.verified(gt, note) is first
    assert (gt.checked, hn.checked) == (1, 0)
    assert first.checkpoint.size == 3


def test_another_trust_list_is_checked_on_its_own(fed: Federation) -> None:
    reads = Reads()
    note = fed.grow(fed.log(), 3).note
    reads.verified(verifier(fed), note)
    fed.nodes["MX"] = SigningKey.generate("puente.node/MX")  # a list with another MX key
    other = verifier(fed)
    with pytest.raises(EvidenceError):
        reads.verified(other, note)
    assert other.checked == 1


def test_a_refusal_is_not_remembered(fed: Federation) -> None:
    reads = Reads()
    forged = fed.grow(fed.log(), 3)
    text = Note.parse(forged.note)
    tampered = Note(text.text.replace("\n3\n", "\n4\n"), text.signatures).to_bytes()
    gt, hn = verifier(fed), verifier(fed)
    for v in (gt, hn, gt):
        with pytest.raises(EvidenceError):
            reads.verified(v, tampered)
    assert (gt.checked, hn.checked) == (2, 1)


def test_a_cosignature_record_is_parsed_into_the_log_signed_note_and_its_cosigners(
    fed: Federation,
) -> None:
    reads = Reads()
    record = fed.grow(fed.log(), 5)
    cosigned = cosign(Note.parse(record.note), fed.witnesses["GT"], time_s=1).to_bytes()
    gossip = reads.gossip(cosigned)
    assert gossip.log_signed == record.note
    assert gossip.cosigners == {"puente.witness/GT"}
    assert gossip.checkpoint == record.checkpoint
    assert reads.gossip(cosigned) is gossip
    with pytest.raises((EvidenceError, ValueError)):
        reads.gossip(b"not a note")


def test_a_checkpoint_record_is_decoded_once(fed: Federation) -> None:
    reads = Reads()
    record = fed.grow(fed.log(), 2)
    value = record.encode(fed.registry)
    decoded, cp = reads.checkpoint(fed.registry, value)
    assert decoded == record and cp == record.checkpoint
    assert reads.checkpoint(fed.registry, value)[0] is decoded
