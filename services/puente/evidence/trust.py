"""The trust list: which key belongs to whom, for what, and when — itself a signed note.

The list is signed by the member states' root keys (its ``key`` lines with usage trust-list)
and is valid only with at least ``quorum`` of them (:class:`TrustAnchor`; docs/evidence.md
§3.1): each list is judged by the roots and quorum of the list before it, starting from the
genesis list every participant holds out of band, so no single party can rewrite who is
trusted. A single-root deployment's list (no ``quorum`` line) is signed by an operator root key
whose verifier key is the anchor, as before. Lists expire, so a stale copy cannot be used for
ever. It is a C2SP signed note so that one parser, one byte-exact form
and one signature scheme serve checkpoints and trust lists alike, and a second root (or a
witness) can add a signature line without re-issuing it. The note text::

    puente.trust-list
    serial 7
    issued-ms 1767225600000
    expires-ms 1769904000000
    quorum 11                                                         (optional)
    floor <hex SHA-256 of the regional floor>                         (optional)
    key <verifier key> <holder> <usages> <valid-from-ms> <valid-until-ms|-> <revoked-since-ms|->
    ...
    enc <encryption key> <holder> <valid-from-ms> <valid-until-ms|-> <revoked-since-ms|->
    ...

``holder`` is ``service:<role>`` (the policy service), ``node:<CC>`` (state CC's node, which
signs CC's deliveries and checkpoints), ``member:<CC>`` (a member state) or ``operator:<name>``;
``usages`` is a comma-separated subset of :class:`Usage`, in that order. ``key`` lines are
Ed25519 signing keys; ``enc`` lines are X25519 encryption keys (:mod:`puente.evidence.enckeys`)
of ``member:`` holders (deliveries are sealed to them) and ``node:`` holders (ingress notices
are sealed to them). The ``floor`` line pins the regional floor every node must run under.
A list without ``floor`` and ``enc`` lines is a list as Puente wrote them before: it parses
and verifies unchanged. The text is canonical (the lines in this order, ``key`` lines before
``enc`` lines): parsing and re-serialising gives the same bytes, or the list is refused.

Validity is always judged at the time of the evidence: a key is valid at ``t`` when
``valid_from <= t``, ``t < valid_until`` (if set) and ``t < revoked_since`` (if set). Rotation
sets the old key's ``valid_until`` and adds a new key; the old entry stays, so evidence made
before the rotation keeps verifying. Revocation sets ``revoked_since`` (which may be backdated to
the suspected compromise): anything claiming a later time fails.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from puente.evidence.enckeys import EncryptionPublicKey
from puente.evidence.errors import (
    FloorError,
    MalformedError,
    SignatureError,
    TrustListError,
    UntrustedKeyError,
)
from puente.evidence.keys import PublicKey, SigningKey
from puente.evidence.note import Note, NoteSignature, UnsignedNoteError, check_text

TRUST_LIST_HEADER = "puente.trust-list"
ROOT_HOLDER = "operator:root"
"""The holder of a single-root deployment's keys that sign trust lists (the anchor's private
halves); in a federation the member states' root keys (``member:CC``) sign them."""
TRUST_LIST_KEY = b"trust-list"
"""The Kafka record key of the trust list on the (compacted) trust topic: the newest value wins.
The value is the signed note bytes, exactly as :meth:`TrustList.sign` returns them."""
TRUST_HISTORY_PREFIX = b"trust-list/"
"""Each list is also published under its own key, ``trust-list/<serial>``, which compaction
keeps: the chain from any anchor to the newest list stays on the topic."""


def trust_history_key(serial: int) -> bytes:
    """The record key that keeps list ``serial`` on the compacted trust topic."""
    return TRUST_HISTORY_PREFIX + str(serial).encode("ascii")


_HOLDER = re.compile(
    r"^(member:[A-Z]{2}|node:[A-Z]{2}|service:[a-z][a-z0-9-]{0,30}|operator:[a-z][a-z0-9-]{0,30})$"
)
ENCRYPTION_HOLDER_KINDS = ("member", "node")
"""Who holds encryption keys: members (deliveries are sealed to them) and nodes (ingress)."""
FLOOR_DIGEST_SIZE = 32


