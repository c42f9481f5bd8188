"""``puente keys`` and ``puente audit`` end to end on files: keys with owner-only files, a
signed trust list, rotation and revocation, an audit that passes, one that fails with a report,
resuming from a state file, and a delivery checked by openssl from the pieces the CLI writes."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from puente.app.commands.audit import audit_app
from puente.app.commands.keys import keys_app
from puente.evidence.delivery import DeliverySigner
from puente.evidence.keys import read_private_key
from puente.evidence.keystore import KeyStore
from puente.evidence.trust import TrustList, Usage

from .auditlog import build
from .conftest import T0, World

runner = CliRunner()


def ok(app: typer.Typer, *args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def test_keys_and_trust_list(tmp_path: Path) -> None:
    d = str(tmp_path / "keys")
    ok(keys_app, "generate", "--for", "root", "--dir", d)
    out = ok(keys_app, "generate", "--for", "service", "--dir", d)
    assert "PRIVATE" not in out  # the secret is never printed
    # A member generates its key on its own machine and hands over the verifier key only.
    ok(keys_app, "generate", "--for", "MX", "--dir", str(tmp_path / "mx"))
    (mx_vkey,) = (tmp_path / "mx").glob("*.vkey")
    ok(keys_app, "import", str(mx_vkey), "--for", "MX", "--dir", d)
    store = KeyStore(tmp_path / "keys")
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    for skey in store.root.glob("*.skey"):
        assert stat.S_IMODE(skey.stat().st_mode) == 0o600
    assert len(list(store.root.glob("member-MX-*.skey"))) == 0  # not ours to hold
    ok(keys_app, "trust-list", "build", "--dir", d, "--expires-in", "10d")
    (root_skey,) = store.root.glob("operator-root-*.skey")
    ok(keys_app, "trust-list", "sign", "--key", str(root_skey), "--dir", d)
    (root_vkey,) = store.root.glob("operator-root-*.vkey")
    out = ok(keys_app, "trust-list", "show", "--anchor", str(root_vkey), "--dir", d)
    assert "valid: signed by" in out
    tl = TrustList.open(
        (store.root / "trust-list.note").read_bytes(),
        [read_private_key(root_skey).public],
        now=TrustList.from_text((store.root / "trust-list.txt").read_text()).issued_at,
    )
    assert {e.holder for e in tl.entries} == {"service:policy", "member:MX"}
    old = tl.entries_of("service:policy")[0]

    # Rotation: a new key, the old one ends after the overlap; the next list has serial 2.
    ok(keys_app, "rotate", "--for", "service", "--overlap", "10m", "--dir", d)
    ok(keys_app, "revoke", old.key_id[:8], "--dir", d, "--since", "2030-01-01T00:00:00Z")
    ok(keys_app, "trust-list", "build", "--dir", d)
    ok(keys_app, "trust-list", "sign", "--key", str(root_skey), "--dir", d)
    tl2 = TrustList.from_text((store.root / "trust-list.txt").read_text())
    assert tl2.serial == 2
    e_old = tl2.entry(old.key_id)
    assert e_old.valid_until is not None and e_old.revoked_since is not None
    current = store.current("service:policy", usage=Usage.DELIVERY, at=tl2.issued_at + 1)
    assert current.key_id != old.key_id
    shown = runner.invoke(keys_app, ["trust-list", "show", "--anchor", str(mx_vkey), "--dir", d])
    assert shown.exit_code == 1  # a member key is no trust anchor
    listing = ok(keys_app, "list", "--dir", d)
    assert old.key_id in listing


def test_encryption_keys_and_the_pinned_floor(tmp_path: Path) -> None:
    d = str(tmp_path / "keys")
    ok(keys_app, "generate", "--for", "root", "--dir", d)
    out = ok(keys_app, "generate", "--for", "node:MX", "--usage", "encryption", "--dir", d)
    assert "encryption puente.node/MX+" in out and "PRIVATE" not in out
    # GT generates its encryption key at home and hands over the public part only.
    ok(keys_app, "generate", "--for", "GT", "--usage", "encryption", "--dir", str(tmp_path / "gt"))
    (gt_ekey,) = (tmp_path / "gt").glob("*.ekey")
    ok(keys_app, "import", str(gt_ekey), "--for", "GT", "--usage", "encryption", "--dir", d)
    res = runner.invoke(keys_app, ["generate", "--for", "GT", "--usage", "encryption,receipt"])
    assert res.exit_code != 0
    floor = "ab" * 32
    ok(keys_app, "trust-list", "build", "--floor", floor, "--dir", d)
    store = KeyStore(tmp_path / "keys")
    (root_skey,) = store.root.glob("operator-root-*.skey")
    ok(keys_app, "trust-list", "sign", "--key", str(root_skey), "--dir", d)
    out = ok(keys_app, "trust-list", "show", "--dir", d)
    assert f"regionalfloorpinned:{floor}" in "".join(out.split())  # rich wraps lines
    tl = TrustList.from_text((store.root / "trust-list.txt").read_text())
    assert {e.holder for e in tl.encryption_entries} == {"node:MX", "member:GT"}
    assert all(e.key_id in out for e in tl.encryption_entries)
    old = tl.encryption_key("node:MX", at=tl.issued_at)
    ok(keys_app, "rotate", "--for", "node:MX", "--usage", "encryption", "--dir", d)
    ok(keys_app, "trust-list", "build", "--dir", d)  # the floor carries over
    tl2 = TrustList.from_text((store.root / "trust-list.txt").read_text())
    assert tl2.serial == 2 and tl2.floor_digest == bytes.fromhex(floor)
    assert len(tl2.encryption_entries) == 3
    assert tl2.encryption_entry(old.key_id).valid_until is not None
    assert len(store.keyring("node:MX").keys) == 2


def test_audit_verify_export_dump_and_state(world: World, tmp_path: Path) -> None:
    exp, _ = build(world.registry, world.service, world.trust_bytes, records=120, batch=16)
    src = exp.write(tmp_path / "x.pxp")
    (tmp_path / "root.vkey").write_text(world.root.public.vkey)
    anchor = ["--anchor", str(tmp_path / "root.vkey"), "--now", str(T0 + 1)]
    out = ok(
        audit_app,
        "verify",
        str(src),
        *anchor,
        "--json",
        str(tmp_path / "r.json"),
        "--text",
        str(tmp_path / "r.txt"),
        "--state-out",
        str(tmp_path / "state.json"),
        "--no-progress",
    )
    assert "verdict: VERIFIED" in out
    assert orjson.loads((tmp_path / "r.json").read_bytes())["ok"] is True
    state = orjson.loads((tmp_path / "state.json").read_bytes())
    assert state["logs"]["puente.audit/MX/0"]["size"] == 120
    ok(audit_app, "export", str(src), "--out", str(tmp_path / "copy.pxp"))
    assert (tmp_path / "copy.pxp").read_bytes() == src.read_bytes()
    lines = ok(audit_app, "dump", str(src)).splitlines()
    first = orjson.loads(lines[0])
    assert first["record"]["leaf_index"] == 0 and len(lines) == 120
    # Tamper, verify again: exit 1 and the anomaly named with its position.
    part = exp.partition()
    del part[50]
    bad = exp.write(tmp_path / "bad.pxp")
    res = runner.invoke(
        audit_app,
        ["verify", str(bad), *anchor, "--json", str(tmp_path / "bad.json"), "--no-progress"],
    )
    assert res.exit_code == 1
    assert "RECORD_REMOVED at puente.audit/MX/0, leaf 50" in res.output
    doc = orjson.loads((tmp_path / "bad.json").read_bytes())
    assert doc["anomalies"][0]["index"] == 50
    # From the trusted state at 120, only later records would be checked: the damage at 50 is
    # before the start, so it is not re-audited.
    res = runner.invoke(
        audit_app,
        [
            "verify",
            str(bad),
            *anchor,
            "--from-state",
            str(tmp_path / "state.json"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_delivery_explained_for_openssl(world: World, tmp_path: Path) -> None:
    payload = world.payload(1)
    d = DeliverySigner(world.service, world.registry).sign(world.statement(payload), payload)
    (tmp_path / "d.bin").write_bytes(d.encode(world.registry))
    (tmp_path / "tl.note").write_bytes(world.trust_bytes)
    (tmp_path / "root.vkey").write_text(world.root.public.vkey)
    out = ok(
        audit_app,
        "delivery",
        str(tmp_path / "d.bin"),
        "--trust-list",
        str(tmp_path / "tl.note"),
        "--anchor",
        str(tmp_path / "root.vkey"),
        "--recipient",
        "GT",
        "--explain",
        str(tmp_path / "pieces"),
    )
    assert "VERIFIED" in out
    res = subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "pub.pem",
            "-rawin",
            "-in",
            "signed.bin",
            "-sigfile",
            "signature.bin",
        ],
        cwd=tmp_path / "pieces",
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0 and "Signature Verified Successfully" in res.stdout
