"""Bearer tokens of agencies: created once, stored hashed, revocable, expiring.

A token is ``pgw_`` followed by 43 base64url characters (256 random bits). Only its SHA-256
is stored. A slow password hash (argon2, scrypt) protects *guessable* secrets; a 256-bit random
token cannot be guessed, so one SHA-256 is as strong and lets the gateway find the token by an
indexed lookup of its digest instead of trying every row. The ``pgw_`` prefix lets secret
scanners recognise a leaked token.

Rows live in a SQLite file (``tokens.sqlite3``, mode 0600) that the CLI writes and the gateway
reads; rotation is "create a new token, hand it over, revoke the old one".
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from puente.errors import PuenteError
from puente_gateway.clock import now_ms

TOKEN_PREFIX = "pgw_"  # noqa: S105 - a public marker, not a secret
TOKENS_FILE = "tokens.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id          TEXT PRIMARY KEY,
    digest      BLOB NOT NULL UNIQUE,
    state       TEXT NOT NULL,
    agency      TEXT NOT NULL,
    types       TEXT NOT NULL,      -- comma-separated full names; '' = every notice type
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER,
    revoked_ms  INTEGER
);
"""


class TokenError(PuenteError):
    """A token operation that cannot be done (unknown id, bad arguments)."""

    reason = "TOKEN_ERROR"


@dataclass(frozen=True)
class TokenRecord:
    """What the ledger knows about one token (never the token itself)."""

    id: str
    state: str
    agency: str
    types: tuple[str, ...]  # empty: every notice type
    created_ms: int
    expires_ms: int | None
    revoked_ms: int | None

    def status(self, now_ms: int) -> str:
        """``active``, ``revoked`` or ``expired`` at ``now_ms``."""
        if self.revoked_ms is not None and now_ms >= self.revoked_ms:
            return "revoked"
        if self.expires_ms is not None and now_ms >= self.expires_ms:
            return "expired"
        return "active"


def digest(token: str) -> bytes:
    """SHA-256 of a token's text."""
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenStore:
    """The token ledger: one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        new = not path.exists()
        if new:
            # Created 0600 before SQLite opens it: hashes are not secrets, but who holds which
            # agency's token is nobody else's business.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def create(
        self,
        *,
        state: str,
        agency: str,
        types: Iterable[str] = (),
        expires_ms: int | None = None,
        now: int | None = None,
    ) -> tuple[TokenRecord, str]:
        """A new token for ``agency`` of ``state``: its record and its text (shown only once)."""
        if not agency.strip():
            raise TokenError("an agency name is required")
        created = now_ms() if now is None else now
        if expires_ms is not None and expires_ms <= created:
            raise TokenError("the token would expire before it is created")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = TokenRecord(
            id=secrets.token_hex(8),
            state=state,
            agency=agency.strip(),
            types=tuple(sorted(set(types))),
            created_ms=created,
            expires_ms=expires_ms,
            revoked_ms=None,
        )
        self._db.execute(
            "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
            (
                record.id,
                digest(token),
                record.state,
                record.agency,
                ",".join(record.types),
                record.created_ms,
                record.expires_ms,
            ),
        )
        return record, token

    def revoke(self, token_id: str, *, now: int | None = None) -> TokenRecord:
        """Revoke a token from now on (idempotent: a revoked token keeps its first time)."""
        when = now_ms() if now is None else now
        self._db.execute(
            "UPDATE tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL",
            (when, token_id),
        )
        record = self.get(token_id)
        if record is None:
            raise TokenError(f"no token with id {token_id}")
        return record

    def get(self, token_id: str) -> TokenRecord | None:
        """The record of one token id."""
        row = self._db.execute(_SELECT + " WHERE id = ?", (token_id,)).fetchone()
        return None if row is None else _record(row)

    def lookup(self, token: str) -> TokenRecord | None:
        """The record of a presented token (any status), or None if it is unknown."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        row = self._db.execute(_SELECT + " WHERE digest = ?", (digest(token),)).fetchone()
        return None if row is None else _record(row)

    def list(self, *, state: str | None = None) -> list[TokenRecord]:
        """Every token (optionally one state's), oldest first."""
        if state is None:
            rows = self._db.execute(_SELECT + " ORDER BY created_ms, id")
        else:
            rows = self._db.execute(_SELECT + " WHERE state = ? ORDER BY created_ms, id", (state,))
        return [_record(r) for r in rows]


_SELECT = "SELECT id, state, agency, types, created_ms, expires_ms, revoked_ms FROM tokens"


def _record(row: tuple[str, str, str, str, int, int | None, int | None]) -> TokenRecord:
    tid, state, agency, types, created, expires, revoked = row
    return TokenRecord(
        tid, state, agency, tuple(t for t in types.split(",") if t), created, expires, revoked
    )