class Usage(StrEnum):
    """What a key may sign."""

    DELIVERY = "delivery"  # signed deliveries and delivery batch roots (policy service)
    CHECKPOINT = "checkpoint"  # audit-log checkpoints (policy service)
    RECEIPT = "receipt"  # delivery receipts (member states)
    NOTICE = "notice"  # notices at ingress (member states; optional)
    TRUST_LIST = "trust-list"  # trust lists (operator)
    EARLY_WARNING = "early-warning"  # aggregates (nodes) and early warnings (evaluator)
    WITNESS = "witness"  # cosignatures of other states' checkpoints (a state's witness key)
    ENCRYPTION = "encryption"  # X25519 keys: implicit on `enc` lines, never on a `key` line


SIGNING_USAGES = frozenset(Usage) - {Usage.ENCRYPTION}


def majority(n: int) -> int:
    """The default quorum of ``n`` root holders: more than half."""
    return n // 2 + 1


def member_holder(code: str) -> str:
    """The holder name of member state ``code``: ``member:MX``."""
    return check_holder(f"member:{code}")


def node_holder(code: str) -> str:
    """The holder name of state ``code``'s node: ``node:MX``."""
    return check_holder(f"node:{code}")


def service_holder(role: str = "policy") -> str:
    """The holder name of a Puente service: ``service:policy``."""
    return check_holder(f"service:{role}")


def check_holder(holder: str) -> str:
    """A holder name, returned unchanged; :class:`MalformedError` if it is not one."""
    if not _HOLDER.match(holder):
        raise MalformedError(
            f"invalid key holder {holder!r} (member:CC, node:CC, service:role, operator:x)"
        )
    return holder


def holder_state(holder: str) -> str | None:
    """The state code of a ``member:CC`` or ``node:CC`` holder, else None."""
    kind, _, who = holder.partition(":")
    return who if kind in ("member", "node") else None


def _opt(ms: int | None) -> str:
    return "-" if ms is None else str(ms)


