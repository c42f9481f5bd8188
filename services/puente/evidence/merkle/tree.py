"""In-memory Merkle trees of bounded sets: a batch of deliveries (:class:`MerkleTree`), and a
log writer's leaves since its last checkpoint on top of its compact range
(:func:`range_hasher_from_compact`). Both are sources of subtree hashes for :mod:`.proof`."""

from __future__ import annotations

from collections.abc import Sequence

from puente.evidence.errors import ProofError
from puente.evidence.merkle.compact import CompactRange
from puente.evidence.merkle.hasher import EMPTY_ROOT, HASH_SIZE, node_hash
from puente.evidence.merkle.proof import RangeHasher, consistency_proof, inclusion_proof, split


class MerkleTree:
    """An in-memory tree of leaf hashes with cached perfect subtrees, for building proofs.

    Meant for bounded sets (a batch of deliveries, a test); a long-lived log keeps only a
    :class:`CompactRange`.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for lh in leaf_hashes:
            self.append(lh)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def append(self, leaf_hash: bytes) -> int:
        """Append a leaf hash; returns its index."""
        if len(leaf_hash) != HASH_SIZE:
            raise ProofError(f"leaf hash of {len(leaf_hash)} bytes, want {HASH_SIZE}")
        levels = self._levels
        index = len(levels[0])
        levels[0].append(leaf_hash)
        level, i = 0, index
        while i & 1:  # completes a perfect subtree one level up
            if len(levels) == level + 1:
                levels.append([])
            row = levels[level]
            levels[level + 1].append(node_hash(row[i - 1], row[i]))
            level, i = level + 1, i >> 1
        return index

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        return self._levels[0][index]

    def hash_range(self, begin: int, end: int) -> bytes:
        """``MTH(D[begin:end])`` for ``0 <= begin < end <= size``."""
        if not 0 <= begin < end <= self.size:
            raise ProofError(f"range [{begin}, {end}) is outside a tree of size {self.size}")
        width = end - begin
        if width & (width - 1) == 0 and begin % width == 0:
            level = width.bit_length() - 1
            return self._levels[level][begin >> level]
        k = split(width)
        return node_hash(self.hash_range(begin, begin + k), self.hash_range(begin + k, end))

    def root(self, size: int | None = None) -> bytes:
        """The root at ``size`` leaves (default: all)."""
        n = self.size if size is None else size
        if not 0 <= n <= self.size:
            raise ProofError(f"size {n} is outside a tree of size {self.size}")
        return EMPTY_ROOT if n == 0 else self.hash_range(0, n)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The inclusion proof of leaf ``index`` at ``size`` leaves (default: all)."""
        n = self.size if size is None else size
        if n > self.size:
            raise ProofError(f"size {n} is beyond a tree of size {self.size}")
        return inclusion_proof(index, n, self.hash_range)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """The consistency proof from ``size1`` to ``size2`` leaves (default: all)."""
        n = self.size if size2 is None else size2
        if n > self.size:
            raise ProofError(f"size {n} is beyond a tree of size {self.size}")
        return consistency_proof(size1, n, self.hash_range)


def range_hasher_from_compact(base: CompactRange, new_leaf_hashes: Sequence[bytes]) -> RangeHasher:
    """Subtree hashes of a log from its compact range at ``base.size`` and the leaves after it.

    Enough for every proof whose left-hand nodes are whole subtrees of ``base`` — inclusion of
    any new leaf, and consistency from ``base.size`` to any later size: exactly what a log writer
    owes for one batch. Asking for anything else raises :class:`ProofError`.
    """
    m = base.size
    known = dict(zip(base.subtrees(), base.hashes, strict=True))
    tail = MerkleTree(new_leaf_hashes)

    def hash_range(begin: int, end: int) -> bytes:
        if begin >= m:
            return tail.hash_range(begin - m, end - m)
        if end <= m:
            try:
                return known[(begin, end)]
            except KeyError:
                raise ProofError(
                    f"subtree [{begin}, {end}) is inside the compact range of size {m}"
                ) from None
        k = split(end - begin)
        return node_hash(hash_range(begin, begin + k), hash_range(begin + k, end))

    return hash_range
