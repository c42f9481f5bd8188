"""Signatures of aggregates and early warnings: made like Puente's other evidence, carried in
record headers so that a record's value is a pure function of its inputs.

The **signed bytes** are a context string (``puente/aggregate/v1`` or ``puente/early-warning/v1``
and a zero byte: a signature of one kind is useless as any other Puente signature), the signing
time (Unix ms, 8 bytes big-endian) and the record's single-object encoding. The key id, the
signing time and the Ed25519 signature travel in the record's headers
(:data:`~puente.topics.SIGNATURE_KEY_ID_HEADER` and friends).

A key signs these with usage ``early-warning`` in the trust list (``Usage.EARLY_WARNING``) and
must be valid at the signing time. Who may sign is checked by holder: an aggregate of origin
``CC`` only by ``node:CC``, the origin's own node (its node key carries that usage); every node
may write the one aggregates topic, so this check is what keeps a state from publishing counts
in another's name (``KEY_WRONG_HOLDER``). An early warning may be signed by any holder (anyone
may run the evaluator; trust in a warning comes from recomputing it, the signature says who did).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from puente.codec.errors import DecodeError
from puente.codec.registry import Registry
from puente.evidence._time import to_datetime
from puente.evidence.errors import EvidenceError, MalformedError
from puente.evidence.keys import SigningKey
from puente.evidence.trust import KeyEntry, TrustList, Usage, node_holder, service_holder
from puente.topics import SIGNATURE_HEADER, SIGNATURE_KEY_ID_HEADER, SIGNATURE_SIGNED_AT_HEADER
from puente.warnings.aggregate import Aggregate, check_published

AGGREGATE_CONTEXT = b"puente/aggregate/v1\x00"
WARNING_CONTEXT = b"puente/early-warning/v1\x00"
WARNINGS_SERVICE = service_holder("warnings")

Headers = list[tuple[str, bytes]]


def aggregate_signers(origin: str) -> tuple[str, ...]:
    """Who may sign an aggregate of ``origin``: its own node, nobody else."""
    return (node_holder(origin),)


def signed_bytes(context: bytes, signed_at: int, body: bytes) -> bytes:
    """``context || signed_at (8 bytes, big-endian) || body``: what is signed."""
    return context + signed_at.to_bytes(8, "big") + body


@dataclass(frozen=True)
class Signature:
    """Who signed a record's value, when, and the signature."""

    key_id: str
    signed_at: int
    signature: bytes

    def headers(self) -> Headers:
        """The record headers that carry it."""
        return [
            (SIGNATURE_KEY_ID_HEADER, self.key_id.encode("ascii")),
            (SIGNATURE_SIGNED_AT_HEADER, str(self.signed_at).encode("ascii")),
            (SIGNATURE_HEADER, self.signature),
        ]

    @classmethod
    def from_headers(cls, headers: Iterable[tuple[str, bytes]] | None) -> Signature:
        """Read it back; :class:`MalformedError` (``SIGNATURE_MISSING``) if a header is absent
        or given twice, or malformed."""
        found: dict[str, list[bytes]] = {}
        for name, value in headers or ():
            found.setdefault(name, []).append(value)
        wanted = (SIGNATURE_KEY_ID_HEADER, SIGNATURE_SIGNED_AT_HEADER, SIGNATURE_HEADER)
        if any(len(found.get(name, [])) != 1 for name in wanted):
            raise MalformedError(
                "the record does not carry exactly one key id, signing time and signature",
                reason="SIGNATURE_MISSING",
            )
        try:
            key_id = found[SIGNATURE_KEY_ID_HEADER][0].decode("ascii")
            at_text = found[SIGNATURE_SIGNED_AT_HEADER][0].decode("ascii")
        except UnicodeDecodeError:
            raise MalformedError(
                "malformed signature headers", reason="SIGNATURE_MISSING"
            ) from None
        if not at_text.isdigit() or (len(at_text) > 1 and at_text[0] == "0"):
            raise MalformedError("malformed signing time", reason="SIGNATURE_MISSING")
        return cls(key_id, int(at_text), found[SIGNATURE_HEADER][0])


def sign(key: SigningKey, context: bytes, body: bytes, *, signed_at: int) -> Signature:
    """Sign a record's value at ``signed_at`` (Unix ms)."""
    return Signature(key.key_id, signed_at, key.sign(signed_bytes(context, signed_at, body)))


def verify(
    trust_list: TrustList,
    context: bytes,
    body: bytes,
    sig: Signature,
    *,
    holders: Sequence[str] | None,
) -> KeyEntry:
    """Check the signature: a listed key with usage ``early-warning``, valid at the signing
    time, held by one of ``holders`` (None: any). Raises an
    :class:`~puente.evidence.errors.EvidenceError` whose reason says what failed
    (``KEY_UNKNOWN``, ``SIGNATURE_INVALID``, ``KEY_WRONG_USAGE``, ``KEY_WRONG_HOLDER``,
    ``KEY_REVOKED``, ``KEY_EXPIRED``, ``KEY_NOT_YET_VALID``)."""
    entry = trust_list.entry(sig.key_id)
    entry.key.verify(sig.signature, signed_bytes(context, sig.signed_at, body))
    return trust_list.check(entry, at=sig.signed_at, usage=Usage.EARLY_WARNING, holders=holders)


def digest(body: bytes) -> bytes:
    """SHA-256 of a record's value: how a warning names an aggregate it used."""
    return sha256(body).digest()


@dataclass(frozen=True)
class SignedAggregate:
    """An aggregate whose signature verified: the record, its bytes and its signature."""

    aggregate: Aggregate
    body: bytes
    signature: Signature

    def ref(self) -> dict[str, Any]:
        """How a warning names it (``puente.AggregateRef``)."""
        a = self.aggregate
        return {
            "origin": a.origin,
            "shard": a.shard,
            "window_start": to_datetime(a.window_start),
            "sha256": digest(self.body),
            "key_id": self.signature.key_id,
            "signed_at": to_datetime(self.signature.signed_at),
            "signature": self.signature.signature,
        }


def open_aggregate(
    trust_list: TrustList,
    registry: Registry,
    body: bytes,
    headers: Iterable[tuple[str, bytes]] | None,
    *,
    min_k: int,
) -> SignedAggregate:
    """Verify and decode an aggregate as read from the aggregates topic.

    Raises with a reason code: ``SIGNATURE_MISSING``, ``AGGREGATE_MALFORMED`` (bytes that are not
    an aggregate), a key or signature reason of :func:`verify` (a forged or altered aggregate is
    ``SIGNATURE_INVALID``; one signed by another state's key ``KEY_WRONG_HOLDER``),
    ``AGGREGATE_SIGNED_EARLY`` (signed before its window ended: it cannot hold the whole window)
    or a reason of :func:`~puente.warnings.aggregate.check_published`."""
    sig = Signature.from_headers(headers)
    try:
        aggregate = Aggregate.decode(registry, body)
    except (DecodeError, ValueError, KeyError) as exc:
        raise MalformedError(f"not an aggregate: {exc}", reason="AGGREGATE_MALFORMED") from None
    verify(trust_list, AGGREGATE_CONTEXT, body, sig, holders=aggregate_signers(aggregate.origin))
    if sig.signed_at < aggregate.window_end:
        raise EvidenceError(
            f"the aggregate of {aggregate.origin} is signed before its window ends",
            reason="AGGREGATE_SIGNED_EARLY",
        )
    check_published(aggregate, min_k)
    return SignedAggregate(aggregate, body, sig)
