"""The idempotency ledger: the first answer the gateway gave for each notice (and receipt) id.

An entry is written to its state's gateway-answers topic after Kafka acknowledged the notice
and before the client gets its 202, so a retry — on this replica or another, after a restart
too — gets the first answer back and nothing is produced again. Every replica follows the topic
(puente_gateway.shared) into this in-memory :class:`Ledger`, which is pure (no I/O).

Entries live ``ttl_s`` (default 7 days, the topic's retention and the ingress retention): older
ones are ignored and purged. At most ``max_entries`` are held (about 800 bytes each, measured;
the oldest are forgotten first), so memory is bounded whatever the rate: a retry of a notice
forgotten that way is produced again, and the policy service drops it as a re-sent notice id.
When two replicas
answered the same id at the same time (both produced; the policy service drops the second
notice), the entry at the lower offset is the first answer everywhere, whatever order a
replica learnt them in.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Final

import orjson

_VERSION = 1


@dataclass(frozen=True, slots=True)
class Entry:
    """A remembered acknowledgement."""

    state: str
    digest: bytes  # SHA-256 of what was produced (with a receipt's signature)
    body: bytes  # the JSON answer the first request got
    created_ms: int
    notice_type: str | None = None  # for notices: the record's full name

    def value(self) -> bytes:
        """Its Kafka record value (JSON, the answer embedded as it was sent)."""
        return orjson.dumps(
            {
                "v": _VERSION,
                "state": self.state,
                "digest": self.digest.hex(),
                "type": self.notice_type,
                "created_ms": self.created_ms,
                "answer": orjson.Fragment(self.body),
            }
        )

    @classmethod
    def from_value(cls, data: bytes) -> Entry:
        """The entry in a Kafka value; ValueError when it is not one."""
        try:
            raw: Any = orjson.loads(data)
            state, kind, created = raw["state"], raw["type"], raw["created_ms"]
            entry = cls(
                state=state,
                digest=bytes.fromhex(raw["digest"]),
                body=orjson.dumps(raw["answer"]),
                created_ms=created,
                notice_type=kind,
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a ledger entry ({type(exc).__name__})") from None
        if (
            raw.get("v") != _VERSION
            or not isinstance(state, str)
            or not isinstance(created, int)
            or not (kind is None or isinstance(kind, str))
            or not isinstance(raw["answer"], dict)
            or len(entry.digest) != 32
        ):
            raise ValueError("not a ledger entry of this version")
        return entry


# A held entry is a flat tuple of str, bytes, int and None — (state, digest, body, created_ms,
# notice_type, partition, offset) — not objects: CPython stops tracking such a tuple in its
# garbage collector once it survived a collection, so a full ledger (up to 250,000 answers)
# adds nothing to the work of a full collection. Held as two objects per answer, the ledger
# made each full collection of a busy gateway take ~140 ms (measured), with the event loop
# frozen for that long: the p99 of POST /v1/notices.
_Row = tuple[str, bytes, bytes, int, str | None, int, int]
_CREATED: Final = 3  # the index of created_ms in a row


def _row(entry: Entry, position: tuple[int, int]) -> _Row:
    """``entry`` at ``position`` as it is worth keeping for days: orjson's output carries a
    4 KiB buffer behind a few hundred bytes (measured: 4 KiB of RSS per answer held), and every
    entry of one state or type can share one string."""
    return (
        sys.intern(entry.state),
        entry.digest,
        bytes(memoryview(entry.body)),
        entry.created_ms,
        None if entry.notice_type is None else sys.intern(entry.notice_type),
        *position,
    )


class Ledger:
    """First answers by key (``notice:<id>``, ``receipt:<id>``), for ``ttl_s`` seconds."""

    def __init__(self, *, ttl_s: int, max_entries: int = 250_000) -> None:
        self.ttl_ms = ttl_s * 1000
        self.max_entries = max_entries
        # Insertion order is roughly time order: purging pops from the front.
        self._entries: dict[str, _Row] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, *, now_ms: int) -> Entry | None:
        """The entry for ``key`` if it is younger than the TTL."""
        row = self._entries.get(key)
        if row is None or row[_CREATED] <= now_ms - self.ttl_ms:
            return None
        return Entry(*row[:5])

    def apply(self, key: str, entry: Entry, position: tuple[int, int], *, now_ms: int) -> None:
        """Take ``entry``, read (or written) at ``position``; the lowest position wins."""
        if entry.created_ms <= now_ms - self.ttl_ms:
            return
        row = self._entries.get(key)
        if row is None or position < row[5:]:
            self._entries[key] = _row(entry, position)
            while len(self._entries) > self.max_entries:
                del self._entries[next(iter(self._entries))]

    def purge(self, *, now_ms: int) -> int:
        """Forget entries older than the TTL (from the oldest inserted); returns how many."""
        cutoff = now_ms - self.ttl_ms
        gone = 0
        while self._entries:
            key = next(iter(self._entries))
            if self._entries[key][_CREATED] > cutoff:
                break
            del self._entries[key]
            gone += 1
        return gone
