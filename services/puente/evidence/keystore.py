"""A directory of keys (the file edge of the evidence layer).

Layout (directory mode 0700)::

    <stem>.skey   the private key, signed-note signer encoding, mode 0600 (absent for a key
                  imported from its holder, e.g. a member state's receipt key)
    <stem>.vkey   the public verifier key, one line
    <stem>.pem    the public key as PEM, for openssl
    <stem>.json   what the trust list says about it: holder, usages, validity, revocation

``<stem>`` is ``<holder with ':' as '-'>-<key id>``. The trust list is built from the ``.json``
files, so rotating or revoking a key is an edit there followed by a new, signed trust list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from puente.evidence.errors import KeyStoreError, UntrustedKeyError
from puente.evidence.keys import (
    PRIVATE_SUFFIX,
    PUBLIC_SUFFIX,
    PublicKey,
    SigningKey,
    ensure_private_dir,
    read_private_key,
    read_public_key,
    write_private_key,
    write_public_key,
)
from puente.evidence.trust import KeyEntry, TrustList, Usage, check_holder
from puente.logs import get_logger

log = get_logger("evidence.keys")

DEFAULT_USAGES: dict[str, frozenset[Usage]] = {
    "service": frozenset({Usage.DELIVERY, Usage.CHECKPOINT}),
    "member": frozenset({Usage.RECEIPT, Usage.NOTICE}),
    "operator": frozenset({Usage.TRUST_LIST}),
}


def default_key_name(holder: str) -> str:
    """``puente.svc/policy``, ``puente.member/MX``, ``puente.operator/root``."""
    kind, _, who = check_holder(holder).partition(":")
    return {"service": "puente.svc", "member": "puente.member", "operator": "puente.operator"}[
        kind
    ] + f"/{who}"


def holder_for(spec: str) -> str:
    """A holder from what people type: ``service``, ``service:gateway``, ``MX``, ``root``."""
    if spec == "service":
        return "service:policy"
    if spec == "root":
        return "operator:root"
    if len(spec) == 2 and spec.isalpha():
        return f"member:{spec.upper()}"
    return check_holder(spec)


@dataclass(frozen=True)
class KeyMeta:
    """The ``.json`` file of a key."""

    key_id: str
    name: str
    holder: str
    usages: tuple[str, ...]
    valid_from: int
    valid_until: int | None = None
    revoked_since: int | None = None

    def entry(self, public: PublicKey) -> KeyEntry:
        """The trust-list entry."""
        return KeyEntry(
            public,
            self.holder,
            frozenset(Usage(u) for u in self.usages),
            self.valid_from,
            self.valid_until,
            self.revoked_since,
        )


class KeyStore:
    """The keys in one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _stem(self, holder: str, key_id: str) -> Path:
        return self.root / f"{holder.replace(':', '-')}-{key_id}"

    def generate(
        self,
        holder: str,
        *,
        valid_from: int,
        usages: Iterable[Usage] | None = None,
        name: str | None = None,
    ) -> tuple[SigningKey, KeyMeta]:
        """Create a key for ``holder``; the private part goes to a new 0600 file."""
        holder = check_holder(holder)
        ensure_private_dir(self.root)
        key = SigningKey.generate(name or default_key_name(holder))
        use = tuple(u.value for u in (usages or DEFAULT_USAGES[holder.partition(":")[0]]))
        meta = KeyMeta(key.key_id, key.name, holder, use, valid_from)
        stem = self._stem(holder, key.key_id)
        write_private_key(key, stem.with_suffix(PRIVATE_SUFFIX))
        write_public_key(key.public, stem.with_suffix(PUBLIC_SUFFIX))
        self._write_meta(stem, meta)
        log.info("key generated", key_id=key.key_id, holder=holder)
        return key, meta

    def import_public(
        self, public: PublicKey, holder: str, *, valid_from: int, usages: Iterable[Usage] | None
    ) -> KeyMeta:
        """Record a key whose private part stays with its holder (a member state's key)."""
        holder = check_holder(holder)
        ensure_private_dir(self.root)
        use = tuple(u.value for u in (usages or DEFAULT_USAGES[holder.partition(":")[0]]))
        meta = KeyMeta(public.key_id, public.name, holder, use, valid_from)
        stem = self._stem(holder, public.key_id)
        write_public_key(public, stem.with_suffix(PUBLIC_SUFFIX))
        self._write_meta(stem, meta)
        log.info("key imported", key_id=public.key_id, holder=holder)
        return meta

    def _write_meta(self, stem: Path, meta: KeyMeta) -> None:
        stem.with_suffix(".json").write_text(json.dumps(asdict(meta), indent=2) + "\n")

    def key_metas(self) -> list[KeyMeta]:
        """Every key, oldest first."""
        out = []
        for path in sorted(self.root.glob("*.json")):
            try:
                raw = json.loads(path.read_text())
                raw["usages"] = tuple(raw["usages"])
                out.append(KeyMeta(**raw))
            except (ValueError, TypeError, KeyError) as exc:
                raise KeyStoreError(f"{path}: not a key description: {exc}") from None
        return sorted(out, key=lambda m: (m.valid_from, m.key_id))

    def meta(self, key_id: str) -> KeyMeta:
        """The description of ``key_id`` (a unique prefix is enough)."""
        found = [m for m in self.key_metas() if m.key_id.startswith(key_id)]
        if len(found) != 1:
            raise KeyStoreError(
                f"{'no' if not found else 'more than one'} key matches {key_id!r} in {self.root}"
            )
        return found[0]

    def update(self, meta: KeyMeta) -> None:
        """Save a changed description (rotation, revocation)."""
        self._write_meta(self._stem(meta.holder, meta.key_id), meta)

    def public(self, meta: KeyMeta) -> PublicKey:
        """The public key of ``meta``."""
        return read_public_key(self._stem(meta.holder, meta.key_id).with_suffix(PUBLIC_SUFFIX))

    def signing_key(self, meta: KeyMeta) -> SigningKey:
        """The private key of ``meta`` (refused unless its file is owner-only)."""
        return read_private_key(self._stem(meta.holder, meta.key_id).with_suffix(PRIVATE_SUFFIX))

    def current(self, holder: str, *, usage: Usage, at: int) -> SigningKey:
        """The newest key of ``holder`` valid for ``usage`` at ``at`` whose private part is
        here: what the policy service signs with."""
        holder = check_holder(holder)
        for meta in reversed(self.key_metas()):
            if meta.holder != holder or usage.value not in meta.usages:
                continue
            if meta.entry(self.public(meta)).status_at(at) != "valid":
                continue
            path = self._stem(holder, meta.key_id).with_suffix(PRIVATE_SUFFIX)
            if path.exists():
                return read_private_key(path)
        raise UntrustedKeyError(
            f"no key of {holder} for {usage.value} is valid now in {self.root}",
            reason="KEY_UNKNOWN",
            hint=f"puente keys generate --for {holder}",
        )

    def rotate(
        self, holder: str, *, at: int, overlap_ms: int, usages: Iterable[Usage] | None = None
    ) -> tuple[SigningKey, list[KeyMeta]]:
        """A new key for ``holder`` valid from ``at``; the holder's current keys end at
        ``at + overlap_ms`` (in-flight evidence signed with them before then stays valid)."""
        holder = check_holder(holder)
        retired = []
        for meta in self.key_metas():
            if meta.holder == holder and meta.valid_until is None and meta.revoked_since is None:
                retired.append(replace(meta, valid_until=at + overlap_ms))
        key, _ = self.generate(holder, valid_from=at, usages=usages)
        for meta in retired:
            self.update(meta)
        log.info("key rotated", holder=holder, key_id=key.key_id, retired=len(retired))
        return key, retired

    def revoke(self, key_id: str, *, since: int) -> KeyMeta:
        """Revoke a key from ``since`` on."""
        meta = replace(self.meta(key_id), revoked_since=since)
        self.update(meta)
        log.info("key revoked", key_id=meta.key_id, holder=meta.holder)
        return meta

    def trust_list(self, *, serial: int, issued_at: int, expires_at: int) -> TrustList:
        """The (unsigned) trust list of every non-operator key here."""
        entries = tuple(
            m.entry(self.public(m))
            for m in self.key_metas()
            if not m.holder.startswith("operator:")
        )
        return TrustList(serial, issued_at, expires_at, entries)
