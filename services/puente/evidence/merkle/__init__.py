"""RFC 6962 / RFC 9162 Merkle trees: the hasher, the incremental compact range, and proofs.

Small pieces in the shape of transparency-dev/merkle: :mod:`.hasher` (leaf and node hashes),
:mod:`.compact` (the O(log n) state of a growing log), :mod:`.proof` (building and verifying
inclusion and consistency proofs) and :mod:`.tree` (in-memory trees of bounded sets: a batch, a
writer's leaves since its last checkpoint).
"""

from puente.evidence.merkle.compact import CompactRange
from puente.evidence.merkle.hasher import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash
from puente.evidence.merkle.proof import (
    consistency_proof,
    inclusion_proof,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from puente.evidence.merkle.tree import MerkleTree

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "MerkleTree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]
