"""Finality by quorum: who counts, who never does."""

from __future__ import annotations

from dataclasses import replace

import pytest

from puente.evidence.cosignature import cosign
from puente.evidence.errors import EvidenceError, SignatureError
from puente.evidence.finality import Finality, FinalityBook, cosigning_states, default_quorum
from puente.evidence.keys import SigningKey
from puente.evidence.log import AuditLog, CheckpointRecord
from puente.evidence.note import Note
from puente.evidence.trust import KeyEntry, Usage, node_holder
from puente.evidence.verify import VerifiedCheckpoint
from puente.evidence.witness import witness_key_name
from tests.unit.witness.federation import T0, Federation

TIME_S = (T0 + 5000) // 1000


def cosigned(fed: Federation, r: CheckpointRecord, *states: str, time_s: int = TIME_S) -> bytes:
    note = Note.parse(r.note)
    for s in states:
        note = cosign(note, fed.witnesses[s], time_s=time_s)
    return note.to_bytes()


def test_the_default_quorum_is_a_majority_of_the_other_members() -> None:
    assert default_quorum([f"S{i}" for i in range(20)]) == 10
    assert default_quorum(["MX", "GT", "HN"]) == 2
    assert default_quorum(["MX"]) == 1


def test_a_quorum_of_other_states_makes_the_covered_records_final(fed: Federation) -> None:
    book, log, v = FinalityBook(2), fed.log(), fed.verifier()
    r = fed.grow(log, 4)
    assert book.add(cosigned(fed, r, "GT"), v) == 1
    assert book.finality(log.log_id, 3) is Finality.SIGNED
    assert book.add(cosigned(fed, r, "HN"), v) == 1
    assert book.finality(log.log_id, 3) is Finality.WITNESSED
    assert book.finality(log.log_id, 4) is Finality.SIGNED  # not covered yet
    (status,) = book.status()
    assert status["cosigners"] == ["GT", "HN"] and status["final"] is True


def test_the_logs_own_witness_never_counts(fed: Federation) -> None:
    book, log, v = FinalityBook(1), fed.log("MX"), fed.verifier()
    r = fed.grow(log, 2)
    assert book.add(cosigned(fed, r, "MX"), v) == 0
    assert book.finality(log.log_id, 0) is Finality.SIGNED


def test_one_witness_counts_once_however_often_it_cosigns(fed: Federation) -> None:
    book, log, v = FinalityBook(2), fed.log(), fed.verifier()
    r = fed.grow(log, 2)
    book.add(cosigned(fed, r, "GT"), v)
    assert book.add(cosigned(fed, r, "GT", "GT", time_s=TIME_S + 9), v) == 0
    assert book.finality(log.log_id, 0) is Finality.SIGNED


def test_unknown_revoked_and_wrong_usage_keys_do_not_count(fed: Federation) -> None:
    log = fed.log()
    r = fed.grow(log, 2)
    stranger = SigningKey.generate(witness_key_name("CR"))
    note = cosign(Note.parse(r.note), stranger, time_s=TIME_S)
    tl = fed.trust_list()
    assert cosigning_states(note, tl, log_state="MX") == {}
    # GT's witness key revoked before the cosignature's time, HN's valid until before it.
    entries = [
        replace(e, revoked_since=T0 + 1)
        if e.key.name == witness_key_name("GT")
        else replace(e, valid_until=T0 + 2)
        if e.key.name == witness_key_name("HN")
        else e
        for e in tl.entries
    ]
    tl2 = replace(tl, entries=tuple(entries))
    both = Note.parse(cosigned(fed, r, "GT", "HN", "PA"))
    assert cosigning_states(both, tl2, log_state="MX") == {"PA": TIME_S * 1000}
    # A node key (usage checkpoint, not witness) making a cosignature does not count.
    by_node = cosign(Note.parse(r.note), fed.nodes["GT"], time_s=TIME_S)
    assert cosigning_states(by_node, tl, log_state="MX") == {}


def test_a_witness_key_listed_for_another_holder_kind_does_not_count(fed: Federation) -> None:
    key = SigningKey.generate("puente.witness/ops")
    fed.extra.append(KeyEntry(key.public, "operator:ops", frozenset({Usage.WITNESS}), T0))
    r = fed.grow(fed.log(), 2)
    note = cosign(Note.parse(r.note), key, time_s=TIME_S)
    assert cosigning_states(note, fed.trust_list(), log_state="MX") == {}
    assert node_holder("GT") == "node:GT"


