"""A witness's pure core: what it cosigns, what it refuses, and the forks it proves.

A state's witness follows the other states' audit logs through their checkpoints (each published
with a consistency proof from the log's previous checkpoint, docs/evidence.md §5.2) and keeps,
per log, the last checkpoint it cosigned (:class:`Cosigned`: the log-signed note with its own
cosignature). For each new checkpoint whose log signature verified, :meth:`WitnessBook.observe`
decides:

- the first checkpoint of a log, or one that a valid consistency proof from the cosigned one
  extends: **cosign** it (C2SP tlog-witness: every tree extends the empty one);
- the cosigned one again, an older one, or one whose proof starts elsewhere (a gap): **skip**
  it — a witness never cosigns a smaller size, nor a different root for a size it cosigned;
- the cosigned size with another root, or a proof from the cosigned checkpoint that fails:
  **equivocation**, with both signed checkpoints.

It also remembers (bounded) every log-signed checkpoint it saw, from the logs or from other
witnesses' cosignatures (gossip): two of one log with one size and different roots are an
equivocation whoever was shown which (:meth:`WitnessBook.gossip`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from puente.evidence.checkpoint import Checkpoint, parse_signed_checkpoint
from puente.evidence.cosignature import without_cosignatures
from puente.evidence.errors import ProofError
from puente.evidence.merkle.proof import verify_consistency
from puente.evidence.note import Note

WITNESS_KEY_PREFIX = "puente.witness/"
SEEN_PER_LOG = 256  # log-signed checkpoints remembered per log for fork detection

ForkKey = tuple[str, int, bytes, int, bytes]
"""A fork whoever shows or reports it: log, and both (size, root), ordered (:attr:`Fork.key`)."""


def witness_key_name(state: str) -> str:
    """The key name of state ``state``'s witness key: ``puente.witness/MX``."""
    return f"{WITNESS_KEY_PREFIX}{state}"


class Skip(StrEnum):
    """Why a verified checkpoint was not cosigned (no equivocation either)."""

    SEEN = "seen"  # the cosigned checkpoint again
    OLDER = "older"  # smaller than the cosigned size: never cosigned backwards
    GAP = "gap"  # its proof starts at another size than the cosigned one: unproven


class ForkKind(StrEnum):
    """How two checkpoints of one log contradict each other."""

    SAME_SIZE = "same-size"  # one size, two roots: both signed by the log
    INCONSISTENT = "inconsistent"  # the log's proof from the cosigned checkpoint fails


@dataclass(frozen=True)
class Cosigned:
    """What a witness cosigned last for one log: the note (log signature and cosignature)."""

    note: bytes

    @cached_property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint (signatures unchecked; parsed once: every decision reads it)."""
        return parse_signed_checkpoint(self.note)[0]

    def log_signed(self) -> bytes:
        """The log-signed checkpoint alone (cosignature lines removed)."""
        return without_cosignatures(Note.parse(self.note)).to_bytes()


@dataclass(frozen=True)
class Fork:
    """Two log-signed checkpoints of one log that cannot both be true (the proof), and, for
    :attr:`ForkKind.INCONSISTENT`, the consistency proof from ``a`` to ``b`` the log gave."""

    kind: ForkKind
    log_id: str
    a: bytes
    b: bytes
    proof: tuple[bytes, ...] = ()

    @property
    def key(self) -> ForkKey:
        """Identifies the fork whoever reports it: log, and both (size, root), ordered."""
        ca, cb = (parse_signed_checkpoint(n)[0] for n in (self.a, self.b))
        (s1, r1), (s2, r2) = sorted(((ca.size, ca.root), (cb.size, cb.root)))
        return (self.log_id, s1, r1, s2, r2)


@dataclass(frozen=True)
class Cosign:
    """Cosign this checkpoint (its log-signed note)."""

    note: bytes


Decision = Cosign | Skip | Fork


class WitnessBook:
    """One witness's view of every log it follows (pure: no I/O, no clock)."""

    def __init__(self, own_state: str, *, seen_per_log: int = SEEN_PER_LOG) -> None:
        self.own_state = own_state
        self.cosigned: dict[str, Cosigned] = {}
        # log -> size -> (root, log-signed note)
        self._seen: dict[str, OrderedDict[int, tuple[bytes, bytes]]] = {}
        self._seen_per_log = seen_per_log

    def restore(self, cosigned: Sequence[Cosigned]) -> None:
        """Start from the checkpoints cosigned before (the witness's compacted state topic)."""
        for c in cosigned:
            cp = c.checkpoint
            held = self.cosigned.get(cp.log_origin)
            if held is None or held.checkpoint.size < cp.size:
                self.cosigned[cp.log_origin] = c
            self._remember(cp, c.log_signed())

    def observe(
        self, note: bytes, *, previous_size: int | None, proof: Sequence[bytes]
    ) -> Decision:
        """Decide on a checkpoint from its log (its log signature verified by the caller)."""
        cp, parsed = parse_signed_checkpoint(note)
        signed = without_cosignatures(parsed).to_bytes()
        fork = self._remember(cp, signed)
        if fork is not None:
            return fork
        held = self.cosigned.get(cp.log_origin)
        if held is None:
            return Cosign(signed)
        have = held.checkpoint
        if cp.size < have.size:
            return Skip.OLDER
        if cp.size == have.size:
            if cp.root != have.root:  # also when the remembered copy was evicted
                return Fork(ForkKind.SAME_SIZE, cp.log_origin, held.log_signed(), signed)
            return Skip.SEEN
        if have.size == 0:
            return Cosign(signed)
        if previous_size != have.size:
            return Skip.GAP
        try:
            verify_consistency(have.size, cp.size, proof, have.root, cp.root)
        except ProofError:
            return Fork(
                ForkKind.INCONSISTENT, cp.log_origin, held.log_signed(), signed, tuple(proof)
            )
        return Cosign(signed)

    def cosigned_now(self, note: bytes) -> None:
        """Record that the witness cosigned ``note`` (log signature and its cosignature)."""
        c = Cosigned(note)
        self.cosigned[c.checkpoint.log_origin] = c

    def gossip(self, note: bytes) -> Fork | None:
        """Another witness's cosigned checkpoint (its log signature verified by the caller): a
        fork when this witness saw another root of that log at that size."""
        cp, parsed = parse_signed_checkpoint(note)
        return self.seen(cp, without_cosignatures(parsed).to_bytes())

    def seen(self, cp: Checkpoint, signed: bytes) -> Fork | None:
        """:meth:`gossip` of a checkpoint already parsed: ``cp`` and its log-signed note
        ``signed`` (a witness reads each checkpoint again in every other witness's
        cosignature, so it parses each record once)."""
        return self._remember(cp, signed)

    def _remember(self, cp: Checkpoint, signed: bytes) -> Fork | None:
        seen = self._seen.setdefault(cp.log_origin, OrderedDict())
        before = seen.get(cp.size)
        if before is not None:
            root, note = before
            if root != cp.root:
                return Fork(ForkKind.SAME_SIZE, cp.log_origin, note, signed)
            return None
        seen[cp.size] = (cp.root, signed)
        while len(seen) > self._seen_per_log:
            seen.popitem(last=False)
        return None
