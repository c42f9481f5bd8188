"""The seam between today's policy service and early warning (docs/early-warning.md).

Aggregation needs the plaintext of accepted notices, which only the policy service sees today
(tomorrow: each origin's node). So the service carries it, behind four call sites a node can take
over unchanged:

* ``PartitionProcessor._one`` feeds each accepted notice to its partition's
  :class:`AggregateFeed` (``feed``), after the dedupe has recorded it;
* ``PartitionProcessor.process`` asks it, at the end of each batch, for the closed windows
  (``end``): signed aggregates for the aggregates topic and its state record for the partition's
  changelog, produced in the batch's transaction (``BatchOutput.aggregates`` / ``.state``);
  ``begin``/``rollback`` follow the batch's transaction;
* ``PolicyService._checkpoint_all`` also runs a partition whose windows are due without input
  (``PartitionProcessor.windows_due``), so that quiet partitions publish their empty windows;
* ``PolicyService._restore`` hands the partition's state record (key ``aggregates``) back
  (:meth:`Aggregation.restored`), and ``PolicyService._processor`` builds the feed with it
  (:meth:`Aggregation.feed_for`).

Each ingress partition is one **shard** of its origin's counts (an Aggregate says ``shard`` of
``shards``), suppressed on its own: a node with one counter per origin loses less to suppression.
The raw counts stay in the service's memory and in ``<prefix>.state.<ORIGIN>`` (which only the
policy service reads); what leaves is :func:`puente.warnings.aggregate.publish` output, signed
with a key of usage ``early-warning`` (holder ``service:policy`` today, ``member:CC`` tomorrow).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from puente.codec.registry import Registry
from puente.config import Settings
from puente.evidence.keys import SigningKey
from puente.logs import get_logger
from puente.warnings.aggregate import Aggregator, publish
from puente.warnings.signing import AGGREGATE_CONTEXT, Headers, sign
from puente.warnings.triggers import TriggerSet

log = get_logger("policy.aggregates")

STATE_KEY = b"aggregates"
"""The key of a partition's aggregation state in its changelog (``<prefix>.state.<ORIGIN>``)."""

AggregateRecord = tuple[bytes, bytes, Headers]  # (key, value, signature headers)


class AggregateFeed:
    """One ingress partition's aggregator, as the processor drives it. Never raises: a notice
    that cannot be counted is logged and skipped, a window that cannot be published safely is
    logged and withheld (counts lost rather than a small cell leaked)."""

    def __init__(
        self,
        aggregator: Aggregator,
        *,
        triggers: TriggerSet,
        key: SigningKey,
        registry: Registry,
        shard: int,
        shards: int,
    ) -> None:
        self.aggregator = aggregator
        self.triggers = triggers
        self.key = key
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

    def end(self, now_ms: int) -> tuple[list[tuple[bytes, bytes | None]], list[AggregateRecord]]:
        """The closed windows' signed aggregates, and the state record if it changed."""
        out: list[AggregateRecord] = []
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
                for a in publish(
                    closed, origin=origin, k=self.triggers.k, shard=self.shard, shards=self.shards
                ):
                    body = a.encode(self.registry)
                    sig = sign(self.key, AGGREGATE_CONTEXT, body, signed_at=now_ms)
                    out.append((origin.encode(), body, sig.headers()))
            except Exception as exc:  # withheld, never leaked
                self.failed += 1
                log.error(
                    "aggregates.window_withheld",
                    origin=origin,
                    window=closed.window_start,
                    error=type(exc).__name__,
                    reason=getattr(exc, "reason", None),
                )
        state: list[tuple[bytes, bytes | None]] = []
        if self.aggregator.dirty:
            state.append((STATE_KEY, self.aggregator.state()))
        return state, out


@dataclass
class Aggregation:
    """What the policy service counts for early warning, and the states restored for it."""

    triggers: TriggerSet
    key: SigningKey
    registry: Registry
    _restored: dict[tuple[str, int], bytes] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, registry: Registry) -> Aggregation | None:
        """From the policy directory's triggers and the aggregate key; None (aggregation off,
        logged) when there are no triggers, when they do not load, or when there is no key:
        early warning never keeps the exchange from starting."""
        from puente.errors import PuenteError
        from puente.evidence.keys import read_private_key
        from puente.evidence.keystore import KeyStore
        from puente.evidence.trust import Usage, service_holder
        from puente.service.setup import keys_dir
        from puente.warnings.loader import load_triggers

        try:
            triggers = load_triggers(settings.policies_dir, settings.schemas_dir)
            path = settings.warnings.aggregate_key_file
            if path is not None:
                key = read_private_key(path)
            elif settings.policy.signing_key_file is None:  # the embedded default keeps its keys
                store = KeyStore(keys_dir(settings))
                now = int(time.time() * 1000)
                key = store.current(service_holder(), usage=Usage.EARLY_WARNING, at=now)
            else:
                log.warning("aggregates.off", reason="set PUENTE_WARNINGS__AGGREGATE_KEY_FILE")
                return None
        except PuenteError as exc:
            log.error("aggregates.off", reason=exc.reason, error=exc.message)
            return None
        if not triggers.triggers:
            log.info("aggregates.off", reason="no triggers")
            return None
        log.info("aggregates.on", triggers=len(triggers.triggers), version=triggers.version)
        return cls(triggers, key, registry)

    def restored(self, origin: str, partition: int, key: bytes, value: bytes | None) -> bool:
        """Take a changelog record read at a take-over if it is the aggregation state."""
        if key != STATE_KEY:
            return False
        if value is None:
            self._restored.pop((origin, partition), None)
        else:
            self._restored[(origin, partition)] = value
        return True

    def feed_for(self, origin: str, partition: int, shards: int) -> AggregateFeed:
        """The feed of one ingress partition, from its restored state if any (a state this
        version cannot read is logged and started afresh: early warning never blocks a
        partition)."""
        from puente.warnings.aggregate import AggregateError

        tables = self.triggers.tables_for(origin)
        state = self._restored.pop((origin, partition), None)

        def make(state: bytes | None) -> Aggregator:
            return Aggregator(
                origin,
                tables,
                gazetteer=self.triggers.gazetteer,
                lateness_ms=self.triggers.lateness_ms,
                state=state,
            )

        try:
            aggregator = make(state)
        except AggregateError as exc:
            log.error("aggregates.state_unreadable", origin=origin, reason=exc.reason)
            aggregator = make(None)
        return AggregateFeed(
            aggregator,
            triggers=self.triggers,
            key=self.key,
            registry=self.registry,
            shard=partition,
            shards=max(shards, partition + 1),
        )
