"""The seam between a state's node and early warning (docs/early-warning.md §8).

Aggregation needs the plaintext of accepted notices, which only the origin's own node sees. So
each node counts its own notices, behind a few call sites:

* ``PartitionProcessor._one`` feeds each accepted notice to its partition's
  :class:`AggregateFeed` (``feed``), after the dedupe has recorded it;
* ``PartitionProcessor.process`` asks it, at the end of each batch, for the closed windows
  (``end``): aggregates signed with the node's key for the aggregates topic, and the counts'
  state sealed to the node itself for the partition's changelog, both produced in the batch's
  transaction (``BatchOutput.aggregates`` / ``.state``); ``begin``/``rollback`` follow the
  batch's transaction;
* ``Node._checkpoint_all`` also runs a partition whose windows are due without input
  (``PartitionProcessor.windows_due``), so that quiet partitions publish their empty windows;
* ``Changelog`` reads the partition's state record back (key :data:`STATE_KEY`) and
  ``Node._processor`` builds the feed from it (:meth:`Aggregation.feed`); ``Outbox`` writes the
  aggregates to ``<prefix>.aggregates`` (partition 0, key the origin, the signature in headers).

Each ingress partition of the node is one **shard** of its origin's counts (an Aggregate says
``shard`` of ``shards``), suppressed on its own: partitions are the node's unit of exactly-once
processing and may be owned by different instances. The raw counts (small cells included) stay
in the node: in its memory, and in ``<prefix>.state.<ORIGIN>`` sealed to the node's own
encryption key (:class:`~puente.service.nodekeys.NodeVault`), so that neither the cluster's
operators nor any other principal can read them. What leaves is
:func:`puente.warnings.aggregate.publish` output, signed with the node's key of usage
``early-warning`` (holder ``node:CC``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from puente.codec.registry import Registry
from puente.evidence.keys import SigningKey
from puente.logs import get_logger
from puente.service import metrics
from puente.warnings.aggregate import Aggregator, ClosedWindow, publish
from puente.warnings.combine import Partial
from puente.warnings.signing import AGGREGATE_CONTEXT, Headers, sign
from puente.warnings.triggers import TriggerSet

log = get_logger("node.aggregates")

STATE_KEY = b"aggregates"
"""The key of a partition's aggregation state in its changelog (``<prefix>.state.<ORIGIN>``)."""

AggregateRecord = tuple[bytes, bytes, Headers]  # (key, value, signature headers)


@dataclass
class FeedOutput:
    """What a shard's feed adds to its batch's transaction."""

    state: list[tuple[bytes, bytes | None]] = field(default_factory=list)  # its changelog
    aggregates: list[AggregateRecord] = field(default_factory=list)  # a node of one shard
    partials: list[tuple[bytes, bytes]] = field(default_factory=list)  # sealed, to combine


class AggregateKeys(Protocol):
    """Where a node's aggregate-signing key comes from (any ``NodeKeys``)."""

    def early_warning_key(self, at: int) -> SigningKey:
        """The key of usage ``early-warning`` valid at ``at`` (Unix ms)."""
        ...


class StateVault(Protocol):
    """Seals what a node keeps for itself (``NodeVault``)."""

    def seal(self, state: bytes, *, name: str, at: int) -> bytes:
        """``state`` sealed to the node; ``name`` is bound into the seal."""
        ...

    def open(self, sealed: bytes, *, name: str) -> bytes:
        """What :meth:`seal` sealed under ``name``; raises if it does not open."""
        ...


def state_name(shard: int) -> str:
    """The name a shard's state is sealed under (a state cannot be restored as another's)."""
    return f"aggregates/{shard}"


