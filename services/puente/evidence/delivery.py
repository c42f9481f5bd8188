"""Signed deliveries: the statement, the envelope, and the two ways of signing them.

The **signed bytes** of a delivery are ``b"puente/delivery-statement/v1\\x00"`` followed by the
statement's Avro single-object encoding (``puente.DeliveryStatement``). The context string makes
a delivery signature useless as any other Puente signature (a note text cannot contain a zero
byte; an audit leaf starts with ``C3 01``), and the statement binds the payload by SHA-256.

* Per-delivery mode (:class:`DeliverySigner`): an Ed25519 signature over the signed bytes.
* Batch mode (:class:`DeliveryBatch`, X-Road's batch signature): the signed bytes of every
  delivery of a batch are the leaves of an RFC 6962 tree; one Ed25519 signature covers its root,
  as a C2SP signed note in checkpoint form with origin ``puente.batch/<batch id>``; each delivery
  carries that note, its leaf index and its inclusion path.

Both produce a :class:`Delivery` that :meth:`puente.evidence.verify.Verifier.verify_delivery`
accepts, whichever the mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, ClassVar

from puente.codec.registry import Registry
from puente.codec.wire import header_fingerprint
from puente.evidence._avro import AvroRecord
from puente.evidence._time import from_datetime, to_datetime
from puente.evidence.checkpoint import Checkpoint, check_log_origin
from puente.evidence.errors import EvidenceError, MalformedError
from puente.evidence.keys import SigningKey
from puente.evidence.merkle.hasher import leaf_hash
from puente.evidence.merkle.tree import MerkleTree
from puente.evidence.records import AuditDecision

STATEMENT_CONTEXT = b"puente/delivery-statement/v1\x00"
BATCH_ORIGIN_PREFIX = "puente.batch/"
DELIVERY = "puente.Delivery"
DELIVERY_STATEMENT = "puente.DeliveryStatement"
HANDLING_CODES = frozenset({"H0", "H1", "H2", "H3"})


DELIVERY_ACTIONS = frozenset({AuditDecision.DELIVERED, AuditDecision.TRANSFORMED})
"""The outcomes a delivery statement can name (Avro enum ``DeliveryAction``)."""


@dataclass(frozen=True, kw_only=True)
class DeliveryDecision:
    """The decision summary a delivery carries."""

    action: AuditDecision
    rule_ids: tuple[str, ...]
    legal_bases: tuple[str, ...]
    handling_code: str
    purposes: tuple[str, ...]
    handling_conditions: str | None = None
    retention_days: int | None = None

    def __post_init__(self) -> None:
        if self.action not in DELIVERY_ACTIONS:
            raise MalformedError(f"a delivery is DELIVERED or TRANSFORMED, not {self.action}")
        if self.handling_code not in HANDLING_CODES:
            raise MalformedError(f"handling code {self.handling_code!r} is not H0-H3")


@dataclass(frozen=True, kw_only=True)
class DeliveryStatement(AvroRecord):
    """What the origin's node attests about one delivery (times in Unix ms). When the delivery
    is sealed to its recipient, ``sealed_*`` describe the envelope the Delivery carries and
    ``payload_*`` the plaintext notice inside it."""

    AVRO_NAME: ClassVar[str] = DELIVERY_STATEMENT

    delivery_id: str
    notice_id: str
    origin: str
    recipient: str
    payload_schema: str
    payload_fingerprint: bytes
    payload_sha256: bytes
    payload_size: int
    original_sha256: bytes
    decision: DeliveryDecision
    policy_set_version: str
    notice_created_at: int
    decided_at: int
    signed_at: int
    audit_log_id: str
    audit_leaf_index: int
    sealed_sha256: bytes | None = None
    sealed_size: int | None = None
    sealed_key_id: str | None = None

    def __post_init__(self) -> None:
        if len(self.payload_fingerprint) != 8:
            raise MalformedError("payload_fingerprint must be 8 bytes")
        if len(self.payload_sha256) != 32 or len(self.original_sha256) != 32:
            raise MalformedError("payload and original digests must be 32 bytes")
        sealed = (self.sealed_sha256, self.sealed_size, self.sealed_key_id)
        if any(x is None for x in sealed) and any(x is not None for x in sealed):
            raise MalformedError("a sealed delivery names its envelope's digest, size and key")
        if self.sealed_sha256 is not None and len(self.sealed_sha256) != 32:
            raise MalformedError("sealed_sha256 must be 32 bytes")

    @property
    def sealed(self) -> bool:
        """True when the delivery's payload is an envelope sealed to the recipient."""
        return self.sealed_sha256 is not None

    @classmethod
    def for_payload(
        cls, payload: bytes, *, payload_schema: str, **fields: Any
    ) -> DeliveryStatement:
        """A statement whose payload fields (fingerprint, digest, size) come from ``payload``."""
        return cls(
            payload_schema=payload_schema,
            payload_fingerprint=header_fingerprint(payload) or b"",
            payload_sha256=sha256(payload).digest(),
            payload_size=len(payload),
            **fields,
        )

    def to_avro(self) -> dict[str, Any]:
        """The record as the Avro codec takes it."""
        d = self.decision
        return {
            "delivery_id": self.delivery_id,
            "notice_id": self.notice_id,
            "origin": self.origin,
            "recipient": self.recipient,
            "payload_schema": self.payload_schema,
            "payload_fingerprint": self.payload_fingerprint,
            "payload_sha256": self.payload_sha256,
            "payload_size": self.payload_size,
            "sealed_sha256": self.sealed_sha256,
            "sealed_size": self.sealed_size,
            "sealed_key_id": self.sealed_key_id,
            "original_sha256": self.original_sha256,
            "decision": {
                "action": d.action.value,
                "rule_ids": list(d.rule_ids),
                "legal_bases": list(d.legal_bases),
                "handling_code": d.handling_code,
                "handling_conditions": d.handling_conditions,
                "purposes": list(d.purposes),
                "retention_days": d.retention_days,
            },
            "policy_set_version": self.policy_set_version,
            "notice_created_at": to_datetime(self.notice_created_at),
            "decided_at": to_datetime(self.decided_at),
            "signed_at": to_datetime(self.signed_at),
            "audit_log_id": self.audit_log_id,
            "audit_leaf_index": self.audit_leaf_index,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> DeliveryStatement:
        """The inverse of :meth:`to_avro`."""
        d = r["decision"]
        return cls(
            delivery_id=r["delivery_id"],
            notice_id=r["notice_id"],
            origin=r["origin"],
            recipient=r["recipient"],
            payload_schema=r["payload_schema"],
            payload_fingerprint=r["payload_fingerprint"],
            payload_sha256=r["payload_sha256"],
            payload_size=r["payload_size"],
            original_sha256=r["original_sha256"],
            decision=DeliveryDecision(
                action=AuditDecision(d["action"]),
                rule_ids=tuple(d["rule_ids"]),
                legal_bases=tuple(d["legal_bases"]),
                handling_code=d["handling_code"],
                handling_conditions=d["handling_conditions"],
                purposes=tuple(d["purposes"]),
                retention_days=d["retention_days"],
            ),
            policy_set_version=r["policy_set_version"],
            notice_created_at=from_datetime(r["notice_created_at"]),
            decided_at=from_datetime(r["decided_at"]),
            signed_at=from_datetime(r["signed_at"]),
            audit_log_id=r["audit_log_id"],
            audit_leaf_index=r["audit_leaf_index"],
            sealed_sha256=r.get("sealed_sha256"),
            sealed_size=r.get("sealed_size"),
            sealed_key_id=r.get("sealed_key_id"),
        )


def signed_bytes(statement: bytes) -> bytes:
    """The bytes that are signed (or hashed as a batch leaf) for an encoded statement."""
    return STATEMENT_CONTEXT + statement


@dataclass(frozen=True)
class SignatureProof:
    """Per-delivery mode: key id and Ed25519 signature over the signed bytes."""

    key_id: str
    signature: bytes


@dataclass(frozen=True)
class BatchProof:
    """Batch mode: the signed batch note, the leaf index and the inclusion path."""

    batch_note: bytes
    leaf_index: int
    inclusion_path: tuple[bytes, ...]


@dataclass(frozen=True)
class Delivery(AvroRecord):
    """The delivery envelope (``puente.Delivery``)."""

    AVRO_NAME: ClassVar[str] = DELIVERY

    statement: bytes
    payload: bytes
    proof: SignatureProof | BatchProof
    _signed: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_signed", signed_bytes(self.statement))

    @property
    def signed_bytes(self) -> bytes:
        """``context || statement``: what was signed, or hashed into the batch tree."""
        return self._signed

    @property
    def digest(self) -> bytes:
        """SHA-256 of the signed bytes: the value a DeliveryReceipt acknowledges (in hex)."""
        return sha256(self._signed).digest()

    def to_avro(self) -> dict[str, Any]:
        """The record as the Avro codec takes it."""
        p = self.proof
        sig = batch = None
        if isinstance(p, SignatureProof):
            sig = {"key_id": p.key_id, "signature": p.signature}
        else:
            batch = {
                "batch_note": p.batch_note.decode("utf-8"),
                "leaf_index": p.leaf_index,
                "inclusion_path": list(p.inclusion_path),
            }
        return {
            "statement": self.statement,
            "payload": self.payload,
            "signature": sig,
            "batch": batch,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> Delivery:
        """The inverse of :meth:`to_avro`; exactly one of signature and batch must be set."""
        sig, batch = d["signature"], d["batch"]
        proof: SignatureProof | BatchProof
        if sig is not None and batch is None:
            proof = SignatureProof(sig["key_id"], sig["signature"])
        elif batch is not None and sig is None:
            proof = BatchProof(
                batch["batch_note"].encode("utf-8"),
                batch["leaf_index"],
                tuple(batch["inclusion_path"]),
            )
        else:
            raise MalformedError("a delivery carries exactly one of signature and batch")
        return cls(d["statement"], d["payload"], proof)


class DeliverySigner:
    """Per-delivery mode: one Ed25519 signature per delivery."""

    def __init__(self, key: SigningKey, registry: Registry) -> None:
        self._key = key
        self._registry = registry

    def sign(
        self, statement: DeliveryStatement, payload: bytes, *, encoded: bytes | None = None
    ) -> Delivery:
        """Encode ``statement`` (or take its ``encoded`` bytes), check it binds ``payload``, and
        sign it."""
        _check_binding(statement, payload)
        stmt = encoded if encoded is not None else statement.encode(self._registry)
        sig = self._key.sign(signed_bytes(stmt))
        return Delivery(stmt, payload, SignatureProof(self._key.key_id, sig))


class DeliveryBatch:
    """Batch mode: collect a batch's deliveries, then :meth:`seal` them under one signature.

    The batch id becomes the origin ``puente.batch/<batch id>`` of the signed batch note; make it
    unique (e.g. ``<audit log id>/<first audit leaf index>``).
    """

    def __init__(self, registry: Registry, batch_id: str) -> None:
        self._registry = registry
        self._origin = check_log_origin(BATCH_ORIGIN_PREFIX + batch_id)
        self._items: list[tuple[bytes, bytes]] = []
        self._tree = MerkleTree()
        self._latest = 0

    @property
    def origin(self) -> str:
        """The batch note's origin line."""
        return self._origin

    def __len__(self) -> int:
        return len(self._items)

    def add(
        self, statement: DeliveryStatement, payload: bytes, *, encoded: bytes | None = None
    ) -> int:
        """Add one delivery (``encoded``: the statement's bytes, when the caller already has
        them); returns its leaf index in the batch tree."""
        _check_binding(statement, payload)
        stmt = encoded if encoded is not None else statement.encode(self._registry)
        self._items.append((stmt, payload))
        self._latest = max(self._latest, statement.signed_at)
        return self._tree.append(leaf_hash(signed_bytes(stmt)))

    def seal(self, key: SigningKey, *, time_ms: int) -> list[Delivery]:
        """Sign the batch root and return every delivery with its inclusion proof, in order.

        ``time_ms`` (the note's signed time, at which the key must be valid) must not precede
        any statement's ``signed_at``.
        """
        if not self._items:
            raise EvidenceError("an empty batch has nothing to seal")
        if time_ms < self._latest:
            raise EvidenceError("the batch is sealed before one of its statements was made")
        cp = Checkpoint.make(self._origin, self._tree.size, self._tree.root(), time_ms=time_ms)
        note = cp.sign(key).to_bytes()
        return [
            Delivery(stmt, payload, BatchProof(note, i, tuple(self._tree.inclusion_proof(i))))
            for i, (stmt, payload) in enumerate(self._items)
        ]


def _check_binding(statement: DeliveryStatement, carried: bytes) -> None:
    """The statement binds what the delivery carries: the sealed envelope (its digest and size)
    when sealed, else the payload itself."""
    if statement.sealed:
        digest, size = statement.sealed_sha256, statement.sealed_size
    else:
        digest, size = statement.payload_sha256, statement.payload_size
    if digest != sha256(carried).digest() or size != len(carried):
        raise EvidenceError("the statement does not bind this payload (digest or size differ)")
