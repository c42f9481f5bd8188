"""Equivocation reports: a witness's signed statement that a log showed two histories, with the
proof — both log-signed checkpoints — inside.

A C2SP signed note, signed by the reporting witness's key (usage ``witness``)::

    puente.equivocation/v1
    log <log id>
    kind same-size | inconsistent
    witness <state code of the reporting witness>
    time-ms <when it was reported, Unix ms>
    a <base64 of the first log-signed checkpoint note>
    b <base64 of the second log-signed checkpoint note>
    proof <base64 hash> <base64 hash> ...     (kind inconsistent only: the log's proof a -> b)

``same-size``: ``a`` and ``b`` have one size and different roots; each verifies with the log's
node key: a self-contained proof. ``inconsistent``: ``a`` is smaller than ``b`` and the
consistency proof the log published with ``b`` does not lead from ``a`` to ``b``: the log
did not prove that ``b`` extends ``a`` (it can answer only with a valid proof, which a forked
log does not have).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass

from puente.evidence.checkpoint import Checkpoint
from puente.evidence.errors import EvidenceError, MalformedError, ProofError
from puente.evidence.keys import SigningKey
from puente.evidence.log import audit_log_state
from puente.evidence.merkle.proof import verify_consistency
from puente.evidence.note import Note, check_text
from puente.evidence.trust import Usage, holder_state
from puente.evidence.verify import Verifier
from puente.evidence.witness import Fork, ForkKey, ForkKind

EQUIVOCATION_HEADER = "puente.equivocation/v1"


class EquivocationError(EvidenceError):
    """An equivocation report that does not prove what it claims (``EQUIVOCATION_INVALID``)."""

    reason = "EQUIVOCATION_INVALID"


@dataclass(frozen=True)
class EquivocationReport:
    """A fork as a witness reports it."""

    fork: Fork
    witness: str
    time_ms: int

    def text(self) -> str:
        """The note text."""
        f = self.fork
        lines = [
            EQUIVOCATION_HEADER,
            f"log {f.log_id}",
            f"kind {f.kind.value}",
            f"witness {self.witness}",
            f"time-ms {self.time_ms}",
            f"a {base64.b64encode(f.a).decode()}",
            f"b {base64.b64encode(f.b).decode()}",
        ]
        if f.kind is ForkKind.INCONSISTENT:
            lines.append(" ".join(["proof", *(base64.b64encode(h).decode() for h in f.proof)]))
        return "\n".join(lines) + "\n"

    def sign(self, key: SigningKey) -> bytes:
        """The signed report (note bytes)."""
        return Note.unsigned(self.text()).sign(key).to_bytes()

    @classmethod
    def from_text(cls, text: str) -> EquivocationReport:
        """Parse a report text; :class:`MalformedError` unless canonical."""
        check_text(text)
        lines = text[:-1].split("\n")
        names = ("log", "kind", "witness", "time-ms", "a", "b")
        if lines[0] != EQUIVOCATION_HEADER or len(lines) not in (7, 8):
            raise MalformedError("not an equivocation report", reason="EQUIVOCATION_MALFORMED")
        values: dict[str, str] = {}
        for line, name in zip(lines[1:7], names, strict=True):
            key, _, value = line.partition(" ")
            if key != name:
                raise MalformedError(
                    f"equivocation report: expected {name!r}", reason="EQUIVOCATION_MALFORMED"
                )
            values[name] = value
        try:
            kind = ForkKind(values["kind"])
            proof: tuple[bytes, ...] = ()
            if len(lines) == 8:
                head, *hashes = lines[7].split(" ")
                if head != "proof":
                    raise ValueError("proof line")
                proof = tuple(base64.b64decode(h, validate=True) for h in hashes)
            fork = Fork(
                kind,
                values["log"],
                base64.b64decode(values["a"], validate=True),
                base64.b64decode(values["b"], validate=True),
                proof,
            )
            report = cls(fork, values["witness"], int(values["time-ms"]))
        except ValueError as exc:
            raise MalformedError(
                f"equivocation report: {exc}", reason="EQUIVOCATION_MALFORMED"
            ) from None
        if report.text() != text:
            raise MalformedError(
                "equivocation report text is not canonical", reason="EQUIVOCATION_MALFORMED"
            )
        return report


def verify_report(data: bytes, verifier: Verifier) -> EquivocationReport:
    """Check a signed report: the witness's signature (its key of usage ``witness``, valid at
    the report's time), both checkpoints signed by the log's node, and the contradiction.
    Raises :class:`EquivocationError` or the evidence error of the failing signature."""
    note = Note.parse(data)
    report = EquivocationReport.from_text(note.text)
    tl = verifier.trust_list
    signers = [
        e
        for s in note.signatures
        if (e := tl.entry_for(s)) is not None and holder_state(e.holder) == report.witness
    ]
    if not signers:
        raise EquivocationError(
            f"the report is not signed by witness {report.witness}'s key",
            reason="EQUIVOCATION_UNSIGNED",
        )
    for entry in signers:
        tl.check(entry, at=report.time_ms, usage=Usage.WITNESS)
    note.verify([e.key for e in signers])
    log_id = report.fork.log_id
    a, b = (
        verifier.verify_checkpoint(n, log_origin=log_id).checkpoint
        for n in (report.fork.a, report.fork.b)
    )
    _check_contradiction(report.fork, a, b)
    if audit_log_state(log_id) is None:
        raise EquivocationError(f"{log_id!r} is not an audit log id")
    return report


def reported_by(witness: str, reports: Iterable[bytes], verifier: Verifier) -> set[ForkKey]:
    """The forks (:attr:`Fork.key`) that state ``witness``'s witness reported among
    ``reports`` (an equivocations topic's records): those naming it whose report verifies —
    signed by a witness key of its state (:func:`verify_report`). Another witness's reports,
    one that names it without its signature, and records that are no report are left out."""
    found: set[ForkKey] = set()
    for data in reports:
        try:
            if EquivocationReport.from_text(Note.parse(data).text).witness != witness:
                continue  # (checked before the signatures: most reports are others')
            found.add(verify_report(data, verifier).fork.key)
        except EvidenceError:
            continue
    return found


def _check_contradiction(fork: Fork, a: Checkpoint, b: Checkpoint) -> None:
    if fork.kind is ForkKind.SAME_SIZE:
        if a.size != b.size or a.root == b.root:
            raise EquivocationError("same-size report whose checkpoints do not differ at one size")
        return
    if not a.size < b.size:
        raise EquivocationError("inconsistent report whose first checkpoint is not the smaller")
    try:
        verify_consistency(a.size, b.size, fork.proof, a.root, b.root)
    except ProofError:
        return
    raise EquivocationError("the log's consistency proof holds: no equivocation")
