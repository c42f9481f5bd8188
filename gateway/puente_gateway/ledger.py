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
from typing import Any

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


def _compact(entry: Entry) -> Entry:
    """``entry`` as it is worth keeping for days: orjson's output carries a 4 KiB buffer behind
    a few hundred bytes (measured: 4 KiB of RSS per answer held), and every entry of one state or
    type can share one string."""
    return Entry(
        sys.intern(entry.state),
        entry.digest,
        bytes(memoryview(entry.body)),
        entry.created_ms,
        None if entry.notice_type is None else sys.intern(entry.notice_type),
    )


@dataclass(frozen=True, slots=True)
class _Held:
    entry: Entry
    position: tuple[int, int]  # (partition, offset) in the answers topic


class Ledger:
    """First answers by key (``notice:<id>``, ``receipt:<id>``), for ``ttl_s`` seconds."""

    def __init__(self, *, ttl_s: int, max_entries: int = 250_000) -> None:
        self.ttl_ms = ttl_s * 1000
        self.max_entries = max_entries
        # Insertion order is roughly time order: purging pops from the front.
        self._entries: dict[str, _Held] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, *, now_ms: int) -> Entry | None:
        """The entry for ``key`` if it is younger than the TTL."""
        held = self._entries.get(key)
        if held is None or held.entry.created_ms <= now_ms - self.ttl_ms:
            return None
        return held.entry

    def apply(self, key: str, entry: Entry, position: tuple[int, int], *, now_ms: int) -> None:
        """Take ``entry``, read (or written) at ``position``; the lowest position wins."""
        if entry.created_ms <= now_ms - self.ttl_ms:
            return
        held = self._entries.get(key)
        if held is None or position < held.position:
            self._entries[key] = _Held(_compact(entry), position)
            while len(self._entries) > self.max_entries:
                del self._entries[next(iter(self._entries))]

    def purge(self, *, now_ms: int) -> int:
        """Forget entries older than the TTL (from the oldest inserted); returns how many."""
        cutoff = now_ms - self.ttl_ms
        gone = 0
        while self._entries:
            key = next(iter(self._entries))
            if self._entries[key].entry.created_ms > cutoff:
                break
            del self._entries[key]
            gone += 1
        return gone
