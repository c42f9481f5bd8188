"""A directory of keys (the file edge of the evidence layer).

Layout (directory mode 0700)::

    <stem>.skey   the private key, signed-note signer encoding, mode 0600 (absent for a key
                  imported from its holder, e.g. a member state's receipt key)
    <stem>.vkey   the public verifier key, one line (signing keys)
    <stem>.ekey   the public encryption key, one line (encryption keys)
    <stem>.pem    the public key as PEM, for openssl
    <stem>.json   what the trust list says about it: holder, usages, validity, revocation

``<stem>`` is ``<holder with ':' as '-'>-<key id>``. The trust list is built from the ``.json``
files, so rotating or revoking a key is an edit there followed by a new, signed trust list.

Encryption keys (X25519, usage ``encryption``, holders ``member:CC`` and ``node:CC``) live beside
the signing keys and rotate and revoke the same way, separately from them. Their private parts
stay until :meth:`KeyStore.delete_private` removes them, however old: what was sealed to a
rotated or revoked key is still opened with it (:meth:`KeyStore.keyring`).

A long-running process asks its key store again and again (a node every few seconds, for a
rotated key): a :class:`KeyStore` reads the files once and parses them again only when their
:class:`Listing` — the directory's times, its key files' names, and each description's inode,
size and times — changed since, or when they had changed less than :data:`SETTLE_NS` before
that read (a file system with coarse timestamps may give a later change the same ones; see
:func:`must_read`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TypeVar, cast

from puente.evidence.enckeys import (
    ENCRYPTION_PUBLIC_SUFFIX,
    EncryptionKey,
    EncryptionPublicKey,
    KeyRing,
    read_encryption_key,
    read_encryption_public,
    write_encryption_key,
    write_encryption_public,
)
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
from puente.evidence.trust import (
    ENCRYPTION_HOLDER_KINDS,
    EncKeyEntry,
    KeyEntry,
    TrustList,
    Usage,
    check_holder,
)
from puente.logs import get_logger

log = get_logger("evidence.keys")

T = TypeVar("T")

TRUST_LIST_FILE = "trust-list.note"
"""The signed trust list, as ``puente keys trust-list sign`` writes it beside the keys."""
GENESIS_FILE = "trust-genesis.note"
"""The genesis trust list (the trust anchor of a federation), kept beside the keys."""

DEFAULT_USAGES: dict[str, frozenset[Usage]] = {
    "service": frozenset({Usage.DELIVERY, Usage.CHECKPOINT}),
    # A node signs its deliveries, checkpoints and early-warning aggregates with one key.
    "node": frozenset({Usage.DELIVERY, Usage.CHECKPOINT, Usage.EARLY_WARNING}),
    "member": frozenset({Usage.RECEIPT, Usage.NOTICE}),
    "operator": frozenset({Usage.TRUST_LIST}),
}


def default_key_name(holder: str) -> str:
    """``puente.svc/policy``, ``puente.node/MX``, ``puente.member/MX``, ``puente.operator/root``
    (an encryption key of a holder takes the same name as its signing key: the algorithm byte
    keeps their key ids apart)."""
    kind, _, who = check_holder(holder).partition(":")
    prefix = {
        "service": "puente.svc",
        "node": "puente.node",
        "member": "puente.member",
        "operator": "puente.operator",
    }
    return f"{prefix[kind]}/{who}"


def root_key_name(code: str) -> str:
    """The name of member state ``code``'s root key (usage trust-list): ``puente.root/MX``."""
    return f"puente.root/{code}"


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

    @property
    def is_encryption(self) -> bool:
        """An X25519 encryption key (usage ``encryption``), not an Ed25519 signing key."""
        return Usage.ENCRYPTION.value in self.usages

    def encryption_entry(self, public: EncryptionPublicKey) -> EncKeyEntry:
        """The trust-list ``enc`` entry."""
        return EncKeyEntry(
            public, self.holder, self.valid_from, self.valid_until, self.revoked_since
        )

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


SETTLE_NS = 2_000_000_000
"""How long after its newest change a key store's listing is trusted to show the next change:
2 s, the coarsest file timestamps (FAT); ext4, XFS, tmpfs and APFS keep nanoseconds."""

