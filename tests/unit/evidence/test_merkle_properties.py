"""Property tests on random trees: the incremental and in-memory trees agree with the RFC 6962
definition, every built proof verifies, and every corrupted one fails."""

from __future__ import annotations

from hashlib import sha256

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from puente.evidence.errors import MalformedError, ProofError
from puente.evidence.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from puente.evidence.merkle.tree import range_hasher_from_compact


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, written straight from the definition (the reference)."""
    n = len(leaves)
    if n == 0:
        return sha256(b"").digest()
    if n == 1:
        return sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


leaf_lists = st.lists(st.binary(max_size=40), min_size=0, max_size=70)


@given(leaf_lists)
def test_roots_agree_with_the_definition(leaves: list[bytes]) -> None:
    cr = CompactRange()
    tree = MerkleTree()
    for i, data in enumerate(leaves):
        cr.append(leaf_hash(data))
        tree.append(leaf_hash(data))
        assert cr.root() == tree.root() == mth(leaves[: i + 1])
    assert cr.size == tree.size == len(leaves)
    bulk = CompactRange()
    bulk.extend_data(leaves)
    assert bulk == cr
    if not leaves:
        assert cr.root() == EMPTY_ROOT


@given(leaf_lists)
def test_compact_range_serialisation_round_trips(leaves: list[bytes]) -> None:
    cr = CompactRange()
    cr.extend(leaf_hash(x) for x in leaves)
    again = CompactRange.from_bytes(cr.to_bytes())
    assert again == cr and again.root() == cr.root()
    assert len(cr.hashes) == len(leaves).bit_count()
    spans = cr.subtrees()
    assert [e - b for b, e in spans] == sorted((e - b for b, e in spans), reverse=True)
    assert (spans[-1][1] if spans else 0) == len(leaves)
    # A truncated or padded state is refused, never half-loaded.
    if leaves:
        with pytest.raises(MalformedError):
            CompactRange.from_bytes(cr.to_bytes()[:-1])
        with pytest.raises(MalformedError):
            CompactRange.from_bytes(cr.to_bytes() + bytes(32))


@settings(max_examples=150)
@given(st.data(), st.integers(min_value=1, max_value=90))
def test_inclusion_proofs_verify_and_corruptions_fail(data: st.DataObject, n: int) -> None:
    tree = MerkleTree([leaf_hash(i.to_bytes(4, "big")) for i in range(n)])
    size = data.draw(st.integers(min_value=1, max_value=n), label="size")
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    root = tree.root(size)
    proof = tree.inclusion_proof(index, size)
    verify_inclusion(index, size, tree.leaf(index), proof, root)
    # Wrong leaf, wrong index, wrong size, flipped bit, dropped or extra hash: all refused.
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf_hash(b"forged"), proof, root)
    if size > 1:
        other = (index + 1) % size
        with pytest.raises(ProofError):
            verify_inclusion(other, size, tree.leaf(index), proof, root)
    # (A wrong size is not always caught by the proof alone — size 3 and 4 share the shape of
    # leaf 0's path — which is why sizes are only ever taken from a signed checkpoint.)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, tree.leaf(index), proof, leaf_hash(b"other root"))
    if proof:
        pos = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="pos")
        bad = list(proof)
        bad[pos] = bytes([bad[pos][0] ^ 1]) + bad[pos][1:]
        with pytest.raises(ProofError):
            verify_inclusion(index, size, tree.leaf(index), bad, root)
        with pytest.raises(ProofError):
            verify_inclusion(index, size, tree.leaf(index), proof[:-1], root)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, tree.leaf(index), [*proof, root], root)


@settings(max_examples=150)
@given(st.data(), st.integers(min_value=1, max_value=90))
def test_consistency_proofs_verify_and_corruptions_fail(data: st.DataObject, n: int) -> None:
    tree = MerkleTree([leaf_hash(i.to_bytes(4, "big")) for i in range(n)])
    size2 = data.draw(st.integers(min_value=1, max_value=n), label="size2")
    size1 = data.draw(st.integers(min_value=1, max_value=size2), label="size1")
    proof = tree.consistency_proof(size1, size2)
    root1, root2 = tree.root(size1), tree.root(size2)
    verify_consistency(size1, size2, proof, root1, root2)
    if size1 < size2:
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof, root2, root1)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof, node_hash(root1, root1), root2)
        pos = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="pos")
        bad = list(proof)
        bad[pos] = bytes([bad[pos][0] ^ 16]) + bad[pos][1:]
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, bad, root1, root2)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof[:-1], root1, root2)
    # A forked history (one leaf changed before size1) is never consistent.
    forked = MerkleTree([leaf_hash(b"fork") if i == 0 else tree.leaf(i) for i in range(size2)])
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, root1, forked.root(size2))


@settings(max_examples=100)
@given(st.data(), st.integers(min_value=0, max_value=70), st.integers(min_value=1, max_value=40))
def test_proofs_from_compact_state_equal_full_tree_proofs(
    data: st.DataObject, base: int, extra: int
) -> None:
    """A writer with only its compact range and the batch's leaves proves what a full tree does."""
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(base + extra)]
    tree = MerkleTree(hashes)
    cr = CompactRange()
    cr.extend(hashes[:base])
    hr = range_hasher_from_compact(cr, hashes[base:])
    n = base + extra
    if base:
        assert consistency_proof(base, n, hr) == tree.consistency_proof(base, n)
    index = data.draw(st.integers(min_value=base, max_value=n - 1), label="index")
    assert inclusion_proof(index, n, hr) == tree.inclusion_proof(index, n)
    # Older leaves are not in the writer's state: asking for them is an error, not a guess.
    if base >= 2 and base.bit_count() < base:
        with pytest.raises(ProofError):
            inclusion_proof(0, n, hr)


@settings(max_examples=25)
@given(st.lists(st.integers(min_value=0, max_value=2500), min_size=1, max_size=4))
def test_bulk_appends_in_blocks_equal_leaf_by_leaf(chunks: list[int]) -> None:
    """The block-wise fast path (whole 256-leaf subtrees at a time) changes nothing."""
    one, bulk, until = CompactRange(), CompactRange(), CompactRange()
    n = 0
    for chunk in chunks:
        data = [i.to_bytes(4, "big") for i in range(n, n + chunk)]
        for d in data:
            one.append(leaf_hash(d))
        bulk.extend_data(data)
        pos = 0
        while pos < len(data):  # stop at arbitrary sizes, as the auditor does at checkpoints
            pos = until.extend_data_until(data, pos, until.size + 97)
        n += chunk
        assert one == bulk == until
    assert one.root() == mth([i.to_bytes(4, "big") for i in range(n)])
