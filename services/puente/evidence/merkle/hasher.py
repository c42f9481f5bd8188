"""RFC 6962 §2.1 hashing (unchanged in RFC 9162 §2.1.1) with SHA-256.

A leaf hash is ``SHA-256(0x00 || data)`` and an interior node ``SHA-256(0x01 || left || right)``;
the distinct prefixes make a leaf impossible to pass off as an interior node (second-preimage
resistance of the tree). The empty tree's root is ``SHA-256("")``.
"""

from __future__ import annotations

from hashlib import sha256

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()

_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """The hash of a leaf whose content is ``data``."""
    return sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node from its children's hashes."""
    return sha256(_NODE + left + right).digest()
