"""Finality by quorum: a checkpoint — and every audit record and delivery it covers — is final
once at least *q* distinct member states' witnesses other than the log's own state cosigned it.

A cosignature counts for state X when its line is by a trust-list key of holder ``node:X`` with
usage ``witness``, valid at the cosignature's own time, X is not the log's state, and it
verifies (c2sp.org/tlog-cosignature). Several cosignatures of one state (two keys, or the same
checkpoint cosigned twice) count once. Anything else is ignored, not refused: a note may carry
cosignatures of witnesses a verifier does not know.

The default *q* is a majority of the other members (10 of the 19 others among 20 members): two
checkpoints that contradict each other cannot both reach it unless a witness cosigned both, which
an honest witness never does; and up to 9 witnesses may be down before finality stalls.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from puente.evidence.checkpoint import parse_signed_checkpoint
from puente.evidence.cosignature import cosignatures, without_cosignatures
from puente.evidence.errors import EvidenceError, SignatureError
from puente.evidence.log import audit_log_state
from puente.evidence.note import Note
from puente.evidence.trust import TrustList, Usage, holder_state
from puente.evidence.verify import Verifier


class Finality(StrEnum):
    """What a delivery (or audit record) is, as far as its origin's log goes."""

    SIGNED = "signed"  # signed by its origin's node; no quorum of witnesses yet
    WITNESSED = "witnessed"  # covered by a checkpoint cosigned by a quorum of witnesses


def default_quorum(members: Sequence[str]) -> int:
    """A majority of the members other than a log's own: ``(n - 1) // 2 + 1``."""
    return max(1, (len(members) - 1) // 2 + 1)


def cosigning_states(note: Note, trust_list: TrustList, *, log_state: str) -> dict[str, int]:
    """The states whose witnesses validly cosigned ``note``, each with its earliest
    cosignature time (Unix ms). The log's own state never counts."""
    entries = [e for e in trust_list.entries if Usage.WITNESS in e.usages]
    found: dict[str, int] = {}
    for cosig in cosignatures(note):
        for entry in entries:
            state = holder_state(entry.holder)
            if state is None or state == log_state or not entry.holder.startswith("node:"):
                continue
            if not cosig.made_by(entry.key) or entry.status_at(cosig.time_ms) != "valid":
                continue
            try:
                cosig.verify(entry.key, note.text)
            except SignatureError:
                continue
            found[state] = min(found.get(state, cosig.time_ms), cosig.time_ms)
    return found


@dataclass
class LogFinality:
    """One log's checkpoints and who cosigned each (by size; one root per size is counted —
    the first seen; another root at that size is an equivocation, reported by the witnesses)."""

    log_id: str
    roots: dict[int, bytes] = field(default_factory=dict)
    cosigners: dict[int, dict[str, int]] = field(default_factory=dict)
    signed_at: dict[int, int] = field(default_factory=dict)  # size -> the log's time (ms)
    final_size: int = 0

    @property
    def latest_size(self) -> int:
        """The largest size seen."""
        return max(self.roots, default=0)


COUNTED_MEMORY = 8192
"""Cosigned notes a book remembers having counted, so that readers sharing one book (partners
hosted in one process) verify each note once; an older one counted again changes nothing."""


class FinalityBook:
    """Cosigned checkpoints counted against a quorum (pure: the caller feeds it notes)."""

    def __init__(self, quorum: int, *, all_cosigners: bool = False) -> None:
        """``all_cosigners``: keep counting the cosigners of a checkpoint once it is final (for
        reports that list them all: ``puente witness status``, the auditor); otherwise a
        further cosignature of a final checkpoint is passed over unverified — it changes
        nothing a delivery's finality depends on (what subscribers and gateways need)."""
        if quorum < 1:
            raise ValueError("a quorum is at least 1")
        self.quorum = quorum
        self.all_cosigners = all_cosigners
        self.logs: dict[str, LogFinality] = {}
        self._counted: OrderedDict[bytes, None] = OrderedDict()

    def add(self, note_bytes: bytes, verifier: Verifier) -> int:
        """Count a cosigned checkpoint (the log's signature checked with ``verifier``); the
        number of states newly counted. Raises the evidence error of a log signature that
        does not verify.

        A checkpoint smaller than the log's final one adds nothing (the final one covers every
        record below it), nor (unless ``all_cosigners``) another cosignature of the final one:
        it is passed over before any signature is checked, and what the book
        held of smaller sizes is dropped when a larger one becomes final — so a long-running
        reader of the cosignatures topic keeps a few checkpoints per log, not the history. A
        note counted already (the same bytes, e.g. from another reader sharing the book) counts
        nothing more and is not verified again."""
        if note_bytes in self._counted:
            return 0
        new = self._add(note_bytes, verifier)
        self._counted[note_bytes] = None
        if len(self._counted) > COUNTED_MEMORY:
            self._counted.popitem(last=False)
        return new

    def _add(self, note_bytes: bytes, verifier: Verifier) -> int:
        parsed = Note.parse(note_bytes)
        cp = parse_signed_checkpoint(note_bytes)[0]
        state = audit_log_state(cp.log_origin)
        if state is None:
            raise EvidenceError(f"{cp.log_origin!r} is not an audit log", reason="LOG_UNKNOWN")
        known = self.logs.get(cp.log_origin)
        if known is not None and (
            cp.size < known.final_size or (cp.size == known.final_size and not self.all_cosigners)
        ):
            return 0
        verified = verifier.verify_checkpoint(without_cosignatures(parsed).to_bytes())
        log = self.logs.setdefault(cp.log_origin, LogFinality(cp.log_origin))
        root = log.roots.setdefault(cp.size, cp.root)
        if root != cp.root:
            return 0
        log.signed_at.setdefault(cp.size, verified.time_ms)
        have = log.cosigners.setdefault(cp.size, {})
        new = 0
        for who, t in cosigning_states(parsed, verifier.trust_list, log_state=state).items():
            if who not in have:
                new += 1
            have[who] = min(have.get(who, t), t)
        if len(have) >= self.quorum and cp.size > log.final_size:
            log.final_size = cp.size
            for smaller in [size for size in log.roots if size < cp.size]:
                del log.roots[smaller]
                log.cosigners.pop(smaller, None)
                log.signed_at.pop(smaller, None)
        return new

    def finality(self, log_id: str, leaf_index: int) -> Finality:
        """Whether the record at ``leaf_index`` of log ``log_id`` is covered by a final
        checkpoint (witnesses check each checkpoint extends the one before: a final checkpoint
        covers every record below its size)."""
        log = self.logs.get(log_id)
        if log is not None and leaf_index < log.final_size:
            return Finality.WITNESSED
        return Finality.SIGNED

    def status(self) -> list[dict[str, object]]:
        """Every log: its latest checkpoint, its cosigners, final or not (for JSON)."""
        out: list[dict[str, object]] = []
        for log_id in sorted(self.logs):
            log = self.logs[log_id]
            size = log.latest_size
            who = log.cosigners.get(size, {})
            out.append(
                {
                    "log": log_id,
                    "size": size,
                    "root": log.roots[size].hex() if size in log.roots else None,
                    "cosigners": sorted(who),
                    "final": len(who) >= self.quorum,
                    "final_size": log.final_size,
                    "quorum": self.quorum,
                }
            )
        return out


def add_all(book: FinalityBook, notes: Iterable[bytes], verifier: Verifier) -> int:
    """Add every note; the number refused (log signature or form), which are skipped."""
    refused = 0
    for n in notes:
        try:
            book.add(n, verifier)
        except EvidenceError:
            refused += 1
    return refused
