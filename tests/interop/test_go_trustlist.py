"""Proof from outside: a Go verifier written from docs/evidence.md §3.1 alone (standard library
only, built offline: tests/interop/trustlist/main.go) judges a chain of k-of-n signed trust
lists exactly as Puente does — genesis, a member joining, a root rotated, a list short of
quorum, a forged root signature, a duplicated signature line and a serial rollback."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from puente.codec.registry import Registry
from puente.evidence.errors import TrustListError
from puente.evidence.keys import SigningKey
from puente.evidence.note import Note, NoteSignature
from puente.evidence.trust import KeyEntry, TrustAnchor, TrustList, Usage, member_holder
from puente.evidence.trustsource import TrustTracker
from tests.interop.gobuild import go_build

GO_SOURCE = Path(__file__).with_name("trustlist")
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
T0 = 1_767_225_600_000
DAY = 86_400_000
CODES = ("AR", "BR", "CL", "MX", "GT")


@pytest.fixture(scope="module")
def go_trustlist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return go_build(GO_SOURCE, tmp_path_factory.mktemp("go"))


def root(code: str, key: SigningKey, since: int = T0 - DAY) -> KeyEntry:
    return KeyEntry(key.public, member_holder(code), frozenset({Usage.TRUST_LIST}), since)


def sign(tl: TrustList, *keys: SigningKey) -> bytes:
    note = Note.unsigned(tl.text())
    for k in keys:
        note = note.sign(k)
    return note.to_bytes()


def go(binary: Path, lists: list[bytes], tmp_path: Path) -> list[dict[str, Any]]:
    files = []
    for i, data in enumerate(lists):
        files.append(tmp_path / f"{i}.note")
        files[-1].write_bytes(data)
    proc = subprocess.run(
        [str(binary), *map(str, files)], capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return [orjson.loads(line) for line in proc.stdout.splitlines()]


def puente(lists: list[bytes], now: int) -> list[bool | str]:
    """Puente's verdicts on the same chain: True, or the reason code of the refusal."""
    verdicts: list[bool | str] = []
    try:
        anchor = TrustAnchor.genesis(lists[0])
    except TrustListError as exc:
        return [exc.reason] * len(lists)
    tracker = TrustTracker(anchor, Registry.load(SCHEMAS), clock=lambda: now)
    for data in lists:
        try:
            tracker.offer(data)
            verdicts.append(True)
        except TrustListError as exc:
            verdicts.append(exc.reason)
    return verdicts


def test_a_go_verifier_judges_the_chain_as_puente_does(go_trustlist: Path, tmp_path: Path) -> None:
    keys = {c: SigningKey.generate(f"puente.root/{c}") for c in CODES}
    policy = SigningKey.generate("puente.svc/policy")
    service = KeyEntry(
        policy.public, "service:policy", frozenset({Usage.DELIVERY, Usage.CHECKPOINT}), T0 - DAY
    )
    genesis = TrustList(
        1, T0, T0 + 30 * DAY, (service, *(root(c, k) for c, k in keys.items())), quorum=3
    )
    uy = SigningKey.generate("puente.root/UY")
    two = replace(genesis.reissued(issued_at=T0 + 1, expires_at=T0 + 30 * DAY), quorum=None)
    two = replace(two.with_entry(root("UY", uy)), quorum=4)
    ar2 = SigningKey.generate("puente.root/AR")
    three = two.reissued(issued_at=T0 + 2, expires_at=T0 + 30 * DAY)
    three = three.retire(keys["AR"].key_id, until=T0 + 2).with_entry(root("AR", ar2, T0 + 2))
    four = three.reissued(issued_at=T0 + 3, expires_at=T0 + 30 * DAY)
    forged = Note.parse(sign(four, ar2, keys["BR"], keys["CL"], uy))
    mx = keys["MX"].public
    bad = NoteSignature(mx.name, mx.key_hash, bytes(64))
    stranger = SigningKey.generate("puente.root/ZZ")
    chain = [
        sign(genesis, keys["AR"], keys["BR"], keys["CL"]),  # genesis: 3 of its 5 roots
        sign(two, keys["AR"], keys["BR"], keys["CL"]),  # UY joins: 3 of 5 old, only 3 of 4 new
        sign(two, keys["AR"], keys["BR"], keys["CL"], uy),  # ... now 4 of its own
        sign(three, ar2, keys["BR"], keys["CL"], uy),  # AR's new root is no root of list 2
        sign(three, keys["AR"], ar2, keys["BR"], keys["CL"], uy),  # AR's old root signs too
        Note(forged.text, (*forged.signatures, bad)).to_bytes(),  # a forged MX line
        sign(four, ar2, ar2, keys["BR"], keys["CL"], stranger),  # AR twice, a stranger: 3 of 4
        sign(four, keys["AR"], keys["BR"], keys["CL"], uy),  # AR's retired root no longer counts
        sign(four, ar2, keys["BR"], keys["CL"], uy),  # valid
        sign(two, *keys.values(), uy),  # serial 2 again: a rollback
    ]
    by_go = go(go_trustlist, chain, tmp_path)
    assert [r["valid"] for r in by_go] == [r is True for r in puente(chain, T0 + DAY)]
    assert [r["valid"] for r in by_go] == [
        True, False, True, False, True, False, False, False, True, False
    ]  # fmt: skip
    assert by_go[8]["signers"] == ["member:AR", "member:BR", "member:CL", "member:UY"]
    assert "quorum missing: 3 of 4" in by_go[6]["reason"]
    assert "fails" in by_go[5]["reason"]
    # a genesis short of its own quorum anchors nothing, for either verifier
    short = [sign(genesis, keys["AR"], keys["BR"]), chain[2]]
    assert [r["valid"] for r in go(go_trustlist, short, tmp_path)] == [False, False]
    assert puente(short, T0 + DAY) == ["TRUST_QUORUM_MISSING"] * 2
