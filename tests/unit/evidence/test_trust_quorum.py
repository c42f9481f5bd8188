"""A trust list no single party can rewrite: k of n member roots sign it, the list names k and
its roots, each list is judged by the one in force before it, and a verifier never goes back to
a lower serial."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from puente.evidence.audit.auditor import AuditOptions, Auditor
from puente.evidence.audit.report import Kind
from puente.evidence.audit.source import ExportFile
from puente.evidence.errors import MalformedError, TrustListError
from puente.evidence.keys import SigningKey
from puente.evidence.note import Note, NoteSignature
from puente.evidence.trust import KeyEntry, TrustAnchor, TrustList, Usage, member_holder
from puente.evidence.trustsource import TrustTracker, read_anchor

from .auditlog import build
from .conftest import DAY, T0, World

CODES = ("AR", "BR", "CL", "MX", "GT")


class Keep:
    """The quorum of the list before."""


KEEP = Keep()


def root_entry(code: str, key: SigningKey, **validity: int) -> KeyEntry:
    since = validity.pop("valid_from", T0 - 10 * DAY)
    return KeyEntry(
        key.public, member_holder(code), frozenset({Usage.TRUST_LIST}), since, **validity
    )


@dataclass
class Federation:
    """Five member states, each with a root key; the genesis list (serial 1) asks for 3."""

    world: World
    roots: dict[str, SigningKey]
    genesis: TrustList

    def signed(self, tl: TrustList, *signers: str | SigningKey) -> bytes:
        note = Note.unsigned(tl.text())
        for s in signers:
            note = note.sign(self.roots[s] if isinstance(s, str) else s)
        return note.to_bytes()

    def next(
        self,
        tl: TrustList,
        *,
        entries: tuple[KeyEntry, ...] | None = None,
        quorum: int | Keep | None = KEEP,
    ) -> TrustList:
        """The list after ``tl`` (serial + 1), with other roots and quorum if given."""
        nxt = tl.reissued(issued_at=tl.issued_at + 1, expires_at=T0 + 30 * DAY)
        if entries is not None:
            nxt = replace(nxt, entries=entries, quorum=None)
        return replace(nxt, quorum=tl.quorum if isinstance(quorum, Keep) else quorum)


@pytest.fixture
def fed(world: World) -> Federation:
    roots = {c: SigningKey.generate(f"puente.root/{c}") for c in CODES}
    entries = (*world.trust_list.entries, *(root_entry(c, k) for c, k in roots.items()))
    genesis = replace(
        world.trust_list,
        serial=1,
        issued_at=T0 - DAY,
        expires_at=T0 + 30 * DAY,
        entries=entries,
        quorum=3,
    )
    return Federation(world, roots, genesis)


def reason(exc: pytest.ExceptionInfo[TrustListError]) -> str:
    return exc.value.reason


def test_the_quorum_line_is_canonical_and_bounded(fed: Federation) -> None:
    text = fed.genesis.text()
    assert "\nquorum 3\n" in text and TrustList.from_text(text) == fed.genesis
    for k in (0, 6):  # five root holders
        with pytest.raises(MalformedError, match="quorum"):
            replace(fed.genesis, quorum=k)
    with pytest.raises(MalformedError, match="canonical"):
        TrustList.from_text(text.replace("quorum 3", "quorum 03"))


def test_a_genesis_list_anchors_only_with_a_quorum_of_its_own_roots(
    fed: Federation, tmp_path: Path
) -> None:
    anchor = TrustAnchor.genesis(fed.signed(fed.genesis, "AR", "BR", "CL"))
    assert (anchor.k, anchor.serial, len(anchor.holders)) == (3, 1, 5)
    with pytest.raises(TrustListError) as exc:
        TrustAnchor.genesis(fed.signed(fed.genesis, "AR", "BR"))
    assert reason(exc) == "TRUST_QUORUM_MISSING"
    path = tmp_path / "genesis.note"
    path.write_bytes(fed.signed(fed.genesis, *CODES))
    assert read_anchor([str(path)]) == TrustAnchor.genesis(path.read_bytes())
    single = replace(fed.genesis, quorum=None).sign(fed.world.root)
    with pytest.raises(TrustListError) as exc:
        TrustAnchor.genesis(single)
    assert reason(exc) == "TRUST_ANCHOR_INVALID"


def test_a_list_short_of_quorum_is_refused_by_every_entry_point(
    fed: Federation, tmp_path: Path
) -> None:
    genesis = fed.signed(fed.genesis, *CODES)
    short = fed.signed(fed.next(fed.genesis), "AR", "BR")
    anchor = TrustAnchor.genesis(genesis)
    # TrustList.open, strict and lenient
    with pytest.raises(TrustListError) as exc:
        TrustList.open(short, anchor, now=T0)
    assert reason(exc) == "TRUST_QUORUM_MISSING"
    assert "2 of the roots in force" in exc.value.message
    assert "puente trust sign" in exc.value.message
    assert TrustList.open(short, anchor, now=T0, strict=False).problems == ("TRUST_QUORUM_MISSING",)
    # the tracker (subscriber, gateway, nodes): refused, the last good list stays in force
    tracker = TrustTracker(anchor, fed.world.registry, clock=lambda: T0)
    assert tracker.offer(genesis)
    with pytest.raises(TrustListError) as exc:
        tracker.offer(short)
    assert reason(exc) == "TRUST_QUORUM_MISSING"
    assert tracker.current is not None and tracker.current.serial == 1
    # the auditor reports it
    exp, _ = build(fed.world.registry, fed.world.service, short, records=20, batch=8)
    auditor = Auditor(
        registry=fed.world.registry, anchors=anchor, options=AuditOptions(now=T0 + DAY)
    )
    report = auditor.run(ExportFile(exp.write(tmp_path / "export.pxp")))
    assert Kind.TRUST_QUORUM_MISSING in {a.kind for a in report.anomalies} and not report.ok
    # ... and the same list, one more member signing, is taken
    assert tracker.offer(TrustList.cosign(short, fed.roots["MX"]))


def test_duplicate_unknown_and_same_holder_signatures_count_once(fed: Federation) -> None:
    anchor = TrustAnchor.genesis(fed.signed(fed.genesis, *CODES))
    nxt = fed.next(fed.genesis)
    stranger = SigningKey.generate("puente.root/UY")
    twice = fed.signed(nxt, "AR", "BR", "AR", stranger, fed.world.root)
    with pytest.raises(TrustListError) as exc:
        TrustList.open(twice, anchor, now=T0)
    assert reason(exc) == "TRUST_QUORUM_MISSING"
    # AR's second root key (a rotation overlap) is AR again
    ar2 = SigningKey.generate("puente.root/AR")
    both = fed.next(fed.genesis, entries=(*nxt.entries, root_entry("AR", ar2)))
    anchor2 = TrustAnchor.of(replace(fed.genesis, entries=both.entries))
    with pytest.raises(TrustListError) as exc:
        TrustList.open(fed.signed(both, "AR", ar2, "BR"), anchor2, now=T0)
    assert reason(exc) == "TRUST_QUORUM_MISSING"
    # k valid signatures plus unknown ones: taken, signed_by names the roots only
    ok = TrustList.open(fed.signed(nxt, stranger, "AR", "BR", "CL"), anchor, now=T0)
    assert ok.signed_by == tuple(fed.roots[c].key_id for c in ("AR", "BR", "CL"))


def test_a_forged_root_signature_rejects_the_list(fed: Federation) -> None:
    anchor = TrustAnchor.genesis(fed.signed(fed.genesis, *CODES))
    note = Note.parse(fed.signed(fed.next(fed.genesis), "AR", "BR", "CL"))
    mx = fed.roots["MX"].public
    forged = NoteSignature(mx.name, mx.key_hash, bytes(64))
    data = Note(note.text, (*note.signatures, forged)).to_bytes()
    assert base64.b64encode(mx.key_hash + bytes(64)).decode() in data.decode()
    with pytest.raises(TrustListError) as exc:
        TrustList.open(data, anchor, now=T0)
    assert reason(exc) == "TRUST_LIST_UNTRUSTED"


def test_serial_rollback_is_refused(fed: Federation) -> None:
    genesis = fed.signed(fed.genesis, *CODES)
    tracker = TrustTracker(TrustAnchor.genesis(genesis), fed.world.registry, clock=lambda: T0)
    older = fed.signed(replace(fed.genesis, serial=0), *CODES)
    with pytest.raises(TrustListError) as exc:
        tracker.offer(older)  # below the genesis serial: never taken
    assert reason(exc) == "TRUST_LIST_ROLLBACK"
    two = fed.next(fed.genesis)
    three = fed.next(two)
    assert tracker.offer(fed.signed(three, *CODES))
    with pytest.raises(TrustListError) as exc:
        tracker.offer(fed.signed(two, *CODES))
    assert reason(exc) == "TRUST_LIST_ROLLBACK"


def test_a_chain_of_lists_where_the_roots_change(fed: Federation) -> None:
    """Member UY joins (k becomes 4 of 6), then AR rotates its root and GT's is revoked: each
    list needs a quorum of the roots of the one before and a quorum of its own."""
    genesis = fed.signed(fed.genesis, *CODES)
    tracker = TrustTracker(TrustAnchor.genesis(genesis), fed.world.registry, clock=lambda: T0)
    uy = SigningKey.generate("puente.root/UY")
    two = fed.next(fed.genesis, entries=(*fed.genesis.entries, root_entry("UY", uy)), quorum=4)
    with pytest.raises(TrustListError) as exc:  # 3 of the old roots, but only 3 of its own 4
        tracker.offer(fed.signed(two, "AR", "BR", "CL"))
    assert reason(exc) == "TRUST_QUORUM_MISSING"
    assert tracker.offer(fed.signed(two, "AR", "BR", "CL", uy))
    # AR rotates: the old root ends, a new one starts; GT's root is revoked
    ar2 = SigningKey.generate("puente.root/AR")
    at = two.issued_at + 1
    three = fed.next(two)
    three = three.retire(fed.roots["AR"].key_id, until=at).revoke(fed.roots["GT"].key_id, since=0)
    three = three.with_entry(root_entry("AR", ar2, valid_from=at))
    with pytest.raises(TrustListError) as exc:  # AR's new key is not a root of list 2 yet
        tracker.offer(fed.signed(three, ar2, "BR", "CL", uy))
    assert reason(exc) == "TRUST_QUORUM_MISSING"
    assert tracker.offer(fed.signed(three, ar2, "BR", "CL", uy, "MX"))
    # list 4: AR's retired key and GT's revoked one no longer count
    four = fed.next(three)
    with pytest.raises(TrustListError) as exc:
        tracker.offer(fed.signed(four, "AR", "GT", "BR", "CL", uy))
    assert reason(exc) == "TRUST_QUORUM_MISSING"
    assert tracker.offer(fed.signed(four, ar2, "BR", "CL", uy))
    assert tracker.current is not None and tracker.current.serial == 4


def test_a_single_root_deployment_moves_to_the_quorum_and_stays(fed: Federation) -> None:
    """Migration: a verifier anchored on the operator root takes the transition list (signed by
    the operator root and a quorum of members); from then on the root alone signs nothing."""
    world = fed.world
    tracker = TrustTracker([world.root.public], world.registry, clock=lambda: T0)
    legacy = replace(fed.genesis, quorum=None, entries=world.trust_list.entries)
    assert tracker.offer(legacy.sign(world.root))  # as before: one root signature
    transition = fed.next(legacy, entries=fed.genesis.entries, quorum=3)
    with pytest.raises(TrustListError) as exc:  # the root alone cannot make the quorum list
        tracker.offer(fed.signed(transition, world.root))
    assert reason(exc) == "TRUST_QUORUM_MISSING"
    assert tracker.offer(fed.signed(transition, world.root, "AR", "BR", "CL"))
    rewrite = fed.next(transition, quorum=None, entries=world.trust_list.entries)
    with pytest.raises(TrustListError) as exc:
        tracker.offer(rewrite.sign(world.root))
    assert reason(exc) == "TRUST_LIST_UNTRUSTED"


def _rotated_away(fed: Federation) -> tuple[bytes, list[bytes]]:
    """The genesis list, and lists 2 and 3 where list 3 is signed by none of the genesis
    roots but BR and CL (UY joins and AR rotates in list 2; GT and MX are revoked in 3)."""
    genesis = fed.signed(fed.genesis, *CODES)
    uy, ar2 = SigningKey.generate("puente.root/UY"), SigningKey.generate("puente.root/AR")
    two = fed.next(
        fed.genesis, entries=(*fed.genesis.entries, root_entry("UY", uy), root_entry("AR", ar2))
    )
    three = fed.next(two).revoke(fed.roots["GT"].key_id, since=0)
    three = three.revoke(fed.roots["MX"].key_id, since=0)
    three = three.retire(fed.roots["AR"].key_id, until=three.issued_at)
    return genesis, [fed.signed(two, *CODES), fed.signed(three, "BR", "CL", uy, ar2)]


def test_the_auditor_follows_the_chain_from_the_genesis_list(
    fed: Federation, tmp_path: Path
) -> None:
    """List 3 is signed by none of the genesis roots but BR and CL: judged by the genesis list
    alone it is short; judged through list 2 (which the genesis roots signed) it is valid."""
    genesis, chain = _rotated_away(fed)
    anchor = TrustAnchor.genesis(genesis)
    with pytest.raises(TrustListError) as exc:
        TrustList.open(chain[1], anchor, now=T0)
    assert reason(exc) == "TRUST_QUORUM_MISSING"
    assert TrustList.open(chain[1], anchor.follow(reversed(chain)), now=T0).serial == 3
    exp, _ = build(fed.world.registry, fed.world.service, genesis, records=20, batch=8)
    exp.trust = [(0, genesis), (1, chain[0]), (2, chain[1])]
    auditor = Auditor(
        registry=fed.world.registry, anchors=anchor, options=AuditOptions(now=T0 + DAY)
    )
    report = auditor.run(ExportFile(exp.write(tmp_path / "export.pxp")))
    assert report.ok, report.to_text()
    assert report.trust_list is not None and report.trust_list["serial"] == 3
    # The genesis list's digest as the anchor: the auditor finds the list on the topic.
    pinned = Auditor(
        registry=fed.world.registry,
        anchors=TrustAnchor.pinned(hashlib.sha256(genesis).digest()),
        options=AuditOptions(now=T0 + DAY),
    ).run(ExportFile(tmp_path / "export.pxp"))
    assert pinned.ok and pinned.trust_list["serial"] == 3, pinned.to_text()
    exp.trust = exp.trust[1:]  # the pinned list is not there: nothing is trusted
    missing = Auditor(
        registry=fed.world.registry,
        anchors=TrustAnchor.pinned(hashlib.sha256(genesis).digest()),
        options=AuditOptions(now=T0 + DAY),
    ).run(ExportFile(exp.write(tmp_path / "export2.pxp")))
    assert "TRUST_LIST_UNTRUSTED" in missing.counts(), missing.to_text()


async def test_a_verifier_that_missed_lists_follows_the_kept_chain(fed: Federation) -> None:
    """A tracker holding the genesis list is offered list 3 (the newest on the topic): judged
    by the genesis roots it is short; through the lists the topic keeps it is taken."""
    genesis, chain = _rotated_away(fed)
    kept: list[bytes] = []
    asked: list[int] = []

    async def newest() -> bytes | None:
        return chain[-1]

    async def history() -> list[bytes]:
        asked.append(1)
        return list(reversed(kept))  # any order

    tracker = TrustTracker(
        TrustAnchor.genesis(genesis), fed.world.registry, clock=lambda: T0, history=history
    )
    assert not await tracker.refresh([newest])  # the history does not hold list 2 yet
    assert tracker.current is None and asked == [1]
    assert not await tracker.refresh([newest]) and asked == [1]  # the same list: not again
    kept += [genesis, *chain]
    tracker = TrustTracker(
        TrustAnchor.genesis(genesis), fed.world.registry, clock=lambda: T0, history=history
    )
    assert await tracker.refresh([newest])
    assert tracker.current is not None and tracker.current.serial == 3
    # The chain judged the newest list only: list 2 never became the list in force, and list 3
    # now judges what follows.
    assert tracker.anchor.serial == 3 and asked == [1, 1]
    assert not await tracker.refresh([newest]) and asked == [1, 1]  # nothing new: not asked


async def test_the_kept_chain_never_lets_in_what_the_roots_did_not_sign(
    fed: Federation,
) -> None:
    """A forged list 2 in the history (signed by two genesis roots: short of 3) does not carry
    list 3 in."""
    genesis, chain = _rotated_away(fed)
    two = TrustList.from_text(Note.parse(chain[0]).text)
    forged = fed.signed(two, "AR", "BR")

    async def newest() -> bytes | None:
        return chain[-1]

    async def history() -> list[bytes]:
        return [forged, chain[-1]]

    tracker = TrustTracker(
        TrustAnchor.genesis(genesis), fed.world.registry, clock=lambda: T0, history=history
    )
    assert not await tracker.refresh([newest])
    assert tracker.current is None


async def test_an_anchor_pinned_by_digest_is_found_in_the_kept_lists(fed: Federation) -> None:
    """``sha256:<hex>`` of the genesis list is the whole anchor: the list itself comes from
    the lists the topic keeps; a pin no list matches takes nothing."""
    genesis, chain = _rotated_away(fed)
    kept = [*chain, genesis]

    async def newest() -> bytes | None:
        return chain[-1]

    async def history() -> list[bytes]:
        return kept

    pin = read_anchor([f"sha256:{hashlib.sha256(genesis).hexdigest().upper()}"])
    assert pin.pin is not None and not pin.roots
    tracker = TrustTracker(pin, fed.world.registry, clock=lambda: T0, history=history)
    assert await tracker.refresh([newest])
    assert tracker.verifier().trust_list.serial == 3 and tracker.anchor.pin is None
    # Without the kept lists, only the genesis list itself could be taken.
    alone = TrustTracker(pin, fed.world.registry, clock=lambda: T0)
    with pytest.raises(TrustListError) as exc:
        alone.offer(chain[-1])
    assert reason(exc) == "TRUST_ANCHOR_UNRESOLVED"
    assert alone.offer(genesis) and alone.verifier().trust_list.serial == 1
    # Another list's digest: nothing verifies.
    wrong = TrustAnchor.pinned(hashlib.sha256(chain[0]).digest())
    assert not await TrustTracker(wrong, fed.world.registry, clock=lambda: T0).refresh([newest])
    for bad in ("sha256:abc", "sha256:" + "zz" * 32):
        with pytest.raises(TrustListError) as exc:
            read_anchor([bad])
        assert reason(exc) == "TRUST_ANCHOR_INVALID"
