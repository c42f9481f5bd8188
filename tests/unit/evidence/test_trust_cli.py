"""``puente trust propose | sign`` on files: a single-root deployment hands the trust list to
its member states (the transition list), then a member's root rotation needs k of them.
(``publish`` needs the trust topic: tests/integration/service/test_trust_quorum.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from puente.app.commands.keys import keys_app
from puente.app.commands.trust import app as trust_app
from puente.evidence.errors import TrustListError
from puente.evidence.keys import read_public_key
from puente.evidence.keystore import KeyStore
from puente.evidence.trust import TrustAnchor, TrustList

runner = CliRunner()
MEMBERS = ("AR", "BR", "MX")


def run(app: typer.Typer, *args: str, code: int = 0) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == code, res.output + repr(res.exception)
    return res.output


def member_root(tmp_path: Path, code: str, shared: str) -> str:
    """State ``code`` makes its root key in its own directory and hands in the public part."""
    own = str(tmp_path / code)
    run(keys_app, "generate", "--for", code, "--usage", "trust-list", "--dir", own)
    (vkey,) = (tmp_path / code).glob("member-*.vkey")
    run(keys_app, "import", str(vkey), "--for", code, "--usage", "trust-list", "--dir", shared)
    return own


def test_propose_sign_from_a_single_root_list_to_a_quorum(tmp_path: Path) -> None:
    d = str(tmp_path / "keys")
    run(keys_app, "generate", "--for", "root", "--dir", d)
    run(keys_app, "generate", "--for", "service", "--dir", d)
    run(keys_app, "trust-list", "build", "--dir", d)
    store = KeyStore(tmp_path / "keys")
    (root_skey,) = store.root.glob("operator-root-*.skey")
    run(keys_app, "trust-list", "sign", "--key", str(root_skey), "--dir", d)
    (root_vkey,) = store.root.glob("operator-root-*.vkey")
    legacy = [read_public_key(root_vkey)]
    dirs = {code: member_root(tmp_path, code, d) for code in MEMBERS}

    out = run(trust_app, "propose", "--dir", d)
    assert out.count("+ key ") == 3 and "needs 2 of 3" in out
    proposal = store.root / "trust-list.proposed"
    run(trust_app, "sign", "--as", "AR", "--dir", dirs["AR"], "--in", str(proposal))
    assert "already signed" in run(
        trust_app, "sign", "--as", "AR", "--dir", dirs["AR"], "--in", str(proposal), code=1
    )
    now = TrustList.from_text(proposal.read_text().split("\n\n")[0] + "\n").issued_at
    with pytest.raises(TrustListError) as exc:  # the operator root alone is not enough now
        TrustList.open(proposal.read_bytes(), legacy, now=now)
    assert exc.value.reason == "TRUST_LIST_UNTRUSTED"
    run(trust_app, "sign", "--as", "root", "--dir", d, "--in", str(proposal))
    with pytest.raises(TrustListError) as exc:  # 1 of the 2 member roots it asks for
        TrustList.open(proposal.read_bytes(), legacy, now=now)
    assert exc.value.reason == "TRUST_QUORUM_MISSING"
    out = run(trust_app, "sign", "--as", "MX", "--dir", dirs["MX"], "--in", str(proposal))
    assert "2 of the 2 of 3" in out
    transition = TrustList.open(proposal.read_bytes(), legacy, now=now)
    assert transition.quorum == 2 and transition.serial == 2
    assert TrustAnchor.genesis(proposal.read_bytes()).k == 2  # it can anchor what follows
