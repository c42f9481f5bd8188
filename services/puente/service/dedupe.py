"""The notice ids one ingress partition has accepted: how a re-sent notice is recognised, in
memory and changelog bounded by age.

An id need not be remembered for ever. A re-sent notice carries its ``created_at``, and a notice
created more than the accepted age ago is refused as ``TOO_OLD`` before the dedupe is asked
(:mod:`puente.service.validate`); so once ``created_at + horizon`` has passed, with
``horizon = max age + clock skew`` (:meth:`Limits.dedupe_horizon_ms`: the skew covers replicas
whose clocks differ), no notice with that id can be accepted as new. What is lost: a *different*
notice re-using an id that old is no longer refused as ``NOTICE_ID_REUSED``.

Ids live in **chunks**: the ids one batch accepted (at most :data:`CHUNK_IDS` per chunk), with
each notice's digest and ``created_at``, written as one record of the partition's compacted
changelog under ``d/<ingress offset of its first notice>``. A chunk is forgotten, and tombstoned
in the changelog, when its newest notice is past the horizon. Every notice accepted at time t was
created after ``t - max age`` and before ``t + skew``, so a chunk lives at most ``horizon + skew``
after its batch: memory, and a take-over's restore, hold the ids accepted in that window, read
back as one record per batch rather than one per id.

A batch is undone without copying: :meth:`SeenIds.rollback` reverts what the batch added and
pruned (a journal kept from :meth:`SeenIds.begin`), in time proportional to the batch.

Changelog records before chunks (``n/<id>`` → the 32-byte digest, one per id) are still read;
having no ``created_at``, such an id is kept until ``2 × horizon`` after the record was written
(the notice was accepted by then, so created before ``record time + skew``), then tombstoned.
"""

from __future__ import annotations

import heapq
import struct
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from puente.errors import PuenteError

CHUNK_PREFIX = b"d/"
LEGACY_PREFIX = b"n/"  # one record per id, as written before chunks (2 bytes: see restore)
CHUNK_IDS = 2048  # ids per chunk record: ~160 KB, well under the topic's 1 MiB record limit

# A chunk record: a format byte, then its entries. UUID ids (every notice id the codec decodes)
# take the fixed-width format, which restores with one struct pass; any other id the length-
# prefixed one.
_FIXED = 1  # entries: 36-byte id, 32-byte digest, created_at ms (i64, big-endian)
_PREFIXED = 2  # entries: u16 id length, id (UTF-8), 32-byte digest, created_at ms
_UUID_LEN = 36
_ENTRY = struct.Struct(">36s32sq")
_TAIL = struct.Struct(">32sq")
_LEN = struct.Struct(">H")


class StateError(PuenteError):
    """The partition's changelog holds a dedupe record this version cannot read."""

    reason = "STATE_MALFORMED"


@dataclass(slots=True)
class _Chunk:
    key: bytes
    expires_ms: int  # past it, every id in the chunk is past the horizon
    ids: tuple[str, ...]


