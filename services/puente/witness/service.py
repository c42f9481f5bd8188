"""A state's witness on Kafka: ``puente serve witness --as CC``.

CC's witness (principal ``<prefix>-witness-cc``) reads every other state's checkpoints (the
checkpoints topic) and every witness's cosignatures (the cosignatures topic), verifies each
log signature against the trust list, and decides with its pure core
(:class:`~puente.evidence.witness.WitnessBook`): it cosigns what extends what it cosigned
(C2SP ``cosignature/v1``, with its witness key, ``node:CC`` usage ``witness``), and reports
every fork it can prove — from the logs, or from another witness's cosignature (gossip) — as a
signed equivocation report on the equivocations topic.

It decides each record as it reads it and commits its work in batches (a turn), each one Kafka
transaction: its cosignatures, its state (``witness.CC``, compacted: per log, the checkpoint it
cosigned last), its reports and its read positions (group ``<prefix>.witness.CC``). A turn that
publishes something lingers ``linger_s`` after its first cosignature or report, so that what
arrives meanwhile (other logs' checkpoints, the other witnesses' cosignatures) shares its
transaction; a turn that publishes nothing (gossip without a fork, checkpoints it skips) waits
up to ``idle_commit_s`` for one that does. Of the checkpoints of one log a turn cosigned, it
publishes the newest only (it covers the others): a witness catching up on a backlog checks
every checkpoint but does not flood the cosignatures topic. Most of a witness's cost per
checkpoint was its transactions (several round trips each, and one per gossip poll), not its
signatures.

A restart reads ``witness.CC`` back and resumes at the committed positions (reading again, and
deciding the same, what an uncommitted turn had read), so it never cosigns a smaller size, nor
another root for a size it cosigned. It reads the equivocations topic too (read_committed, to its
end once: reports are rare) and reports no fork again that its own committed reports hold (those
signed by its state's witness key); a report of an aborted transaction is made again. A second
instance fences the first (one transactional id per state). Witnesses hosted in one process
share their parsing and log-signature checks (:mod:`puente.witness.shared`).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from puente.codec.errors import DecodeError
from puente.codec.registry import Registry
from puente.errors import PuenteError
from puente.evidence._time import now_ms
from puente.evidence.cosignature import cosign
from puente.evidence.equivocation import EquivocationReport, reported_by
from puente.evidence.errors import EvidenceError, TrustListError
from puente.evidence.keys import SigningKey
from puente.evidence.log import audit_log_state
from puente.evidence.note import Note
from puente.evidence.trustsource import Fetch, TrustTracker
from puente.evidence.verify import Verifier
from puente.evidence.witness import Cosign, Cosigned, Fork, ForkKey, Skip, WitnessBook
from puente.kafka.connection import KafkaEndpoint
from puente.kafka.reading import caught_up, read_all, read_to_end, resume, topic_partitions
from puente.kafka.session import SessionService
from puente.logs import get_logger
from puente.secrets import Credential
from puente.service.outbox import default_partition, send_batches
from puente.topics import CHECKPOINTS, COSIGNATURES, EQUIVOCATIONS, WITNESS, Naming
from puente.witness import metrics
from puente.witness.shared import Reads

log = get_logger("witness")

KeySource = Callable[[int], SigningKey]
"""The witness's signing key valid at a time (Unix ms): rotated keys are picked up."""


@dataclass(frozen=True)
class WitnessConfig:
    """How a witness polls and batches (``PUENTE_WITNESS__*``)."""

    poll_s: float = 1.0  # an idle loop's period (records end a poll at once)
    max_batch: int = 2000
    trust_refresh_s: float = 10.0
    retry_s: float = 2.0
    linger_s: float = 0.05  # a turn's first cosignature waits this long for company
    idle_commit_s: float = 5.0  # read positions with nothing to publish wait at most this


class WitnessFenced(PuenteError):
    """Another instance of this state's witness started: this one stops."""

    reason = "WITNESS_FENCED"


@dataclass
class _Turn:
    """What one turn cosigned, reported and read, and since when (event-loop time)."""

    # Per log, the newest checkpoint it cosigned (note, log time): a checkpoint covers every
    # record below it, so one that a later one of the same turn extends is not published (a
    # witness catching up — after a pause, or joining late — checks and cosigns each
    # checkpoint, but publishes one cosignature per log and turn, not one per checkpoint).
    cosigned: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    reports: list[tuple[str, bytes, Fork]] = field(default_factory=list)  # log, report, fork
    consumed: dict[TopicPartition, int] = field(default_factory=dict)
    first_output: float | None = None  # its first cosignature or report
    first_read: float | None = None

    def __bool__(self) -> bool:
        return bool(self.cosigned or self.reports or self.consumed)

    def mark(self, now: float) -> None:
        """Note the time of what was just added."""
        if self.first_read is None and self.consumed:
            self.first_read = now
        if self.first_output is None and (self.cosigned or self.reports):
            self.first_output = now

    def due(self, config: WitnessConfig) -> float | None:
        """When it must be committed: ``linger_s`` after its first output, ``idle_commit_s``
        after its first read when it has nothing to publish, at once when it holds
        ``max_batch`` outputs; None when empty."""
        if self.first_output is not None:
            if len(self.cosigned) + len(self.reports) >= config.max_batch:
                return self.first_output
            return self.first_output + config.linger_s
        if self.first_read is not None:
            return self.first_read + config.idle_commit_s
        return None


