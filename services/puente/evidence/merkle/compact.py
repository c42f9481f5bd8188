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

from collections.abc import Iterable, Sequence
from hashlib import sha256

from puente.evidence.errors import MalformedError
from puente.evidence.merkle.hasher import EMPTY_ROOT, HASH_SIZE

_SIZE_BYTES = 8
_BLOCK = 1024  # widest subtree hashed in one go


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
        self._extend_hashes([leaf_hash])

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaves by their leaf hashes."""
        hs = leaf_hashes if isinstance(leaf_hashes, list) else list(leaf_hashes)
        if any(len(lh) != HASH_SIZE for lh in hs):
            raise MalformedError(f"leaf hash of a length other than {HASH_SIZE}")
        self._extend_hashes(hs)

    def extend_data(self, leaves: Iterable[bytes]) -> None:
        """Append many leaves by their content, hashing each as ``SHA-256(0x00 || data)``."""
        self._extend_hashes([sha256(b"\x00" + data).digest() for data in leaves])

    def extend_data_until(
        self,
        leaves: Sequence[bytes],
        start: int,
        stop_size: int,
        keep: list[list[bytes]] | None = None,
    ) -> int:
        """Append ``leaves[start:]`` by content until the size reaches ``stop_size``.

        Returns the index in ``leaves`` after the last leaf appended; the leaf hashes computed
        are appended to ``keep`` as one list, if given. The auditor's hot loop.
        """
        end = min(len(leaves), start + max(stop_size - self._size, 0))
        h = sha256
        hs = [h(b"\x00" + leaves[i]).digest() for i in range(start, end)]
        self._extend_hashes(hs)
        if keep is not None and hs:
            keep.append(hs)
        return end

    def _extend_hashes(self, hs: list[bytes]) -> None:
        # Appends the widest perfect subtree that fits at each step: as wide as the lowest set
        # bit of the size allows (so it sits on a subtree boundary), as the leaves left allow,
        # and at most _BLOCK. A subtree is hashed level by level in list comprehensions, which
        # CPython runs a third faster than the carry loop leaf by leaf.
        hashes = self._hashes
        size = self._size
        h = sha256
        i, total = 0, len(hs)
        while i < total:
            width = (size & -size) or _BLOCK
            if width > _BLOCK:
                width = _BLOCK
            left = total - i
            while width > left:
                width >>= 1
            if width >= 4:
                level = hs[i : i + width]
                while len(level) > 1:
                    level = [
                        h(b"\x01" + a + b).digest()
                        for a, b in zip(level[::2], level[1::2], strict=True)
                    ]
                node = level[0]
            else:
                node, width = hs[i], 1
            hashes.append(node)
            # Each trailing 1 bit of the old size (in units of the subtree appended) is a
            # subtree of the same width to merge with, exactly like the carries of an addition.
            n = size // width
            while n & 1:
                right = hashes.pop()
                hashes[-1] = h(b"\x01" + hashes[-1] + right).digest()
                n >>= 1
            size += width
            i += width
        self._size = size

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
