"""The idempotency ledger: which notice (and receipt) ids this gateway already had acknowledged.

One SQLite file (``notices.sqlite3``) in the gateway's data directory, in WAL mode with
``synchronous=NORMAL``: an entry is made after Kafka acknowledged the record and before the
client gets its 202, so a retry (even after a restart) gets the first answer back and nothing is
produced again. Entries are held in memory and written in one transaction every
``flush_interval_s`` (50 ms) or ``flush_rows`` entries, whichever comes first — one commit per
request would cost more than the rest of the request. Rows are kept ``ttl_s`` (default 7 days,
the ingress retention) and then purged.

What it does not cover (docs/gateway.md): several replicas each keep their own ledger, and a
crash between the acknowledgement and the flush of its row (at most 50 ms), or a 503 after a
timed-out send that Kafka did take, lets a retry produce the notice again. These only ever
duplicate, never lose, and the policy service drops a re-sent notice id, so each notice is still
delivered once.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accepted (
    key         TEXT PRIMARY KEY,   -- 'notice:<uuid>' or 'receipt:<uuid>'
    state       TEXT NOT NULL,
    digest      BLOB NOT NULL,      -- SHA-256 of the encoded record
    body        BLOB NOT NULL,      -- the JSON answer the first request got
    created_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS accepted_created ON accepted (created_ms);
"""
_PURGE_EVERY_S = 300.0
LEDGER_FILE = "notices.sqlite3"


@dataclass(frozen=True)
class Entry:
    """A remembered acknowledgement."""

    state: str
    digest: bytes
    body: bytes


class Ledger:
    """Acknowledged ids, their record digests and first answers."""

    def __init__(
        self,
        path: Path,
        *,
        ttl_s: int,
        flush_interval_s: float = 0.05,
        flush_rows: int = 512,
    ) -> None:
        self.path = path
        self.ttl_ms = ttl_s * 1000
        self.flush_interval_s = flush_interval_s
        self.flush_rows = flush_rows
        self._pending: dict[str, tuple[Entry, int]] = {}
        self._flush_scheduled = False
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives a process crash; only an OS crash may lose the last few,
        # which at worst lets a retry produce a duplicate that the policy service drops.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._last_purge = time.monotonic()

    def close(self) -> None:
        """Write what is pending and close the database."""
        self.flush()
        self._db.close()

    def get(self, key: str, *, now_ms: int) -> Entry | None:
        """The entry for ``key`` if it is younger than the TTL."""
        pending = self._pending.get(key)
        if pending is not None:
            return pending[0] if pending[1] > now_ms - self.ttl_ms else None
        row = self._db.execute(
            "SELECT state, digest, body FROM accepted WHERE key = ? AND created_ms > ?",
            (key, now_ms - self.ttl_ms),
        ).fetchone()
        return None if row is None else Entry(row[0], bytes(row[1]), bytes(row[2]))

    def put(self, key: str, entry: Entry, *, now_ms: int) -> None:
        """Remember ``key`` (replacing an expired row of the same key); written by the next
        flush, and visible to :meth:`get` at once."""
        self._pending[key] = (entry, now_ms)
        if len(self._pending) >= self.flush_rows:
            self.flush()
        elif not self._flush_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()  # no event loop (tools, tests): write through
                return
            self._flush_scheduled = True
            loop.call_later(self.flush_interval_s, self.flush)

    def flush(self) -> None:
        """Write every pending entry in one transaction."""
        self._flush_scheduled = False
        if not self._pending:
            return
        rows = [(k, e.state, e.digest, e.body, t) for k, (e, t) in self._pending.items()]
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR REPLACE INTO accepted VALUES (?, ?, ?, ?, ?)", rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self._pending.clear()
        if time.monotonic() - self._last_purge > _PURGE_EVERY_S:
            self.purge(now_ms=max(t for *_, t in rows))

    def purge(self, *, now_ms: int) -> int:
        """Delete rows older than the TTL; returns how many."""
        self._last_purge = time.monotonic()
        cur = self._db.execute(
            "DELETE FROM accepted WHERE created_ms <= ?", (now_ms - self.ttl_ms,)
        )
        return cur.rowcount
