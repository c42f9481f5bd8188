"""What the policy service does when a batch's transaction fails, with a stand-in producer (no
broker; the real-broker cases are in tests/integration/service and tests/integration/cluster).

An error that leaves the producer usable (e.g. a leader moved) is aborted and the batch retried
with the same producer. One that does not — fenced, or an epoch or sequence state the brokers no
longer accept, as OutOfOrderSequenceNumber after a leader failover — and a third abort in a row
release the partition, so that taking it over again starts a new producer. Before this, a
producer stuck on OutOfOrderSequenceNumber failed every retry and its partition never drained.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    KafkaError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from puente.kafka.connection import KafkaEndpoint
from puente.secrets import Credential
from puente.service import worker as worker_module
from puente.service.processor import BatchOutput
from puente.service.worker import MAX_ABORTS, PolicyService, _Owned
from puente.topics import INGRESS
from tests.unit.service.conftest import World


class StandInProducer:
    """Transactions whose commit fails with the given errors, one per attempt, then succeed."""

    def __init__(self, *errors: Exception, abort_fails: bool = False) -> None:
        self.errors = list(errors)
        self.abort_fails = abort_fails
        self.began = self.committed = self.aborted = 0
        self.stopped = False

    async def begin_transaction(self) -> None:
        self.began += 1

    async def send_offsets_to_transaction(self, offsets: Any, group: str) -> None:
        pass

    async def commit_transaction(self) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.committed += 1

    async def abort_transaction(self) -> None:
        if self.abort_fails:
            raise AssertionError("fatal state")  # as aiokafka does from a fatal state
        self.aborted += 1

    async def stop(self) -> None:
        self.stopped = True


class StandInProcessor:
    def __init__(self) -> None:
        self.rollbacks = 0

    def rollback(self) -> None:
        self.rollbacks += 1


@pytest.fixture
def service(world: World, monkeypatch: pytest.MonkeyPatch) -> PolicyService:
    async def no_pause(_: float) -> None:
        pass

    monkeypatch.setattr(worker_module.asyncio, "sleep", no_pause)
    return PolicyService(
        endpoint=KafkaEndpoint("127.0.0.1:9"),
        credential=Credential("svc", "unused"),
        naming=world.naming,
        registry=world.registry,
        policies=world.policies,
        key=world.key,
    )


def own(service: PolicyService, prod: StandInProducer) -> _Owned:
    tp = TopicPartition(service.naming.topic(INGRESS, "MX"), 0)
    owned = _Owned(tp, "MX", prod, StandInProcessor())  # type: ignore[arg-type]
    service._owned[tp] = owned
    return owned


async def attempt(service: PolicyService, owned: _Owned) -> BatchOutput | None:
    out = BatchOutput(next_offset=5, origin="MX")
    return await service._commit(owned, out, first_offset=0)


async def test_a_transient_error_is_aborted_and_retried_with_the_same_producer(
    service: PolicyService,
) -> None:
    prod = StandInProducer(NotLeaderForPartitionError())
    owned = own(service, prod)
    assert await attempt(service, owned) is None
    assert (prod.aborted, owned.processor.rollbacks, prod.stopped) == (1, 1, False)
    assert owned.tp in service._owned
    assert await attempt(service, owned) is not None
    assert (prod.committed, owned.aborts, owned.next_offset) == (1, 0, 5)


@pytest.mark.parametrize(
    "error",
    [ProducerFenced(), OutOfOrderSequenceNumber(), UnknownProducerId()],
    ids=lambda e: type(e).__name__,
)
async def test_a_producer_state_error_releases_the_partition(
    service: PolicyService, error: Exception
) -> None:
    prod = StandInProducer(error)
    owned = own(service, prod)
    assert await attempt(service, owned) is None
    assert owned.processor.rollbacks == 1
    assert prod.stopped and owned.tp not in service._owned


async def test_a_failed_abort_releases_the_partition(service: PolicyService) -> None:
    prod = StandInProducer(KafkaError(), abort_fails=True)
    owned = own(service, prod)
    assert await attempt(service, owned) is None
    assert prod.stopped and owned.tp not in service._owned


async def test_repeated_aborts_replace_the_producer(service: PolicyService) -> None:
    prod = StandInProducer(*(NotLeaderForPartitionError() for _ in range(MAX_ABORTS)))
    owned = own(service, prod)
    for n in range(1, MAX_ABORTS):
        assert await attempt(service, owned) is None
        assert owned.aborts == n and not prod.stopped
    assert await attempt(service, owned) is None
    assert prod.aborted == MAX_ABORTS
    assert prod.stopped and owned.tp not in service._owned
