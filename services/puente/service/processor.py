"""The pure heart of the policy service: one input partition's batch in, every output record out.

:class:`PartitionProcessor` owns what a single writer of one ingress partition must remember —
its audit log (:class:`~puente.evidence.log.AuditLog`) and the notice ids it has seen — and turns
a batch of ingress records into :class:`BatchOutput`: deliveries per recipient, audit records,
a checkpoint, rejections for the origin, and the state to persist. No I/O: the worker produces
the output in one Kafka transaction, and calls :meth:`rollback` if that transaction fails.

Every input ends in exactly one outcome, and the audit log says which:

* ``DELIVERED``: reached at least one recipient (a DELIVERED/TRANSFORMED record per recipient
  that got it, a WITHHELD record per recipient that did not);
* ``WITHHELD``: reached nobody (a WITHHELD record for every candidate recipient);
* ``REJECTED``: refused as a whole (one REJECTED record, and a Rejection to the origin).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from puente.codec.registry import Registry
from puente.codec.wire import encode
from puente.errors import PuenteError
from puente.evidence.delivery import (
    STATEMENT_CONTEXT,
    DeliveryBatch,
    DeliveryDecision,
    DeliverySigner,
    DeliveryStatement,
)
from puente.evidence.enckeys import KeyRing
from puente.evidence.errors import SealError
from puente.evidence.keys import SigningKey
from puente.evidence.log import AuditLog, LogState
from puente.evidence.records import AuditDecision, DeliveryDeadlines
from puente.evidence.seal import BatchSealer, open_notice
from puente.logs import get_logger
from puente.policy.engine import RULE_ERROR, Decision, PolicySet
from puente.policy.model import Action
from puente.policy.store import PolicyStore
from puente.service.aggregates import AggregateFeed, AggregateRecord
from puente.service.dedupe import SeenIds
from puente.service.nodekeys import NodeKeys, Sealer
from puente.service.validate import (
    DUPLICATE_NOTICE,
    INTERNAL_ERROR,
    NOTICE_ID_REUSED,
    POLICY_FAILED,
    Limits,
    Refusal,
    ValidNotice,
    validate,
)
from puente.topics import DELIVER, Naming

log = get_logger("policy.processor")

REJECTION = "puente.Rejection"
RECIPIENT_KEY_MISSING = "RECIPIENT_KEY_MISSING"  # no valid encryption key to seal to
# Rejection.severity: something was refused, or the origin is only warned.
REFUSED = "REFUSED"
WARNING = "WARNING"
STATE_LOG_KEY = b"log"
# Consular notifications carry no handling code of their own; a delivery always names one.
DEFAULT_HANDLING = "H2"
# The decisions metric's reason for a share whose payload is not the published bytes.
REENCODED = "REENCODED"
_DELIVERY_NS = uuid.UUID("6f1d3a52-2b7e-4c1e-9a55-0c1d2e3f4a5b")


class SigningMode(StrEnum):
    """Per-delivery Ed25519 signatures, or one signature per batch with inclusion proofs."""

    EACH = "each"
    BATCH = "batch"


@dataclass(frozen=True)
class IngressRecord:
    """One record read from ``<prefix>.ingress.<origin>``."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class BatchOutput:
    """Everything one batch produces, grouped by destination (topic, key, value)."""

    deliveries: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    audit: list[bytes] = field(default_factory=list)
    checkpoints: list[tuple[bytes, bytes]] = field(default_factory=list)
    rejections: list[tuple[bytes, bytes]] = field(default_factory=list)
    state: list[tuple[bytes, bytes | None]] = field(default_factory=list)  # None: a tombstone
    aggregates: list[AggregateRecord] = field(default_factory=list)  # early warning
    partials: list[tuple[bytes, bytes]] = field(default_factory=list)  # sealed, to combine
    outcomes: Counter[str] = field(default_factory=Counter)
    # (AuditDecision, reason code): what the metrics count, in the audit log's words
    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)
    policy_version: str | None = None
    next_offset: int | None = None
    origin: str = ""


@dataclass
class _Pending:
    """A delivery whose envelope waits for the batch to be signed."""

    topic: str
    key: bytes
    statement: DeliveryStatement
    encoded: bytes  # the statement's single-object bytes (encoded once)
    payload: bytes


