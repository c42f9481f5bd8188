"""Ed25519 keys: names, key ids, the signed-note key encodings, and key files.

A key is a (name, Ed25519 public key) pair. Its **key id** is the lowercase hex of the first 8
bytes of ``SHA-256(name || 0x0A || 0x01 || public key)``; the first 4 of those bytes are the
C2SP signed-note key hash, so one computation serves both deliveries and notes.

Keys travel in the encodings of golang.org/x/mod/sumdb/note (C2SP signed-note): a verifier key
``<name>+<hex key hash>+<base64(0x01 || public key)>`` and a signer key
``PRIVATE+KEY+<name>+<hex key hash>+<base64(0x01 || seed)>``. Private key files hold the latter,
are created with mode 0600 in a 0700 directory, are refused when group or others can read them,
and their contents never reach a log or a ``repr``.
"""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from puente.evidence.errors import KeyStoreError, MalformedError, SignatureError

ALG_ED25519 = 0x01
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
KEY_HASH_SIZE = 4
KEY_ID_BYTES = 8
_PRIVATE_PREFIX = "PRIVATE+KEY+"
# DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): what `openssl pkey -pubin` reads.
SPKI_ED25519_PREFIX = bytes.fromhex("302a300506032b6570032100")


def check_key_name(name: str) -> str:
    """A signed-note key name: non-empty, no Unicode space, no ``+``. Returns it unchanged."""
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise MalformedError(f"invalid key name {name!r}: non-empty, no spaces, no '+'")
    if any(ord(ch) < 0x20 for ch in name):
        raise MalformedError(f"invalid key name {name!r}: control character")
    return name


def _key_digest(name: str, raw_public: bytes) -> bytes:
    return sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + raw_public).digest()


