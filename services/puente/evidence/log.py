"""A single-writer audit log: one per audit partition, identified by its log id (the checkpoint
origin, e.g. ``puente.audit/MX/0``).

:class:`AuditLog` is the writer's whole state in O(log n) space: the compact range at the last
checkpoint plus the leaf hashes appended since (one batch). From it the writer appends records,
signs checkpoints with a consistency proof from the previous one, and persists/recovers itself
(:class:`LogState`). Nothing here is global: a process holds as many logs as it owns partitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from puente.codec.registry import Registry
from puente.evidence._avro import AvroRecord
from puente.evidence._time import from_datetime, to_datetime
from puente.evidence.checkpoint import Checkpoint, check_log_origin, parse_signed_checkpoint
from puente.evidence.errors import EvidenceError, MalformedError
from puente.evidence.keys import SigningKey
from puente.evidence.merkle.compact import CompactRange
from puente.evidence.merkle.hasher import HASH_SIZE, leaf_hash
from puente.evidence.merkle.proof import consistency_proof
from puente.evidence.merkle.tree import range_hasher_from_compact
from puente.evidence.records import AuditRecord

CHECKPOINT_RECORD = "puente.Checkpoint"
LOG_STATE = "puente.AuditLogState"


def audit_log_id(member: str, partition: int, *, topic_prefix: str = "puente") -> str:
    """The log id of partition ``partition`` of member ``member``'s audit topic.

    ``topic_prefix`` is the deployment's topic prefix (``settings.kafka.topic_prefix``):
    ``puente.audit/MX/0`` for ``puente.audit.MX`` partition 0.
    """
    return check_log_origin(f"{topic_prefix}.audit/{member}/{partition}")


def audit_log_state(log_id: str) -> str | None:
    """The member state whose audit log ``log_id`` is (``puente.audit/MX/0``: ``MX``), or
    None when ``log_id`` is not an audit log id."""
    prefix, sep, rest = log_id.rpartition(".audit/")
    state, _, partition = rest.partition("/")
    if not (prefix and sep and partition.isascii() and partition.isdigit()):
        return None
    return state if len(state) == 2 and state.isascii() and state.isupper() else None


@dataclass(frozen=True)
class CheckpointRecord(AvroRecord):
    """What is published on the checkpoints topic (``puente.Checkpoint``)."""

    AVRO_NAME: ClassVar[str] = CHECKPOINT_RECORD

    note: bytes
    compact_range: tuple[bytes, ...]
    previous_size: int | None = None
    consistency_proof: tuple[bytes, ...] = ()

    @property
    def checkpoint(self) -> Checkpoint:
        """The parsed checkpoint (signatures unchecked)."""
        return parse_signed_checkpoint(self.note)[0]

    def compact(self) -> CompactRange:
        """The compact range carried, checked against the checkpoint's size and root.

        Raises :class:`MalformedError` if it does not fold to the signed root.
        """
        cp = self.checkpoint
        cr = CompactRange.from_hashes(cp.size, self.compact_range)
        if cr.root() != cp.root:
            raise MalformedError(f"compact range of {cp.log_origin}@{cp.size} misses the root")
        return cr

    def to_avro(self) -> dict[str, Any]:
        """The record as the Avro codec takes it."""
        return {
            "note": self.note.decode("utf-8"),
            "compact_range": list(self.compact_range),
            "previous_size": self.previous_size,
            "consistency_proof": list(self.consistency_proof),
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> CheckpointRecord:
        """The inverse of :meth:`to_avro`."""
        return cls(
            d["note"].encode("utf-8"),
            tuple(d["compact_range"]),
            d["previous_size"],
            tuple(d["consistency_proof"]),
        )


@dataclass(frozen=True)
class LogState(AvroRecord):
    """The persisted state of an :class:`AuditLog` (``puente.AuditLogState``)."""

    AVRO_NAME: ClassVar[str] = LOG_STATE

    log_id: str
    checkpoint_size: int
    checkpoint_range: tuple[bytes, ...]
    checkpoint_time: int | None
    pending_leaf_hashes: tuple[bytes, ...]
    last_leaf_hash: bytes | None

    def to_avro(self) -> dict[str, Any]:
        """The record as the Avro codec takes it."""
        return {
            "log_id": self.log_id,
            "checkpoint_size": self.checkpoint_size,
            "checkpoint_range": list(self.checkpoint_range),
            "checkpoint_time": None
            if self.checkpoint_time is None
            else to_datetime(self.checkpoint_time),
            "pending_leaf_hashes": list(self.pending_leaf_hashes),
            "last_leaf_hash": self.last_leaf_hash,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> LogState:
        """The inverse of :meth:`to_avro`."""
        t = d["checkpoint_time"]
        return cls(
            d["log_id"],
            d["checkpoint_size"],
            tuple(d["checkpoint_range"]),
            None if t is None else from_datetime(t),
            tuple(d["pending_leaf_hashes"]),
            d["last_leaf_hash"],
        )


class AuditLog:
    """The writer side of one audit log. Not thread-safe: one writer per log, by design."""

    __slots__ = ("_base", "_base_time", "_last_leaf", "_log_id", "_pending", "_range")

    def __init__(self, log_id: str) -> None:
        """A new, empty log."""
        self._log_id = check_log_origin(log_id)
        self._base = CompactRange()  # at the last checkpoint
        self._base_time: int | None = None
        self._range = CompactRange()  # now
        self._pending: list[bytes] = []  # leaf hashes since the last checkpoint
        self._last_leaf: bytes | None = None

    @property
    def log_id(self) -> str:
        """The log id (checkpoint origin)."""
        return self._log_id

    @property
    def size(self) -> int:
        """Number of records appended so far; also the index the next record gets."""
        return self._range.size

    @property
    def last_leaf_hash(self) -> bytes | None:
        """The leaf hash of the last record (the next record's ``previous_leaf_hash``)."""
        return self._last_leaf

    @property
    def checkpoint_size(self) -> int:
        """The tree size at the last checkpoint."""
        return self._base.size

    def root(self) -> bytes:
        """The current root hash."""
        return self._range.root()

    def compact(self) -> CompactRange:
        """A snapshot of the current compact range."""
        return self._range.copy()

    def append(self, leaf: bytes) -> int:
        """Append one leaf by its content (an encoded audit record); returns its index."""
        return self.append_leaf_hash(leaf_hash(leaf))

    def append_leaf_hash(self, lh: bytes) -> int:
        """Append one leaf by its leaf hash; returns its index."""
        index = self._range.size
        self._range.append(lh)
        self._pending.append(lh)
        self._last_leaf = lh
        return index

    def append_record(self, registry: Registry, record: AuditRecord) -> tuple[AuditRecord, bytes]:
        """Give ``record`` its position (log id, index, previous leaf hash), encode and append it.

        Returns the positioned record and its bytes: produce those bytes, unchanged, to the audit
        topic partition of this log.
        """
        placed = replace(
            record,
            log_id=self._log_id,
            leaf_index=self._range.size,
            previous_leaf_hash=self._last_leaf,
        )
        return self._append_placed(registry, placed)

    def append_new(self, registry: Registry, **fields: Any) -> tuple[AuditRecord, bytes]:
        """:meth:`append_record` for a record given by its fields: built once, already in
        place (the hot path makes one record per recipient per notice)."""
        placed = AuditRecord(
            log_id=self._log_id,
            leaf_index=self._range.size,
            previous_leaf_hash=self._last_leaf,
            **fields,
        )
        return self._append_placed(registry, placed)

    def _append_placed(self, registry: Registry, placed: AuditRecord) -> tuple[AuditRecord, bytes]:
        data = placed.encode(registry)
        self.append(data)
        return placed, data

    def checkpoint(self, key: SigningKey, *, time_ms: int) -> CheckpointRecord:
        """Sign a checkpoint of the current tree and start a new batch.

        The time goes into the signed ``puente-time-ms`` line; it never goes backwards (a clock
        behind the previous checkpoint's time is raised to it), so an auditor can rely on it.
        The record carries the compact range and a consistency proof from the previous one.
        """
        if self._base_time is not None and time_ms < self._base_time:
            time_ms = self._base_time
        cp = Checkpoint.make(self._log_id, self._range.size, self._range.root(), time_ms=time_ms)
        note = cp.sign(key).to_bytes()
        prev = self._base.size if self._base_time is not None else None
        proof: list[bytes] = []
        if prev and prev < self._range.size:
            proof = consistency_proof(
                prev, self._range.size, range_hasher_from_compact(self._base, self._pending)
            )
        self._base = self._range.copy()
        self._base_time = time_ms
        self._pending = []
        return CheckpointRecord(note, self._base.hashes, prev, tuple(proof))

    # --- persistence -----------------------------------------------------------------------

    def state(self) -> LogState:
        """The state to persist (with the same transaction as the records it covers)."""
        return LogState(
            self._log_id,
            self._base.size,
            self._base.hashes,
            self._base_time,
            tuple(self._pending),
            self._last_leaf,
        )

    @classmethod
    def from_state(cls, state: LogState) -> AuditLog:
        """Recover a writer from its persisted state (O(batch) work, never a replay)."""
        log = cls(state.log_id)
        log._base = CompactRange.from_hashes(state.checkpoint_size, state.checkpoint_range)
        log._base_time = state.checkpoint_time
        log._range = log._base.copy()
        log._range.extend(state.pending_leaf_hashes)
        log._pending = list(state.pending_leaf_hashes)
        if state.last_leaf_hash is not None and len(state.last_leaf_hash) != HASH_SIZE:
            raise MalformedError("last leaf hash must be 32 bytes")
        if (state.last_leaf_hash is None) != (log._range.size == 0):
            raise MalformedError("a non-empty log state needs its last leaf hash")
        if state.pending_leaf_hashes and state.pending_leaf_hashes[-1] != state.last_leaf_hash:
            raise MalformedError("last leaf hash is not the last pending leaf hash")
        log._last_leaf = state.last_leaf_hash
        return log

    @classmethod
    def from_checkpoint(
        cls,
        record: CheckpointRecord,
        *,
        last_leaf_hash: bytes | None,
        later_leaves: Sequence[bytes] = (),
    ) -> AuditLog:
        """Recover a writer from its last published checkpoint and the records after it.

        For when the persisted state is lost: read the log's newest checkpoint and the audit
        records after it. ``last_leaf_hash`` is the leaf hash of record ``size - 1`` (the
        ``previous_leaf_hash`` of the first later record, or of the checkpoint's last record).
        Signatures are not checked here; the caller read its own topics.
        """
        cp = record.checkpoint
        base = record.compact()
        if (last_leaf_hash is None) != (cp.size == 0):
            raise EvidenceError("a non-empty checkpoint needs the last leaf hash to resume")
        log = cls(cp.log_origin)
        log._base = base
        log._base_time = cp.time_ms
        log._range = base.copy()
        log._last_leaf = last_leaf_hash
        for leaf in later_leaves:
            log.append(leaf)
        return log

    def __repr__(self) -> str:
        return f"AuditLog({self._log_id!r}, size={self.size})"
