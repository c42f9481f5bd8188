"""Errors of the evidence layer, each with a stable ``reason`` code.

Verification failures are raised, never returned as ``False``: a caller that forgets to check a
boolean would accept forged evidence, a caller that forgets to catch an exception fails closed.
"""

from __future__ import annotations

from puente.errors import PuenteError


class EvidenceError(PuenteError):
    """Base of every evidence error."""

    reason = "EVIDENCE_ERROR"


class MalformedError(EvidenceError):
    """Bytes that do not parse as the evidence object they claim to be."""

    reason = "EVIDENCE_MALFORMED"


class ProofError(EvidenceError):
    """A Merkle inclusion or consistency proof that does not verify."""

    reason = "PROOF_INVALID"


class SignatureError(EvidenceError):
    """A signature that does not verify, or that no trusted key made."""

    reason = "SIGNATURE_INVALID"


class UntrustedKeyError(EvidenceError):
    """A key that is unknown, not valid at the evidence's time, revoked, or of the wrong use."""

    reason = "KEY_UNTRUSTED"


class TrustListError(EvidenceError):
    """A trust list that is unsigned, signed by no trust anchor, expired or malformed."""

    reason = "TRUST_LIST_INVALID"


class KeyStoreError(EvidenceError):
    """A key file that is missing, unreadable, or readable by others than its owner."""

    reason = "KEY_STORE_ERROR"


class SealError(EvidenceError):
    """A sealed envelope that cannot be made or opened.

    Reasons: ``NOT_SEALED`` (the bytes are not a sealed envelope: plaintext where a seal was
    required), ``SEAL_MALFORMED`` (an envelope that does not parse), ``SEAL_WRONG_KIND`` (a
    delivery envelope where a notice was expected, or the reverse), ``SEAL_WRONG_RECIPIENT``
    (sealed for another holder than the key ring's), ``SEAL_KEY_UNKNOWN`` (sealed to a key the
    key ring does not hold, or no key to seal to), ``SEAL_INVALID`` (decryption fails: altered
    bytes, another binding, another key).
    """

    reason = "SEAL_INVALID"


class FloorError(EvidenceError):
    """A regional floor other than the one the trust list pins (or a list that pins none)."""

    reason = "FLOOR_MISMATCH"
