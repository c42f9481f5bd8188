"""Sealing: a delivery payload to its recipient, an ingress notice to its state's node.

HPKE (RFC 9180) in base mode, single shot, with the suite

* KEM  ``0x0020`` DHKEM(X25519, HKDF-SHA256),
* KDF  ``0x0001`` HKDF-SHA256,
* AEAD ``0x0003`` ChaCha20-Poly1305,

and no AAD: everything a seal binds goes through HPKE's ``info``, which enters the key schedule,
so a seal opened with another binding fails like one opened with another key. ChaCha20-Poly1305
rather than AES-128-GCM: the nodes and recipients of twenty states run on whatever hardware each
state has, and ChaCha20-Poly1305 is constant-time and fast in software without AES instructions;
it has a 256-bit key; on a 1 KiB payload the AEAD is a few percent of the cost of a seal, which
is dominated by X25519 (``tests/bench/seal.py`` measures both).

The envelope (``docs/evidence.md`` §9 describes it byte for byte)::

    0   2   magic 0x50 0x53 ("PS")
    2   1   version 0x01 (fixes the suite above)
    3   1   kind: 0x01 delivery payload, 0x02 ingress notice, 0x03 a node's private state,
            0x04 batch-sealed delivery payload (below: its bytes 12.. differ)
    4   8   key id of the recipient's encryption key (the envelope names the key it needs)
    12  32  enc: the sender's ephemeral X25519 public key
    44  -   the ChaCha20-Poly1305 ciphertext (plaintext length + 16)

``info`` is a context string, a zero byte, and length-prefixed fields (``u16 big-endian length
|| bytes``):

* delivery: ``"puente/sealed-delivery/v1" 0x00 || f(key id) || f(notice id) || f(recipient)
  || f(delivery id) || f(schema fingerprint)``;
* notice:   ``"puente/sealed-notice/v1" 0x00 || f(key id) || f(origin)``;
* state:    ``"puente/sealed-state/v1" 0x00 || f(key id) || f(origin) || f(name)``: what a
  node keeps on the shared cluster for itself alone (early warning's raw counts, small cells
  included, in its changelog), sealed to its own node key.

The context string binds the version and the kind, the key id is in ``info`` and ``enc`` is in
HPKE's own key schedule: no header byte can change without the seal failing to open. A notice
sealed to MX's node opens only with MX's node key and only as a notice of origin MX, so it is
useless on another state's ingress; a delivery opens only for the notice, recipient, delivery
and payload schema it was sealed for, so it cannot be passed off as another delivery.

The signed statement will commit to both digests of a sealed delivery: :attr:`Sealed.sealed_sha256`
(what is on Kafka, checkable by anyone) and :attr:`Sealed.plaintext_sha256` (what the recipient
reads, checkable after opening).

**Batch-sealed deliveries (kind 0x04).** A node delivers a batch's notices to each recipient
with one X25519 encapsulation, not one per delivery (X25519 is nearly all of a kind-0x01 seal):
:class:`BatchSealer` draws a fresh random 32-byte *data key* per (batch, recipient), seals it
once with the HPKE single shot above (``info`` = ``"puente/sealed-batch-key/v1" 0x00 || f(key
id) || f(recipient)``), and seals each delivery payload with AES-256-GCM under the data key, the
delivery's binding as AAD (``"puente/sealed-batch-delivery/v1" 0x00 || f(key id) || f(notice
id) || f(recipient) || f(delivery id) || f(schema fingerprint)``) and a 12-byte nonce that
counts the batch's deliveries to that recipient from 0::

    0   2   magic, 2 1 version 0x01, 3 1 kind 0x04, 4 8 key id    (as above)
    12  32  enc: the ephemeral X25519 public key of the data key's seal
    44  48  the data key, ChaCha20-Poly1305-sealed (HPKE ``ct``: 32 + 16 bytes)
    92  12  nonce (big-endian count)
    104 -   the AES-256-GCM ciphertext of the payload (plaintext length + 16)

Every record carries the whole sealed data key, so each opens on its own; a recipient memoises
the data keys it opened (:attr:`KeyRing.opened`, by bytes 4..91), so it too pays one X25519 per
(batch, recipient). AES-256-GCM for the payloads because it is the AEAD that standard libraries
expose with a caller's key (Go's ``crypto/cipher``; Go has ChaCha20-Poly1305 only inside HPKE),
so a third party opens a record with standard tools alone. The price: on a CPU without AES and
carry-less-multiply instructions AES-GCM is slower and less sure to be constant-time than
ChaCha20-Poly1305 (x86-64 CPUs of the last decade and ARMv8 with its crypto extension have them).

Why it is as strong as kind 0x01, field by field:

* *Key and nonce uniqueness.* Each data key is 256 random bits from the OS, used by one
  :class:`BatchSealer` only, whose nonces are distinct counts: no (key, nonce) pair repeats,
  and each key encrypts a batch's worth of payloads, far below AES-GCM's limits.
* *Binding.* A payload opens only under its own data key (which only the holder of the
  recipient's private key recovers, and only with the ``info`` naming that key id and
  recipient) and only with the AAD of its notice, recipient, delivery and schema: a record
  moved to another delivery, recipient or key fails (``SEAL_INVALID``), as a kind-0x01 one
  does. The context strings fix version and kind, the key id is in ``info`` and AAD, ``enc``
  and the sealed key are HPKE's input, the nonce is the AEAD's: no header byte can change
  without the record failing to open.
* *What one delivery tells about the others of its batch.* Holding the data key, a recipient
  can decrypt every delivery of that (batch, recipient): all of them are sealed to it anyway.
  Another recipient's deliveries of the batch are under another data key sealed to another key.
  The shared ``enc`` and sealed key show that records belong to one batch to one recipient,
  which the topic, the statement's audit position and the batch proof already show.
* *Authenticity* is, as for kind 0x01 (HPKE base mode authenticates no sender), the signed
  statement's: it commits to the envelope's SHA-256 and to the plaintext's.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from hashlib import sha256
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from puente.codec.wire import header_fingerprint
from puente.evidence.enckeys import EncryptionKey, EncryptionPublicKey, KeyRing
from puente.evidence.errors import SealError, UntrustedKeyError
from puente.evidence.keys import KEY_ID_BYTES
from puente.evidence.trust import TrustList, member_holder, node_holder

MAGIC = b"PS"
VERSION = 0x01
KEM_ID, KDF_ID, AEAD_ID = 0x0020, 0x0001, 0x0003
ENC_SIZE = 32
TAG_SIZE = 16
HEADER_SIZE = len(MAGIC) + 2 + KEY_ID_BYTES + ENC_SIZE  # 44
DELIVERY_CONTEXT = b"puente/sealed-delivery/v1\x00"
NOTICE_CONTEXT = b"puente/sealed-notice/v1\x00"
STATE_CONTEXT = b"puente/sealed-state/v1\x00"
BATCH_KEY_CONTEXT = b"puente/sealed-batch-key/v1\x00"
BATCH_DELIVERY_CONTEXT = b"puente/sealed-batch-delivery/v1\x00"
DATA_KEY_SIZE = 32
NONCE_SIZE = 12
BATCH_HEADER_SIZE = HEADER_SIZE + DATA_KEY_SIZE + TAG_SIZE + NONCE_SIZE  # 104
OPENED_KEYS = 1024  # data keys a key ring memoises (a batch has a few per recipient)
_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)
_AVRO_MAGIC = b"\xc3\x01"  # single-object encoding: a payload's schema fingerprint follows


class Kind(IntEnum):
    """What an envelope carries (its byte 3)."""

    DELIVERY = 0x01
    NOTICE = 0x02
    STATE = 0x03
    BATCH_DELIVERY = 0x04


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope (nothing decrypted)."""

    kind: Kind
    key_id: str
    enc: bytes
    ciphertext: bytes
    sealed_key: bytes = b""  # kind 0x04: the HPKE-sealed data key (enc is its seal's)
    nonce: bytes = b""  # kind 0x04: the payload's AES-256-GCM nonce


