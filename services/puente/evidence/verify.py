"""One verifier for every piece of Puente evidence, over an explicit trust list.

Sigstore's shape: trust is an object passed in (``Verifier(trust_list=..., registry=...)``),
never a global, and every check raises a typed error with a stable reason code, so nothing can
be "accepted by forgetting to look at a boolean". Verification is always at the evidence's own
time: a delivery at its statement's ``signed_at`` (per-delivery mode) or its batch note's time
(batch mode), a checkpoint at its ``puente-time-ms`` line.

Who may sign a state's evidence is :func:`check_evidence_signer`: state CC's own node key
(``node:CC``) for CC's deliveries, batch notes and audit checkpoints, or a Puente service key
(``service:``), as before the federation.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from hashlib import sha256
from typing import Literal

from puente.codec.errors import DecodeError
from puente.codec.registry import Registry
from puente.codec.wire import decode, header_fingerprint
from puente.evidence._time import from_datetime
from puente.evidence.checkpoint import Checkpoint
from puente.evidence.delivery import (
    BATCH_ORIGIN_PREFIX,
    BatchProof,
    Delivery,
    DeliveryStatement,
    SignatureProof,
)
from puente.evidence.enckeys import KeyRing
from puente.evidence.errors import (
    EvidenceError,
    MalformedError,
    ProofError,
    TrustListError,
    UntrustedKeyError,
)
from puente.evidence.keys import SigningKey
from puente.evidence.log import audit_log_state
from puente.evidence.merkle.hasher import leaf_hash
from puente.evidence.merkle.proof import verify_inclusion
from puente.evidence.note import Note
from puente.evidence.seal import open_delivery
from puente.evidence.trust import KeyEntry, TrustList, Usage, member_holder, node_holder

RECEIPT_CONTEXT = b"puente/delivery-receipt/v1\x00"
DELIVERY_RECEIPT = "puente.DeliveryReceipt"
SERVICE_HOLDER_PREFIX = "service:"
_NOTE_CACHE = 4096


@dataclass(frozen=True)
class VerifiedDelivery:
    """A delivery that verified: its statement, the payload it carries (the sealed envelope
    when ``statement.sealed``: open it with :func:`open_verified`), and how it was proven."""

    statement: DeliveryStatement
    payload: bytes
    mode: Literal["signature", "batch"]
    key_ids: tuple[str, ...]
    time_ms: int
    digest: bytes

    @property
    def sealed(self) -> bool:
        """True when :attr:`payload` is an envelope sealed to the recipient."""
        return self.statement.sealed


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """A checkpoint whose signature verified against the trust list at its own time."""

    checkpoint: Checkpoint
    note: Note
    key_ids: tuple[str, ...]
    time_ms: int


class Verifier:
    """Verifies deliveries, checkpoints, batch notes and receipts against one trust list."""

    def __init__(
        self,
        *,
        trust_list: TrustList,
        registry: Registry,
        allow_untrusted_list: bool = False,
    ) -> None:
        """``trust_list`` must come from :meth:`TrustList.open` (anchor-signed, unexpired).

        ``allow_untrusted_list`` exists for the auditor, which reports a bad trust list as an
        anomaly and still checks everything else; nobody else should set it.
        """
        if not allow_untrusted_list and (trust_list.problems or not trust_list.signed_by):
            raise TrustListError(
                "the trust list was not verified against a trust anchor "
                f"({', '.join(trust_list.problems) or 'not opened with TrustList.open'})",
                reason=(trust_list.problems or ("TRUST_LIST_UNTRUSTED",))[0],
            )
        self.trust_list = trust_list
        self._registry = registry
        self._notes: OrderedDict[tuple[bytes, Usage, str | None], VerifiedCheckpoint] = (
            OrderedDict()
        )

    # --- notes and checkpoints --------------------------------------------------------------

    def verify_note_signers(
        self, note: Note, *, usage: Usage, at: int, state: str | None = None
    ) -> list[KeyEntry]:
        """The trust-list entries whose signatures on ``note`` verify and are valid at ``at``:
        keys of a Puente service, or of state ``state``'s node (:func:`check_evidence_signer`).

        Signatures by keys not in the trust list are ignored (witnesses may cosign). Raises
        :class:`UntrustedKeyError` (``KEY_UNKNOWN`` when no signature is by a listed key, else
        the reason of the first listed key that is not valid at ``at``: ``KEY_REVOKED``,
        ``KEY_EXPIRED``, ...), or :class:`SignatureError` when a listed key's signature fails.
        """
        tl = self.trust_list
        message = note.text.encode()
        good: list[KeyEntry] = []
        refusal: UntrustedKeyError | None = None
        listed = 0
        for sig in note.signatures:
            entry = tl.entry_for(sig)
            if entry is None:
                continue
            listed += 1
            entry.key.verify(sig.signature, message)
            try:
                tl.check(entry, at=at, usage=usage)
                check_evidence_signer(entry, state=state)
            except UntrustedKeyError as exc:
                refusal = refusal or exc
                continue
            good.append(entry)
        if good:
            return good
        if refusal is not None:
            raise refusal
        assert listed == 0
        raise UntrustedKeyError("no signature is by a key in the trust list", reason="KEY_UNKNOWN")

    def verify_checkpoint(
        self,
        data: bytes,
        *,
        log_origin: str | None = None,
        usage: Usage = Usage.CHECKPOINT,
        state: str | None = None,
    ) -> VerifiedCheckpoint:
        """Parse and verify a signed checkpoint (or, with ``usage=DELIVERY``, a batch note).

        ``state`` is the state whose node may have signed it; for an audit checkpoint it
        defaults to the state its log id names (``puente.audit/MX/0``: MX). Raises
        :class:`MalformedError`, :class:`SignatureError` or :class:`UntrustedKeyError`;
        ``CHECKPOINT_ORIGIN_MISMATCH`` when ``log_origin`` (the log id) is given and differs.
        """
        cached = self._notes.get((data, usage, state))
        if cached is None:
            note = Note.parse(data)
            cp = Checkpoint.from_text(note.text)
            t = cp.time_ms
            if t is None:
                raise MalformedError(
                    "checkpoint has no puente-time-ms line", reason="CHECKPOINT_NO_TIME"
                )
            signer_state = state
            if signer_state is None and usage is Usage.CHECKPOINT:
                signer_state = audit_log_state(cp.log_origin)
            entries = self.verify_note_signers(note, usage=usage, at=t, state=signer_state)
            cached = VerifiedCheckpoint(cp, note, tuple(e.key_id for e in entries), t)
            self._notes[(data, usage, state)] = cached
            if len(self._notes) > _NOTE_CACHE:
                self._notes.popitem(last=False)
        if log_origin is not None and cached.checkpoint.log_origin != log_origin:
            raise EvidenceError(
                f"checkpoint is for log {cached.checkpoint.log_origin!r}, not {log_origin!r}",
                reason="CHECKPOINT_ORIGIN_MISMATCH",
            )
        return cached

    # --- deliveries -------------------------------------------------------------------------

    def verify_delivery(self, delivery: bytes | Delivery, *, recipient: str) -> VerifiedDelivery:
        """Verify a delivery in either mode; the one call a subscriber needs.

        ``recipient`` is required: a delivery is only ever valid *for* someone, and one checked
        without saying for whom would accept another state's delivery replayed to you.
        Checks the envelope and statement decode, the payload is the one the statement binds,
        the recipient is the statement's, and the proof: an Ed25519 signature by the origin's
        node key or a service key, valid at ``signed_at``, or an inclusion proof into a batch
        note signed by such a key at the note's time. Raises an :class:`EvidenceError`
        subclass whose ``reason`` says what failed (``DELIVERY_MALFORMED``, ``PAYLOAD_MISMATCH``,
        ``RECIPIENT_MISMATCH``, ``SIGNATURE_INVALID``, ``PROOF_INVALID``, ``KEY_*``, ...).
        """
        if not isinstance(delivery, Delivery):
            try:
                delivery = Delivery.decode(self._registry, delivery)
            except (DecodeError, MalformedError) as exc:
                raise MalformedError(
                    f"not a delivery: {exc}", reason="DELIVERY_MALFORMED"
                ) from None
        try:
            st = DeliveryStatement.decode(self._registry, delivery.statement)
        except (DecodeError, MalformedError) as exc:
            raise MalformedError(
                f"the delivery's statement does not decode: {exc}", reason="DELIVERY_MALFORMED"
            ) from None
        payload = delivery.payload
        if st.sealed:
            # What was sent is checked here, by anyone; what is inside, by the recipient who
            # opens it (open_verified checks the plaintext against payload_sha256).
            carried_ok = (
                sha256(payload).digest() == st.sealed_sha256 and len(payload) == st.sealed_size
            )
        else:
            carried_ok = (
                sha256(payload).digest() == st.payload_sha256
                and len(payload) == st.payload_size
                and header_fingerprint(payload) == st.payload_fingerprint
            )
        if not carried_ok:
            raise EvidenceError(
                "the payload is not the one the statement signs for", reason="PAYLOAD_MISMATCH"
            )
        if st.recipient != recipient:
            raise EvidenceError(
                f"the delivery is addressed to {st.recipient}, not {recipient}",
                reason="RECIPIENT_MISMATCH",
            )
        signed = delivery.signed_bytes
        proof = delivery.proof
        if isinstance(proof, SignatureProof):
            entry = self.trust_list.entry(proof.key_id)
            entry.key.verify(proof.signature, signed)
            self.trust_list.check(entry, at=st.signed_at, usage=Usage.DELIVERY)
            check_evidence_signer(entry, state=st.origin)
            return VerifiedDelivery(
                st, payload, "signature", (entry.key_id,), st.signed_at, delivery.digest
            )
        return self._verify_batch(st, payload, signed, proof, delivery.digest)

    def _verify_batch(
        self,
        st: DeliveryStatement,
        payload: bytes,
        signed: bytes,
        proof: BatchProof,
        digest: bytes,
    ) -> VerifiedDelivery:
        vc = self.verify_checkpoint(proof.batch_note, usage=Usage.DELIVERY, state=st.origin)
        cp = vc.checkpoint
        if not cp.log_origin.startswith(BATCH_ORIGIN_PREFIX):
            raise EvidenceError(
                f"{cp.log_origin!r} is not a delivery batch note", reason="BATCH_ORIGIN_INVALID"
            )
        if st.signed_at > vc.time_ms:
            raise EvidenceError(
                "the statement is dated after the batch that signs it", reason="BATCH_TIME_INVALID"
            )
        try:
            verify_inclusion(
                proof.leaf_index, cp.size, leaf_hash(signed), proof.inclusion_path, cp.root
            )
        except ProofError as exc:
            raise ProofError(f"delivery is not in the signed batch: {exc}") from None
        return VerifiedDelivery(st, payload, "batch", vc.key_ids, vc.time_ms, digest)

    # --- receipts ---------------------------------------------------------------------------

    def verify_receipt(self, receipt: bytes, *, key_id: str, signature: bytes) -> KeyEntry:
        """Verify a member's signature over a ``puente.DeliveryReceipt`` (single-object bytes).

        The key must belong to the receipt's recipient state, have usage ``receipt`` and be
        valid at the receipt's ``received_at``.
        """
        try:
            rec = decode(self._registry, receipt, reader=DELIVERY_RECEIPT)
        except DecodeError as exc:
            raise MalformedError(
                f"not a delivery receipt: {exc}", reason="RECEIPT_MALFORMED"
            ) from None
        entry = self.trust_list.entry(key_id)
        entry.key.verify(signature, RECEIPT_CONTEXT + receipt)
        return self.trust_list.check(
            entry,
            at=from_datetime(rec["received_at"]),
            usage=Usage.RECEIPT,
            holders=[member_holder(rec["recipient"])],
        )


def open_verified(verified: VerifiedDelivery, keys: KeyRing) -> bytes:
    """The notice inside a verified delivery: the payload itself when in clear, else the
    sealed envelope opened with the recipient's key ring and checked against the signed
    statement's plaintext digest, size and fingerprint. Raises :class:`SealError`
    (``SEAL_*``) or :class:`EvidenceError` (``PAYLOAD_MISMATCH``)."""
    st = verified.statement
    if not st.sealed:
        return verified.payload
    opened = open_delivery(
        verified.payload,
        keys=keys,
        notice_id=st.notice_id,
        recipient=st.recipient,
        delivery_id=st.delivery_id,
        payload_fingerprint=st.payload_fingerprint,
    )
    plain = opened.plaintext
    if sha256(plain).digest() != st.payload_sha256 or len(plain) != st.payload_size:
        raise EvidenceError(
            "the sealed notice is not the one the statement signs for", reason="PAYLOAD_MISMATCH"
        )
    return plain


def sign_receipt(key: SigningKey, receipt: bytes) -> bytes:
    """A member's Ed25519 signature over ``RECEIPT_CONTEXT || receipt`` (single-object bytes)."""
    return key.sign(RECEIPT_CONTEXT + receipt)


def check_evidence_signer(
    entry: KeyEntry, *, state: str | None, allow_service: bool = True
) -> KeyEntry:
    """May ``entry``'s holder sign evidence (deliveries, batch notes, checkpoints) of ``state``?

    Yes for ``node:<state>``, the state's own node; yes for a ``service:`` key while
    ``allow_service`` (the single policy service of before the federation: evidence it signed
    keeps verifying). Another state's node, a member or an operator key: ``KEY_WRONG_HOLDER``.
    Usage and validity are :meth:`TrustList.check`'s; this only says whose key it must be.
    """
    if allow_service and entry.holder.startswith(SERVICE_HOLDER_PREFIX):
        return entry
    if state is not None and entry.holder == node_holder(state):
        return entry
    wanted = [node_holder(state)] if state is not None else []
    if allow_service:
        wanted.append("a Puente service")
    raise UntrustedKeyError(
        f"key {entry.key_id} belongs to {entry.holder}; evidence of "
        f"{state or 'this log'} must be signed by {' or '.join(wanted) or 'its node'}",
        reason="KEY_WRONG_HOLDER",
    )