class PartitionProcessor:
    """The single writer of one ingress partition's outputs and audit log."""

    def __init__(
        self,
        *,
        origin: str,
        partition: int,
        naming: Naming,
        registry: Registry,
        policies: PolicyStore,
        keys: NodeKeys,
        sealer: Sealer | None = None,
        log_state: LogState | None = None,
        seen: SeenIds | None = None,
        mode: SigningMode = SigningMode.BATCH,
        limits: Limits | None = None,
        checkpoint_every: int = 1000,
        checkpoint_interval_ms: int = 10_000,
        aggregates: AggregateFeed | None = None,
    ) -> None:
        from puente.evidence.log import audit_log_id

        self.origin = origin
        self.partition = partition
        self.naming = naming
        self.registry = registry
        self.policies = policies
        self.keys = keys
        self.sealer = sealer  # None: deliveries in clear (benchmarks of sealing's cost)
        self.key: SigningKey | None = None  # chosen at each batch, for that batch's time
        self.mode = mode
        self.limits = limits or Limits()
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval_ms = checkpoint_interval_ms
        log_id = audit_log_id(origin, partition, topic_prefix=naming.prefix)
        self.log = AuditLog.from_state(log_state) if log_state else AuditLog(log_id)
        if self.log.log_id != log_id:
            raise PuenteError(
                f"persisted log state is for {self.log.log_id}, not {log_id}",
                reason="STATE_MISMATCH",
            )
        # Taken as is (a restored set of a million ids is not copied).
        self.seen = seen if seen is not None else SeenIds(self.limits.dedupe_horizon_ms)
        self._signer: DeliverySigner | None = None
        # When the log was last checkpointed (the restored state says; a new log: never).
        self._last_checkpoint_ms = (log_state.checkpoint_time or 0) if log_state else 0
        self._snapshot: tuple[LogState, int] | None = None
        self._evaluated: tuple[ValidNotice, bytes] | None = None  # see _as_evaluated
        self._sealers: dict[str, BatchSealer] = {}  # see _batch_sealer
        # Early warning: counts of this partition's accepted notices (service/aggregates.py).
        self.aggregates = aggregates

    @property
    def log_id(self) -> str:
        return self.log.log_id

    # --- transaction support -----------------------------------------------------------------

    def _take_snapshot(self) -> None:
        # The log's compact state is small; the seen ids keep a journal of the batch instead.
        self._snapshot = (self.log.state(), self._last_checkpoint_ms)
        self.seen.begin()
        if self.aggregates is not None:
            self.aggregates.begin()

    def rollback(self) -> None:
        """Forget the last batch (its transaction was aborted): back to the state before it."""
        if self._snapshot is None:
            return
        state, last_cp = self._snapshot
        self.log = AuditLog.from_state(state)
        self.seen.rollback()
        if self.aggregates is not None:
            self.aggregates.rollback()
        self._last_checkpoint_ms = last_cp
        self._snapshot = None

    @property
    def last_checkpoint_ms(self) -> int:
        """When this log was last checkpointed (Unix ms; 0: never)."""
        return self._last_checkpoint_ms

    def checkpoint_due(self, now_ms: int) -> bool:
        """True when the records since the last checkpoint are many or old enough."""
        new = self.log.size - self.log.checkpoint_size
        return new >= self.checkpoint_every or (
            new > 0 and now_ms - self._last_checkpoint_ms >= self.checkpoint_interval_ms
        )

    def windows_due(self, now_ms: int) -> bool:
        """True when an early-warning window of this partition can be published."""
        return self.aggregates is not None and self.aggregates.due(now_ms)

    # --- processing --------------------------------------------------------------------------

    def process(
        self,
        records: Sequence[IngressRecord],
        now: dt.datetime,
        *,
        force_checkpoint: bool = False,
    ) -> BatchOutput:
        """Process a batch (offset order) and return what to produce, in one transaction."""
        self._take_snapshot()
        out = BatchOutput(origin=self.origin)
        policy = self.policies.current
        out.policy_version = policy.version
        now_ms = int(now.timestamp() * 1000)
        key = self.keys.signing_key(now_ms)  # a rotated key signs from the next batch on
        if key is not self.key or self._signer is None:
            self.key, self._signer = key, DeliverySigner(key, self.registry)
        pending: list[_Pending] = []
        self._sealers = {}  # a fresh data key per batch and recipient
        first_leaf = self.log.size
        for rec in records:
            self._one(rec, now, now_ms, policy, out, pending)
            out.next_offset = rec.offset + 1
        self._seal(pending, out, now_ms, first_leaf, key)
        # The batch's accepted ids (one chunk record) and tombstones for ids past the horizon.
        out.state.extend(self.seen.end(now_ms))
        if self.aggregates is not None:  # closed windows, signed or to combine; the counts
            ended = self.aggregates.end(now_ms)
            out.state.extend(ended.state)
            out.aggregates, out.partials = ended.aggregates, ended.partials
        due = self.checkpoint_due(now_ms) or (
            force_checkpoint and self.log.size > self.log.checkpoint_size
        )
        if due:
            cp = self.log.checkpoint(key, time_ms=now_ms)
            self._last_checkpoint_ms = now_ms
            out.checkpoints.append((self.log.log_id.encode(), cp.encode(self.registry)))
        if records or due:
            out.state.append((STATE_LOG_KEY, self.log.state().encode(self.registry)))
        return out

    def _one(
        self,
        rec: IngressRecord,
        now: dt.datetime,
        now_ms: int,
        policy: PolicySet,
        out: BatchOutput,
        pending: list[_Pending],
    ) -> None:
        original = hashlib.sha256(rec.value or b"").digest()
        try:
            ring = self.keys.ingress_keys()
            if ring is not None:
                # The agency sealed the notice to this node: from here on the processor works
                # on the opened notice, and its digest is the notice's (a new seal of the same
                # notice is a duplicate, not another notice).
                rec = replace(rec, value=_open_ingress(rec, ring, self.origin))
                original = hashlib.sha256(rec.value or b"").digest()
            valid = validate(
                self.registry,
                rec.value,
                key=rec.key,
                origin=self.origin,
                now=now,
                limits=self.limits,
            )
            previous = self.seen.get(valid.notice_id)
            if previous is not None:
                raise _duplicate(valid, previous == original)
            try:
                decisions = policy.decide_all(valid.notice, valid.notice_type, self.policies.keys)
            except PuenteError as exc:
                raise Refusal(
                    POLICY_FAILED,
                    f"the policy set could not decide this notice ({exc.reason}); "
                    "operators were alerted",
                    notice_id=valid.notice_id,
                    notice_type=valid.notice_type,
                    fingerprint=valid.fingerprint,
                ) from exc
            outcome = self._decided(rec, valid, decisions, original, now_ms, policy, out, pending)
            self.seen.add(valid.notice_id, original, valid.created_at_ms, rec.offset)
            if self.aggregates is not None:
                self.aggregates.feed(valid.notice, valid.notice_type, now_ms)
        except Refusal as refusal:
            self._rejected(rec, refusal, original, now_ms, policy.version, out)
            outcome = AuditDecision.REJECTED
        except Exception as exc:  # a bug must not block the partition: refuse, keep going
            log.error(
                "policy.internal_error",
                topic=rec.topic,
                partition=rec.partition,
                offset=rec.offset,
                error=type(exc).__name__,
            )
            internal = Refusal(
                INTERNAL_ERROR,
                f"Puente could not process this record (reference {rec.topic}/{rec.partition}/"
                f"{rec.offset}); operators were alerted; re-send it later",
            )
            self._rejected(rec, internal, original, now_ms, policy.version, out)
            outcome = AuditDecision.REJECTED
        out.outcomes[outcome.value] += 1

    def _decided(
        self,
        rec: IngressRecord,
        valid: ValidNotice,
        decisions: Iterable[Decision],
        original: bytes,
        now_ms: int,
        policy: PolicySet,
        out: BatchOutput,
        pending: list[_Pending],
    ) -> AuditDecision:
        delivered = False
        deadlines = _deadlines(policy, valid, self.origin, now_ms)
        for d in decisions:
            if d.recipient == self.origin:
                continue
            record = {
                "decided_at": now_ms,
                "ingress_topic": rec.topic,
                "ingress_partition": rec.partition,
                "ingress_offset": rec.offset,
                "origin": self.origin,
                "original_sha256": original,
                "notice_id": valid.notice_id,
                "notice_schema": valid.notice_type,
                "schema_fingerprint": valid.fingerprint,
                "recipient": d.recipient,
                "rule_ids": d.rules,
                "legal_bases": d.legal_bases,
                "policy_set_version": policy.version,
                "reason_code": ",".join(d.reasons) or None,
                "floor_digest": policy.digests.floor or None,
                "policy_digest": policy.digests.policy(self.origin) or None,
            }
            if d.shared and self.sealer is not None:
                try:
                    to = self._batch_sealer(d.recipient, now_ms)
                except PuenteError:  # no usable key: the delivery cannot be sealed
                    d = _unsealable(d)
                    record["reason_code"] = ",".join(d.reasons)
                else:
                    delivered = True
                    self._deliver(
                        rec, valid, d, original, now_ms, record, out, pending, to, deadlines
                    )
                    continue
            if d.shared:
                delivered = True
                self._deliver(
                    rec, valid, d, original, now_ms, record, out, pending, None, deadlines
                )
            else:
                _, leaf = self.log.append_new(
                    self.registry, decision=AuditDecision.WITHHELD, **record
                )
                out.audit.append(leaf)
                out.decisions[(AuditDecision.WITHHELD, d.reasons[0] if d.reasons else "")] += 1
                self._report_withheld(rec, valid, d, original, now_ms, out)
        for w in policy.floor_warnings(valid.notice, valid.notice_type):
            # Not a refusal: the notice was decided as usual; the origin should fix its record.
            out.rejections.append(
                self._rejection(
                    rec,
                    scope="NOTICE",
                    notice_id=valid.notice_id,
                    recipient=None,
                    reason=w.code,
                    message=w.message,
                    fields=w.fields,
                    original=original,
                    now_ms=now_ms,
                    policy_version=policy.version,
                    severity=WARNING,
                )
            )
        return AuditDecision.DELIVERED if delivered else AuditDecision.WITHHELD

    def _deliver(
        self,
        rec: IngressRecord,
        valid: ValidNotice,
        d: Decision,
        original: bytes,
        now_ms: int,
        record: dict[str, Any],
        out: BatchOutput,
        pending: list[_Pending],
        to: BatchSealer | None,
        deadlines: DeliveryDeadlines | None,
    ) -> None:
        assert d.payload is not None
        # Every payload is encoded from what the policy evaluated: the notice decoded into the
        # latest registered version of its type. A field that version lacks (written under an
        # older or unknown version) never reaches a recipient, even when the rule shares the
        # notice unchanged. Such a share is DELIVERED only when that encoding is the published
        # bytes exactly (delivered_sha256 == original_sha256 in the audit record); otherwise the
        # recipient does not get the origin's bytes, and the record says TRANSFORMED.
        if d.action == Action.SHARE:
            payload = self._as_evaluated(valid)
            transformed = payload != rec.value
        else:
            payload = encode(self.registry, valid.notice_type, dict(d.payload))
            transformed = True
        delivery_id = str(uuid.uuid5(_DELIVERY_NS, f"{valid.notice_id}/{d.recipient}"))
        action = AuditDecision.TRANSFORMED if transformed else AuditDecision.DELIVERED
        carried, sealed_fields = payload, dict[str, Any]()
        if to is not None:
            # Sealed to the recipient: only it can read the notice; the statement commits to
            # both the notice inside and the envelope carried, so anyone can check the latter.
            sealed = to.seal(payload, notice_id=valid.notice_id, delivery_id=delivery_id)
            carried = sealed.envelope
            sealed_fields = {
                "sealed_sha256": sealed.sealed_sha256,
                "sealed_size": len(sealed.envelope),
                "sealed_key_id": sealed.key_id,
            }
        statement = DeliveryStatement.for_payload(
            payload,
            payload_schema=valid.notice_type,
            delivery_id=delivery_id,
            notice_id=valid.notice_id,
            origin=self.origin,
            recipient=d.recipient,
            original_sha256=original,
            decision=DeliveryDecision(
                action=action,
                rule_ids=d.rules,
                legal_bases=d.legal_bases,
                handling_code=d.handling or DEFAULT_HANDLING,
                handling_conditions=d.handling_conditions,
                purposes=d.purposes,
                retention_days=d.retention_days,
            ),
            policy_set_version=d.policy_version,
            notice_created_at=valid.created_at_ms,
            decided_at=now_ms,
            signed_at=now_ms,
            audit_log_id=self.log.log_id,
            audit_leaf_index=self.log.size,
            **sealed_fields,
        )
        encoded = statement.encode(self.registry)
        digest = hashlib.sha256(STATEMENT_CONTEXT + encoded).digest()
        _, leaf = self.log.append_new(
            self.registry,
            decision=AuditDecision.TRANSFORMED if transformed else AuditDecision.DELIVERED,
            delivered_sha256=statement.payload_sha256,
            delivery_id=delivery_id,
            delivery_digest=digest,
            deadlines=deadlines,
            **record,
        )
        out.audit.append(leaf)
        decided = AuditDecision.TRANSFORMED if transformed else AuditDecision.DELIVERED
        out.decisions[(decided, REENCODED if transformed and d.action == Action.SHARE else "")] += 1
        topic = self.naming.topic(DELIVER, d.recipient)
        pending.append(_Pending(topic, valid.notice_id.encode(), statement, encoded, carried))

    def _batch_sealer(self, recipient: str, now_ms: int) -> BatchSealer:
        """This batch's sealer to ``recipient``: its key looked up and its data key sealed (the
        X25519 part) once per batch and recipient, not per delivery."""
        sealer = self._sealers.get(recipient)
        if sealer is None:
            assert self.sealer is not None
            sealer = BatchSealer(self.sealer.recipient_key(recipient, now_ms), recipient)
            self._sealers[recipient] = sealer
        return sealer

    def _as_evaluated(self, valid: ValidNotice) -> bytes:
        """The notice as the policy evaluated it, encoded (once per notice, for every share)."""
        cached = self._evaluated
        if cached is None or cached[0] is not valid:
            cached = (valid, encode(self.registry, valid.notice_type, valid.notice))
            self._evaluated = cached
        return cached[1]

    def _seal(
        self, pending: list[_Pending], out: BatchOutput, now_ms: int, first: int, key: SigningKey
    ) -> None:
        if not pending:
            return
        if self.mode is SigningMode.EACH:
            for p in pending:
                assert self._signer is not None  # set by process() for this batch's key
                delivery = self._signer.sign(p.statement, p.payload, encoded=p.encoded)
                out.deliveries.append((p.topic, p.key, delivery.encode(self.registry)))
            return
        batch = DeliveryBatch(self.registry, f"{self.log.log_id}/{first}")
        for p in pending:
            batch.add(p.statement, p.payload, encoded=p.encoded)
        for p, delivery in zip(pending, batch.seal(key, time_ms=now_ms), strict=True):
            out.deliveries.append((p.topic, p.key, delivery.encode(self.registry)))

    def _rejected(
        self,
        rec: IngressRecord,
        refusal: Refusal,
        original: bytes,
        now_ms: int,
        policy_version: str,
        out: BatchOutput,
    ) -> None:
        _, leaf = self.log.append_new(
            self.registry,
            decided_at=now_ms,
            ingress_topic=rec.topic,
            ingress_partition=rec.partition,
            ingress_offset=rec.offset,
            origin=self.origin,
            decision=AuditDecision.REJECTED,
            original_sha256=original,
            notice_id=refusal.notice_id,
            notice_schema=refusal.notice_type,
            schema_fingerprint=refusal.fingerprint,
            reason_code=refusal.reason,
            policy_set_version=policy_version,
        )
        out.audit.append(leaf)
        out.decisions[(AuditDecision.REJECTED, refusal.reason)] += 1
        out.rejections.append(
            self._rejection(
                rec,
                scope="NOTICE",
                notice_id=refusal.notice_id,
                recipient=None,
                reason=refusal.reason,
                message=refusal.message,
                fields=refusal.fields,
                original=original,
                now_ms=now_ms,
                policy_version=policy_version,
            )
        )

    def _report_withheld(
        self,
        rec: IngressRecord,
        valid: ValidNotice,
        d: Decision,
        original: bytes,
        now_ms: int,
        out: BatchOutput,
    ) -> None:
        """Tell the origin of a recipient it must handle by hand: one the protection floor kept
        the notice from, or one a rule that failed at run time withheld it from (RULE_ERROR)."""
        floor = [r for r in d.reasons if r.startswith("FLOOR_")]
        if floor:
            reason = floor[0]
            message = (
                f"not delivered to {d.recipient}: the regional protection floor "
                f"({', '.join(floor)}) forbids it; if a notification to {d.recipient} is "
                "due (e.g. mandatory consular notification), handle it by hand with the "
                "person's protection in mind"
            )
        elif RULE_ERROR in d.reasons:
            reason = RULE_ERROR
            log.error(
                "policy.rule_error",
                notice_id=valid.notice_id,
                recipient=d.recipient,
                rules=list(d.errors),
                policy_version=d.policy_version,
            )
            message = (
                f"not delivered to {d.recipient}: rule {', '.join(d.errors)} could not be "
                "evaluated on this notice, so Puente withheld it rather than guess; operators "
                "were alerted to fix the rule; re-sending will not help: if a notification to "
                f"{d.recipient} is due, handle it by hand"
            )
        else:
            return
        out.rejections.append(
            self._rejection(
                rec,
                scope="RECIPIENT",
                notice_id=valid.notice_id,
                recipient=d.recipient,
                reason=reason,
                message=message,
                fields=(),
                original=original,
                now_ms=now_ms,
                policy_version=d.policy_version,
            )
        )

    def _rejection(
        self,
        rec: IngressRecord,
        *,
        scope: str,
        notice_id: str | None,
        recipient: str | None,
        reason: str,
        message: str,
        fields: tuple[str, ...],
        original: bytes,
        now_ms: int,
        policy_version: str | None,
        severity: str = REFUSED,
    ) -> tuple[bytes, bytes]:
        ident = f"{rec.topic}/{rec.partition}/{rec.offset}/{recipient or '-'}"
        if severity != REFUSED:
            ident += f"/{severity}/{reason}"
        value = encode(
            self.registry,
            REJECTION,
            {
                "rejection_id": str(uuid.uuid5(_DELIVERY_NS, ident)),
                "scope": scope,
                "severity": severity,
                "notice_id": notice_id,
                "origin": self.origin,
                "recipient": recipient,
                "reason_code": reason,
                "message": message,
                "field_paths": list(fields),
                "ingress_topic": rec.topic,
                "ingress_partition": rec.partition,
                "ingress_offset": rec.offset,
                "original_sha256": original,
                "policy_set_version": policy_version,
                "rejected_at": dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC),
            },
        )
        return (notice_id or ident).encode(), value


