"""``puente.evidence.trustissue.issue``, the rule `puente demo` and `puente deploy` share: a list
short of quorum is only ever a proposal; a proposal keeps its signatures while it is still the
list wanted and is replaced when the keys change; a store without roots is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from puente.evidence._time import now_ms
from puente.evidence.errors import TrustListError
from puente.evidence.keystore import GENESIS_FILE, TRUST_LIST_FILE, KeyStore, root_key_name
from puente.evidence.trust import TrustAnchor, TrustList, Usage, member_holder, node_holder
from puente.evidence.trustissue import PROPOSAL_FILE, issue, read_note

FLOOR = bytes(32)
MEMBERS = ("AR", "BR", "MX")


def _federation(tmp_path: Path) -> tuple[KeyStore, dict[str, KeyStore]]:
    """A trust store holding the public part of each state's root; each root in its own store."""
    trust = KeyStore(tmp_path / "trust")
    own = {}
    for code in MEMBERS:
        own[code] = KeyStore(tmp_path / code)
        key, meta = own[code].generate(
            member_holder(code),
            valid_from=now_ms() - 1000,
            usages=(Usage.TRUST_LIST,),
            name=root_key_name(code),
        )
        trust.import_public(
            key.public, meta.holder, valid_from=meta.valid_from, usages=(Usage.TRUST_LIST,)
        )
    trust.generate(node_holder("MX"), valid_from=now_ms() - 1000)
    return trust, own


def _signers(path: Path) -> int:
    return len(read_note(path.read_bytes()).signatures)


def test_short_of_quorum_is_a_proposal_and_a_quorum_makes_the_genesis_list(tmp_path: Path) -> None:
    trust, own = _federation(tmp_path)
    proposal = trust.root / PROPOSAL_FILE
    at = now_ms()
    first = issue(trust, [own["AR"]], floor=FLOOR, now=at)
    assert first.current is None and first.proposal == proposal and not first.changed
    assert first.missing == ("member:BR", "member:MX") and first.needed == 1
    assert not (trust.root / TRUST_LIST_FILE).exists() and _signers(proposal) == 1
    # A second call with another state's root, seconds later (a first list's serial is the
    # clock's second: the waiting proposal keeps its own), adds its signature to it.
    done = issue(trust, [own["BR"]], floor=FLOOR, now=at + 5000)
    assert done.changed and done.proposal is None and not proposal.exists()
    genesis = (trust.root / GENESIS_FILE).read_bytes()
    assert done.current == genesis and TrustAnchor.genesis(genesis).k == 2
    assert issue(trust, [], floor=FLOOR, now=now_ms()) == type(done)(genesis)  # nothing to do


def test_a_proposal_of_other_keys_is_replaced_and_its_signatures_dropped(tmp_path: Path) -> None:
    trust, own = _federation(tmp_path)
    issue(trust, [own["AR"], own["BR"]], floor=FLOOR, now=now_ms())
    in_force = TrustList.from_text(read_note((trust.root / TRUST_LIST_FILE).read_bytes()).text)
    trust.generate(node_holder("AR"), valid_from=now_ms())
    issue(trust, [own["AR"]], floor=FLOOR, now=now_ms())
    proposal = trust.root / PROPOSAL_FILE
    assert _signers(proposal) == 1
    trust.generate(node_holder("BR"), valid_from=now_ms())  # the keys change again
    later = issue(trust, [own["MX"]], floor=FLOOR, now=now_ms())
    assert later.proposal == proposal and _signers(proposal) == 1  # AR's signature is gone
    assert "member:AR" in later.missing and "member:MX" not in later.missing
    tl = TrustList.from_text(read_note(proposal.read_bytes()).text)
    assert tl.serial == in_force.serial + 1 and len(tl.node_keys("BR")) == 1
    # The list in force is untouched by either proposal.
    kept = TrustList.from_text(read_note((trust.root / TRUST_LIST_FILE).read_bytes()).text)
    assert kept == in_force


def test_a_store_without_roots_is_refused(tmp_path: Path) -> None:
    trust = KeyStore(tmp_path / "trust")
    trust.generate(node_holder("MX"), valid_from=now_ms())
    with pytest.raises(TrustListError) as exc:
        issue(trust, [trust], floor=FLOOR, now=now_ms())
    assert exc.value.reason == "TRUST_QUORUM_MISSING"
    assert "puente keys import" in (exc.value.hint or "")