@dataclass(frozen=True)
class Sealed:
    """A sealed payload or notice: the envelope bytes and the two digests a statement commits to."""

    envelope: bytes
    key_id: str
    sealed_sha256: bytes
    plaintext_sha256: bytes


@dataclass(frozen=True)
class Opened:
    """An opened envelope: the plaintext, the key that opened it, and the same two digests."""

    plaintext: bytes
    key_id: str
    sealed_sha256: bytes
    plaintext_sha256: bytes


# --- info and envelope -----------------------------------------------------------------------


def _field(value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise SealError("a sealed binding field is over 65535 bytes", reason="SEAL_MALFORMED")
    return struct.pack(">H", len(value)) + value


def _ascii(value: str, what: str) -> bytes:
    if not value or not value.isascii():
        raise SealError(f"the {what} of a seal must be non-empty ASCII", reason="SEAL_MALFORMED")
    return value.encode("ascii")


def _delivery_binding(
    context: bytes,
    *,
    key_id: str,
    notice_id: str,
    recipient: str,
    delivery_id: str,
    schema_fingerprint: bytes,
) -> bytes:
    if len(schema_fingerprint) != 8:
        raise SealError("a schema fingerprint is 8 bytes", reason="SEAL_MALFORMED")
    return context + b"".join(
        (
            _field(bytes.fromhex(key_id)),
            _field(_ascii(notice_id, "notice id")),
            _field(_ascii(recipient, "recipient")),
            _field(_ascii(delivery_id, "delivery id")),
            _field(schema_fingerprint),
        )
    )


def delivery_info(
    *, key_id: str, notice_id: str, recipient: str, delivery_id: str, schema_fingerprint: bytes
) -> bytes:
    """The HPKE ``info`` of a sealed delivery payload, kind 0x01 (see the module docstring)."""
    return _delivery_binding(
        DELIVERY_CONTEXT,
        key_id=key_id,
        notice_id=notice_id,
        recipient=recipient,
        delivery_id=delivery_id,
        schema_fingerprint=schema_fingerprint,
    )


def batch_delivery_aad(
    *, key_id: str, notice_id: str, recipient: str, delivery_id: str, schema_fingerprint: bytes
) -> bytes:
    """The AES-256-GCM AAD of a batch-sealed delivery payload, kind 0x04 (module docstring)."""
    return _delivery_binding(
        BATCH_DELIVERY_CONTEXT,
        key_id=key_id,
        notice_id=notice_id,
        recipient=recipient,
        delivery_id=delivery_id,
        schema_fingerprint=schema_fingerprint,
    )


def batch_key_info(*, key_id: str, recipient: str) -> bytes:
    """The HPKE ``info`` of a (batch, recipient)'s sealed data key, kind 0x04."""
    return (
        BATCH_KEY_CONTEXT + _field(bytes.fromhex(key_id)) + _field(_ascii(recipient, "recipient"))
    )


def notice_info(*, key_id: str, origin: str) -> bytes:
    """The HPKE ``info`` of a sealed ingress notice (see the module docstring)."""
    return NOTICE_CONTEXT + _field(bytes.fromhex(key_id)) + _field(_ascii(origin, "origin"))


def is_sealed(data: bytes) -> bool:
    """Whether ``data`` starts like a sealed envelope (magic and version)."""
    return data[: len(MAGIC) + 1] == MAGIC + bytes([VERSION])


def parse_envelope(data: bytes) -> Envelope:
    """Split an envelope; ``NOT_SEALED`` or ``SEAL_MALFORMED`` if it is not one."""
    if data[: len(MAGIC)] != MAGIC:
        hint = " (it looks like plaintext Avro)" if data[:2] == _AVRO_MAGIC else ""
        raise SealError(f"the bytes are not a sealed envelope{hint}", reason="NOT_SEALED")
    if len(data) < HEADER_SIZE + TAG_SIZE:
        raise SealError(
            f"sealed envelope of {len(data)} bytes is cut short", reason="SEAL_MALFORMED"
        )
    if data[2] != VERSION:
        raise SealError(f"sealed envelope version {data[2]} is not 1", reason="SEAL_MALFORMED")
    try:
        kind = Kind(data[3])
    except ValueError:
        raise SealError(
            f"sealed envelope kind {data[3]} is unknown", reason="SEAL_MALFORMED"
        ) from None
    key_id, enc = data[4:12].hex(), data[12:HEADER_SIZE]
    if kind is not Kind.BATCH_DELIVERY:
        return Envelope(kind, key_id, enc, data[HEADER_SIZE:])
    if len(data) < BATCH_HEADER_SIZE + TAG_SIZE:
        raise SealError(
            f"batch-sealed envelope of {len(data)} bytes is cut short", reason="SEAL_MALFORMED"
        )
    nonce_at = BATCH_HEADER_SIZE - NONCE_SIZE
    return Envelope(
        kind,
        key_id,
        enc,
        data[BATCH_HEADER_SIZE:],
        sealed_key=data[HEADER_SIZE:nonce_at],
        nonce=data[nonce_at:BATCH_HEADER_SIZE],
    )


def _seal(kind: Kind, plaintext: bytes, to: EncryptionPublicKey, info: bytes) -> Sealed:
    # cryptography's Suite.encrypt returns enc || ciphertext: the envelope's last two fields.
    sealed = _SUITE.encrypt(plaintext, to.crypto(), info=info)
    envelope = MAGIC + bytes([VERSION, kind]) + to.key_id_bytes + sealed
    return Sealed(envelope, to.key_id, sha256(envelope).digest(), sha256(plaintext).digest())


def _open(
    data: bytes,
    kind: Kind,
    keys: KeyRing,
    holder: str,
    info_of: Callable[[Envelope], bytes],
) -> Opened:
    """Open ``data`` as a ``kind`` envelope for ``holder``; ``info_of`` builds the ``info``
    the opener expects from the envelope's key id."""
    env = parse_envelope(data)
    _check_kind(env, kind)
    key = _opening_key(env, keys, holder)
    try:
        plaintext = _SUITE.decrypt(env.enc + env.ciphertext, key.crypto(), info=info_of(env))
    except (InvalidTag, ValueError):
        raise _invalid(env) from None
    return Opened(plaintext, env.key_id, sha256(data).digest(), sha256(plaintext).digest())


def _check_kind(env: Envelope, kind: Kind) -> None:
    if env.kind is not kind:
        raise SealError(
            f"a sealed {env.kind.name.lower()} where a sealed {kind.name.lower()} was expected",
            reason="SEAL_WRONG_KIND",
        )


def _opening_key(env: Envelope, keys: KeyRing, holder: str) -> EncryptionKey:
    """The key of ``keys`` that opens ``env``, if ``keys`` are ``holder``'s and hold it."""
    if keys.holder != holder:
        raise SealError(
            f"sealed for {holder}; these are the keys of {keys.holder}",
            reason="SEAL_WRONG_RECIPIENT",
        )
    key: EncryptionKey | None = keys.get(env.key_id)
    if key is None:
        raise SealError(
            f"sealed to encryption key {env.key_id}, which {holder} does not hold here",
            reason="SEAL_KEY_UNKNOWN",
            hint="a rotated key's private part must be kept until what was sealed to it is read",
        )
    return key


def _invalid(env: Envelope) -> SealError:
    return SealError(
        f"the seal (key {env.key_id}) does not open: altered, or sealed for another "
        "notice, delivery, recipient or node",
        reason="SEAL_INVALID",
    )


# --- deliveries ------------------------------------------------------------------------------


def seal_delivery(
    payload: bytes, *, to: EncryptionPublicKey, notice_id: str, recipient: str, delivery_id: str
) -> Sealed:
    """Seal a delivery payload (single-object Avro) to its recipient's encryption key ``to``.

    The binding is the notice id, the recipient state, the delivery id and the payload's schema
    fingerprint (payload bytes 2..9).
    """
    info = delivery_info(
        key_id=to.key_id,
        notice_id=notice_id,
        recipient=recipient,
        delivery_id=delivery_id,
        schema_fingerprint=_payload_fingerprint(payload),
    )
    return _seal(Kind.DELIVERY, payload, to, info)


def _payload_fingerprint(payload: bytes) -> bytes:
    fingerprint = header_fingerprint(payload)
    if fingerprint is None:
        raise SealError(
            "a delivery payload is a single-object Avro record", reason="SEAL_MALFORMED"
        )
    return fingerprint


class BatchSealer:
    """Seals the deliveries of one batch to one recipient (kind 0x04, see the module
    docstring): one HPKE seal of a fresh data key here, then AES-256-GCM per delivery.

    Make one per (batch, recipient) and drop it with the batch: its nonces count from 0 under
    a key no other sealer has.
    """

    def __init__(self, to: EncryptionPublicKey, recipient: str) -> None:
        self.to = to
        self.recipient = recipient
        data_key = os.urandom(DATA_KEY_SIZE)
        sealed_key = _SUITE.encrypt(
            data_key, to.crypto(), info=batch_key_info(key_id=to.key_id, recipient=recipient)
        )
        self._aead = AESGCM(data_key)
        self._head = MAGIC + bytes([VERSION, Kind.BATCH_DELIVERY]) + to.key_id_bytes + sealed_key
        self._count = 0

    def seal(self, payload: bytes, *, notice_id: str, delivery_id: str) -> Sealed:
        """Seal one delivery payload (single-object Avro) of notice ``notice_id``."""
        aad = batch_delivery_aad(
            key_id=self.to.key_id,
            notice_id=notice_id,
            recipient=self.recipient,
            delivery_id=delivery_id,
            schema_fingerprint=_payload_fingerprint(payload),
        )
        nonce = self._count.to_bytes(NONCE_SIZE, "big")
        self._count += 1
        envelope = self._head + nonce + self._aead.encrypt(nonce, payload, aad)
        return Sealed(envelope, self.to.key_id, sha256(envelope).digest(), sha256(payload).digest())


def open_delivery(
    envelope: bytes,
    *,
    keys: KeyRing,
    notice_id: str,
    recipient: str,
    delivery_id: str,
    payload_fingerprint: bytes,
) -> Opened:
    """Open a sealed delivery payload (kind 0x01 or 0x04) with the recipient's key ring.

    The binding comes from the delivery's (verified) statement; a seal made for any other
    binding does not open (``SEAL_INVALID``). ``keys`` must be ``member:<recipient>``'s.
    """
    binding: dict[str, Any] = {
        "notice_id": notice_id,
        "recipient": recipient,
        "delivery_id": delivery_id,
        "schema_fingerprint": payload_fingerprint,
    }
    if envelope[3:4] == bytes([Kind.BATCH_DELIVERY]):
        opened = _open_batch_delivery(envelope, keys, recipient, binding)
    else:
        opened = _open(
            envelope,
            Kind.DELIVERY,
            keys,
            member_holder(recipient),
            lambda env: delivery_info(key_id=env.key_id, **binding),
        )
    if header_fingerprint(opened.plaintext) != payload_fingerprint:
        raise SealError(
            "the sealed payload is not of the schema its seal names", reason="SEAL_INVALID"
        )
    return opened


def _open_batch_delivery(
    data: bytes, keys: KeyRing, recipient: str, binding: dict[str, Any]
) -> Opened:
    env = parse_envelope(data)  # of kind 0x04 (open_delivery looked)
    key = _opening_key(env, keys, member_holder(recipient))
    memo = data[4:HEADER_SIZE] + env.sealed_key  # key id, enc, sealed data key
    aead = keys.opened.get(memo)
    try:
        if aead is None:
            info = batch_key_info(key_id=env.key_id, recipient=recipient)
            aead = AESGCM(_SUITE.decrypt(env.enc + env.sealed_key, key.crypto(), info=info))
            if len(keys.opened) >= OPENED_KEYS:
                keys.opened.pop(next(iter(keys.opened)), None)
            keys.opened[memo] = aead
        aad = batch_delivery_aad(key_id=env.key_id, **binding)
        plaintext = aead.decrypt(env.nonce, env.ciphertext, aad)
    except (InvalidTag, ValueError):
        raise _invalid(env) from None
    return Opened(plaintext, env.key_id, sha256(data).digest(), sha256(plaintext).digest())


# --- ingress notices -------------------------------------------------------------------------


def seal_notice(notice: bytes, *, to: EncryptionPublicKey, origin: str) -> Sealed:
    """Seal an ingress notice of state ``origin`` to that state's node encryption key ``to``."""
    return _seal(Kind.NOTICE, notice, to, notice_info(key_id=to.key_id, origin=origin))


def open_notice(envelope: bytes, *, keys: KeyRing, origin: str) -> Opened:
    """Open a sealed ingress notice with node ``origin``'s key ring (``node:<origin>``)."""
    return _open(
        envelope,
        Kind.NOTICE,
        keys,
        node_holder(origin),
        lambda env: notice_info(key_id=env.key_id, origin=origin),
    )


# --- a node's private state ------------------------------------------------------------------


def state_info(*, key_id: str, origin: str, name: str) -> bytes:
    """The HPKE ``info`` of a node's sealed state record (see the module docstring)."""
    return (
        STATE_CONTEXT
        + _field(bytes.fromhex(key_id))
        + _field(_ascii(origin, "origin"))
        + _field(_ascii(name, "state name"))
    )


def seal_state(state: bytes, *, to: EncryptionPublicKey, origin: str, name: str) -> Sealed:
    """Seal state ``name`` of node ``origin`` to that node's own encryption key ``to``: the
    shared cluster keeps it, only the node reads it (``name`` says which state, e.g. which
    partition's, so that one cannot be restored as another)."""
    return _seal(Kind.STATE, state, to, state_info(key_id=to.key_id, origin=origin, name=name))


def open_state(envelope: bytes, *, keys: KeyRing, origin: str, name: str) -> Opened:
    """Open state ``name`` sealed by node ``origin`` to itself, with its key ring."""
    return _open(
        envelope,
        Kind.STATE,
        keys,
        node_holder(origin),
        lambda env: state_info(key_id=env.key_id, origin=origin, name=name),
    )


# --- choosing the key to seal to -------------------------------------------------------------


def sealing_key(trust_list: TrustList, holder: str, *, at: int) -> EncryptionPublicKey:
    """The key to seal to for ``holder`` at ``at`` (``member:CC`` for deliveries, ``node:CC``
    for ingress): the newest one valid then; a revoked or ended key is never chosen.
    ``SEAL_KEY_UNKNOWN`` when the holder has none."""
    try:
        return trust_list.encryption_key(holder, at=at).key
    except UntrustedKeyError as exc:
        raise SealError(exc.message, reason="SEAL_KEY_UNKNOWN", hint=exc.hint) from None
