"""The next trust list: the one in force plus a change, and what changed (for the signers).

Pure. A proposal keeps every entry of the list in force (evidence made under a retired or
revoked key must keep verifying, so entries are ended, never dropped) and takes the entries of
the key directory where the change was made (``puente keys import | rotate | revoke``): a key
it does not know is added, a key it knows with another end or revocation is updated.
"""

from __future__ import annotations

from dataclasses import replace

from puente.evidence.errors import MalformedError, TrustListError
from puente.evidence.trust import EncKeyEntry, KeyEntry, TrustList


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