@dataclass(frozen=True)
class PublicKey:
    """A named Ed25519 public key."""

    name: str
    raw: bytes = field(repr=False)
    # Derived once: verifiers look keys up by id and verify with them thousands of times a
    # second, and parsing an Ed25519 point costs as much as hashing a kilobyte many times over.
    _digest: bytes = field(init=False, repr=False, compare=False)
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.raw) != PUBLIC_KEY_SIZE:
            raise MalformedError(f"Ed25519 public key of {len(self.raw)} bytes")
        object.__setattr__(self, "_digest", _key_digest(self.name, self.raw))
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.raw))

    @property
    def key_hash(self) -> bytes:
        """The 4-byte C2SP signed-note key hash."""
        return self._digest[:KEY_HASH_SIZE]

    @property
    def key_id(self) -> str:
        """Puente's key id: 16 lowercase hex digits (the note key hash is its first 8)."""
        return self._digest[:KEY_ID_BYTES].hex()

    @property
    def vkey(self) -> str:
        """The signed-note verifier key ``name+hash+base64(0x01||key)``."""
        blob = base64.b64encode(bytes([ALG_ED25519]) + self.raw).decode()
        return f"{self.name}+{self.key_hash.hex()}+{blob}"

    @classmethod
    def from_vkey(cls, vkey: str) -> PublicKey:
        """Parse a verifier key; its embedded hash must match the name and key."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise MalformedError("a verifier key is name+hash+base64")
        name, hash_hex, blob = parts
        raw = _b64decode(blob)
        if len(raw) != 1 + PUBLIC_KEY_SIZE or raw[0] != ALG_ED25519:
            raise MalformedError(f"verifier key {name!r} is not an Ed25519 key")
        key = cls(name, raw[1:])
        if hash_hex != key.key_hash.hex():
            raise MalformedError(f"verifier key {name!r}: key hash does not match the key")
        return key

    def spki_pem(self) -> bytes:
        """The key as a PEM SubjectPublicKeyInfo, for ``openssl pkeyutl -verify -pubin``."""
        return self._crypto().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def _crypto(self) -> Ed25519PublicKey:
        return self._key

    def verify(self, signature: bytes, message: bytes) -> None:
        """Check an Ed25519 signature (RFC 8032, pure); :class:`SignatureError` if it fails."""
        if len(signature) != SIGNATURE_SIZE:
            raise SignatureError(f"signature of {len(signature)} bytes for key {self.key_id}")
        try:
            self._crypto().verify(signature, message)
        except InvalidSignature:
            raise SignatureError(f"signature does not verify with key {self.key_id}") from None


class SigningKey:
    """A named Ed25519 private key. Its ``repr`` and ``str`` show the key id only."""

    __slots__ = ("_private", "public")

    def __init__(self, name: str, private: Ed25519PrivateKey) -> None:
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._private = private
        self.public = PublicKey(check_key_name(name), raw)

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        """A fresh key from the operating system's CSPRNG."""
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def name(self) -> str:
        """The key name."""
        return self.public.name

    @property
    def key_id(self) -> str:
        """The key id (see :attr:`PublicKey.key_id`)."""
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        """An Ed25519 signature (64 bytes) over ``message``."""
        return self._private.sign(message)

    def skey(self) -> str:
        """The signed-note signer key encoding. Secret: write it only to a 0600 file."""
        seed = self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        blob = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"{_PRIVATE_PREFIX}{self.name}+{self.public.key_hash.hex()}+{blob}"

    @classmethod
    def from_skey(cls, skey: str) -> SigningKey:
        """Parse a signer key; its embedded hash must match the derived public key."""
        text = skey.strip()
        if not text.startswith(_PRIVATE_PREFIX):
            raise MalformedError("a signer key starts with PRIVATE+KEY+")
        parts = text[len(_PRIVATE_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise MalformedError("a signer key is PRIVATE+KEY+name+hash+base64")
        name, hash_hex, blob = parts
        raw = _b64decode(blob)
        if len(raw) != 1 + PUBLIC_KEY_SIZE or raw[0] != ALG_ED25519:
            raise MalformedError("signer key is not an Ed25519 key")
        key = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if hash_hex != key.public.key_hash.hex():
            raise MalformedError("signer key: key hash does not match the key")
        return key

    def __repr__(self) -> str:
        return f"SigningKey(name={self.name!r}, key_id={self.key_id})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would copy the secret into caches, queues and crash dumps: refuse.
        raise TypeError("SigningKey cannot be pickled")


def _b64decode(text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise MalformedError(f"invalid base64: {exc}") from None
    if base64.b64encode(raw).decode() != text:
        # Non-canonical base64 would let two texts carry one value; refuse to keep encodings 1:1.
        raise MalformedError("non-canonical base64")
    return raw


# --- files -----------------------------------------------------------------------------------

PRIVATE_SUFFIX = ".skey"
PUBLIC_SUFFIX = ".vkey"
PEM_SUFFIX = ".pem"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` with mode 0700 (or tighten an existing one we own)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path


def write_private_key(key: SigningKey, path: Path) -> Path:
    """Write ``key`` to a new file created 0600 (never overwrites an existing key)."""
    ensure_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyStoreError(f"refusing to overwrite key file {path}") from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.skey() + "\n")
    return path


def read_private_key(path: Path) -> SigningKey:
    """Read a signer key file; refuse it if group or others may read or write it."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise KeyStoreError(f"key file not found: {path}") from None
    if mode & 0o077:
        raise KeyStoreError(
            f"key file {path} has mode {mode:o}; private keys must be 0600",
            hint=f"chmod 600 {path}",
        )
    return SigningKey.from_skey(path.read_text(encoding="ascii"))


def write_public_key(key: PublicKey, path: Path) -> Path:
    """Write the verifier key (one line) and, beside it, the PEM for openssl."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key.vkey + "\n", encoding="ascii")
    path.with_suffix(PEM_SUFFIX).write_bytes(key.spki_pem())
    return path


def read_public_key(path: Path) -> PublicKey:
    """Read a verifier key file."""
    try:
        return PublicKey.from_vkey(path.read_text(encoding="ascii"))
    except FileNotFoundError:
        raise KeyStoreError(f"public key file not found: {path}") from None