def _parse_ms(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise MalformedError(f"{what} {text!r} is not a canonical decimal")
    return int(text)


def _parse_opt_ms(text: str, what: str) -> int | None:
    return None if text == "-" else _parse_ms(text, what)


class _Validity:
    """The validity period of a trust-list entry (both kinds of key share it)."""

    key: PublicKey | EncryptionPublicKey
    holder: str
    valid_from: int
    valid_until: int | None
    revoked_since: int | None

    @property
    def key_id(self) -> str:
        """The key id."""
        return self.key.key_id

    def _check_validity(self) -> None:
        check_holder(self.holder)
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise MalformedError(f"key {self.key_id}: valid-until is not after valid-from")

    def status_at(self, t: int) -> str:
        """``valid``, ``not-yet-valid``, ``expired`` or ``revoked`` at time ``t`` (ms)."""
        if self.revoked_since is not None and t >= self.revoked_since:
            return "revoked"
        if t < self.valid_from:
            return "not-yet-valid"
        if self.valid_until is not None and t >= self.valid_until:
            return "expired"
        return "valid"

    def _validity_fields(self) -> str:
        return f"{self.valid_from} {_opt(self.valid_until)} {_opt(self.revoked_since)}"


def _parse_validity(parts: Sequence[str]) -> tuple[int, int | None, int | None]:
    from_s, until_s, revoked_s = parts
    return (
        _parse_ms(from_s, "valid-from"),
        _parse_opt_ms(until_s, "valid-until"),
        _parse_opt_ms(revoked_s, "revoked-since"),
    )


@dataclass(frozen=True)
class KeyEntry(_Validity):
    """One signing key in the trust list (a ``key`` line)."""

    key: PublicKey
    holder: str
    usages: frozenset[Usage]
    valid_from: int
    valid_until: int | None = None
    revoked_since: int | None = None

    def __post_init__(self) -> None:
        self._check_validity()
        if not self.usages:
            raise MalformedError(f"key {self.key.key_id} has no usage")
        if Usage.ENCRYPTION in self.usages:
            raise MalformedError(
                f"key {self.key.key_id} is an Ed25519 signing key: it cannot have usage "
                "encryption (encryption keys are X25519 keys on enc lines)"
            )

    def line(self) -> str:
        """The entry's line in the trust-list text (no newline)."""
        usages = ",".join(u.value for u in Usage if u in self.usages)
        return f"key {self.key.vkey} {self.holder} {usages} {self._validity_fields()}"

    @classmethod
    def from_line(cls, line: str) -> KeyEntry:
        """Parse an entry line."""
        parts = line.split(" ")
        if len(parts) != 7 or parts[0] != "key":
            raise MalformedError(f"trust-list line is not a key entry: {line[:60]!r}")
        _, vkey, holder, usages_s, *validity = parts
        try:
            usages = frozenset(Usage(u) for u in usages_s.split(","))
        except ValueError:
            raise MalformedError(f"unknown key usage in {usages_s!r}") from None
        return cls(PublicKey.from_vkey(vkey), holder, usages, *_parse_validity(validity))


@dataclass(frozen=True)
class EncKeyEntry(_Validity):
    """One encryption key in the trust list (an ``enc`` line): what senders seal to."""

    key: EncryptionPublicKey
    holder: str
    valid_from: int
    valid_until: int | None = None
    revoked_since: int | None = None

    def __post_init__(self) -> None:
        self._check_validity()
        if self.holder.partition(":")[0] not in ENCRYPTION_HOLDER_KINDS:
            raise MalformedError(
                f"encryption key {self.key.key_id}: holder {self.holder} cannot hold one "
                f"(only {', '.join(k + ':CC' for k in ENCRYPTION_HOLDER_KINDS)})"
            )

    def line(self) -> str:
        """The entry's line in the trust-list text (no newline)."""
        return f"enc {self.key.ekey} {self.holder} {self._validity_fields()}"

    @classmethod
    def from_line(cls, line: str) -> EncKeyEntry:
        """Parse an ``enc`` line."""
        parts = line.split(" ")
        if len(parts) != 6 or parts[0] != "enc":
            raise MalformedError(f"trust-list line is not an encryption key: {line[:60]!r}")
        _, ekey, holder, *validity = parts
        return cls(EncryptionPublicKey.from_ekey(ekey), holder, *_parse_validity(validity))


@dataclass(frozen=True)
class TrustList:
    """A trust list. Obtain a trusted one with :meth:`open`; build new ones with the editors.

    ``signed_by`` (key ids of the trust anchors whose signatures verified) and ``problems``
    (reason codes found by a lenient :meth:`open`) describe how it was obtained and are not part
    of its text.
    """

    serial: int
    issued_at: int
    expires_at: int
    entries: tuple[KeyEntry, ...] = ()
    encryption_entries: tuple[EncKeyEntry, ...] = ()
    floor_digest: bytes | None = None
    quorum: int | None = None
    signed_by: tuple[str, ...] = field(default=(), compare=False)
    problems: tuple[str, ...] = field(default=(), compare=False)
    _by_id: dict[str, KeyEntry] = field(init=False, repr=False, compare=False)
    _enc_by_id: dict[str, EncKeyEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.expires_at <= self.issued_at:
            raise MalformedError("trust list expires before it is issued")
        ids = [e.key_id for e in self.entries]
        enc_ids = [e.key_id for e in self.encryption_entries]
        if len(set(ids + enc_ids)) != len(ids) + len(enc_ids):
            raise MalformedError("trust list lists a key twice")
        notes = [(e.key.name, e.key.key_hash) for e in self.entries]
        if len(set(notes)) != len(notes):
            # Two keys with one (name, note key hash) would make note signatures ambiguous.
            raise MalformedError("two trust-list keys share a name and a note key hash")
        if self.floor_digest is not None and len(self.floor_digest) != FLOOR_DIGEST_SIZE:
            raise MalformedError(f"the floor digest is {len(self.floor_digest)} bytes, not 32")
        if self.quorum is not None:
            n = len(self.roots(at=self.issued_at))
            if not 1 <= self.quorum <= n:
                raise MalformedError(
                    f"trust list quorum {self.quorum} is not between 1 and the {n} root holder(s) "
                    "(keys with usage trust-list valid when it is issued)"
                )
        object.__setattr__(self, "_by_id", dict(zip(ids, self.entries, strict=True)))
        object.__setattr__(
            self, "_enc_by_id", dict(zip(enc_ids, self.encryption_entries, strict=True))
        )

    # --- text and signatures -------------------------------------------------------------

    def text(self) -> str:
        """The note text (what the anchors sign)."""
        lines = [
            TRUST_LIST_HEADER,
            f"serial {self.serial}",
            f"issued-ms {self.issued_at}",
            f"expires-ms {self.expires_at}",
            *([] if self.quorum is None else [f"{QUORUM_LINE}{self.quorum}"]),
            *([] if self.floor_digest is None else [f"{FLOOR_LINE}{self.floor_digest.hex()}"]),
            *(e.line() for e in self.entries),
            *(e.line() for e in self.encryption_entries),
        ]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str) -> TrustList:
        """Parse a trust-list text (unverified); :class:`MalformedError` unless canonical."""
        check_text(text)
        lines = text[:-1].split("\n")
        if len(lines) < 4 or lines[0] != TRUST_LIST_HEADER:
            raise MalformedError(f"not a trust list (first line is not {TRUST_LIST_HEADER!r})")
        fields = {}
        for line, name in zip(lines[1:4], ("serial", "issued-ms", "expires-ms"), strict=True):
            key, _, value = line.partition(" ")
            if key != name:
                raise MalformedError(f"trust list: expected {name!r}, found {line[:40]!r}")
            fields[name] = _parse_ms(value, name)
        rest = lines[4:]
        quorum = None
        if rest and rest[0].startswith(QUORUM_LINE):
            quorum = _parse_ms(rest.pop(0)[len(QUORUM_LINE) :], "quorum")
        floor = None
        if rest and rest[0].startswith(FLOOR_LINE):
            floor = _parse_floor(rest.pop(0)[len(FLOOR_LINE) :])
        keys = [KeyEntry.from_line(x) for x in rest if not x.startswith(ENC_LINE)]
        encs = [EncKeyEntry.from_line(x) for x in rest if x.startswith(ENC_LINE)]
        tl = cls(
            fields["serial"],
            fields["issued-ms"],
            fields["expires-ms"],
            tuple(keys),
            tuple(encs),
            floor,
            quorum,
        )
        if tl.text() != text:
            raise MalformedError("trust list text is not canonical")
        return tl

    def sign(self, key: SigningKey) -> bytes:
        """The signed trust list (note bytes), signed by one anchor key."""
        return Note.unsigned(self.text()).sign(key).to_bytes()

    @staticmethod
    def cosign(data: bytes, key: SigningKey) -> bytes:
        """Add one more anchor's signature to an already signed trust list."""
        return Note.parse(data).sign(key).to_bytes()

    @classmethod
    def open(
        cls,
        data: bytes,
        anchors: TrustAnchor | Sequence[PublicKey],
        *,
        now: int,
        strict: bool = True,
    ) -> TrustList:
        """Parse and verify a signed trust list against a trust anchor at time ``now``.

        ``anchors`` is a :class:`TrustAnchor` (the roots and quorum of the genesis list, or of
        the list in force before this one), or verifier keys (a single-root deployment: one
        valid signature by any of them suffices). A list that names a ``quorum`` must also
        carry that many of its own roots' signatures. One holder counts once, however many of
        its keys signed (or however often); signatures by keys that are no root are ignored; a
        root's signature that fails rejects the list (the signed-note rule).

        Strict (the default) raises :class:`TrustListError` with reason ``TRUST_LIST_UNSIGNED``,
        ``TRUST_LIST_UNTRUSTED`` (no anchor root signed it, or a root's signature fails),
        ``TRUST_QUORUM_MISSING`` (fewer root holders than the quorum signed it),
        ``TRUST_LIST_EXPIRED``, ``TRUST_LIST_NOT_YET_VALID`` or ``TRUST_LIST_MALFORMED``.
        Lenient (``strict=False``, for the auditor's report) records those reasons in
        :attr:`problems` instead, except a malformed list, which is always raised.
        """
        anchor = anchors if isinstance(anchors, TrustAnchor) else TrustAnchor.from_keys(anchors)
        problems: list[tuple[str, str]] = []
        signed_by: tuple[str, ...] = ()
        try:
            note = Note.parse(data)
            text = note.text
        except UnsignedNoteError:
            problems.append(("TRUST_LIST_UNSIGNED", _PROBLEM_TEXT["TRUST_LIST_UNSIGNED"]))
            text = data.decode("utf-8", errors="strict") if data.endswith(b"\n") else ""
            note = None
        except MalformedError as exc:
            raise TrustListError(
                f"malformed trust list: {exc}", reason="TRUST_LIST_MALFORMED"
            ) from exc
        try:
            tl = cls.from_text(text)
        except MalformedError as exc:
            raise TrustListError(
                f"malformed trust list: {exc}", reason="TRUST_LIST_MALFORMED"
            ) from exc
        if note is not None:
            signed_by, found = _check_signatures(note, tl, anchor)
            problems.extend(found)
        if now < tl.issued_at:
            problems.append(("TRUST_LIST_NOT_YET_VALID", _PROBLEM_TEXT["TRUST_LIST_NOT_YET_VALID"]))
        if now >= tl.expires_at:
            problems.append(("TRUST_LIST_EXPIRED", _PROBLEM_TEXT["TRUST_LIST_EXPIRED"]))
        if problems and strict:
            raise TrustListError(problems[0][1], reason=problems[0][0])
        return replace(tl, signed_by=signed_by, problems=tuple(p for p, _ in problems))

    def roots(self, *, at: int) -> dict[str, list[KeyEntry]]:
        """The root keys valid at ``at`` (``key`` lines with usage trust-list), by holder."""
        found: dict[str, list[KeyEntry]] = {}
        for e in self.entries:
            if Usage.TRUST_LIST in e.usages and e.status_at(at) == "valid":
                found.setdefault(e.holder, []).append(e)
        return found

    # --- lookups -----------------------------------------------------------------------------

    def entry(self, key_id: str) -> KeyEntry:
        """The entry of ``key_id``; :class:`UntrustedKeyError` (``KEY_UNKNOWN``) if none."""
        found = self._by_id.get(key_id)
        if found is not None:
            return found
        raise UntrustedKeyError(f"key {key_id} is not in the trust list", reason="KEY_UNKNOWN")

    def entry_for(self, sig: NoteSignature) -> KeyEntry | None:
        """The entry whose key made note signature ``sig`` (name and key hash), if any."""
        for e in self.entries:
            if sig.made_by(e.key):
                return e
        return None

    def entries_of(self, holder: str) -> list[KeyEntry]:
        """Every entry (current and past) of ``holder``."""
        return [e for e in self.entries if e.holder == holder]

    def node_keys(self, state: str, *, at: int | None = None) -> list[KeyEntry]:
        """The signing keys of state ``state``'s node (``node:CC``), current and past; with
        ``at``, only those valid then."""
        found = self.entries_of(node_holder(state))
        return found if at is None else [e for e in found if e.status_at(at) == "valid"]

    def encryption_entry(self, key_id: str) -> EncKeyEntry:
        """The encryption key ``key_id``; :class:`UntrustedKeyError` (``KEY_UNKNOWN``) if none."""
        found = self._enc_by_id.get(key_id)
        if found is not None:
            return found
        raise UntrustedKeyError(
            f"encryption key {key_id} is not in the trust list", reason="KEY_UNKNOWN"
        )

    def encryption_key(self, holder: str, *, at: int) -> EncKeyEntry:
        """The encryption key to seal to for ``holder`` at time ``at``: of its keys valid then
        (not yet ended, not revoked), the one valid from the latest time (after a rotation,
        the new key). :class:`UntrustedKeyError` (``KEY_UNKNOWN``) when it has none."""
        valid = [
            e for e in self.encryption_entries if e.holder == holder and e.status_at(at) == "valid"
        ]
        if not valid:
            raise UntrustedKeyError(
                f"{holder} has no encryption key valid at {at} in trust list {self.serial}",
                reason="KEY_UNKNOWN",
                hint="the holder generates one; the operator adds it to the trust list",
            )
        return max(valid, key=lambda e: e.valid_from)

    def check_floor(self, digest: bytes) -> None:
        """Refuse a regional floor other than the pinned one (:class:`FloorError`:
        ``FLOOR_UNPINNED`` when the list pins none, ``FLOOR_MISMATCH`` when it pins another)."""
        if self.floor_digest is None:
            raise FloorError(
                f"trust list {self.serial} pins no regional floor", reason="FLOOR_UNPINNED"
            )
        if digest != self.floor_digest:
            raise FloorError(
                f"the regional floor {digest.hex()[:16]}... is not the one trust list "
                f"{self.serial} pins ({self.floor_digest.hex()[:16]}...)",
                reason="FLOOR_MISMATCH",
                hint="run under the agreed floor, or have the operator pin the new one",
            )

    def check(
        self, entry: KeyEntry, *, at: int, usage: Usage, holders: Iterable[str] | None = None
    ) -> KeyEntry:
        """Check that ``entry`` may sign ``usage`` evidence at time ``at`` (ms).

        Raises :class:`UntrustedKeyError` with reason ``KEY_WRONG_USAGE``, ``KEY_WRONG_HOLDER``,
        ``KEY_REVOKED``, ``KEY_EXPIRED`` or ``KEY_NOT_YET_VALID``.
        """
        if usage not in entry.usages:
            raise UntrustedKeyError(
                f"key {entry.key_id} ({entry.holder}) may not sign {usage.value} evidence",
                reason="KEY_WRONG_USAGE",
            )
        if holders is not None:
            allowed = list(holders)
            if entry.holder not in allowed:
                raise UntrustedKeyError(
                    f"key {entry.key_id} belongs to {entry.holder}, "
                    f"expected {' or '.join(allowed)}",
                    reason="KEY_WRONG_HOLDER",
                )
        status = entry.status_at(at)
        if status != "valid":
            reason = {
                "revoked": "KEY_REVOKED",
                "expired": "KEY_EXPIRED",
                "not-yet-valid": "KEY_NOT_YET_VALID",
            }[status]
            raise UntrustedKeyError(
                f"key {entry.key_id} ({entry.holder}) is {status} at {at}", reason=reason
            )
        return entry

    # --- editing (pure: each returns a new, unsigned list) ----------------------------------

    def reissued(self, *, issued_at: int, expires_at: int) -> TrustList:
        """The same entries under the next serial number and a new validity period."""
        return replace(
            self,
            serial=self.serial + 1,
            issued_at=issued_at,
            expires_at=expires_at,
            signed_by=(),
            problems=(),
        )

    def with_entry(self, entry: KeyEntry | EncKeyEntry) -> TrustList:
        """Add a key (signing or encryption), or replace the entry with the same key id."""
        if isinstance(entry, EncKeyEntry):
            kept_enc = tuple(e for e in self.encryption_entries if e.key_id != entry.key_id)
            return replace(self, encryption_entries=(*kept_enc, entry), signed_by=(), problems=())
        kept = tuple(e for e in self.entries if e.key_id != entry.key_id)
        return replace(self, entries=(*kept, entry), signed_by=(), problems=())

    def with_floor(self, digest: bytes) -> TrustList:
        """Pin the regional floor whose SHA-256 is ``digest``."""
        return replace(self, floor_digest=digest, signed_by=(), problems=())

    def _any_entry(self, key_id: str) -> KeyEntry | EncKeyEntry:
        if key_id in self._enc_by_id:
            return self._enc_by_id[key_id]
        return self.entry(key_id)

    def retire(self, key_id: str, *, until: int) -> TrustList:
        """End a key's validity at ``until`` (rotation): earlier evidence still verifies, and
        an encryption key is no longer chosen for sealing from then on."""
        return self.with_entry(replace(self._any_entry(key_id), valid_until=until))

    def revoke(self, key_id: str, *, since: int) -> TrustList:
        """Revoke a key from ``since`` on (possibly in the past, from the suspected compromise)."""
        return self.with_entry(replace(self._any_entry(key_id), revoked_since=since))


FLOOR_LINE = "floor "
QUORUM_LINE = "quorum "
ENC_LINE = "enc "


def _parse_floor(text: str) -> bytes:
    if len(text) != 2 * FLOOR_DIGEST_SIZE or text != text.lower():
        raise MalformedError("floor: 64 lowercase hex digits expected")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise MalformedError("floor: 64 lowercase hex digits expected") from None


@dataclass(frozen=True)
class TrustAnchor:
    """Who may sign the next trust list, and how many of them must: the root keys (entries
    with usage trust-list; a holder counts once, however many of its keys signed) and the
    quorum ``k``; ``serial`` is the lowest serial a list judged by it may carry.

    A verifier starts from the genesis list, given out of band (:meth:`genesis`), and judges
    each later list by the roots and quorum of the list in force before it (:meth:`of`); a
    single-root deployment's anchor is the operator root's verifier keys (:meth:`from_keys`).
    """

    roots: tuple[KeyEntry, ...]
    k: int
    serial: int = 0
    pin: bytes | None = None
    """Set on an anchor given as the genesis list's SHA-256 only (:meth:`pinned`): it has no
    roots until :meth:`resolve` finds the list with that digest (on the trust topic)."""

    @classmethod
    def pinned(cls, digest: bytes) -> TrustAnchor:
        """The anchor given as ``sha256:<hex>`` of the genesis list (the signed note's bytes):
        a short value to publish out of band; the list itself is read from the trust topic,
        which keeps every list (:meth:`resolve`)."""
        if len(digest) != 32:
            raise TrustListError(
                "a pinned genesis list is its SHA-256: 64 hex digits after sha256:",
                reason="TRUST_ANCHOR_INVALID",
            )
        return cls((), 1, 0, digest)

    def resolve(self, lists: Iterable[bytes]) -> TrustAnchor:
        """A pinned anchor made from the list among ``lists`` whose SHA-256 is the pin (checked
        as a genesis list); any other anchor unchanged. :class:`TrustListError`
        ``TRUST_ANCHOR_UNRESOLVED`` when none has that digest."""
        if self.pin is None:
            return self
        for data in lists:
            if hashlib.sha256(data).digest() == self.pin:
                return TrustAnchor.genesis(data)
        raise TrustListError(
            f"no trust list with SHA-256 {self.pin.hex()} (the pinned genesis list) was found",
            reason="TRUST_ANCHOR_UNRESOLVED",
        )

    @classmethod
    def from_keys(cls, keys: Iterable[PublicKey]) -> TrustAnchor:
        """The single-root anchor: any one of these operator root keys signs a list alone."""
        return cls(
            tuple(KeyEntry(k, ROOT_HOLDER, frozenset({Usage.TRUST_LIST}), 0) for k in keys), 1
        )

    @classmethod
    def of(cls, tl: TrustList) -> TrustAnchor:
        """The roots and quorum a list names: what judges the list after it."""
        if tl.quorum is None:
            raise TrustListError(
                f"trust list {tl.serial} names no quorum and no roots: it is a single-root list, "
                "judged by the operator root's keys",
                reason="TRUST_ANCHOR_INVALID",
            )
        return cls(
            tuple(e for e in tl.entries if Usage.TRUST_LIST in e.usages), tl.quorum, tl.serial
        )

    @classmethod
    def genesis(cls, data: bytes) -> TrustAnchor:
        """The anchor a genesis list (the signed note, given out of band) makes, once it is
        shown to carry a quorum of its own roots' signatures (its expiry does not matter: it
        names who signs the next list). :class:`TrustListError` otherwise."""
        try:
            tl = TrustList.from_text(Note.parse(data).text)
        except MalformedError as exc:
            raise TrustListError(
                f"the genesis trust list does not parse: {exc}", reason="TRUST_ANCHOR_INVALID"
            ) from exc
        anchor = cls.of(tl)
        TrustList.open(data, anchor, now=tl.issued_at)
        return anchor

    def follow(self, lists: Iterable[bytes]) -> TrustAnchor:
        """The anchor after taking, in serial order, each of ``lists`` with a higher serial that
        the anchor in force then accepts (judged at its own issue time: an old list's expiry
        does not matter here); lists refused or malformed are skipped. What lets a verifier
        that holds the genesis list judge a list several root changes later."""
        parsed: list[tuple[TrustList, bytes]] = []
        for data in lists:
            try:
                parsed.append((TrustList.from_text(Note.parse(data).text), data))
            except MalformedError:
                continue
        anchor = self
        for unverified, data in sorted(parsed, key=lambda p: p[0].serial):
            if unverified.serial <= anchor.serial:
                continue
            try:
                tl = TrustList.open(data, anchor, now=unverified.issued_at)
            except TrustListError:
                continue
            if tl.quorum is not None:
                anchor = TrustAnchor.of(tl)
        return anchor

    @property
    def holders(self) -> frozenset[str]:
        """Every holder of a root key (valid or not)."""
        return frozenset(e.holder for e in self.roots)

    def signers(self, keys: Iterable[PublicKey], *, at: int) -> set[str]:
        """The holders one of whose root keys valid at ``at`` is among ``keys``."""
        ids = {k.key_id for k in keys}
        return {e.holder for e in self.roots if e.key_id in ids and e.status_at(at) == "valid"}

    def describe(self) -> str:
        """``3 of 5 roots (member:AR, ...)``, for messages."""
        return f"{self.k} of {len(self.holders)} ({', '.join(sorted(self.holders))})"


def _check_signatures(
    note: Note, tl: TrustList, anchor: TrustAnchor
) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    """The key ids of the roots whose signatures verify, and the problems: no anchor root
    signed (``TRUST_LIST_UNTRUSTED``), fewer holders than a quorum (``TRUST_QUORUM_MISSING``,
    of the roots in force, then of its own)."""
    judges = [("the roots in force", anchor)]
    if tl.quorum is not None:
        judges.append(("its own roots", TrustAnchor.of(tl)))
    keys = {e.key_id: e.key for _, j in judges for e in j.roots}
    try:
        good = note.verify(keys.values())
    except SignatureError as exc:
        return (), [("TRUST_LIST_UNTRUSTED", f"{_PROBLEM_TEXT['TRUST_LIST_UNTRUSTED']} ({exc})")]
    signed_by = tuple(dict.fromkeys(k.key_id for k in good))
    problems: list[tuple[str, str]] = []
    for whose, judge in judges:
        holders = judge.signers(good, at=tl.issued_at)
        if not holders and judge is anchor:
            problems.append(("TRUST_LIST_UNTRUSTED", _PROBLEM_TEXT["TRUST_LIST_UNTRUSTED"]))
        elif len(holders) < judge.k:
            problems.append(
                (
                    "TRUST_QUORUM_MISSING",
                    f"trust list {tl.serial} is signed by {len(holders)} of {whose} "
                    f"({', '.join(sorted(holders)) or 'none'}); it needs {judge.describe()}: "
                    "more members sign it (puente trust sign --as CC) before it is published",
                )
            )
            break  # one shortfall is enough to say
    return signed_by, problems


_PROBLEM_TEXT = {
    "TRUST_LIST_UNSIGNED": "the trust list carries no signature",
    "TRUST_LIST_UNTRUSTED": "no trust anchor's signature on the trust list verifies",
    "TRUST_LIST_EXPIRED": "the trust list has expired; fetch the current one",
    "TRUST_LIST_NOT_YET_VALID": "the trust list is not valid yet (check the clock)",
}
