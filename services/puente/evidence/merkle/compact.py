"""The compact range: the O(log n) state of a growing RFC 6962 log.

A tree of ``size`` leaves is the concatenation of perfect subtrees, one per set bit of ``size``
from the most significant down (``size = 13 = 8 + 4 + 1`` gives ``[0,8) [8,12) [12,13)``). Their
root hashes are enough to append more leaves and to compute the root at any later size, which is
what a single-writer log (one per audit partition) persists between batches; the same hashes,
published with a checkpoint, let an auditor start verifying from that checkpoint instead of from
leaf 0. The shape is transparency-dev/merkle's ``compact.Range`` restricted to ranges that start
at leaf 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import sha256

from puente.evidence.errors import MalformedError
from puente.evidence.merkle.hasher import EMPTY_ROOT, HASH_SIZE

_SIZE_BYTES = 8


class CompactRange:
    """The perfect-subtree hashes of the leaves ``[0, size)`` of one log.

    Mutable on purpose (``append``): a writer keeps one per log. ``copy()`` takes a snapshot.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_hashes(cls, size: int, hashes: Iterable[bytes]) -> CompactRange:
        """A range of ``size`` leaves from its subtree hashes, largest subtree first.

        Raises :class:`MalformedError` when the number or length of the hashes does not fit
        ``size`` (one hash per set bit of ``size``).
        """
        hs = list(hashes)
        if size < 0:
            raise MalformedError(f"compact range size {size} is negative")
        if len(hs) != size.bit_count():
            raise MalformedError(
                f"compact range of size {size} needs {size.bit_count()} hashes, got {len(hs)}"
            )
        for h in hs:
            if len(h) != HASH_SIZE:
                raise MalformedError(f"compact range hash of {len(h)} bytes, want {HASH_SIZE}")
        cr = cls()
        cr._size = size
        cr._hashes = hs
        return cr

    @property
    def size(self) -> int:
        """Number of leaves covered."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The subtree root hashes, largest (leftmost) subtree first."""
        return tuple(self._hashes)

    def subtrees(self) -> list[tuple[int, int]]:
        """The ``[begin, end)`` leaf range of each hash in :attr:`hashes`, in the same order."""
        out: list[tuple[int, int]] = []
        begin = 0
        for bit in reversed(range(self._size.bit_length())):
            width = 1 << bit
            if self._size & width:
                out.append((begin, begin + width))
                begin += width
        return out

    def copy(self) -> CompactRange:
        """An independent snapshot."""
        return CompactRange.from_hashes(self._size, self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf by its leaf hash (``SHA-256(0x00 || data)``)."""
        if len(leaf_hash) != HASH_SIZE:
            raise MalformedError(f"leaf hash of {len(leaf_hash)} bytes, want {HASH_SIZE}")
        hashes = self._hashes
        hashes.append(leaf_hash)
        n = self._size
        # Each trailing 1 bit of the old size is a perfect subtree of the new leaf's width:
        # merge them pairwise, exactly like binary addition carries.
        while n & 1:
            right = hashes.pop()
            hashes[-1] = sha256(b"\x01" + hashes[-1] + right).digest()
            n >>= 1
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaves by their leaf hashes (the auditor's hot loop: kept tight)."""
        hashes = self._hashes
        size = self._size
        for lh in leaf_hashes:
            if len(lh) != HASH_SIZE:
                raise MalformedError(f"leaf hash of {len(lh)} bytes, want {HASH_SIZE}")
            hashes.append(lh)
            n = size
            while n & 1:
                right = hashes.pop()
                hashes[-1] = sha256(b"\x01" + hashes[-1] + right).digest()
                n >>= 1
            size += 1
        self._size = size

    def extend_data(self, leaves: Iterable[bytes]) -> None:
        """Append many leaves by their content, hashing each as ``SHA-256(0x00 || data)``."""
        self.extend(sha256(b"\x00" + data).digest() for data in leaves)

    def root(self) -> bytes:
        """The RFC 6962 root hash of the leaves ``[0, size)``."""
        hashes = self._hashes
        if not hashes:
            return EMPTY_ROOT
        root = hashes[-1]
        for h in reversed(hashes[:-1]):
            root = sha256(b"\x01" + h + root).digest()
        return root

    def to_bytes(self) -> bytes:
        """``size`` as 8 bytes big-endian, then the hashes, largest subtree first."""
        return self._size.to_bytes(_SIZE_BYTES, "big") + b"".join(self._hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactRange:
        """The inverse of :meth:`to_bytes`; :class:`MalformedError` on any length mismatch."""
        if len(data) < _SIZE_BYTES or (len(data) - _SIZE_BYTES) % HASH_SIZE:
            raise MalformedError(f"compact range of {len(data)} bytes is malformed")
        size = int.from_bytes(data[:_SIZE_BYTES], "big")
        body = data[_SIZE_BYTES:]
        hashes = [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)]
        return cls.from_hashes(size, hashes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable: not hashable

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()[:16]}…)"