class SeenIds:
    """The accepted notice ids of one partition: id → SHA-256 of the notice as received."""

    def __init__(self, horizon_ms: int) -> None:
        if horizon_ms <= 0:
            raise ValueError("the dedupe horizon must be positive")
        self.horizon_ms = horizon_ms
        self._digests: dict[str, bytes] = {}
        self._chunks: dict[bytes, _Chunk] = {}
        self._expiry: list[tuple[int, bytes]] = []  # heap; stale entries are skipped when popped
        # Ids of records written before chunks and their expiries, in changelog order: two
        # deques, not a chunk (or even a tuple) each, so a million restore about as fast as the
        # dict entries they were read into before.
        self._legacy_ids: deque[str] = deque()
        self._legacy_expiry: deque[int] = deque()
        self._legacy_ttl_ms = 2 * horizon_ms
        self._batch: list[tuple[str, bytes, int, int]] = []  # (id, digest, created ms, offset)
        # The journal of the open batch, for rollback: chunks it made, chunks it pruned.
        self._made: list[bytes] = []
        self._pruned: list[tuple[_Chunk, list[tuple[str, bytes]]]] = []
        self._pruned_legacy: list[tuple[int, str, bytes]] = []

    # --- reading -------------------------------------------------------------------------------

    def get(self, notice_id: str) -> bytes | None:
        """The digest of the accepted notice with this id, or None."""
        return self._digests.get(notice_id)

    def __contains__(self, notice_id: object) -> bool:
        return notice_id in self._digests

    def __len__(self) -> int:
        return len(self._digests)

    def items(self) -> Iterator[tuple[str, bytes]]:
        return iter(self._digests.items())

    @property
    def chunks(self) -> int:
        """Chunk records alive (what a take-over reads back)."""
        return len(self._chunks)

    # --- a batch -------------------------------------------------------------------------------

    def begin(self) -> None:
        """Open a batch: what follows until the next begin can be undone by :meth:`rollback`.
        Ids added but never closed by :meth:`end` (a batch that failed midway) were never
        written, so they are forgotten."""
        for notice_id, _, _, _ in self._batch:
            self._digests.pop(notice_id, None)
        self._batch.clear()
        self._made.clear()
        self._pruned.clear()
        self._pruned_legacy.clear()

    def add(self, notice_id: str, digest: bytes, created_ms: int, offset: int) -> None:
        """Remember an accepted notice (its ingress ``offset`` names its chunk)."""
        self._digests[notice_id] = digest
        self._batch.append((notice_id, digest, created_ms, offset))

    def end(self, now_ms: int) -> list[tuple[bytes, bytes | None]]:
        """Close the batch: the changelog records to write with it — a tombstone for each chunk
        past the horizon at ``now_ms``, and the batch's accepted ids as new chunks."""
        records: list[tuple[bytes, bytes | None]] = [(k, None) for k in self._prune(now_ms)]
        records += [(k, None) for k in self._prune_legacy(now_ms)]
        batch, self._batch = self._batch, []
        for start in range(0, len(batch), CHUNK_IDS):
            entries = batch[start : start + CHUNK_IDS]
            key = CHUNK_PREFIX + str(entries[0][3]).encode()
            newest = max(created for _, _, created, _ in entries)
            self._keep(_Chunk(key, newest + self.horizon_ms, tuple(e[0] for e in entries)))
            self._made.append(key)
            records.append((key, encode_chunk((i, d, c) for i, d, c, _ in entries)))
        return records

    def rollback(self) -> None:
        """Undo everything since :meth:`begin` (the batch's transaction was aborted)."""
        for key in self._made:
            chunk = self._chunks.pop(key)
            for notice_id in chunk.ids:
                self._digests.pop(notice_id, None)
        for chunk, digests in self._pruned:
            self._digests.update(digests)
            self._keep(chunk)
        for expires, notice_id, digest in reversed(self._pruned_legacy):
            self._digests[notice_id] = digest
            self._legacy_ids.appendleft(notice_id)
            self._legacy_expiry.appendleft(expires)
        self.begin()  # also forgets ids added since begin and not yet closed

    # --- the changelog -------------------------------------------------------------------------

    def restore(self, key: bytes, value: bytes | None, timestamp_ms: int) -> bool:
        """Apply one changelog record (read in offset order); False if it is not a dedupe one."""
        if key[:2] == LEGACY_PREFIX:  # first: a changelog from before chunks has a million
            notice_id = key[2:].decode()
            if value is None:
                self._digests.pop(notice_id, None)
            else:
                self._digests[notice_id] = value
                self._legacy_ids.append(notice_id)
                self._legacy_expiry.append(timestamp_ms + self._legacy_ttl_ms)
            return True
        if key.startswith(CHUNK_PREFIX):
            self._forget(key)
            if value is not None:
                entries = decode_chunk(value)
                self._digests.update((i, d) for i, d, _ in entries)
                newest = max((c for _, _, c in entries), default=0)
                self._keep(_Chunk(key, newest + self.horizon_ms, tuple(i for i, _, _ in entries)))
            return True
        return False

    # --- internals -----------------------------------------------------------------------------

    def _keep(self, chunk: _Chunk) -> None:
        self._chunks[chunk.key] = chunk
        heapq.heappush(self._expiry, (chunk.expires_ms, chunk.key))

    def _forget(self, key: bytes) -> list[tuple[str, bytes]]:
        chunk = self._chunks.pop(key, None)
        if chunk is None:
            return []
        return [(i, self._digests.pop(i)) for i in chunk.ids if i in self._digests]

    def _prune_legacy(self, now_ms: int) -> list[bytes]:
        # In changelog order, so roughly by expiry: one out of order only waits (never early).
        gone = []
        ids, expiry = self._legacy_ids, self._legacy_expiry
        while expiry and expiry[0] < now_ms:
            expires, notice_id = expiry.popleft(), ids.popleft()
            digest = self._digests.pop(notice_id, None)
            if digest is not None:
                self._pruned_legacy.append((expires, notice_id, digest))
                gone.append(LEGACY_PREFIX + notice_id.encode())
        return gone

    def _prune(self, now_ms: int) -> list[bytes]:
        gone = []
        heap = self._expiry
        while heap and heap[0][0] < now_ms:
            expires, key = heapq.heappop(heap)
            chunk = self._chunks.get(key)
            if chunk is None or chunk.expires_ms != expires:
                continue  # rolled back or replaced since it was pushed
            self._pruned.append((chunk, self._forget(key)))
            gone.append(key)
        return gone


def encode_chunk(entries: Iterable[tuple[str, bytes, int]]) -> bytes:
    """A chunk record's value: (notice id, 32-byte digest, created_at ms) entries."""
    items = [(i.encode(), d, c) for i, d, c in entries]
    if all(len(i) == _UUID_LEN for i, _, _ in items):
        return bytes([_FIXED]) + b"".join(_ENTRY.pack(i, d, c) for i, d, c in items)
    return bytes([_PREFIXED]) + b"".join(
        _LEN.pack(len(i)) + i + _TAIL.pack(d, c) for i, d, c in items
    )


def decode_chunk(value: bytes) -> list[tuple[str, bytes, int]]:
    """The entries of a chunk record; :class:`StateError` if it is not one."""
    if not value:
        raise StateError("an empty dedupe chunk record")
    body = memoryview(value)[1:]
    try:
        if value[0] == _FIXED:
            return [(i.decode(), d, c) for i, d, c in _ENTRY.iter_unpack(body)]
        if value[0] == _PREFIXED:
            out, pos = [], 0
            while pos < len(body):
                (n,) = _LEN.unpack_from(body, pos)
                notice_id = bytes(body[pos + 2 : pos + 2 + n]).decode()
                digest, created = _TAIL.unpack_from(body, pos + 2 + n)
                out.append((notice_id, digest, created))
                pos += 2 + n + _TAIL.size
            return out
    except (struct.error, UnicodeDecodeError) as exc:
        raise StateError(f"a malformed dedupe chunk record: {exc}") from exc
    raise StateError(f"a dedupe chunk record of unknown format {value[0]}")
