"""Inclusion and consistency proofs, RFC 9162 §2.1.3 (inclusion) and §2.1.4 (consistency).

Building follows the RFC's recursive definitions (``PATH`` and ``SUBPROOF``) over any source of
subtree hashes (:data:`RangeHasher`), so the same code proves from an in-memory tree and from a
compact range plus the leaves appended since (both in :mod:`.tree`). Verification follows
transparency-dev/merkle's ``proof/verify.go`` bit for bit, including its answers on edge cases,
so that the shared test vectors mean the same thing here as there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from puente.evidence.errors import ProofError
from puente.evidence.merkle.hasher import HASH_SIZE, node_hash

RangeHasher = Callable[[int, int], bytes]
"""``hash_range(begin, end)`` returns the RFC 6962 root ``MTH(D[begin:end])`` of those leaves."""


def split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``): RFC 6962's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


# --- building -------------------------------------------------------------------------------


def inclusion_proof(index: int, size: int, hash_range: RangeHasher) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves, lowest level first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    out: list[bytes] = []
    begin, end, m = 0, size, index
    # Walk down from the root, collecting siblings top-down, then reverse (RFC order is
    # bottom-up). Iterative so very deep trees cannot hit the recursion limit.
    while end - begin > 1:
        k = split(end - begin)
        if m < k:
            out.append(hash_range(begin + k, end))
            end = begin + k
        else:
            out.append(hash_range(begin, begin + k))
            begin, m = begin + k, m - k
    out.reverse()
    return out


def consistency_proof(size1: int, size2: int, hash_range: RangeHasher) -> list[bytes]:
    """The proof that the tree of ``size1`` leaves is a prefix of the tree of ``size2``.

    Empty when the sizes are equal; undefined (``ProofError``) from an empty tree, as in the RFC.
    """
    if not 0 < size1 <= size2:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    out: list[bytes] = []
    begin, end, m, complete = 0, size2, size1, True
    while m != end - begin:
        k = split(end - begin)
        if m <= k:
            out.append(hash_range(begin + k, end))
            end = begin + k
        else:
            out.append(hash_range(begin, begin + k))
            begin, m, complete = begin + k, m - k, False
    if not complete:
        out.append(hash_range(begin, end))
    out.reverse()
    return out


# --- verifying (transparency-dev/merkle proof/verify.go) -------------------------------------


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1 == 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def _decomp_incl_proof(index: int, size: int) -> tuple[int, int]:
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root implied by an inclusion proof; :class:`ProofError` if its shape is wrong."""
    if index < 0 or size < 0 or index >= size:
        raise ProofError(f"leaf index {index} is beyond a tree of size {size}")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError(f"leaf hash of {len(leaf_hash)} bytes, want {HASH_SIZE}")
    inner, border = _decomp_incl_proof(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"inclusion proof of {len(proof)} hashes, want {inner + border}")
    res = _chain_inner(leaf_hash, proof[:inner], index)
    return _chain_border_right(res, proof[inner:])


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf ``index`` with ``leaf_hash`` is in the tree of ``size`` with ``root``.

    Raises :class:`ProofError` when it is not; returns nothing when it is.
    """
    if root_from_inclusion_proof(index, size, leaf_hash, proof) != root:
        raise ProofError(f"inclusion proof of leaf {index} does not lead to the root")


def root_from_consistency_proof(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> bytes:
    """The root at ``size2`` implied by a consistency proof from (``size1``, ``root1``).

    Checks on the way that the proof also reproduces ``root1``.
    """
    if size1 < 0 or size2 < size1:
        raise ProofError(f"tree size went from {size1} down to {size2}")
    if size1 == 0:
        # Every tree extends the empty one, so such a "proof" proves nothing; the shared vectors
        # (and RFC 9162 §2.1.4, defined for 0 < m) reject it rather than accept it vacuously.
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if size1 == size2:
        if proof:
            raise ProofError("sizes are equal but the consistency proof is not empty")
        return root1
    if not proof:
        raise ProofError("empty consistency proof")
    inner, border = _decomp_incl_proof(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zeros of size1
    inner -= shift
    seed, start = proof[0], 1
    if size1 == 1 << shift:
        seed, start = root1, 0
    if len(proof) != start + inner + border:
        raise ProofError(f"consistency proof of {len(proof)} hashes, want {start + inner + border}")
    rest = proof[start:]
    mask = (size1 - 1) >> shift
    hash1 = _chain_inner_right(seed, rest[:inner], mask)
    hash1 = _chain_border_right(hash1, rest[inner:])
    if hash1 != root1:
        raise ProofError(f"consistency proof does not reproduce the root at size {size1}")
    hash2 = _chain_inner(seed, rest[:inner], mask)
    return _chain_border_right(hash2, rest[inner:])


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree (``size1``, ``root1``) is a prefix of (``size2``, ``root2``).

    Raises :class:`ProofError` when it is not.
    """
    if root_from_consistency_proof(size1, size2, proof, root1) != root2:
        raise ProofError(f"consistency proof does not lead to the root at size {size2}")