class Witness(SessionService):
    """State ``state``'s witness. Run one per state (a second one fences the first)."""

    fenced = WitnessFenced
    # Twenty witnesses in one process mostly wait: the broker holds each idle fetch 2 s
    # instead of 0.5 s (it answers at once when a checkpoint or cosignature arrives).
    fetch_max_wait_ms = 2000
    config: WitnessConfig

    def __init__(
        self,
        *,
        state: str,
        endpoint: KafkaEndpoint,
        credential: Credential,
        naming: Naming,
        registry: Registry,
        key: KeySource,
        trust: TrustTracker,
        trust_sources: Sequence[Fetch] = (),
        config: WitnessConfig | None = None,
        instance: str = "witness",
        clock: Callable[[], int] = now_ms,
        checkpoints_topic: str | None = None,
        reads: Reads | None = None,
    ) -> None:
        """``checkpoints_topic``: where it reads the logs' checkpoints (the checkpoints topic;
        tests give another to show this witness a view other witnesses do not see). ``reads``:
        shared with the other witnesses of this process (default: its own)."""
        self.state = state
        self.endpoint = endpoint
        self.cred = credential
        self.naming = naming
        self.registry = registry
        self.key = key
        self.trust = trust
        self.trust_sources = tuple(trust_sources)
        self.config = config or WitnessConfig()
        self.instance = instance
        self.client_id = f"{instance}-{state}"
        self.clock = clock
        self.checkpoints_topic = checkpoints_topic or naming.topic(CHECKPOINTS)
        self.group = naming.witness_group(state)
        self.book = WitnessBook(state)
        self.reads = reads or Reads()
        self._key_name = ""  # its key's name, as of the current poll
        self.ready = asyncio.Event()  # restored and caught up with its inputs once
        self.reported: set[ForkKey] = set()  # the forks it reported (committed or in a turn)
        # The equivocations topic's records as its restore read them, until a trust list
        # checks which are its own reports (the first poll with a verifier).
        self._published: list[bytes] | None = None
        self._partitions: dict[str, list[int]] = {}
        self.commits = 0  # transactions committed
        self.gossiped = 0  # other witnesses' cosignatures read

    def _failed(self, exc: Exception) -> None:
        log.error(
            "witness.session_failed",
            witness=self.state,
            error=type(exc).__name__,
            reason=getattr(exc, "reason", None),
        )

    async def _restore(self, reader: AIOKafkaConsumer) -> None:
        """The book as the last committed transaction left it (``witness.<state>``), and the
        reports committed so far (the equivocations topic, read_committed: a report of an
        aborted transaction is made again)."""
        own = self.naming.topic(WITNESS, self.state)
        newest = await read_to_end(reader, await topic_partitions(reader, [own]))
        self.book = WitnessBook(self.state)
        self.reported.clear()
        reports = self.naming.topic(EQUIVOCATIONS)
        self._published = await read_all(reader, await topic_partitions(reader, [reports]))
        self.book.restore([Cosigned(v) for _, v, _ in newest.values() if v is not None])
        metrics.LOGS.labels(self.state).set(len(self.book.cosigned))
        log.info("witness.restored", witness=self.state, logs=len(self.book.cosigned))

    async def _loop(self, stop: asyncio.Event, prod: AIOKafkaProducer, c: AIOKafkaConsumer) -> None:
        checkpoints = await topic_partitions(c, [self.checkpoints_topic])
        gossip = await topic_partitions(c, [self.naming.topic(COSIGNATURES)])
        every = checkpoints + gossip
        await resume(c, every)
        from_logs = set(checkpoints)
        log.info("witness.started", witness=self.state, group=self.group)
        clock = asyncio.get_running_loop().time
        turn = _Turn()
        while not stop.is_set():
            wait = self.config.poll_s
            due = turn.due(self.config)
            if due is not None:
                wait = min(wait, max(0.0, due - clock()))
            fetched = await c.getmany(
                timeout_ms=int(wait * 1000), max_records=self.config.max_batch
            )
            try:
                verifier = self.trust.verifier()
            except TrustListError as exc:
                log.warning("witness.waiting_for_trust_list", witness=self.state, reason=exc.reason)
                for tp, messages in fetched.items():
                    if messages:
                        c.seek(tp, messages[0].offset)
                await asyncio.sleep(self.config.poll_s)
                continue
            if self._published is not None:
                self._restore_reported(self._published, verifier)
                self._published = None
            if fetched:  # (its key is looked up only when there is something to decide)
                self._key_name = self.key_name
            for tp, messages in fetched.items():
                for m in messages:
                    turn.consumed[tp] = m.offset + 1
                    if tp in from_logs:
                        self._checkpoint(m, verifier, turn)
                    else:
                        self._gossip(m, verifier, turn)
            turn.mark(clock())
            due = turn.due(self.config)
            if due is not None and clock() >= due:
                await self._commit(prod, turn)
                turn = _Turn()
            if not self.ready.is_set() and await caught_up(c, every):
                self.ready.set()
        if turn:  # stopping: what was decided is published (else redone at the next start)
            await self._commit(prod, turn)

    def _restore_reported(self, published: list[bytes], verifier: Verifier) -> None:
        """The forks its committed reports hold (among ``published``) are not reported again."""
        mine = reported_by(self.state, published, verifier)
        self.reported |= mine
        log.info("witness.reports_restored", witness=self.state, reports=len(mine))

    # --- deciding ------------------------------------------------------------------------------

    def _checkpoint(self, m: ConsumerRecord[bytes, bytes], verifier: Verifier, turn: _Turn) -> None:
        """A log's checkpoint: cosign it, skip it, or report the fork it shows."""
        try:
            record, cp = self.reads.checkpoint(self.registry, m.value or b"")
            state = audit_log_state(cp.log_origin)
            if state is None or state == self.state:
                return  # a batch root, or its own state's log: not for its witness
            verified = self.reads.verified(verifier, record.note)
        except (EvidenceError, DecodeError, ValueError, KeyError, TypeError) as exc:
            self._refused(exc)
            return
        decision = self.book.observe(
            record.note, previous_size=record.previous_size, proof=record.consistency_proof
        )
        if isinstance(decision, Cosign):
            now = self.clock()
            note = cosign(Note.parse(decision.note), self.key(now), time_s=now // 1000)
            cosigned = note.to_bytes()
            self.book.cosigned_now(cosigned)
            turn.cosigned[cp.log_origin] = (cosigned, verified.time_ms)
        elif isinstance(decision, Skip):
            metrics.SKIPPED.labels(self.state, decision.value).inc()
        else:
            self._report(decision, turn)

    def _gossip(self, m: ConsumerRecord[bytes, bytes], verifier: Verifier, turn: _Turn) -> None:
        """Another witness's cosignature: a fork if it shows another root at a size."""
        self.gossiped += 1
        try:
            gossip = self.reads.gossip(m.value or b"")
            if gossip.cosigners <= {self._key_name}:
                return  # its own
            self.reads.verified(verifier, gossip.log_signed)
        except (EvidenceError, ValueError) as exc:
            self._refused(exc)
            return
        fork = self.book.seen(gossip.checkpoint, gossip.log_signed)
        if fork is not None:
            self._report(fork, turn)

    @property
    def key_name(self) -> str:
        """The name of this witness's key (its cosignature lines)."""
        return self.key(self.clock()).name

    def _report(self, fork: Fork, turn: _Turn) -> None:
        if fork.key in self.reported:
            return
        self.reported.add(fork.key)
        now = self.clock()
        report = EquivocationReport(fork, self.state, now).sign(self.key(now))
        turn.reports.append((fork.log_id, report, fork))

    def _refused(self, exc: Exception) -> None:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        metrics.REFUSED.labels(self.state, reason).inc()
        log.warning("witness.refused", witness=self.state, reason=reason)

    # --- committing ----------------------------------------------------------------------------

    async def _commit(self, prod: AIOKafkaProducer, turn: _Turn) -> None:
        """The turn's cosignatures, state, reports and read positions, in one transaction."""
        batches: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = defaultdict(list)

        async def put(topic: str, key: bytes, value: bytes) -> None:
            parts = self._partitions.get(topic)
            if parts is None:
                parts = self._partitions[topic] = sorted(await prod.partitions_for(topic))
            batches[(topic, default_partition(key, parts))].append((key, value))

        own = self.naming.topic(WITNESS, self.state)
        for log_id, (note, _) in turn.cosigned.items():
            await put(self.naming.topic(COSIGNATURES), log_id.encode(), note)
            await put(own, log_id.encode(), note)
        for log_id, report, _ in turn.reports:
            await put(self.naming.topic(EQUIVOCATIONS), log_id.encode(), report)
        try:
            await prod.begin_transaction()
            await send_batches(prod, batches)
            if turn.consumed:
                offsets = {tp: OffsetAndMetadata(o, "") for tp, o in turn.consumed.items()}
                await prod.send_offsets_to_transaction(offsets, self.group)
            await prod.commit_transaction()
        except ProducerFenced:
            log.error("witness.fenced", witness=self.state, instance=self.instance)
            raise WitnessFenced(f"another instance of {self.state}'s witness took over") from None
        self.commits += 1
        committed = self.clock()
        for log_id, (_, signed_at) in turn.cosigned.items():
            metrics.COSIGNED.labels(self.state, audit_log_state(log_id) or "?").inc()
            metrics.COSIGN_DELAY.labels(self.state).observe(
                max(0.0, (committed - signed_at) / 1000)
            )
        for log_id, _, fork in turn.reports:
            metrics.EQUIVOCATIONS.labels(
                self.state, audit_log_state(log_id) or "?", fork.kind.value
            ).inc()
            log.error(
                "witness.equivocation",
                witness=self.state,
                log_id=log_id,
                kind=fork.kind.value,
            )
        metrics.LOGS.labels(self.state).set(len(self.book.cosigned))
