"""What the witnesses hosted in one process share (``puente serve witness --all``, the demo):
parsing the same records and checking the same log signatures once, not once per witness.

Twenty witnesses in one process read the same bytes: each checkpoint once per witness, and each
witness's cosignature once per other witness (gossip: 19 × 19 records per checkpoint). Decoding
a record and verifying a log signature against a trust list are pure functions of those bytes
and that list, so their results are shared. What each witness does with them — cosign, skip,
report a fork — stays its own decision, taken from its own book.

A witness alone in its process gets a :class:`Reads` of its own: it still decodes each record
once (a checkpoint appears again in every other witness's cosignature).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from puente.codec.registry import Registry
from puente.evidence.checkpoint import Checkpoint, parse_signed_checkpoint
from puente.evidence.cosignature import cosignatures, without_cosignatures
from puente.evidence.log import CheckpointRecord
from puente.evidence.trust import TrustList
from puente.evidence.verify import VerifiedCheckpoint, Verifier

MEMO_SIZE = 4096
"""Results kept per kind: far more than the distinct records twenty witnesses read in one
checkpoint interval (one checkpoint and 19 cosignatures per log)."""

K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A bounded memo, least recently used out first."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._size = size

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V:
        self._items[key] = value
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return value


@dataclass(frozen=True)
class Gossip:
    """Another witness's cosignature record, parsed (signatures unchecked)."""

    checkpoint: Checkpoint
    log_signed: bytes  # the note without its cosignature lines: what the log signed
    cosigners: frozenset[str]  # the key names of its cosignature lines


class Reads:
    """Decoded records and verified log signatures, shared by the witnesses that hold it."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self._records: _Lru[bytes, tuple[CheckpointRecord, Checkpoint]] = _Lru(size)
        self._gossip: _Lru[bytes, Gossip] = _Lru(size)
        self._verified: _Lru[tuple[int, bytes], VerifiedCheckpoint] = _Lru(size)
        self._lists: dict[int, tuple[TrustList, int]] = {}  # id -> (list, its equal class)
        self._classes: list[TrustList] = []

    def checkpoint(self, registry: Registry, value: bytes) -> tuple[CheckpointRecord, Checkpoint]:
        """A checkpoints-topic record, decoded, and its checkpoint. Raises what decoding
        raises (nothing is remembered of a record that does not decode)."""
        hit = self._records.get(value)
        if hit is None:
            record = CheckpointRecord.decode(registry, value)
            hit = self._records.put(value, (record, record.checkpoint))
        return hit

    def gossip(self, value: bytes) -> Gossip:
        """A cosignatures-topic record, parsed. Raises the parse error of a malformed one."""
        hit = self._gossip.get(value)
        if hit is None:
            cp, note = parse_signed_checkpoint(value)
            names = frozenset(c.name for c in cosignatures(note))
            hit = self._gossip.put(value, Gossip(cp, without_cosignatures(note).to_bytes(), names))
        return hit

    def verified(self, verifier: Verifier, log_signed: bytes) -> VerifiedCheckpoint:
        """``verifier.verify_checkpoint(log_signed)``, once per equal trust list. Raises what
        it raises (a refusal is not remembered: each witness finds it for itself)."""
        key = (self._class_of(verifier.trust_list), log_signed)
        hit = self._verified.get(key)
        if hit is None:
            hit = self._verified.put(key, verifier.verify_checkpoint(log_signed))
        return hit

    def _class_of(self, trust_list: TrustList) -> int:
        """One number per distinct trust list (each witness follows its own copy): compared
        once per list object, not at every look-up."""
        known = self._lists.get(id(trust_list))
        if known is not None and known[0] is trust_list:
            return known[1]
        index = next((i for i, t in enumerate(self._classes) if t == trust_list), None)
        if index is None:
            index = len(self._classes)
            self._classes.append(trust_list)
        if len(self._lists) > 64:  # lists replaced by newer ones: forget the objects
            self._lists.clear()
        self._lists[id(trust_list)] = (trust_list, index)
        return index
