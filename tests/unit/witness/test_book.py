"""The witness state machine: cosign what extends what it cosigned, never go back, prove forks."""

from __future__ import annotations

from puente.evidence.cosignature import cosign
from puente.evidence.log import AuditLog, CheckpointRecord
from puente.evidence.note import Note
from puente.evidence.witness import Cosign, Cosigned, Fork, ForkKind, Skip, WitnessBook
from tests.unit.witness.federation import Federation


def observe(book: WitnessBook, r: CheckpointRecord) -> Cosign | Skip | Fork:
    return book.observe(r.note, previous_size=r.previous_size, proof=r.consistency_proof)


def accept(book: WitnessBook, fed: Federation, r: CheckpointRecord) -> bytes:
    decision = observe(book, r)
    assert isinstance(decision, Cosign), decision
    cosigned = cosign(Note.parse(decision.note), fed.witnesses[book.own_state], time_s=1)
    book.cosigned_now(cosigned.to_bytes())
    return cosigned.to_bytes()


def fork_of(log: AuditLog) -> AuditLog:
    return AuditLog.from_state(log.state())


def test_first_checkpoint_and_consistent_extensions_are_cosigned(fed: Federation) -> None:
    book, log = WitnessBook("GT"), fed.log()
    first = fed.grow(log, 3)
    assert observe(book, first) == Cosign(first.note)
    accept(book, fed, first)
    for n in (1, 4, 9):
        accept(book, fed, fed.grow(log, n))
    assert book.cosigned[log.log_id].checkpoint.size == 17


def test_never_cosigns_the_same_size_again_or_a_smaller_one(fed: Federation) -> None:
    book, log = WitnessBook("GT"), fed.log()
    small = fed.grow(log, 3)
    accept(book, fed, small)
    big = fed.grow(log, 5)
    accept(book, fed, big)
    assert observe(book, big) is Skip.SEEN
    assert observe(book, small) is Skip.OLDER


def test_one_size_two_roots_is_a_fork_with_both_signed_checkpoints(fed: Federation) -> None:
    book, log = WitnessBook("GT"), fed.log()
    accept(book, fed, fed.grow(log, 4))
    other = fork_of(log)
    a = fed.grow(log, 4, tag=b"a")
    b = fed.grow(other, 4, tag=b"b")
    accept(book, fed, a)
    decision = observe(book, b)
    assert isinstance(decision, Fork)
    assert decision.kind is ForkKind.SAME_SIZE
    assert (decision.a, decision.b) == (a.note, b.note)  # the log-signed notes, no cosignature
    assert book.cosigned[log.log_id].checkpoint.root == a.checkpoint.root  # still on its chain


def test_a_history_not_extending_the_cosigned_one_is_a_fork(fed: Federation) -> None:
    book, log = WitnessBook("GT"), fed.log()
    base = fed.grow(log, 4)
    accept(book, fed, base)
    other = fork_of(log)
    accept(book, fed, fed.grow(log, 4, tag=b"a"))  # cosigned 8 (a)
    fed.grow(other, 4, tag=b"b")  # 8 (b), shown to others only
    b12 = fed.grow(other, 4, tag=b"b")  # 12 (b), with a proof from 8 (b)
    decision = observe(book, b12)
    assert isinstance(decision, Fork) and decision.kind is ForkKind.INCONSISTENT
    assert decision.proof == b12.consistency_proof
    assert book.cosigned[log.log_id].checkpoint.size == 8


def test_a_proof_from_another_size_is_a_gap_not_a_cosignature(fed: Federation) -> None:
    book, log = WitnessBook("GT"), fed.log()
    accept(book, fed, fed.grow(log, 4))
    fed.grow(log, 4)  # missed by the witness
    assert observe(book, fed.grow(log, 4)) is Skip.GAP


def test_restored_state_keeps_the_witness_from_going_back(fed: Federation) -> None:
    book, log = WitnessBook("GT"), fed.log()
    other = fork_of(log)
    first = fed.grow(log, 3)
    accept(book, fed, first)
    kept = accept(book, fed, fed.grow(log, 3))
    restarted = WitnessBook("GT")
    restarted.restore([Cosigned(kept)])
    assert observe(restarted, first) is Skip.OLDER
    forked = fed.grow(other, 6, tag=b"x")
    decision = observe(restarted, forked)
    assert isinstance(decision, Fork) and decision.kind is ForkKind.SAME_SIZE
    assert isinstance(observe(restarted, fed.grow(log, 2)), Cosign)


def test_gossip_catches_a_split_view(fed: Federation) -> None:
    """The log shows checkpoint a to GT and b (same size) to HN: each cosigns its own, and each
    catches the fork from the other's cosignature."""
    gt, hn, log = WitnessBook("GT"), WitnessBook("HN"), fed.log()
    other = fork_of(log)
    a, b = fed.grow(log, 5, tag=b"a"), fed.grow(other, 5, tag=b"b")
    from_gt = accept(gt, fed, a)
    from_hn = accept(hn, fed, b)
    fork = gt.gossip(from_hn)
    assert (
        fork is not None
        and fork.kind is ForkKind.SAME_SIZE
        and (fork.a, fork.b) == (a.note, b.note)
    )
    fork2 = hn.gossip(from_gt)
    assert fork2 is not None and fork2.key == fork.key
    assert gt.gossip(from_gt) is None  # its own again: nothing


def test_a_fork_at_the_cosigned_size_is_caught_after_the_memory_forgot_it(fed: Federation) -> None:
    book, log = WitnessBook("GT", seen_per_log=1), fed.log()
    other = fork_of(log)
    accept(book, fed, fed.grow(log, 5, tag=b"a"))
    book.gossip(
        cosign(
            Note.parse(fed.grow(fed.log("HN"), 1).note), fed.witnesses["GT"], time_s=1
        ).to_bytes()
    )
    book._seen[log.log_id].clear()
    decision = observe(book, fed.grow(other, 5, tag=b"b"))
    assert isinstance(decision, Fork) and decision.kind is ForkKind.SAME_SIZE