class AggregateFeed:
    """One ingress partition's aggregator, as the processor drives it. Never raises: a notice
    that cannot be counted is logged and skipped, a window that cannot be published safely is
    logged and withheld (counts lost rather than a small cell leaked)."""

    def __init__(
        self,
        aggregator: Aggregator,
        *,
        triggers: TriggerSet,
        keys: AggregateKeys,
        vault: StateVault,
        registry: Registry,
        shard: int,
        shards: int,
    ) -> None:
        self.aggregator = aggregator
        self.triggers = triggers
        self.keys = keys
        self.vault = vault
        self.registry = registry
        self.shard = shard
        self.shards = shards
        self.failed = 0
        self._late_logged = 0

    def begin(self) -> None:
        self.aggregator.begin()

    def rollback(self) -> None:
        self.aggregator.rollback()

    def feed(self, notice: Mapping[str, Any], notice_type: str, now_ms: int) -> None:
        try:
            self.aggregator.feed(notice, notice_type, now_ms)
        except Exception as exc:  # never let counting refuse or block a notice
            self.failed += 1
            log.error(
                "aggregates.feed_failed", origin=self.aggregator.origin, error=type(exc).__name__
            )

    def due(self, now_ms: int) -> bool:
        return self.aggregator.due(now_ms)

    def end(self, now_ms: int) -> FeedOutput:
        """The closed windows — signed aggregates, or sealed partials when the node has more
        than one shard — and the sealed state record if it changed."""
        out = FeedOutput()
        origin = self.aggregator.origin
        if self.aggregator.late > self._late_logged:  # counted nowhere: say so
            log.warning(
                "aggregates.late_notices",
                origin=origin,
                shard=self.shard,
                late=self.aggregator.late - self._late_logged,
            )
            self._late_logged = self.aggregator.late
        for closed in self.aggregator.close(now_ms):
            try:
                if self.shards > 1:  # summed with the other shards first (warnings/combine.py)
                    part = Partial(self.shard, self.shards, closed)
                    sealed = self.vault.seal(part.encode(), name=part.name, at=now_ms)
                    out.partials.append((part.name.encode(), sealed))
                else:
                    out.aggregates += sign_published(
                        closed, origin, self.triggers.k, self.keys, self.registry, now_ms
                    )
            except Exception as exc:  # withheld, never leaked
                self.failed += 1
                metrics.AGGREGATES.labels(origin, "withheld").inc()
                log.error(
                    "aggregates.window_withheld",
                    origin=origin,
                    window=closed.window_start,
                    error=type(exc).__name__,
                    reason=getattr(exc, "reason", None),
                )
        if self.aggregator.dirty:
            try:
                sealed = self.vault.seal(
                    self.aggregator.state(), name=state_name(self.shard), at=now_ms
                )
                out.state.append((STATE_KEY, sealed))
            except Exception as exc:  # never in clear: a take-over then starts these counts afresh
                self.failed += 1
                log.error(
                    "aggregates.state_not_sealed",
                    origin=origin,
                    shard=self.shard,
                    error=type(exc).__name__,
                    reason=getattr(exc, "reason", None),
                )
        return out


def sign_published(
    closed: ClosedWindow,
    origin: str,
    k: int,
    keys: AggregateKeys,
    registry: Registry,
    now_ms: int,
) -> list[AggregateRecord]:
    """A closed window of the whole origin, published (small cells suppressed) and signed with
    the node's early-warning key: the records for the aggregates topic, keyed by origin."""
    key = keys.early_warning_key(now_ms)
    out: list[AggregateRecord] = []
    for a in publish(closed, origin=origin, k=k):
        body = a.encode(registry)
        sig = sign(key, AGGREGATE_CONTEXT, body, signed_at=now_ms)
        out.append((origin.encode(), body, sig.headers()))
    return out


@dataclass(frozen=True)
class Aggregation:
    """What one state's node counts for early warning, and how it signs and seals."""

    origin: str
    triggers: TriggerSet
    keys: AggregateKeys
    vault: StateVault
    registry: Registry

    @classmethod
    def load(
        cls,
        origin: str,
        policies_dir: Path,
        schemas_dir: Path,
        *,
        keys: AggregateKeys,
        vault: StateVault,
        registry: Registry,
    ) -> Aggregation | None:
        """From the policy directory's triggers; None (aggregation off, logged) when they do
        not load, when no trigger reads from ``origin``, or when the node has no key of usage
        ``early-warning``: early warning never keeps a node from starting."""
        from puente.errors import PuenteError
        from puente.warnings.loader import load_triggers

        try:
            triggers = load_triggers(policies_dir, schemas_dir)
            keys.early_warning_key(int(time.time() * 1000))
        except PuenteError as exc:
            log.error("aggregates.off", origin=origin, reason=exc.reason, error=exc.message)
            return None
        if not triggers.tables_for(origin):
            log.info("aggregates.off", origin=origin, reason="no trigger reads from this state")
            return None
        log.info(
            "aggregates.on",
            origin=origin,
            triggers=len(triggers.triggers),
            version=triggers.version,
        )
        return cls(origin, triggers, keys, vault, registry)

    def feed(self, partition: int, shards: int, state: bytes | None) -> AggregateFeed:
        """The feed of ingress partition ``partition`` (of ``shards``), from its sealed state
        record if any (a state that does not open or that this version cannot read is logged
        and started afresh: early warning never blocks a partition)."""
        from puente.errors import PuenteError

        tables = self.triggers.tables_for(self.origin)

        def make(raw: bytes | None) -> Aggregator:
            return Aggregator(
                self.origin,
                tables,
                gazetteer=self.triggers.gazetteer,
                lateness_ms=self.triggers.lateness_ms,
                state=raw,
            )

        try:
            raw = None if state is None else self.vault.open(state, name=state_name(partition))
            aggregator = make(raw)
        except PuenteError as exc:
            log.error(
                "aggregates.state_unreadable",
                origin=self.origin,
                shard=partition,
                reason=exc.reason,
            )
            aggregator = make(None)
        return AggregateFeed(
            aggregator,
            triggers=self.triggers,
            keys=self.keys,
            vault=self.vault,
            registry=self.registry,
            shard=partition,
            shards=max(shards, partition + 1),
        )