def _deadlines(
    policy: PolicySet, valid: ValidNotice, origin: str, now_ms: int
) -> DeliveryDeadlines | None:
    """The clocks every delivery of ``valid`` runs under (policies/SEMANTICS.md §11), as its
    audit record keeps them; None when no deadline applies (a case notice)."""
    found = policy.deadlines.deadlines(valid.notice_type, valid.notice, origin, now_ms)
    if found is None:
        return None
    return DeliveryDeadlines(
        type=found.type,
        receive_by=found.receive_by,
        acknowledge_by=found.acknowledge_by,
        deadline_ids=found.deadline_ids,
        legal_bases=found.legal_bases,
    )


def _open_ingress(rec: IngressRecord, ring: KeyRing, origin: str) -> bytes:
    """The notice an agency sealed to this node; a Refusal with the seal's reason code when
    the record is not sealed (NOT_SEALED) or not to this node, or does not open."""
    if not rec.value:
        return rec.value or b""  # validate() names an empty record
    try:
        return open_notice(rec.value, keys=ring, origin=origin).plaintext
    except SealError as exc:
        raise Refusal(exc.reason, _SEAL_MESSAGES.get(exc.reason, exc.message)) from None


_SEAL_MESSAGES = {
    "NOT_SEALED": "the record is not sealed to this state's node: seal each notice to the node's "
    "encryption key (the trust list's enc line of node:<your state>) before publishing",
    "SEAL_WRONG_RECIPIENT": "the record is sealed to another key than this node's: seal it to "
    "the current encryption key of node:<your state> in the trust list",
    "SEAL_KEY_UNKNOWN": "the record is sealed to a key this node does not hold (rotated away, or "
    "never its own): seal it again to the node's current key",
}


def _unsealable(d: Decision) -> Decision:
    """A share that cannot be sealed (the recipient has no valid encryption key in the trust
    list) is withheld: nothing goes out in clear."""
    return d._replace(action=Action.WITHHOLD, payload=None, reasons=(RECIPIENT_KEY_MISSING,))


def _duplicate(valid: ValidNotice, same_bytes: bool) -> Refusal:
    if same_bytes:
        return Refusal(
            DUPLICATE_NOTICE,
            "this notice was already received and processed; it is not delivered twice",
            notice_id=valid.notice_id,
            notice_type=valid.notice_type,
            fingerprint=valid.fingerprint,
        )
    return Refusal(
        NOTICE_ID_REUSED,
        "another notice was already received under this notice_id; give a new notice a new "
        "id, and link an update to the earlier notice with related_notice_ids",
        fields=("notice_id",),
        notice_id=valid.notice_id,
        notice_type=valid.notice_type,
        fingerprint=valid.fingerprint,
    )
