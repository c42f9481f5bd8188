"""Bearer tokens of agencies: created once, stored hashed, revocable, expiring.

A token is ``pgw_`` followed by 43 base64url characters (256 random bits). Only its SHA-256
is kept. A slow password hash (argon2, scrypt) protects *guessable* secrets; a 256-bit random
token cannot be guessed, so one SHA-256 is as strong and lets the gateway find the token by its
digest instead of trying every record. The ``pgw_`` prefix lets secret scanners recognise a
leaked token, and the fixed form lets the gateway refuse anything else before any lookup.

Records live in their state's compacted gateway-tokens topic (puente_gateway.shared), one per
token id: a revocation is a newer record under the same key. :class:`TokenTable` is the
in-memory view every replica builds from those topics; it is pure (no I/O) so its rules are
tested alone.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from puente.errors import PuenteError
from puente_gateway.clock import now_ms

TOKEN_PREFIX = "pgw_"  # noqa: S105 - a public marker, not a secret
TOKEN_LENGTH = len(TOKEN_PREFIX) + 43  # 32 random bytes in unpadded base64url
_TOKEN = re.compile(rb"pgw_[A-Za-z0-9_-]{43}")
_ID = re.compile(r"[0-9a-f]{16}")
_VERSION = 1


class TokenError(PuenteError):
    """A token operation that cannot be done (unknown id, bad arguments)."""

    reason = "TOKEN_ERROR"


def well_formed(token: bytes) -> bool:
    """Whether ``token`` has the exact form of a Puente token (checked before any lookup)."""
    return len(token) == TOKEN_LENGTH and _TOKEN.fullmatch(token) is not None


def digest(token: bytes) -> bytes:
    """SHA-256 of a token's text."""
    return hashlib.sha256(token).digest()


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What the gateway knows about one token (never the token itself)."""

    id: str
    digest: bytes
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

    def key(self) -> bytes:
        """Its Kafka record key (one per token id: compaction keeps the newest)."""
        return b"token:" + self.id.encode("ascii")

    def value(self) -> bytes:
        """Its Kafka record value (JSON)."""
        return orjson.dumps(
            {
                "v": _VERSION,
                "id": self.id,
                "digest": self.digest.hex(),
                "state": self.state,
                "agency": self.agency,
                "types": list(self.types),
                "created_ms": self.created_ms,
                "expires_ms": self.expires_ms,
                "revoked_ms": self.revoked_ms,
            }
        )

    @classmethod
    def from_value(cls, data: bytes) -> TokenRecord:
        """The record in a Kafka value; ValueError when it is not one."""
        try:
            raw: Any = orjson.loads(data)
            record = cls(
                id=_text(raw["id"]),
                digest=bytes.fromhex(_text(raw["digest"])),
                state=_text(raw["state"]),
                agency=_text(raw["agency"]),
                types=tuple(_text(t) for t in _list(raw["types"])),
                created_ms=_int(raw["created_ms"]),
                expires_ms=_opt_int(raw["expires_ms"]),
                revoked_ms=_opt_int(raw["revoked_ms"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"not a token record ({type(exc).__name__})") from None
        if raw.get("v") != _VERSION or not _ID.fullmatch(record.id) or len(record.digest) != 32:
            raise ValueError("not a token record of this version")
        return record


def _text(v: object) -> str:
    if not isinstance(v, str):
        raise TypeError("expected a string")
    return v


def _list(v: object) -> list[object]:
    if not isinstance(v, list):
        raise TypeError("expected a list")
    return v


def _int(v: object) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError("expected an integer")
    return v


def _opt_int(v: object) -> int | None:
    return None if v is None else _int(v)


def new_token(
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
        digest=digest(token.encode("ascii")),
        state=state,
        agency=agency.strip(),
        types=tuple(sorted(set(types))),
        created_ms=created,
        expires_ms=expires_ms,
        revoked_ms=None,
    )
    return record, token


def revoked(record: TokenRecord, *, now: int | None = None) -> TokenRecord:
    """``record`` revoked from ``now`` on; a revoked record keeps its first revocation time."""
    if record.revoked_ms is not None:
        return record
    return replace(record, revoked_ms=now_ms() if now is None else now)


class TokenTable:
    """Every token record, by id and by digest; the newest record of an id wins."""

    def __init__(self) -> None:
        self._by_id: dict[str, TokenRecord] = {}
        self._by_digest: dict[bytes, TokenRecord] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def apply(self, record: TokenRecord) -> None:
        """Take ``record`` as the newest state of its token id."""
        old = self._by_id.get(record.id)
        if old is not None and old.digest != record.digest:
            self._by_digest.pop(old.digest, None)
        self._by_id[record.id] = record
        self._by_digest[record.digest] = record

    def get(self, token_id: str) -> TokenRecord | None:
        """The record of one token id."""
        return self._by_id.get(token_id)

    def lookup(self, token: bytes) -> TokenRecord | None:
        """The record of a presented token (any status), or None; only well-formed tokens are
        hashed and looked up."""
        if not well_formed(token):
            return None
        return self._by_digest.get(digest(token))

    def list(self, *, state: str | None = None) -> list[TokenRecord]:
        """Every token (optionally one state's), oldest first."""
        rows = (r for r in self._by_id.values() if state is None or r.state == state)
        return sorted(rows, key=lambda r: (r.created_ms, r.id))
