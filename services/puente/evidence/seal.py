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
    3   1   kind: 0x01 delivery payload, 0x02 ingress notice, 0x03 a node's private state
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
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from hashlib import sha256

from cryptography.exceptions import InvalidTag
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
_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)
_AVRO_MAGIC = b"\xc3\x01"  # single-object encoding: a payload's schema fingerprint follows


class Kind(IntEnum):
    """What an envelope carries (its byte 3)."""

    DELIVERY = 0x01
    NOTICE = 0x02
    STATE = 0x03


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope (nothing decrypted)."""

    kind: Kind
    key_id: str
    enc: bytes
    ciphertext: bytes


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


def delivery_info(
    *, key_id: str, notice_id: str, recipient: str, delivery_id: str, schema_fingerprint: bytes
) -> bytes:
    """The HPKE ``info`` of a sealed delivery payload (see the module docstring)."""
    if len(schema_fingerprint) != 8:
        raise SealError("a schema fingerprint is 8 bytes", reason="SEAL_MALFORMED")
    return DELIVERY_CONTEXT + b"".join(
        (
            _field(bytes.fromhex(key_id)),
            _field(_ascii(notice_id, "notice id")),
            _field(_ascii(recipient, "recipient")),
            _field(_ascii(delivery_id, "delivery id")),
            _field(schema_fingerprint),
        )
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
    return Envelope(kind, data[4:12].hex(), data[12:HEADER_SIZE], data[HEADER_SIZE:])


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
    if env.kind is not kind:
        raise SealError(
            f"a sealed {env.kind.name.lower()} where a sealed {kind.name.lower()} was expected",
            reason="SEAL_WRONG_KIND",
        )
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
    try:
        plaintext = _SUITE.decrypt(env.enc + env.ciphertext, key.crypto(), info=info_of(env))
    except (InvalidTag, ValueError):
        raise SealError(
            f"the seal (key {env.key_id}) does not open: altered, or sealed for another "
            "notice, delivery, recipient or node",
            reason="SEAL_INVALID",
        ) from None
    return Opened(plaintext, env.key_id, sha256(data).digest(), sha256(plaintext).digest())


# --- deliveries ------------------------------------------------------------------------------


def seal_delivery(
    payload: bytes, *, to: EncryptionPublicKey, notice_id: str, recipient: str, delivery_id: str
) -> Sealed:
    """Seal a delivery payload (single-object Avro) to its recipient's encryption key ``to``.

    The binding is the notice id, the recipient state, the delivery id and the payload's schema
    fingerprint (payload bytes 2..9).
    """
    if payload[:2] != _AVRO_MAGIC or len(payload) < 10:
        raise SealError(
            "a delivery payload is a single-object Avro record", reason="SEAL_MALFORMED"
        )
    info = delivery_info(
        key_id=to.key_id,
        notice_id=notice_id,
        recipient=recipient,
        delivery_id=delivery_id,
        schema_fingerprint=header_fingerprint(payload) or b"",
    )
    return _seal(Kind.DELIVERY, payload, to, info)


def open_delivery(
    envelope: bytes,
    *,
    keys: KeyRing,
    notice_id: str,
    recipient: str,
    delivery_id: str,
    payload_fingerprint: bytes,
) -> Opened:
    """Open a sealed delivery payload with the recipient's key ring.

    The binding comes from the delivery's (verified) statement; a seal made for any other
    binding does not open (``SEAL_INVALID``). ``keys`` must be ``member:<recipient>``'s.
    """
    opened = _open(
        envelope,
        Kind.DELIVERY,
        keys,
        member_holder(recipient),
        lambda env: delivery_info(
            key_id=env.key_id,
            notice_id=notice_id,
            recipient=recipient,
            delivery_id=delivery_id,
            schema_fingerprint=payload_fingerprint,
        ),
    )
    if header_fingerprint(opened.plaintext) != payload_fingerprint:
        raise SealError(
            "the sealed payload is not of the schema its seal names", reason="SEAL_INVALID"
        )
    return opened


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
