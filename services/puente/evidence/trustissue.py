"""Bringing a trust store's signed trust list up to date: one rule for the embedded default
(``puente demo``) and for deployment material (``puente deploy … secrets``).

A trust store is a key directory holding the public part of every key the list names (the
member states' root keys among them), the list in force (``trust-list.note``) and the genesis
list (``trust-genesis.note``, the trust anchor). :func:`issue` compares what the store's keys
and the floor make with the list in force and, when they differ or the list nears expiry, makes
the next one (serial + 1, a majority of the roots as its quorum) and has it signed by every root
key whose private part the given key stores hold. Only a list that every verifier would take —
a quorum of the roots in force (at first: of its own roots, which makes it the genesis list;
after a single-root deployment: the operator root too, which makes it the transition list) and
a quorum of its own — is written as the list in force. Short of that, the signed-so-far list is
written as a proposal (``trust-list.proposed``, what ``puente trust sign --as CC`` signs) and
the result names the root holders that have not signed: a later call with the proposal signed
takes it. Nobody's private key leaves the store that holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from puente.evidence.errors import MalformedError, SignatureError, TrustListError
from puente.evidence.keystore import GENESIS_FILE, TRUST_LIST_FILE, KeyStore
from puente.evidence.note import Note, UnsignedNoteError
from puente.evidence.trust import ROOT_HOLDER, TrustAnchor, TrustList, Usage, majority

PROPOSAL_FILE = "trust-list.proposed"
"""A next trust list waiting for signatures, beside the list in force (``puente trust``)."""
TRUST_LIST_MS = 30 * 86_400_000  # a signed list is valid 30 days...
RENEW_WITHIN_MS = 7 * 86_400_000  # ...and is signed anew by the first call in its last 7


@dataclass(frozen=True)
class Issued:
    """What :func:`issue` left: the list in force (``None`` while there is none) and, short
    of quorum, the proposal it wrote and the root holders whose signatures it still lacks."""

    current: bytes | None
    changed: bool = False  # a new list was signed and written as the list in force
    proposal: Path | None = None
    missing: tuple[str, ...] = ()  # root holders that could still sign the proposal
    needed: int = 0  # how many more of them must (the larger shortfall of the two quorums)


def read_note(data: bytes) -> Note:
    """A signed note, or the text of an unsigned one (a proposal nobody has signed yet)."""
    try:
        return Note.parse(data)
    except UnsignedNoteError:
        return Note.unsigned(data.decode())


def base_anchor(store: KeyStore) -> TrustAnchor | None:
    """What judges the store's lists: its genesis list, else (a single-root deployment) its
    ``operator:root`` keys, else nothing (no list was ever signed)."""
    genesis = store.root / GENESIS_FILE
    if genesis.is_file():
        return TrustAnchor.genesis(genesis.read_bytes())
    legacy = [store.public(m) for m in store.key_metas() if m.holder == ROOT_HOLDER]
    return TrustAnchor.from_keys(legacy) if legacy else None


def sign_as_roots(
    note: Note, stores: Sequence[KeyStore], anchors: Sequence[TrustAnchor], *, at: int
) -> Note:
    """``note`` with a signature by every root key of ``anchors`` valid at ``at`` whose private
    part one of ``stores`` holds and that has not signed it yet."""
    wanted = {e.key_id for a in anchors for e in a.roots}
    for holder in sorted({h for a in anchors for h in a.holders}):
        for store in stores:
            for key in store.private_keys(holder, usage=Usage.TRUST_LIST, at=at):
                if key.key_id in wanted and not any(s.made_by(key.public) for s in note.signatures):
                    note = note.sign(key)
    return note


def shortfall(note: Note, tl: TrustList, anchor: TrustAnchor) -> tuple[tuple[str, ...], int]:
    """The root holders of ``anchor`` (the roots in force) and of ``tl`` (its own) that have
    not signed ``note`` where a quorum is still short, and the larger number still needed."""
    judges = [anchor] if anchor == TrustAnchor.of(tl) else [anchor, TrustAnchor.of(tl)]
    try:
        good = note.verify(e.key for j in judges for e in j.roots)
    except SignatureError:
        good = []
    missing: set[str] = set()
    needed = 0
    for judge in judges:
        valid = {e.holder for e in judge.roots if e.status_at(tl.issued_at) == "valid"}
        signed = judge.signers(good, at=tl.issued_at)
        if len(signed) < judge.k:
            missing |= valid - signed
            needed = max(needed, judge.k - len(signed))
    return tuple(sorted(missing)), needed


def issue(store: KeyStore, signers: Sequence[KeyStore], *, floor: bytes, now: int) -> Issued:
    """Bring ``store``'s trust list up to date with its keys and ``floor`` (module docstring);
    ``signers`` are the key stores holding root private keys (the store itself on the embedded
    default; each state's root folder in deployment material). :class:`TrustListError`
    (``TRUST_QUORUM_MISSING``) when the store names no root key."""
    path, proposal_path = store.root / TRUST_LIST_FILE, store.root / PROPOSAL_FILE
    base = base_anchor(store)
    data = path.read_bytes() if path.is_file() else None
    anchor = base.follow([data]) if base is not None and data is not None else base
    current = _open(data, anchor, now)
    wanted = store.trust_list(
        serial=0, issued_at=now, expires_at=now + TRUST_LIST_MS, floor_digest=floor
    )
    roots = len(wanted.roots(at=now))
    if not roots:
        raise TrustListError(
            f"the trust store {store.root} names no member root key (usage trust-list)",
            reason="TRUST_QUORUM_MISSING",
            hint="each state generates its root key and hands in its public part: "
            f"puente keys import <root.vkey> --for CC --usage trust-list --dir {store.root}",
        )
    wanted = replace(wanted, quorum=majority(roots))
    if current is not None and not _renew(current, wanted, now):
        return Issued(data)
    serial = current.serial + 1 if current is not None else _serial_after(data, now)
    # A first list's serial is the clock's second (nothing before it to follow): a proposal
    # waiting for its signatures keeps its own serial, however much later the next run comes.
    note = _pending(proposal_path, wanted, serial=serial if data is not None else 1, now=now)
    if note is None:
        note = Note.unsigned(replace(wanted, serial=serial).text())
    tl = TrustList.from_text(note.text)
    judge = anchor if anchor is not None else TrustAnchor.of(tl)  # none yet: the genesis list
    note = sign_as_roots(note, signers, [judge, TrustAnchor.of(tl)], at=tl.issued_at)
    signed = note.to_bytes() if note.signatures else note.text.encode()
    opened = TrustList.open(signed, judge, now=now, strict=False)
    if opened.problems:
        proposal_path.write_bytes(signed)
        missing, needed = shortfall(note, tl, judge)
        return Issued(data, proposal=proposal_path, missing=missing, needed=needed)
    path.write_bytes(signed)
    genesis = store.root / GENESIS_FILE
    if not genesis.is_file():  # the first members' list (or the transition list) anchors
        genesis.write_bytes(signed)
    proposal_path.unlink(missing_ok=True)
    return Issued(signed, changed=True)


def _open(data: bytes | None, anchor: TrustAnchor | None, now: int) -> TrustList | None:
    if data is None or anchor is None:
        return None
    try:
        return TrustList.open(data, anchor, now=now, strict=False)
    except TrustListError:  # malformed: a new one is issued
        return None


def _renew(current: TrustList, wanted: TrustList, now: int) -> bool:
    """Whether the list in force must be followed by a new one: refused, single-root, near
    expiry, or not what the keys and the floor make now."""
    return (
        bool(current.problems)
        or current.quorum is None
        or current.expires_at - now < RENEW_WITHIN_MS
        or _content(current) != _content(wanted)
    )


def _content(tl: TrustList) -> tuple[object, ...]:
    return (tl.entries, tl.encryption_entries, tl.floor_digest, tl.quorum)


def _pending(path: Path, wanted: TrustList, *, serial: int, now: int) -> Note | None:
    """The proposal waiting in ``path`` when it is the list wanted, under a serial no lower
    than ``serial`` (its signatures so far count), else None (a proposal of other keys, or
    overtaken by a list in force, is replaced)."""
    if not path.is_file():
        return None
    try:
        note = read_note(path.read_bytes())
        tl = TrustList.from_text(note.text)
    except (MalformedError, UnicodeDecodeError):
        return None
    fresh = tl.serial >= serial and tl.issued_at <= now and tl.expires_at - now >= RENEW_WITHIN_MS
    return note if fresh and _content(tl) == _content(wanted) else None


def _serial_after(data: bytes | None, now: int) -> int:
    """The serial after the (unverified) one in ``data``; a first list's is the time, so a
    list made anew never goes below one issued before."""
    if data is not None:
        try:
            return TrustList.from_text(read_note(data).text).serial + 1
        except (MalformedError, UnicodeDecodeError):
            pass
    return now // 1000