def test_a_checkpoint_the_log_did_not_sign_is_refused(fed: Federation) -> None:
    r = fed.grow(fed.log(), 2)
    forged = Note.parse(r.note)
    bad = Note(forged.text.replace("\n2\n", "\n3\n"), forged.signatures)
    with pytest.raises(SignatureError):
        FinalityBook(1).add(
            cosign(bad, fed.witnesses["GT"], time_s=TIME_S).to_bytes(), fed.verifier()
        )


def test_a_second_root_at_a_size_is_not_counted(fed: Federation) -> None:
    book, log, v = FinalityBook(1), fed.log(), fed.verifier()
    other = AuditLog.from_state(log.state())
    a, b = fed.grow(log, 3, tag=b"a"), fed.grow(other, 3, tag=b"b")
    book.add(cosigned(fed, a, "GT"), v)
    assert book.add(cosigned(fed, b, "HN"), v) == 0
    assert book.status()[0]["cosigners"] == ["GT"]


def test_readers_sharing_a_book_verify_each_cosigned_note_once(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partners hosted in one process count into one book: the same note from a second reader
    is neither counted nor verified again; a note that did not verify is checked every time."""
    book, log, v = FinalityBook(2), fed.log(), fed.verifier()
    r = fed.grow(log, 3)
    gt, hn = cosigned(fed, r, "GT"), cosigned(fed, r, "HN")
    checks: list[bytes] = []
    real = v.verify_checkpoint

    def counting(data: bytes) -> VerifiedCheckpoint:
        checks.append(data)
        return real(data)

    monkeypatch.setattr(v, "verify_checkpoint", counting)
    assert book.add(gt, v) == 1 and book.add(gt, v) == 0
    assert len(checks) == 1
    assert book.add(hn, v) == 1 and book.finality(log.log_id, 2) is Finality.WITNESSED
    forged = Note.parse(gt)
    bad = Note(forged.text.replace("\n3\n", "\n4\n"), forged.signatures).to_bytes()
    for _ in range(2):
        with pytest.raises(SignatureError):
            book.add(bad, v)
    assert len(checks) == 4


def test_a_checkpoint_below_the_final_one_is_passed_over_unverified(fed: Federation) -> None:
    book, log, v = FinalityBook(1), fed.log(), fed.verifier()
    old = fed.grow(log, 2)
    book.add(cosigned(fed, fed.grow(log, 3), "GT"), v)
    assert book.logs[log.log_id].final_size == 5
    # Its log signature is not even checked: the final checkpoint covers it already.
    forged = Note.parse(old.note)
    forged = replace(forged, signatures=forged.signatures[:0])
    assert book.add(cosign(forged, fed.witnesses["HN"], time_s=TIME_S).to_bytes(), v) == 0
    assert book.finality(log.log_id, 4) is Finality.WITNESSED


def test_a_final_checkpoint_drops_the_smaller_ones(fed: Federation) -> None:
    book, log, v = FinalityBook(2), fed.log(), fed.verifier()
    for _ in range(50):
        book.add(cosigned(fed, fed.grow(log, 1), "GT", "HN"), v)
    pending = fed.grow(log, 1)
    book.add(cosigned(fed, pending, "GT"), v)  # one cosigner: not final yet
    held = book.logs[log.log_id]
    assert sorted(held.roots) == [50, 51]  # the final one and the one above it, not 49 more
    assert held.final_size == 50
    (status,) = book.status()
    assert status["size"] == 51 and status["cosigners"] == ["GT"] and status["final"] is False


def test_once_final_more_cosigners_are_counted_only_when_asked(fed: Federation) -> None:
    """A delivery's finality needs no more than the quorum: a reader's book passes over a
    further cosignature of the final checkpoint without verifying it; a report's book
    (``all_cosigners``) still names every cosigner."""
    log, v = fed.log(), fed.verifier()
    r = fed.grow(log, 3)
    fast, full = FinalityBook(2), FinalityBook(2, all_cosigners=True)
    for book in (fast, full):
        book.add(cosigned(fed, r, "GT", "HN"), v)
    unsigned = replace(Note.parse(r.note), signatures=())
    late = cosign(unsigned, fed.witnesses["CR"], time_s=TIME_S).to_bytes()  # no log signature
    assert fast.add(late, v) == 0  # not even verified: it could not have been
    with pytest.raises(EvidenceError):  # the report's book checks: no log signature
        full.add(late, v)
    assert full.add(cosigned(fed, r, "CR"), v) == 1
    assert full.status()[0]["cosigners"] == ["CR", "GT", "HN"]
    assert fast.status()[0]["cosigners"] == ["GT", "HN"]
