"""X25519 encryption keys: names, key ids, text encodings, key files and key rings.

An encryption key is a (name, X25519 public key) pair, named like a signing key
(``puente.member/GT``, ``puente.node/MX``) and identified the same way (:func:`key_digest`):
its **key id** is the lowercase hex of the first 8 bytes of
``SHA-256(name || 0x0A || 0x20 || 32-byte X25519 public key)`` and its **key hash** the first 4.
The algorithm byte ``0x20`` is the low byte of HPKE's KEM id ``0x0020``
(DHKEM(X25519, HKDF-SHA256), RFC 9180 §7.1): it differs from every C2SP signed-note signature
type, so an encryption key never has the key id or key text of a signing key.

Text encodings (the signed-note key layout, with that algorithm byte)::

    public   <name>+<hex key hash>+<base64(0x20 || public key)>
    private  PRIVATE+KEY+<name>+<hex key hash>+<base64(0x20 || private key)>

The private key is the 32 bytes of RFC 7748 (RFC 9180's ``SerializePrivateKey``), as generated;
every X25519 implementation clamps it when it uses it. Private key files are created 0600, are
refused when group or others can read them, and never reach a log or a ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from puente.evidence.errors import KeyStoreError, MalformedError
from puente.evidence.keys import (
    PUBLIC_KEY_SIZE,
    KeyDigestMixin,
    PrivateKeyMixin,
    check_key_name,
    encode_key_text,
    encode_private_key_text,
    key_digest,
    parse_key_text,
    parse_private_key_text,
    read_secret_file,
    write_secret_file,
)

ALG_X25519 = 0x20
ENCRYPTION_PUBLIC_SUFFIX = ".ekey"
_WHAT = "an X25519 key"
# Any clamped scalar kills the small-order components, so X25519 with this fixed scalar gives
# the all-zero output exactly for the low-order points RFC 7748 §6.1 and RFC 9180 §7.1.4 refuse.
_PROBE = X25519PrivateKey.from_private_bytes(bytes([9]) * 32)


@dataclass(frozen=True)
class EncryptionPublicKey(KeyDigestMixin):
    """A named X25519 public key: what the trust list gives a sealer."""

    name: str
    raw: bytes = field(repr=False)
    _digest: bytes = field(init=False, repr=False, compare=False)
    _key: X25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.raw) != PUBLIC_KEY_SIZE:
            raise MalformedError(f"X25519 public key of {len(self.raw)} bytes")
        key = X25519PublicKey.from_public_bytes(self.raw)
        try:
            _PROBE.exchange(key)
        except ValueError:
            # A low-order point makes every shared secret the same: anyone could open the seal.
            raise MalformedError(f"encryption key {self.name!r} is a low-order point") from None
        object.__setattr__(self, "_digest", key_digest(self.name, ALG_X25519, self.raw))
        object.__setattr__(self, "_key", key)

    @property
    def ekey(self) -> str:
        """The public key text ``name+hash+base64(0x20||key)``."""
        return encode_key_text(self.name, self.key_hash, ALG_X25519, self.raw)

    @classmethod
    def from_ekey(cls, text: str) -> EncryptionPublicKey:
        """Parse a public key text; its embedded hash must match the name and key."""
        name, hash_hex, raw = parse_key_text(text, alg=ALG_X25519, what=_WHAT)
        key = cls(name, raw)
        if hash_hex != key.key_hash.hex():
            raise MalformedError(f"encryption key {name!r}: key hash does not match the key")
        return key

    def crypto(self) -> X25519PublicKey:
        """The key as the ``cryptography`` library takes it."""
        return self._key

    def spki_pem(self) -> bytes:
        """The key as a PEM SubjectPublicKeyInfo (RFC 8410), for other tools."""
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class EncryptionKey(PrivateKeyMixin):
    """A named X25519 private key. Its ``repr`` and ``str`` show the key id only."""

    __slots__ = ("_private", "public")
    public: EncryptionPublicKey

    def __init__(self, name: str, private: X25519PrivateKey) -> None:
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._private = private
        self.public = EncryptionPublicKey(check_key_name(name), raw)

    @classmethod
    def generate(cls, name: str) -> EncryptionKey:
        """A fresh key from the operating system's CSPRNG."""
        return cls(name, X25519PrivateKey.generate())

    def crypto(self) -> X25519PrivateKey:
        """The key as the ``cryptography`` library takes it (for :mod:`puente.evidence.seal`)."""
        return self._private

    def skey(self) -> str:
        """The private key text. Secret: write it only to a 0600 file."""
        raw = self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return encode_private_key_text(self.name, self.public.key_hash, ALG_X25519, raw)

    @classmethod
    def from_skey(cls, text: str) -> EncryptionKey:
        """Parse a private key text; its embedded hash must match the derived public key."""
        name, hash_hex, raw = parse_private_key_text(text, alg=ALG_X25519, what=_WHAT)
        key = cls(name, X25519PrivateKey.from_private_bytes(raw))
        if hash_hex != key.public.key_hash.hex():
            raise MalformedError("encryption key: key hash does not match the key")
        return key


@dataclass(frozen=True)
class KeyRing:
    """The encryption keys one holder can open with: its current key and the older ones it
    has not deleted (what was sealed to a rotated or revoked key stays readable by its holder).
    """

    holder: str
    keys: tuple[EncryptionKey, ...]
    # The data keys of batch-sealed deliveries this ring has opened (``puente.evidence.seal``,
    # kind 0x04), by envelope bytes 4..91: the first delivery of a (batch, recipient) costs an
    # HPKE open, the others one AES-GCM open. A memo, not part of the ring's identity.
    opened: dict[bytes, AESGCM] = field(default_factory=dict, compare=False, repr=False)

    def get(self, key_id: str) -> EncryptionKey | None:
        """The key with ``key_id``, if this ring holds it."""
        for key in self.keys:
            if key.key_id == key_id:
                return key
        return None


# --- files -----------------------------------------------------------------------------------


def write_encryption_key(key: EncryptionKey, path: Path) -> Path:
    """Write ``key`` to a new file created 0600 (never overwrites an existing key)."""
    return write_secret_file(key.skey(), path)


def read_encryption_key(path: Path) -> EncryptionKey:
    """Read a private encryption key file; refused if group or others may read or write it."""
    return EncryptionKey.from_skey(read_secret_file(path))


def write_encryption_public(key: EncryptionPublicKey, path: Path) -> Path:
    """Write the public key text (one line) and, beside it, its PEM."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key.ekey + "\n", encoding="ascii")
    path.with_suffix(".pem").write_bytes(key.spki_pem())
    return path


def read_encryption_public(path: Path) -> EncryptionPublicKey:
    """Read a public encryption key file."""
    try:
        return EncryptionPublicKey.from_ekey(path.read_text(encoding="ascii"))
    except FileNotFoundError:
        raise KeyStoreError(f"public key file not found: {path}") from None
