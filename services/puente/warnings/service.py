"""``puente serve warnings``: the evaluator on Kafka (the thin edge of :mod:`~.evaluator`).

It reads the aggregates topic (one partition) from its first record, in order, verifies each
aggregate's signature against the trust list (followed from the trust topic while it runs),
refuses what does not verify or breaks the rules with a reason code (logged, counted in
:attr:`WarningsService.refused`, never used), feeds the rest to the evaluator and publishes each
warning it derives to the warnings topic, signed in the record's headers.

Restart-safe without state of its own: the fold is replayed from the first aggregate (they are
few: one per origin, table and window), and a warning already on the warnings topic (same id) is
not published again. Two evaluators running at once publish the same bytes twice under one id;
readers keep the first of an id (``puente warnings list`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from puente.codec.registry import Registry
from puente.evidence.errors import EvidenceError, TrustListError
from puente.evidence.keys import SigningKey
from puente.evidence.trustsource import Fetch, TrustTracker, follow
from puente.kafka.clients import consumer, producer, start
from puente.kafka.connection import KafkaEndpoint
from puente.logs import get_logger
from puente.secrets import Credential
from puente.topics import AGGREGATES, WARNINGS, Naming
from puente.warnings import metrics
from puente.warnings.aggregate import AggregateRefused
from puente.warnings.evaluator import EarlyWarning, Evaluator
from puente.warnings.listing import WarningRecord
from puente.warnings.signing import WARNING_CONTEXT, open_aggregate, sign
from puente.warnings.triggers import TriggerSet

log = get_logger("warnings.service")


class WarningsService:
    """One evaluator. Any member may run one; their outputs are the same bytes."""

    def __init__(
        self,
        *,
        endpoint: KafkaEndpoint,
        credential: Credential,
        naming: Naming,
        registry: Registry,
        triggers: TriggerSet,
        key: SigningKey,
        trust: TrustTracker,
        trust_sources: Sequence[Fetch],
        trust_refresh_s: float = 30.0,
        instance: str = "warnings",
    ) -> None:
        self.endpoint = endpoint
        self.cred = credential
        self.naming = naming
        self.registry = registry
        self.triggers = triggers
        self.key = key
        self.trust = trust
        self.trust_sources = list(trust_sources)
        self.trust_refresh_s = trust_refresh_s
        self.instance = instance
        self.evaluator = Evaluator(triggers)
        self.refused: Counter[str] = Counter()  # aggregates refused, by reason code
        self.published: list[EarlyWarning] = []  # warnings this instance published
        self.read = 0  # aggregates read
        self.caught_up = asyncio.Event()  # set once every aggregate present at start was read
        self._known: set[str] = set()  # warning ids on the warnings topic

    def handle(
        self, body: bytes, headers: Sequence[tuple[str, bytes]] | None
    ) -> list[EarlyWarning]:
        """One aggregate record: verified, checked and evaluated; the warnings it completes.
        A refused aggregate is logged with its reason and counted, never used."""
        verifier = self.trust.verifier()  # TrustListError: no usable list, do not read on
        try:
            signed = open_aggregate(
                verifier.trust_list, self.registry, body, headers, min_k=self.triggers.k
            )
            found = self.evaluator.add(signed)
        except (EvidenceError, AggregateRefused) as exc:
            self._refuse(exc.reason)
            log.warning("warnings.aggregate_refused", reason=exc.reason, error=exc.message)
            return []
        except Exception as exc:  # a bug must not stop every warning: skip, alert, go on
            self._refuse("EVALUATOR_ERROR")
            log.error("warnings.evaluator_error", error=type(exc).__name__)
            return []
        metrics.AGGREGATES.labels("used").inc()
        return found

    def _refuse(self, reason: str) -> None:
        self.refused[reason] += 1
        metrics.AGGREGATES.labels(reason).inc()

    async def run(self, stop: asyncio.Event) -> None:
        """Evaluate until ``stop`` is set."""
        await self.trust.refresh(self.trust_sources)
        trust_task = asyncio.create_task(
            follow(self.trust, self.trust_sources, interval_s=self.trust_refresh_s, stop=stop)
        )
        prod = producer(self.endpoint, self.cred, client_id=f"{self.instance}-out")
        reader = consumer(self.endpoint, self.cred, client_id=self.instance)
        try:
            await start(prod, self.endpoint, self.cred)
            await start(reader, self.endpoint, self.cred)
            self._known = await self._published_ids(reader)
            tp = TopicPartition(self.naming.topic(AGGREGATES), 0)
            reader.assign([tp])
            await reader.seek_to_beginning(tp)
            end = (await reader.end_offsets([tp]))[tp]
            log.info("warnings.started", instance=self.instance, known=len(self._known))
            metrics.CAUGHT_UP.set(0)
            while not stop.is_set():
                try:
                    self.trust.verifier()
                except TrustListError as exc:
                    log.warning("warnings.waiting_for_trust_list", reason=exc.reason)
                    await _wait(stop, 1.0)
                    continue
                batch = await reader.getmany(tp, timeout_ms=300, max_records=500)
                for record in batch.get(tp, []):
                    if record.value is None:
                        self.read += 1
                        continue
                    try:
                        found = self.handle(record.value, record.headers)
                    except TrustListError:  # the list expired meanwhile: read it again later
                        reader.seek(tp, record.offset)
                        break
                    self.read += 1
                    for w in found:
                        await self._publish(prod, w)
                if not self.caught_up.is_set() and await reader.position(tp) >= end:
                    self.caught_up.set()
                    metrics.CAUGHT_UP.set(1)
                    log.info(
                        "warnings.caught_up",
                        aggregates=self.read,
                        refused=sum(self.refused.values()),
                    )
        finally:
            trust_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await trust_task
            await reader.stop()
            await prod.stop()
            log.info("warnings.stopped", instance=self.instance, published=len(self.published))

    async def _published_ids(self, reader: AIOKafkaConsumer) -> set[str]:
        """The ids of the warnings already on the warnings topic."""
        tp = TopicPartition(self.naming.topic(WARNINGS), 0)
        ids: set[str] = set()
        for record in await _read_to_end(reader, tp, 10 * self.endpoint.request_timeout_s):
            if record.value is not None:
                with contextlib.suppress(Exception):  # a stray record is not ours to judge
                    ids.add(EarlyWarning.decode(self.registry, record.value).warning_id)
        return ids

    async def _publish(self, prod: AIOKafkaProducer, w: EarlyWarning) -> None:
        if w.warning_id in self._known:
            return
        body = w.encode(self.registry)
        sig = sign(self.key, WARNING_CONTEXT, body, signed_at=int(time.time() * 1000))
        await prod.send_and_wait(
            self.naming.topic(WARNINGS),
            body,
            key=w.episode_id.encode(),
            headers=sig.headers(),
            partition=0,
        )
        self._known.add(w.warning_id)
        self.published.append(w)
        metrics.PUBLISHED.labels(w.status).inc()
        log.info(
            "warnings.published",
            warning_id=w.warning_id,
            trigger=w.trigger_id,
            status=w.status,
            level=w.level.value,
            window=w.window_start,
        )


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def read_warnings_topic(
    endpoint: KafkaEndpoint, credential: Credential, naming: Naming
) -> list[WarningRecord]:
    """Every committed record of the warnings topic (one partition), in order, read as
    ``credential`` (every member, the evaluator and the gateway may)."""
    c = consumer(endpoint, credential, client_id=f"{credential.username}-warnings")
    await start(c, endpoint, credential)
    try:
        tp = TopicPartition(naming.topic(WARNINGS), 0)
        records = await _read_to_end(c, tp, 10 * endpoint.request_timeout_s)
    finally:
        await c.stop()
    return [WarningRecord(r.offset, r.value, tuple(r.headers or ())) for r in records]


async def _read_to_end(
    reader: AIOKafkaConsumer, tp: TopicPartition, timeout_s: float
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record of ``tp`` from its start to its end now; TimeoutError when that
    takes longer than ``timeout_s``."""
    reader.assign([tp])
    await reader.seek_to_beginning(tp)
    end = (await reader.end_offsets([tp]))[tp]
    out: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout_s
    while await reader.position(tp) < end:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{tp.topic} could not be read to its end")
        out += (await reader.getmany(tp, timeout_ms=300)).get(tp, [])
    return out
