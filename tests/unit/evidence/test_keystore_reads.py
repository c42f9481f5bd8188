"""A key store asked again and again (a node every few seconds, for a rotated key) parses its
files again only when they changed: a new key, a description rewritten in place, a private key
deleted; and, for file systems with coarse timestamps, whenever they had changed less than
SETTLE_NS before its last read."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from puente.evidence.keystore import SETTLE_NS, KeyStore, Listing, must_read, settled
from puente.evidence.trust import Usage, node_holder

MX = node_holder("MX")
T = 1_767_225_600_000  # Unix ms
HOUR = 3_600_000


def later() -> int:
    """Wall-clock ns as at a check 10 s after the test's writes (past the settling window)."""
    return time.time_ns() + 5 * SETTLE_NS


def listing(mtime_s: int, *descriptions: tuple[str, int, int, int, int]) -> Listing:
    """A directory last changed at ``mtime_s`` (in units of SETTLE_NS) with these descriptions."""
    t = mtime_s * SETTLE_NS
    return Listing((7, t, t), frozenset(d[0] for d in descriptions), tuple(descriptions))


def test_a_listing_is_trusted_only_once_its_newest_change_has_settled() -> None:
    t = 10 * SETTLE_NS
    a = listing(10, ("mx.json", 8, 210, t, t))
    assert settled(a, 11 * SETTLE_NS) and not settled(a, 11 * SETTLE_NS - 1)
    assert must_read(None, 99 * SETTLE_NS, a)  # never read
    assert not must_read(a, 11 * SETTLE_NS, a)  # unchanged, read after it settled
    # Read less than SETTLE_NS after its newest change: a rewrite within the same coarse tick
    # could show the same times and size, so the next check reads it again.
    assert must_read(a, 11 * SETTLE_NS - 1, a)
    assert must_read(a, 9 * SETTLE_NS, a)  # a file time ahead of the clock
    rewritten = listing(10, ("mx.json", 8, 210, t + 1, t + 1))  # in place: the directory as was
    assert must_read(a, 11 * SETTLE_NS, rewritten) and rewritten.newest_ns == t + 1
    added = listing(11, ("mx.json", 8, 210, t, t), ("gt.json", 9, 200, t, t))
    assert must_read(a, 11 * SETTLE_NS, added)
    assert Listing.of(Path("/nonexistent/keys")).newest_ns == 0


def test_an_unchanged_store_is_not_parsed_again_and_a_changed_one_is(tmp_path: Path) -> None:
    writer = KeyStore(tmp_path)  # the operator's commands, another process
    first, _ = writer.generate(MX, valid_from=T - HOUR)
    writer.generate_encryption(MX, valid_from=T - HOUR)
    node = KeyStore(tmp_path, clock=later)

    assert node.current(MX, usage=Usage.DELIVERY, at=T).key_id == first.key_id
    assert len(node.keyring(MX).keys) == 1 and node.reads == 1
    for _ in range(3):  # the periodic checks: a listing, no file opened
        node.current(MX, usage=Usage.DELIVERY, at=T)
        node.keyring(MX)
    assert node.reads == 1

    # A rotation: a new key's files, and the old key's description rewritten with its end.
    second, [retired] = writer.rotate(MX, at=T, overlap_ms=HOUR)
    assert node.current(MX, usage=Usage.DELIVERY, at=T + 1).key_id == second.key_id
    assert node.meta(first.key_id).valid_until == T + HOUR and node.reads == 2
    node.current(MX, usage=Usage.DELIVERY, at=T + 1)
    assert node.reads == 2

    # The description rewritten in place (KeyStore.update), same inode and size.
    path = next(tmp_path.glob(f"*{first.key_id}.json"))
    before = path.stat()
    writer.update(replace(retired, valid_until=T + HOUR - 1))
    after = path.stat()
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert node.meta(first.key_id).valid_until == T + HOUR - 1 and node.reads == 3

    # A private key deleted (KeyStore.delete_private, by the operator): no longer in the ring.
    (enc,) = (m for m in writer.key_metas() if m.is_encryption)
    writer.delete_private(enc.key_id)
    assert node.keyring(MX).keys == () and node.reads == 4
    node.keyring(MX)
    assert node.reads == 4


def test_a_store_changed_within_the_settling_window_is_read_at_every_check(
    tmp_path: Path,
) -> None:
    KeyStore(tmp_path).generate(MX, valid_from=T - HOUR)
    node = KeyStore(tmp_path)  # the real clock: the key was written just now
    node.key_metas()
    node.key_metas()
    assert node.reads == 2
