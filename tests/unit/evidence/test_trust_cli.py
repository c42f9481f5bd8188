"""``puente trust propose | sign`` on files: a single-root deployment hands the trust list to
its member states (the transition list), then a member's root rotation needs k of them.
(``publish`` needs the trust topic: tests/integration/service/test_trust_quorum.py.)"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from puente.app.commands.keys import keys_app
from puente.app.commands.trust import app as trust_app
from puente.evidence.errors import TrustListError
from puente.evidence.keys import PublicKey, SigningKey, read_public_key
from puente.evidence.keystore import KeyStore
from puente.evidence.note import Note
from puente.evidence.trust import TrustAnchor, TrustList
from puente.evidence.trustissue import read_note

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


def single_root_deployment(tmp_path: Path) -> tuple[str, list[PublicKey], dict[str, str]]:
    """A single-root deployment's key directory (its operator root signed the list in force)
    where three member states handed in their root keys: the directory, the operator root's
    public key (what old verifiers are anchored on) and each state's own key directory."""
    d = str(tmp_path / "keys")
    run(keys_app, "generate", "--for", "root", "--dir", d)
    run(keys_app, "generate", "--for", "service", "--dir", d)
    run(keys_app, "trust-list", "build", "--dir", d)
    store = KeyStore(tmp_path / "keys")
    (root_skey,) = store.root.glob("operator-root-*.skey")
    run(keys_app, "trust-list", "sign", "--key", str(root_skey), "--dir", d)
    (root_vkey,) = store.root.glob("operator-root-*.vkey")
    dirs = {code: member_root(tmp_path, code, d) for code in MEMBERS}
    return d, [read_public_key(root_vkey)], dirs


def issued_at(proposal: Path) -> int:
    return TrustList.from_text(read_note(proposal.read_bytes()).text).issued_at


def test_propose_sign_from_a_single_root_list_to_a_quorum(tmp_path: Path) -> None:
    d, legacy, dirs = single_root_deployment(tmp_path)
    out = run(trust_app, "propose", "--dir", d)
    assert out.count("+ key ") == 3 and "needs 2 of 3" in out
    proposal = Path(d) / "trust-list.proposed"
    run(trust_app, "sign", "--as", "AR", "--dir", dirs["AR"], "--in", str(proposal))
    assert "already signed" in run(
        trust_app, "sign", "--as", "AR", "--dir", dirs["AR"], "--in", str(proposal), code=1
    )
    now = issued_at(proposal)
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


def test_copies_signed_separately_merge_into_one_list(tmp_path: Path) -> None:
    """Each state signs its own copy of the proposal (in parallel, offline); `merge` makes one
    list of them that verifiers take, and refuses what would make them refuse it."""
    d, legacy, dirs = single_root_deployment(tmp_path)
    run(trust_app, "propose", "--dir", d)
    proposal = Path(d) / "trust-list.proposed"
    copies = {who: tmp_path / f"copy-{who}" for who in ("root", "AR", "MX")}
    for who, copy in copies.items():
        copy.write_bytes(proposal.read_bytes())
        run(
            trust_app,
            "sign",
            "--as",
            who,
            "--dir",
            d if who == "root" else dirs[who],
            "--in",
            str(copy),
        )
    now = issued_at(proposal)
    for copy in copies.values():  # no copy alone is enough
        with pytest.raises(TrustListError):
            TrustList.open(copy.read_bytes(), legacy, now=now)
    merged = tmp_path / "merged"
    out = run(
        trust_app,
        "merge",
        *map(str, copies.values()),
        copies["AR"].as_posix(),
        "--out",
        str(merged),
    )
    assert "3 signatures from 4 copies" in out and "2 of the 2 of 3" in out
    transition = TrustList.open(merged.read_bytes(), legacy, now=now)
    assert transition.serial == 2 and len(transition.signed_by) == 3

    # A copy of another list (here: proposed again, a later issue time) is refused.
    other = tmp_path / "other"
    run(trust_app, "propose", "--dir", d, "--out", str(other), "--expires-in", "10d")
    run(trust_app, "sign", "--as", "BR", "--dir", dirs["BR"], "--in", str(other))
    res = runner.invoke(trust_app, ["merge", str(copies["AR"]), str(other), "--out", str(merged)])
    assert (
        res.exit_code != 0 and getattr(res.exception, "reason", None) == "TRUST_PROPOSAL_MISMATCH"
    )

    # A root's signature that does not verify would make verifiers refuse the list: refused.
    lines = copies["MX"].read_text().splitlines(keepends=True)
    name, blob = lines[-1].removeprefix("\u2014 ").split(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    bad = tmp_path / "bad"
    bad.write_text("".join(lines[:-1]) + f"\u2014 {name} {base64.b64encode(raw).decode()}\n")
    res = runner.invoke(trust_app, ["merge", str(copies["AR"]), str(bad), "--out", str(merged)])
    assert getattr(res.exception, "reason", None) == "TRUST_SIGNATURE_INVALID"

    # A signature by a key that no root known here made is kept unchecked, and said so.
    foreign = tmp_path / "foreign"
    stranger = SigningKey.generate("puente.root/AR")  # AR's root's name, not its key
    foreign.write_bytes(Note.parse(copies["AR"].read_bytes()).sign(stranger).to_bytes())
    out = run(trust_app, "merge", str(foreign), "--out", str(merged))
    assert "kept unchecked a signature by puente.root/AR" in out
    assert "2 signatures from 1 copies" in out
