"""The next trust list: the one in force plus a change, what changed (for the signers), and
one proposal from copies signed separately.

Pure. A proposal keeps every entry of the list in force (evidence made under a retired or
revoked key must keep verifying, so entries are ended, never dropped) and takes the entries of
the key directory where the change was made (``puente keys import | rotate | revoke``): a key
it does not know is added, a key it knows with another end or revocation is updated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from puente.evidence.errors import MalformedError, SignatureError, TrustListError
from puente.evidence.keys import PublicKey
from puente.evidence.note import Note, NoteSignature
from puente.evidence.trust import EncKeyEntry, KeyEntry, TrustList, Usage


def propose(
    current: TrustList,
    known: TrustList,
    *,
    issued_at: int,
    expires_at: int,
    quorum: int | None = None,
) -> TrustList:
    """The list after ``current`` (serial + 1, unsigned): its entries updated and extended by
    ``known``'s, its floor, and its quorum unless ``quorum`` is given.
    :class:`TrustListError` (``TRUST_LIST_MALFORMED``) when the result is not a valid list
    (e.g. a quorum larger than the number of roots)."""
    entries: dict[str, KeyEntry] = {e.key_id: e for e in current.entries}
    entries.update({e.key_id: e for e in known.entries})
    encs: dict[str, EncKeyEntry] = {e.key_id: e for e in current.encryption_entries}
    encs.update({e.key_id: e for e in known.encryption_entries})
    try:
        nxt = replace(
            current.reissued(issued_at=issued_at, expires_at=expires_at),
            entries=tuple(entries.values()),
            encryption_entries=tuple(encs.values()),
            quorum=None,
        )
        return replace(nxt, quorum=quorum if quorum is not None else current.quorum)
    except MalformedError as exc:
        raise TrustListError(
            f"the proposed list is not valid: {exc}", reason="TRUST_LIST_MALFORMED"
        ) from exc


def changes(current: TrustList, nxt: TrustList) -> list[str]:
    """One line per difference, for the people asked to sign ``nxt``."""
    lines: list[str] = []
    before: dict[str, KeyEntry | EncKeyEntry] = {e.key_id: e for e in current.entries}
    before.update({e.key_id: e for e in current.encryption_entries})
    after: list[KeyEntry | EncKeyEntry] = [*nxt.entries, *nxt.encryption_entries]
    for e in after:
        old = before.get(e.key_id)
        if old is None:
            lines.append(f"+ {e.line()}")
        elif old != e:
            lines.append(f"~ {e.line()}")
    if nxt.quorum != current.quorum:
        lines.append(f"quorum {current.quorum} -> {nxt.quorum}")
    if nxt.floor_digest != current.floor_digest:
        lines.append("floor changed")
    return lines


@dataclass(frozen=True)
class Merged:
    """One proposal with every signature of its copies (:func:`merge`), and those of them no
    known root key made (kept unchecked: verifiers ignore a signature by a key they do not
    know)."""

    note: Note
    unchecked: tuple[NoteSignature, ...]


def merge(copies: Sequence[Note], roots: Iterable[PublicKey] = ()) -> Merged:
    """One proposal from copies of it signed separately (each state signed its own copy).

    Every copy must hold the same list text, byte for byte (``TRUST_PROPOSAL_MISMATCH``
    otherwise: a signature covers its copy's text only). Each signature line is kept once, in
    the order first seen. One made by a root key — one the list names (usage trust-list, at
    any time: the list in force's roots sign a rotation, and the proposal keeps their entries)
    or one of ``roots`` (e.g. a single-root deployment's operator root, which the list does not
    name) — must verify, or the merge is refused (``TRUST_SIGNATURE_INVALID``: a verifier
    knowing that key would refuse the whole list for it)."""
    if not copies:
        raise TrustListError("no proposal to merge", reason="TRUST_PROPOSAL_MISMATCH")
    text = copies[0].text
    for i, copy in enumerate(copies[1:], start=2):
        if copy.text != text:
            raise TrustListError(
                f"copy {i} holds another list than copy 1 (a signature covers its own copy's "
                "text only)",
                reason="TRUST_PROPOSAL_MISMATCH",
                hint="merge copies of one proposal: `puente trust propose` once, then every "
                "state signs a copy of that file",
            )
    tl = TrustList.from_text(text)
    known = [e.key for e in tl.entries if Usage.TRUST_LIST in e.usages] + list(roots)
    kept: dict[NoteSignature, None] = {}
    unchecked: list[NoteSignature] = []
    for i, copy in enumerate(copies, start=1):
        for sig in copy.signatures:
            if sig in kept:
                continue
            kept[sig] = None
            key = next((k for k in known if sig.made_by(k)), None)
            if key is None:
                unchecked.append(sig)
                continue
            try:
                key.verify(sig.signature, text.encode())
            except SignatureError:
                raise TrustListError(
                    f"copy {i} carries a signature by root key {key.name} {key.key_id} that "
                    "does not verify over the list",
                    reason="TRUST_SIGNATURE_INVALID",
                    hint="have its state sign the proposal again",
                ) from None
    return Merged(Note(text, tuple(kept)), tuple(unchecked))