KEY_FILE_SUFFIXES = (".json", PRIVATE_SUFFIX, PUBLIC_SUFFIX, ENCRYPTION_PUBLIC_SUFFIX)
"""The files a key store reads (``.pem`` files are for openssl only)."""


@dataclass(frozen=True)
class Listing:
    """What a key store looks like without opening its files: the directory's inode, mtime and
    ctime (ns), the names of its key files, and per description (``.json``, the files
    rewritten in place: :meth:`KeyStore.update`) its name, inode, size, mtime and ctime. A file
    added, removed or renamed changes the directory's times; a description rewritten in place
    its own (its ctime, which no tool sets back, included). Key files are written once (a new
    key is a new file), so theirs are not looked at: a listing costs one ``stat`` per key."""

    directory: tuple[int, int, int]
    names: frozenset[str]
    descriptions: tuple[tuple[str, int, int, int, int], ...]

    @classmethod
    def of(cls, root: Path, known: Listing | None = None) -> Listing:
        """The listing of directory ``root`` now (empty when there is none; KeyStoreError when
        it may not be read). ``known``: a settled listing of it (:func:`settled`), whose names
        are taken again if the directory did not change since."""
        try:
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            return cls((0, 0, 0), frozenset(), ())
        except PermissionError:
            raise KeyStoreError(
                f"key store {root} cannot be read by this process",
                hint="a key store is a directory its service's user owns (mode 0700)",
            ) from None
        try:
            d = os.fstat(fd)
            directory = (d.st_ino, d.st_mtime_ns, d.st_ctime_ns)
            if known is not None and known.directory == directory:
                names = known.names
            else:
                names = frozenset(n for n in os.listdir(fd) if n.endswith(KEY_FILE_SUFFIXES))
            descriptions = []
            for name in sorted(n for n in names if n.endswith(".json")):
                try:
                    st = os.stat(name, dir_fd=fd)
                except FileNotFoundError:  # removed since the directory was listed
                    names = names - {name}
                    continue
                descriptions.append((name, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
        finally:
            os.close(fd)
        return cls(directory, names, tuple(descriptions))

    @property
    def newest_ns(self) -> int:
        """The time of the last change it shows (0 for an empty store)."""
        times = [*self.directory[1:], *(t for f in self.descriptions for t in f[3:])]
        return max(times)


def settled(listing: Listing, at_ns: int) -> bool:
    """Whether ``listing``, taken at ``at_ns`` (wall-clock ns), shows every later change: its
    newest change was at least :data:`SETTLE_NS` before (not after: a clock behind the file
    system's). A file changed after it then bears later times than any it showed, on any file
    system whose timestamps are at most :data:`SETTLE_NS` coarse; one changed sooner might
    bear the same."""
    return at_ns - listing.newest_ns >= SETTLE_NS


def must_read(read: Listing | None, read_at_ns: int, now: Listing) -> bool:
    """Whether a key store read when it showed ``read`` (listed at ``read_at_ns``; None: never
    read) must be read again now that it shows ``now``: when the two differ, or when ``read``
    had not settled (a change since might show the same)."""
    return read is None or read != now or not settled(read, read_at_ns)


@dataclass
class _Contents:
    """A key store as read when it showed ``listing``: its descriptions, and the key files
    parsed since (each once)."""

    listing: Listing
    listed_at_ns: int
    metas: list[KeyMeta]
    parsed: dict[tuple[str, Callable[[Path], object]], object] = field(default_factory=dict)


class KeyStore:
    """The keys in one directory (read again only when changed: :func:`must_read`)."""

    def __init__(self, root: Path, *, clock: Callable[[], int] = time.time_ns) -> None:
        """``clock``: the wall clock (ns) its listings are timed with, as file times are."""
        self.root = root
        self.clock = clock
        self._read: _Contents | None = None
        self.reads = 0  # how many times its descriptions were read and parsed

    def _contents(self) -> _Contents:
        """The store as it is now: as last read, unless it changed since (or may have)."""
        at = self.clock()
        last = self._read
        known = (
            None if last is None or not settled(last.listing, last.listed_at_ns) else last.listing
        )
        listing = Listing.of(self.root, known)
        if last is not None and not must_read(last.listing, last.listed_at_ns, listing):
            return last
        metas = []
        for name, *_ in listing.descriptions:
            path = self.root / name
            try:
                raw = json.loads(path.read_text())
                raw["usages"] = tuple(raw["usages"])
                metas.append(KeyMeta(**raw))
            except (ValueError, TypeError, KeyError) as exc:
                raise KeyStoreError(f"{path}: not a key description: {exc}") from None
        metas.sort(key=lambda m: (m.valid_from, m.key_id))
        self.reads += 1
        self._read = _Contents(listing, at, metas)
        return self._read

    def _forget(self) -> None:
        """This process changed the store: read it again at the next question."""
        self._read = None

    def _parsed(self, c: _Contents, path: Path, read: Callable[[Path], T]) -> T:
        """``read(path)``, once per read of the store (what raises is not remembered)."""
        hit = c.parsed.get((path.name, read))
        if hit is None:
            hit = c.parsed[(path.name, read)] = read(path)
        return cast(T, hit)

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
        """Create a signing key for ``holder``; the private part goes to a new 0600 file."""
        holder = check_holder(holder)
        use = _signing_usages(holder, usages)
        key = SigningKey.generate(name or default_key_name(holder))
        stem = self._stem(holder, key.key_id)
        ensure_private_dir(self.root)
        write_private_key(key, stem.with_suffix(PRIVATE_SUFFIX))
        write_public_key(key.public, stem.with_suffix(PUBLIC_SUFFIX))
        return key, self._record(
            KeyMeta(key.key_id, key.name, holder, use, valid_from), "generated"
        )

    def import_public(
        self, public: PublicKey, holder: str, *, valid_from: int, usages: Iterable[Usage] | None
    ) -> KeyMeta:
        """Record a key whose private part stays with its holder (a member state's key)."""
        holder = check_holder(holder)
        use = _signing_usages(holder, usages)
        ensure_private_dir(self.root)
        write_public_key(public, self._stem(holder, public.key_id).with_suffix(PUBLIC_SUFFIX))
        return self._record(
            KeyMeta(public.key_id, public.name, holder, use, valid_from), "imported"
        )

    def generate_encryption(
        self, holder: str, *, valid_from: int, name: str | None = None
    ) -> tuple[EncryptionKey, KeyMeta]:
        """Create an X25519 encryption key for ``holder`` (``member:CC`` or ``node:CC``)."""
        holder = _encryption_holder(holder)
        key = EncryptionKey.generate(name or default_key_name(holder))
        stem = self._stem(holder, key.key_id)
        ensure_private_dir(self.root)
        write_encryption_key(key, stem.with_suffix(PRIVATE_SUFFIX))
        write_encryption_public(key.public, stem.with_suffix(ENCRYPTION_PUBLIC_SUFFIX))
        meta = KeyMeta(key.key_id, key.name, holder, _ENCRYPTION, valid_from)
        return key, self._record(meta, "generated")

    def import_encryption(
        self, public: EncryptionPublicKey, holder: str, *, valid_from: int
    ) -> KeyMeta:
        """Record an encryption key whose private part stays with its holder (a member
        state's own key, generated on its side): what the trust list lets others seal to."""
        holder = _encryption_holder(holder)
        ensure_private_dir(self.root)
        stem = self._stem(holder, public.key_id)
        write_encryption_public(public, stem.with_suffix(ENCRYPTION_PUBLIC_SUFFIX))
        meta = KeyMeta(public.key_id, public.name, holder, _ENCRYPTION, valid_from)
        return self._record(meta, "imported")

    def _record(self, meta: KeyMeta, what: str) -> KeyMeta:
        self._write_meta(self._stem(meta.holder, meta.key_id), meta)
        log.info(f"key {what}", key_id=meta.key_id, holder=meta.holder, usages=meta.usages)
        return meta

    def _write_meta(self, stem: Path, meta: KeyMeta) -> None:
        self._forget()
        stem.with_suffix(".json").write_text(json.dumps(asdict(meta), indent=2) + "\n")

    def key_metas(self) -> list[KeyMeta]:
        """Every key, oldest first."""
        return list(self._contents().metas)

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
        return self._public(self._contents(), meta)

    def _public(self, c: _Contents, meta: KeyMeta) -> PublicKey:
        path = self._stem(meta.holder, meta.key_id).with_suffix(PUBLIC_SUFFIX)
        return self._parsed(c, path, read_public_key)

    def encryption_public(self, meta: KeyMeta) -> EncryptionPublicKey:
        """The public encryption key of ``meta``."""
        return self._encryption_public(self._contents(), meta)

    def _encryption_public(self, c: _Contents, meta: KeyMeta) -> EncryptionPublicKey:
        path = self._stem(meta.holder, meta.key_id).with_suffix(ENCRYPTION_PUBLIC_SUFFIX)
        return self._parsed(c, path, read_encryption_public)

    def _private(self, c: _Contents, meta: KeyMeta) -> Path | None:
        """The private key file of ``meta``, if it is here."""
        path = self._stem(meta.holder, meta.key_id).with_suffix(PRIVATE_SUFFIX)
        return path if path.name in c.listing.names else None

    def keyring(self, holder: str) -> KeyRing:
        """Every encryption key of ``holder`` whose private part is here, newest first: current,
        rotated and revoked alike (revocation stops sealing to a key, not reading what was
        sealed to it before). Empty when this store holds none of its private keys."""
        holder = _encryption_holder(holder)
        c = self._contents()
        keys = [
            self._parsed(c, path, read_encryption_key)
            for meta in reversed(c.metas)
            if meta.holder == holder
            and meta.is_encryption
            and (path := self._private(c, meta)) is not None
        ]
        return KeyRing(holder, tuple(keys))

    def delete_private(self, key_id: str) -> KeyMeta:
        """Delete the private part of a key (what was sealed to it becomes unreadable here);
        its description and public part stay, for the trust list's history."""
        meta = self.meta(key_id)
        path = self._stem(meta.holder, meta.key_id).with_suffix(PRIVATE_SUFFIX)
        self._forget()
        try:
            path.unlink()
        except FileNotFoundError:
            raise KeyStoreError(f"no private key of {meta.key_id} in {self.root}") from None
        log.info("private key deleted", key_id=meta.key_id, holder=meta.holder)
        return meta

    def signing_key(self, meta: KeyMeta) -> SigningKey:
        """The private key of ``meta`` (refused unless its file is owner-only)."""
        path = self._stem(meta.holder, meta.key_id).with_suffix(PRIVATE_SUFFIX)
        return self._parsed(self._contents(), path, read_private_key)

    def private_keys(self, holder: str, *, usage: Usage, at: int) -> list[SigningKey]:
        """Every signing key of ``holder`` valid for ``usage`` at ``at`` whose private part is
        here, oldest first: what signs a trust list as a root holder (during a root rotation
        both keys sign: the old one counts for the list in force, the new one for the next)."""
        holder = check_holder(holder)
        c = self._contents()
        return [
            self._parsed(c, path, read_private_key)
            for meta in c.metas
            if meta.holder == holder
            and usage.value in meta.usages
            and not meta.is_encryption
            and meta.entry(self._public(c, meta)).status_at(at) == "valid"
            and (path := self._private(c, meta)) is not None
        ]

    def move(self, key_id: str, to: KeyStore) -> KeyMeta:
        """Move a key (private part, public parts, description) into key store ``to``: the same
        key, kept by another process, so no trust list changes."""
        meta = self.meta(key_id)
        stem = self._stem(meta.holder, meta.key_id)
        ensure_private_dir(to.root)
        self._forget()
        to._forget()
        for path in sorted(self.root.glob(f"{stem.name}.*")):
            path.rename(to.root / path.name)
        log.info("key moved", key_id=meta.key_id, holder=meta.holder, to=str(to.root))
        return meta

    def current(self, holder: str, *, usage: Usage, at: int) -> SigningKey:
        """The newest key of ``holder`` valid for ``usage`` at ``at`` whose private part is
        here: what the policy service signs with."""
        holder = check_holder(holder)
        if usage is Usage.ENCRYPTION:
            raise KeyStoreError(
                "current() gives signing keys; encryption keys are chosen from the trust list",
                hint="seal with puente.evidence.seal.sealing_key, open with KeyStore.keyring",
            )
        c = self._contents()
        for meta in reversed(c.metas):
            if meta.holder != holder or usage.value not in meta.usages:
                continue
            if meta.entry(self._public(c, meta)).status_at(at) != "valid":
                continue
            path = self._private(c, meta)
            if path is not None:
                return self._parsed(c, path, read_private_key)
        raise UntrustedKeyError(
            f"no key of {holder} for {usage.value} is valid now in {self.root}",
            reason="KEY_UNKNOWN",
            hint=f"puente keys generate --for {holder}",
        )

    def rotate(
        self, holder: str, *, at: int, overlap_ms: int, usages: Iterable[Usage] | None = None
    ) -> tuple[SigningKey, list[KeyMeta]]:
        """A new signing key for ``holder`` valid from ``at``; the holder's current signing
        keys of the same use (any usage in common) end at ``at + overlap_ms`` (in-flight
        evidence signed with them before then stays valid) and the new key takes their name.
        Its encryption keys, and its signing keys of other uses (a node's witness key when its
        node key rotates, and the reverse), are left alone."""
        holder = check_holder(holder)
        use = set(_signing_usages(holder, usages))
        retired = [
            m
            for m in self._retiring(holder, encryption=False, until=at + overlap_ms)
            if use & set(m.usages)
        ]
        names = {m.name for m in retired}
        name = names.pop() if len(names) == 1 else None
        key, _ = self.generate(holder, valid_from=at, usages=usages, name=name)
        return key, self._retire(retired, key.key_id)

    def rotate_encryption(
        self, holder: str, *, at: int, overlap_ms: int
    ) -> tuple[EncryptionKey, list[KeyMeta]]:
        """A new encryption key for ``holder`` valid from ``at``; its current encryption keys
        end at ``at + overlap_ms`` (sealers then choose the new key) and keep their private
        parts, so what was sealed to them stays readable."""
        holder = _encryption_holder(holder)
        retired = self._retiring(holder, encryption=True, until=at + overlap_ms)
        key, _ = self.generate_encryption(holder, valid_from=at)
        return key, self._retire(retired, key.key_id)

    def _retiring(self, holder: str, *, encryption: bool, until: int) -> list[KeyMeta]:
        return [
            replace(m, valid_until=until)
            for m in self.key_metas()
            if m.holder == holder
            and m.is_encryption == encryption
            and m.valid_until is None
            and m.revoked_since is None
        ]

    def _retire(self, retired: list[KeyMeta], new_key_id: str) -> list[KeyMeta]:
        for meta in retired:
            self.update(meta)
        log.info("key rotated", key_id=new_key_id, retired=[m.key_id for m in retired])
        return retired

    def revoke(self, key_id: str, *, since: int) -> KeyMeta:
        """Revoke a key from ``since`` on."""
        meta = replace(self.meta(key_id), revoked_since=since)
        self.update(meta)
        log.info("key revoked", key_id=meta.key_id, holder=meta.holder)
        return meta

    def trust_list(
        self,
        *,
        serial: int,
        issued_at: int,
        expires_at: int,
        floor_digest: bytes | None = None,
        quorum: int | None = None,
    ) -> TrustList:
        """The (unsigned) trust list of every non-operator key here, signing keys on ``key``
        lines and encryption keys on ``enc`` lines, pinning ``floor_digest`` if given and
        naming ``quorum`` (the member roots, keys with usage trust-list, that sign the next)."""
        c = self._contents()
        metas = [m for m in c.metas if not m.holder.startswith("operator:")]
        return TrustList(
            serial,
            issued_at,
            expires_at,
            tuple(m.entry(self._public(c, m)) for m in metas if not m.is_encryption),
            tuple(
                m.encryption_entry(self._encryption_public(c, m)) for m in metas if m.is_encryption
            ),
            floor_digest,
            quorum,
        )


_ENCRYPTION = (Usage.ENCRYPTION.value,)


def _signing_usages(holder: str, usages: Iterable[Usage] | None) -> tuple[str, ...]:
    chosen = tuple(usages or DEFAULT_USAGES[holder.partition(":")[0]])
    if Usage.ENCRYPTION in chosen:
        raise KeyStoreError(
            "usage encryption is an X25519 key's, not a signing key's",
            hint="generate it with KeyStore.generate_encryption (puente keys generate "
            "--usage encryption)",
        )
    return tuple(u.value for u in chosen)


def _encryption_holder(holder: str) -> str:
    if check_holder(holder).partition(":")[0] not in ENCRYPTION_HOLDER_KINDS:
        raise KeyStoreError(
            f"{holder} cannot hold an encryption key (member:CC and node:CC can)",
            reason="KEY_WRONG_HOLDER",
        )
    return holder
