"""The embedded default moves from a single-root trust list to the members' quorum by itself:
the first members' list is co-signed by the old operator root (verifiers anchored on it take
it) and becomes the genesis list; later runs re-sign nothing that is still good."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from puente.app.operator import ensure_evidence
from puente.config import Settings
from puente.evidence.errors import TrustListError
from puente.evidence.keystore import GENESIS_FILE, TRUST_LIST_FILE, KeyStore
from puente.evidence.trust import ROOT_HOLDER, TrustAnchor, TrustList, Usage
from puente.evidence.trustsource import TrustTracker, local_anchor

from .conftest import World

MEMBERS = ("MX", "GT", "CO")


def test_a_single_root_state_directory_migrates_to_the_quorum(world: World, tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    store = KeyStore(settings.keys_dir)
    now = int(time.time() * 1000)
    root, _ = store.generate(ROOT_HOLDER, valid_from=now - 1000)
    legacy = store.trust_list(serial=5, issued_at=now - 1000, expires_at=now + 86_400_000)
    (store.root / TRUST_LIST_FILE).write_bytes(legacy.sign(root))
    assert local_anchor(settings.keys_dir) == TrustAnchor.from_keys([root.public])
    old_verifier = TrustTracker([root.public], world.registry)
    assert old_verifier.offer(legacy.sign(root))

    evidence = ensure_evidence(settings, MEMBERS)
    transition = evidence.open_trust_list()
    assert transition.serial == 6 and transition.quorum == 2
    roots = transition.roots(at=transition.issued_at)
    assert sorted(roots) == sorted(f"member:{c}" for c in MEMBERS)  # no operator root
    assert old_verifier.offer(evidence.trust_list)  # the root co-signed the transition list
    genesis = (store.root / GENESIS_FILE).read_bytes()
    assert genesis == evidence.trust_list and local_anchor(settings.keys_dir) == evidence.anchors
    # from now on the operator root alone makes nothing the verifier takes
    later = store.trust_list(serial=7, issued_at=transition.issued_at, expires_at=now + 86_400_000)
    with pytest.raises(TrustListError) as exc:
        old_verifier.offer(later.sign(root))
    assert exc.value.reason == "TRUST_LIST_UNTRUSTED"
    # a second run changes nothing
    again = ensure_evidence(settings, MEMBERS)
    assert again.trust_list == evidence.trust_list
    assert TrustList.open(again.trust_list, again.anchors, now=transition.issued_at).signed_by
    assert store.current(ROOT_HOLDER, usage=Usage.TRUST_LIST, at=now).key_id == root.key_id
