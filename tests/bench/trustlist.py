"""Trust-list benchmark: what a quorum of member signatures costs a verifier, against the
single-root list of before (the baseline, measured in the same run).

    .venv/bin/python -m tests.bench.trustlist [--members 20] [--runs 5]

One list of a federation of ``--members`` states (per state a root key, a node key, a receipt
key and two encryption keys), opened (parsed, signatures verified, quorum counted) by:

- the single-root list: one operator-root signature, judged by the root's key (baseline);
- the quorum list: every member's root signature, judged by the genesis list's roots and its
  own (majority quorum), as TrustTracker.offer does at every refresh that brings a new list;
- TrustAnchor.genesis: what a verifier does once at start.

Rates are per core (CPU time, median of the runs). A verifier opens a list only when a new one
arrives (the tracker compares bytes first), so this is a per-list, not a per-delivery, cost.
"""

from __future__ import annotations

import argparse
import os
import platform
from dataclasses import replace

from puente.evidence.enckeys import EncryptionKey
from puente.evidence.keys import SigningKey
from puente.evidence.note import Note
from puente.evidence.trust import (
    EncKeyEntry,
    KeyEntry,
    TrustAnchor,
    TrustList,
    Usage,
    majority,
    member_holder,
    node_holder,
)
from tests.bench.evidence import cpu_rate

T0 = 1_767_225_600_000
DAY = 86_400_000
CODES = [f"{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(26 * 26)]  # AA, AB, ...


def federation(members: int) -> tuple[TrustList, list[SigningKey], SigningKey]:
    """The list of ``members`` states (unsigned, quorum a majority), their roots, an operator."""
    entries: list[KeyEntry] = []
    encs: list[EncKeyEntry] = []
    roots = []
    for code in CODES[:members]:
        root = SigningKey.generate(f"puente.root/{code}")
        roots.append(root)
        for key, holder, usages in (
            (root, member_holder(code), {Usage.TRUST_LIST}),
            (SigningKey.generate(f"puente.node/{code}"), node_holder(code), {Usage.DELIVERY}),
            (SigningKey.generate(f"puente.member/{code}"), member_holder(code), {Usage.RECEIPT}),
        ):
            entries.append(KeyEntry(key.public, holder, frozenset(usages), T0 - DAY))
        for holder in (member_holder(code), node_holder(code)):
            ekey = EncryptionKey.generate(f"puente.{holder.replace(':', '/')}")
            encs.append(EncKeyEntry(ekey.public, holder, T0 - DAY))
    tl = TrustList(1, T0, T0 + 30 * DAY, tuple(entries), tuple(encs), quorum=majority(members))
    return tl, roots, SigningKey.generate("puente.operator/root")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tl, roots, operator = federation(args.members)
    single = replace(tl, quorum=None).sign(operator)
    note = Note.unsigned(tl.text())
    for root in roots:
        note = note.sign(root)
    quorum = note.to_bytes()
    anchor = TrustAnchor.genesis(quorum)
    n = 200
    base = cpu_rate(
        args.runs, n, lambda: [TrustList.open(single, [operator.public], now=T0) for _ in range(n)]
    )
    multi = cpu_rate(
        args.runs, n, lambda: [TrustList.open(quorum, anchor, now=T0) for _ in range(n)]
    )
    genesis = cpu_rate(args.runs, n, lambda: [TrustAnchor.genesis(quorum) for _ in range(n)])
    print(
        f"trust list of {args.members} members: {len(tl.entries)} key and "
        f"{len(tl.encryption_entries)} enc lines, {len(single)} / {len(quorum)} bytes signed "
        f"(single root / {len(roots)} roots, quorum {tl.quorum})"
    )
    print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
    )
    print(f"{'open, single root (baseline)':40} {base:10,.0f} lists/s   1.00x")
    print(f"{'open, quorum of member roots':40} {multi:10,.0f} lists/s   {multi / base:.2f}x")
    print(f"{'TrustAnchor.genesis':40} {genesis:10,.0f} lists/s   {genesis / base:.2f}x")
    print(f"per list: {1e3 / base:.2f} ms (single root), {1e3 / multi:.2f} ms (quorum)")


if __name__ == "__main__":
    main()
