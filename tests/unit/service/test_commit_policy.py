"""What the policy service does when a batch's transaction fails: the commit policy, pure (the
real-broker cases are in tests/integration/service and tests/integration/cluster).

An error that leaves the producer usable (e.g. a leader moved) is aborted and the batch retried
with the same producer. One that does not — fenced, or an epoch or sequence state the brokers no
longer accept, as OutOfOrderSequenceNumber after a leader failover — a failed abort and a third
abort in a row release the partition, so that taking it over again starts a new producer. Before
this, a producer stuck on OutOfOrderSequenceNumber failed every retry and its partition never
drained.
"""

from __future__ import annotations

import itertools

import pytest
from aiokafka.errors import (
    KafkaError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    RequestTimedOutError,
    UnknownProducerId,
)

from puente.service.commit import (
    MAX_ABORTS,
    PRODUCER_STATE_ERRORS,
    CommitPolicy,
    Step,
    TransactionStateError,
    TxnState,
)

RELEASING = {Step.REPLACE, Step.FENCED}


def fail(policy: CommitPolicy, error: Exception, *, abort_ok: bool = True) -> Step:
    """One transaction that fails with ``error``, driven as the worker drives it."""
    policy.begin()
    step = policy.failed(error)
    if step is Step.ABORT:
        step = policy.aborted(ok=abort_ok)
    return step


def test_a_transient_error_is_aborted_and_retried_with_the_same_producer() -> None:
    policy = CommitPolicy()
    policy.begin()
    assert policy.failed(NotLeaderForPartitionError()) is Step.ABORT
    assert policy.state is TxnState.ABORTING
    assert policy.aborted(ok=True) is Step.RETRY
    assert (policy.state, policy.aborts) == (TxnState.READY, 1)
    policy.begin()  # the same producer, the batch read again
    policy.committed()
    assert (policy.state, policy.aborts) == (TxnState.READY, 0)


@pytest.mark.parametrize(
    ("error", "step"),
    [
        (ProducerFenced(), Step.FENCED),
        (OutOfOrderSequenceNumber(), Step.REPLACE),
        (UnknownProducerId(), Step.REPLACE),
    ],
    ids=lambda v: v.name if isinstance(v, Step) else type(v).__name__,
)
def test_a_producer_state_error_releases_the_partition_without_an_abort(
    error: Exception, step: Step
) -> None:
    policy = CommitPolicy()
    policy.begin()
    assert policy.failed(error) is step  # not ABORT: such a producer cannot abort either
    assert policy.state is TxnState.RELEASED


@pytest.mark.parametrize("error_type", PRODUCER_STATE_ERRORS, ids=lambda t: t.__name__)
def test_every_producer_state_error_releases(error_type: type[Exception]) -> None:
    assert fail(CommitPolicy(), error_type()) in RELEASING


def test_a_failed_abort_releases_the_partition() -> None:
    policy = CommitPolicy()
    assert fail(policy, KafkaError(), abort_ok=False) is Step.REPLACE
    assert policy.state is TxnState.RELEASED


def test_repeated_aborts_replace_the_producer() -> None:
    policy = CommitPolicy()
    for n in range(1, MAX_ABORTS):
        assert fail(policy, NotLeaderForPartitionError()) is Step.RETRY
        assert policy.aborts == n
    assert fail(policy, NotLeaderForPartitionError()) is Step.REPLACE
    assert (policy.state, policy.aborts) == (TxnState.RELEASED, MAX_ABORTS)


def test_only_consecutive_aborts_count() -> None:
    policy = CommitPolicy()
    for _ in range(3):
        for _ in range(MAX_ABORTS - 1):
            assert fail(policy, RequestTimedOutError()) is Step.RETRY
        policy.begin()
        policy.committed()
    assert policy.state is TxnState.READY


def test_a_released_partition_takes_no_more_transactions() -> None:
    policy = CommitPolicy()
    fail(policy, ProducerFenced())
    assert not any(TxnState.is_transition_valid(TxnState.RELEASED, t) for t in TxnState)
    with pytest.raises(TransactionStateError):
        policy.begin()


def test_events_out_of_order_are_refused() -> None:
    policy = CommitPolicy()
    with pytest.raises(TransactionStateError):
        policy.committed()  # nothing begun
    with pytest.raises(TransactionStateError):
        policy.failed(KafkaError())
    assert policy.state is TxnState.READY


def test_a_transaction_left_open_is_aborted_at_the_next_begin() -> None:
    """A commit task cancelled mid-way leaves its transaction open: the next begin raises, which
    the worker handles as a failed transaction — and the abort closes the open one."""
    policy = CommitPolicy()
    policy.begin()
    with pytest.raises(TransactionStateError) as raised:
        policy.begin()
    assert policy.failed(raised.value) is Step.ABORT
    assert policy.aborted(ok=True) is Step.RETRY
    assert policy.state is TxnState.READY


# Each transaction's fate, as the worker sees it.
COMMITS, TRANSIENT, ABORT_FAILS, STATE_ERROR = "commits", "transient", "abort fails", "state"


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 6])
def test_every_sequence_releases_exactly_when_it_should(length: int) -> None:
    """All sequences of transaction fates: the partition keeps its producer through any run of
    fewer than MAX_ABORTS transient failures, and is released at the first state error, failed
    abort or MAX_ABORTS-th failure in a row — never otherwise, and never by an invalid event."""
    for fates in itertools.product([COMMITS, TRANSIENT, ABORT_FAILS, STATE_ERROR], repeat=length):
        policy = CommitPolicy()
        in_a_row = 0
        for fate in fates:
            if fate == COMMITS:
                policy.begin()
                policy.committed()
                in_a_row = 0
                continue
            in_a_row += 1
            error = OutOfOrderSequenceNumber() if fate == STATE_ERROR else KafkaError()
            step = fail(policy, error, abort_ok=fate != ABORT_FAILS)
            release = fate != TRANSIENT or in_a_row >= MAX_ABORTS
            assert step is (Step.REPLACE if release else Step.RETRY), fates
            assert (policy.state is TxnState.RELEASED) is release
            if release:
                break
