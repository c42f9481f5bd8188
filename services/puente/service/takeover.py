"""Take-over: which input partitions an instance owns, how it takes them over and gives them up.

aiokafka has no KIP-447, so each input partition has its own transactional producer, with the
transactional id ``<prefix>.svc.policy.<ORIGIN>.<partition>``: starting it fences every earlier
owner of the partition. Taking a partition over, in this order: pause it; start its producer
(fence); restore its state from the changelog (``changelog.py``); read its committed offset; seek;
resume. Giving it up: its log checkpointed first, then its producer stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from puente.kafka.clients import producer, start
from puente.kafka.connection import KafkaEndpoint
from puente.logs import get_logger
from puente.secrets import Credential
from puente.service import metrics
from puente.service.changelog import Changelog, PartitionState
from puente.service.commit import CommitPolicy
from puente.service.processor import PartitionProcessor
from puente.topics import INGRESS, Naming

log = get_logger("policy.service")


@dataclass
class Owned:
    """An input partition this instance owns, with its producer, processor and commit policy."""

    tp: TopicPartition
    origin: str
    producer: AIOKafkaProducer
    processor: PartitionProcessor
    next_offset: int | None = None  # the first offset not yet processed (None: from the start)
    txn: CommitPolicy = field(default_factory=CommitPolicy)


# Builds the processor of a partition taken over, from its restored state.
ProcessorFactory = Callable[[str, TopicPartition, PartitionState], PartitionProcessor]
# Checkpoints the given owned logs (those with records waiting) before they are given up.
Checkpointer = Callable[[list[Owned]], Awaitable[None]]


class TakeOver:
    """The partitions one instance owns, and the take-overs in flight."""

    def __init__(
        self,
        *,
        consumer: AIOKafkaConsumer,
        changelog: Changelog,
        endpoint: KafkaEndpoint,
        credential: Credential,
        naming: Naming,
        instance: str,
        lock: asyncio.Lock,
        processor: ProcessorFactory,
        checkpoint: Checkpointer,
    ) -> None:
        self.consumer = consumer
        self.changelog = changelog
        self.endpoint = endpoint
        self.cred = credential
        self.naming = naming
        self.instance = instance
        self.lock = lock  # the service's: one batch, or one ownership change, at a time
        self.processor = processor
        self.checkpoint = checkpoint
        self.owned: dict[TopicPartition, Owned] = {}
        self._taking: dict[TopicPartition, int] = {}  # partitions being taken over -> generation
        self._generation = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """The group gave us partitions: pause them and take them over in the background.

        The rebalance callback must return quickly — no heartbeat is sent until it does, and a
        take-over of dozens of partitions (a producer each, the changelogs) can outlast the
        session on a loaded machine. The partitions stay paused until they are ready.
        """
        new = [tp for tp in partitions if tp not in self.owned]
        if not new:
            return
        self._generation += 1
        for tp in new:
            self._taking[tp] = self._generation
        self.consumer.pause(*new)
        task = asyncio.create_task(self._take_over(new, self._generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _take_over(self, new: list[TopicPartition], generation: int) -> None:
        """Fence earlier owners, restore each partition's state, seek to its committed offset."""
        consumer_ = self.consumer
        t0 = time.monotonic()
        origins = {tp: self.naming.member_of(tp.topic, INGRESS) for tp in new}
        producers = {
            tp: partition_producer(
                self.endpoint,
                self.cred,
                self.naming,
                origins[tp],
                tp.partition,
                client_id=f"{self.instance}-{origins[tp]}-{tp.partition}",
            )
            for tp in new
        }
        try:
            # Starting a transactional producer runs init_transactions, which fences every
            # earlier owner of the partition (and settles its open transaction) before we read.
            await asyncio.gather(*(start(p, self.endpoint, self.cred) for p in producers.values()))
            t_fenced = time.monotonic()
            states = await self.changelog.restore([(origins[tp], tp.partition) for tp in new])
            t_restored = time.monotonic()
            # Committed offsets are read after the fence too, so they match the restored state.
            committed = await asyncio.gather(*(consumer_.committed(tp) for tp in new))
            # Never-committed partitions start at their first offset, asked for all at once:
            # seek_to_beginning waits for an offset reset per call, which the fetcher does
            # not run for a paused partition (seconds each, tens of seconds for a node).
            fresh = [tp for tp, offset in zip(new, committed, strict=True) if offset is None]
            beginnings = await consumer_.beginning_offsets(fresh) if fresh else {}
            t_positioned = time.monotonic()
        except asyncio.CancelledError:
            await asyncio.gather(*(stop_quietly(p) for p in producers.values()))
            raise
        except Exception as exc:
            log.error("policy.takeover_failed", count=len(new), error=type(exc).__name__)
            await asyncio.gather(*(stop_quietly(p) for p in producers.values()))
            self.request_rejoin()
            return
        taken = 0
        async with self.lock:
            for tp, offset in zip(new, committed, strict=True):
                if self._taking.get(tp) != generation or tp not in consumer_.assignment():
                    await stop_quietly(producers[tp])  # revoked while we were taking it
                    continue
                del self._taking[tp]
                processor = self.processor(origins[tp], tp, states[(origins[tp], tp.partition)])
                self.owned[tp] = Owned(tp, origins[tp], producers[tp], processor, offset)
                consumer_.seek(tp, beginnings[tp] if offset is None else offset)
                consumer_.resume(tp)
                taken += 1
            metrics.OWNED_PARTITIONS.set(len(self.owned))
        log.info(
            "policy.partitions_assigned",
            count=taken,
            owned=len(self.owned),
            seconds=round(time.monotonic() - t0, 2),
            fence_s=round(t_fenced - t0, 2),
            restore_s=round(t_restored - t_fenced, 2),
            offsets_s=round(t_positioned - t_restored, 2),
        )

    async def revoke(self, partitions: Iterable[TopicPartition]) -> None:
        """Give partitions up at a batch boundary (the lock waits for the current batch),
        each log checkpointed first: its next owner may get no input for hours."""
        revoked = list(partitions)
        for tp in revoked:
            self._taking.pop(tp, None)  # a take-over in flight will let it go
        async with self.lock:
            mine = [self.owned[tp] for tp in revoked if tp in self.owned]
            with contextlib.suppress(KafkaError):
                await self.checkpoint(mine)
            still = [owned for owned in mine if owned.tp in self.owned]  # not released on failure
            await asyncio.gather(*(self.release(owned) for owned in still))
            if mine:
                log.info("policy.partitions_revoked", count=len(mine), owned=len(self.owned))
            metrics.OWNED_PARTITIONS.set(len(self.owned))

    async def release(self, owned: Owned) -> None:
        """Stop owning a partition (its producer stopped; the caller holds the lock)."""
        self.owned.pop(owned.tp, None)
        await stop_quietly(owned.producer)
        log.debug("policy.partition_released", topic=owned.tp.topic, partition=owned.tp.partition)

    def request_rejoin(self) -> None:
        """Ask the group for a new assignment (after a fence or a failed take-over).

        aiokafka has no public call for it; without one, a partition we gave up could stay
        unowned until the next rebalance.
        """
        coordinator = getattr(self.consumer, "_coordinator", None)
        if coordinator is not None:
            coordinator.request_rejoin()

    async def settle(self, timeout_s: float) -> None:
        """Let the take-overs in flight finish (at most ``timeout_s``; the late ones are
        cancelled): a partition restored from a killed owner may hold records without a
        checkpoint, which only its new owner can sign."""
        pending = list(self._tasks)
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


def partition_producer(
    endpoint: KafkaEndpoint,
    credential: Credential,
    naming: Naming,
    origin: str,
    partition: int,
    *,
    client_id: str,
) -> AIOKafkaProducer:
    """The transactional producer of input partition ``partition`` of ``origin``'s ingress: its
    id is the partition's, so starting it fences every earlier owner."""
    return producer(
        endpoint,
        credential,
        transactional_id=naming.node_transactional_id_prefix(origin) + str(partition),
        client_id=client_id,
        max_batch_size=1024 * 1024,
        linger_ms=2,
    )


async def stop_quietly(prod: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        await prod.stop()


class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """The group's rebalance callbacks, handed to the take-over."""

    def __init__(self, takeover: TakeOver) -> None:
        self.takeover = takeover

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.takeover.revoke(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.takeover.assign(assigned)
