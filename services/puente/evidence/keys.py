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
from typing import Protocol

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


def key_digest(name: str, alg: int, raw_public: bytes) -> bytes:
    """``SHA-256(name || 0x0A || alg || raw public key)``: its first 4 bytes are the signed-note
    key hash, its first 8 the key id. One construction for every kind of key (Ed25519 signing
    keys, alg 0x01; X25519 encryption keys, alg 0x20), told apart by the algorithm byte."""
    return sha256(name.encode() + b"\n" + bytes([alg]) + raw_public).digest()


def encode_key_text(name: str, key_hash: bytes, alg: int, raw: bytes) -> str:
    """``<name>+<hex key hash>+<base64(alg || raw)>``: the signed-note key text layout."""
    return f"{name}+{key_hash.hex()}+{base64.b64encode(bytes([alg]) + raw).decode()}"


def parse_key_text(text: str, *, alg: int, what: str) -> tuple[str, str, bytes]:
    """Split a key text ``name+hash+base64(alg || 32 bytes)`` into (name, hex hash, raw bytes).

    The caller builds the key and compares its own key hash with the returned one; ``what``
    names the key kind in errors (``an Ed25519 key``, ``an X25519 key``).
    """
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise MalformedError("a key text is name+hash+base64")
    name, hash_hex, blob = parts
    raw = _b64decode(blob)
    if len(raw) != 1 + PUBLIC_KEY_SIZE or raw[0] != alg:
        raise MalformedError(f"key {name!r} is not {what}")
    return name, hash_hex, raw[1:]


def parse_private_key_text(text: str, *, alg: int, what: str) -> tuple[str, str, bytes]:
    """Like :func:`parse_key_text` for ``PRIVATE+KEY+<name>+<hash>+<base64(alg || 32 bytes)>``."""
    text = text.strip()
    if not text.startswith(_PRIVATE_PREFIX):
        raise MalformedError("a private key text starts with PRIVATE+KEY+")
    return parse_key_text(text[len(_PRIVATE_PREFIX) :], alg=alg, what=what)


def encode_private_key_text(name: str, key_hash: bytes, alg: int, raw: bytes) -> str:
    """``PRIVATE+KEY+<name>+<hex key hash>+<base64(alg || raw)>``. Secret: only to a 0600 file."""
    return _PRIVATE_PREFIX + encode_key_text(name, key_hash, alg, raw)


class KeyDigestMixin:
    """Key hash and key id from a key's digest (:func:`key_digest`), for every public key."""

    _digest: bytes

    @property
    def key_hash(self) -> bytes:
        """The 4-byte C2SP signed-note key hash."""
        return self._digest[:KEY_HASH_SIZE]

    @property
    def key_id_bytes(self) -> bytes:
        """The 8 bytes of the key id."""
        return self._digest[:KEY_ID_BYTES]

    @property
    def key_id(self) -> str:
        """Puente's key id: 16 lowercase hex digits (the note key hash is its first 8)."""
        return self.key_id_bytes.hex()


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> str: ...


class PrivateKeyMixin:
    """What every private key shows of itself: its name and key id, never its secret."""

    __slots__ = ()
    public: _Named

    @property
    def name(self) -> str:
        """The key name."""
        return self.public.name

    @property
    def key_id(self) -> str:
        """The key id of its public key."""
        return self.public.key_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, key_id={self.key_id})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would copy the secret into caches, queues and crash dumps: refuse.
        raise TypeError(f"{type(self).__name__} cannot be pickled")


@dataclass(frozen=True)
class PublicKey(KeyDigestMixin):
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
        object.__setattr__(self, "_digest", key_digest(self.name, ALG_ED25519, self.raw))
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.raw))

    @property
    def vkey(self) -> str:
        """The signed-note verifier key ``name+hash+base64(0x01||key)``."""
        return encode_key_text(self.name, self.key_hash, ALG_ED25519, self.raw)

    @classmethod
    def from_vkey(cls, vkey: str) -> PublicKey:
        """Parse a verifier key; its embedded hash must match the name and key."""
        name, hash_hex, raw = parse_key_text(vkey, alg=ALG_ED25519, what="an Ed25519 key")
        key = cls(name, raw)
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


class SigningKey(PrivateKeyMixin):
    """A named Ed25519 private key. Its ``repr`` and ``str`` show the key id only."""

    __slots__ = ("_private", "public")
    public: PublicKey

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
        return encode_private_key_text(self.name, self.public.key_hash, ALG_ED25519, seed)

    @classmethod
    def from_skey(cls, skey: str) -> SigningKey:
        """Parse a signer key; its embedded hash must match the derived public key."""
        name, hash_hex, seed = parse_private_key_text(skey, alg=ALG_ED25519, what="an Ed25519 key")
        key = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if hash_hex != key.public.key_hash.hex():
            raise MalformedError("signer key: key hash does not match the key")
        return key


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


def write_secret_file(text: str, path: Path) -> Path:
    """Write a private key text to a new file created 0600 (never overwrites a key)."""
    ensure_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyStoreError(f"refusing to overwrite key file {path}") from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text + "\n")
    return path


def read_secret_file(path: Path) -> str:
    """The text of a private key file; refused if group or others may read or write it."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise KeyStoreError(f"key file not found: {path}") from None
    if mode & 0o077:
        raise KeyStoreError(
            f"key file {path} has mode {mode:o}; private keys must be 0600",
            hint=f"chmod 600 {path}",
        )
    return path.read_text(encoding="ascii")


def write_private_key(key: SigningKey, path: Path) -> Path:
    """Write ``key`` to a new file created 0600 (never overwrites an existing key)."""
    return write_secret_file(key.skey(), path)


def read_private_key(path: Path) -> SigningKey:
    """Read a signer key file; refuse it if group or others may read or write it."""
    return SigningKey.from_skey(read_secret_file(path))


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
