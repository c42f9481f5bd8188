"""The commit policy: what the service does after one partition's transaction fails.

A pure state machine beside the I/O, in the manner of aiokafka's ``TransactionManager``: the
worker tells it what happened (begun, committed, failed with this error, aborted or not) and it
answers what to do next — retry the batch, replace the producer, or let the partition go. No
Kafka calls here; the worker makes them.

- An error that leaves the producer usable (a leader moved, a request timed out) is aborted and
  the batch read again with the same producer.
- A producer whose id, epoch or sequence numbers the brokers no longer accept cannot go on
  (aiokafka, unlike the Java client, keeps such a producer "usable" and every retry fails the
  same way), nor can one that cannot abort, nor one whose transactions abort ``MAX_ABORTS``
  times in a row: the partition is released, and taking it over again starts a new producer,
  whose ``init_transactions`` bumps the epoch and resets the sequences.
- A fenced producer means another instance owns the partition now: it is released too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    InvalidTxnState,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

MAX_ABORTS = 3  # consecutive aborted transactions of one partition before its producer is replaced

# Errors after which a transactional producer cannot go on: its id, epoch or sequence numbers are
# no longer what the brokers expect (e.g. OutOfOrderSequenceNumber after a leader failover).
PRODUCER_STATE_ERRORS: tuple[type[Exception], ...] = (
    ProducerFenced,
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    InvalidTxnState,
)


class TxnState(enum.Enum):
    """Where one owned partition's transactional producer is."""

    READY = "ready"  # no transaction open: the next batch may begin one
    IN_TRANSACTION = "in_transaction"  # begun: records, offsets and the commit under way
    ABORTING = "aborting"  # failed, the producer still usable: its transaction is to be aborted
    RELEASED = "released"  # the producer cannot go on: the partition is given up (final)

    @classmethod
    def is_transition_valid(cls, source: TxnState, target: TxnState) -> bool:
        return target in _TRANSITIONS[source]


_TRANSITIONS: dict[TxnState, frozenset[TxnState]] = {
    TxnState.READY: frozenset({TxnState.IN_TRANSACTION}),
    TxnState.IN_TRANSACTION: frozenset({TxnState.READY, TxnState.ABORTING, TxnState.RELEASED}),
    TxnState.ABORTING: frozenset({TxnState.READY, TxnState.RELEASED}),
    TxnState.RELEASED: frozenset(),
}


class Step(enum.Enum):
    """What the worker does next about a failed transaction. In every case but ``ABORT`` the
    processor is rolled back to before the batch."""

    ABORT = "abort"  # abort the open transaction, then report whether it worked (``aborted``)
    RETRY = "retry"  # seek back to the batch and read it again, with the same producer
    REPLACE = "replace"  # release the partition: taking it over again starts a new producer
    FENCED = "fenced"  # release the partition: another instance owns it now


class TransactionStateError(RuntimeError):
    """An event the commit policy does not allow in its current state (a bug in the caller, or
    a transaction left open when its task was cancelled)."""


@dataclass
class CommitPolicy:
    """The commit policy of one owned partition (one transactional producer)."""

    max_aborts: int = MAX_ABORTS
    state: TxnState = TxnState.READY
    aborts: int = 0  # consecutive failed transactions; a commit resets it

    def begin(self) -> None:
        """A transaction begins. Raises if one is still open (its task was cancelled mid-way):
        the worker handles that as a failed transaction, whose abort closes it."""
        self._to(TxnState.IN_TRANSACTION)

    def committed(self) -> None:
        self._to(TxnState.READY)
        self.aborts = 0

    def failed(self, error: BaseException) -> Step:
        """The open transaction failed with ``error``: abort it, or (the producer unusable)
        give the partition up without trying."""
        self.aborts += 1
        if isinstance(error, PRODUCER_STATE_ERRORS):
            self._to(TxnState.RELEASED)
            return Step.FENCED if isinstance(error, ProducerFenced) else Step.REPLACE
        self._to(TxnState.ABORTING)
        return Step.ABORT

    def aborted(self, *, ok: bool) -> Step:
        """The abort ``failed`` asked for is done (``ok``) or could not be (a fatal state)."""
        if not ok or self.aborts >= self.max_aborts:
            self._to(TxnState.RELEASED)
            return Step.REPLACE
        self._to(TxnState.READY)
        return Step.RETRY

    def _to(self, target: TxnState) -> None:
        if not TxnState.is_transition_valid(self.state, target):
            raise TransactionStateError(f"invalid transition {self.state.name} -> {target.name}")
        self.state = target
