"""Proof from outside: a Go program written from docs/evidence.md §5.3 and the C2SP specs alone
(tests/interop/cosignature/main.go, standard library only, built offline) verifies the log's
signature and the witnesses' cosignature/v1 lines on Puente's cosigned checkpoints, and refuses
a cosignature whose time, text or key was changed."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from puente.evidence.cosignature import Cosignature, cosign, cosigner_vkey
from puente.evidence.keys import SigningKey
from puente.evidence.log import AuditLog, audit_log_id
from puente.evidence.note import Note

GO_SOURCE = Path(__file__).with_name("cosignature")
T0 = 1_767_225_600_000


@pytest.fixture(scope="module")
def go_verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("go") is None:
        pytest.fail("Go 1.26 or newer is a prerequisite of tests/interop")
    binary = tmp_path_factory.mktemp("go") / "cosignature"
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOPROXY": "off", "CGO_ENABLED": "0"}
    proc = subprocess.run(
        ["go", "build", "-o", str(binary), "."],
        cwd=GO_SOURCE,
        env=env,
        capture_output=True,
        text=True,
        timeout=570,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return binary


def go(binary: Path, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [str(binary)],
        input=b"".join(orjson.dumps(r) + b"\n" for r in requests),
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return [orjson.loads(line) for line in proc.stdout.splitlines()]


def test_go_verifies_puente_cosignatures(go_verifier: Path) -> None:
    node = SigningKey.generate("puente.node/MX")
    gt, hn = SigningKey.generate("puente.witness/GT"), SigningKey.generate("puente.witness/HN")
    log = AuditLog(audit_log_id("MX", 0))
    for i in range(7):
        log.append(b"record %d" % i)
    record = log.checkpoint(node, time_ms=T0)
    note = cosign(Note.parse(record.note), gt, time_s=T0 // 1000 + 5)
    note = cosign(note, hn, time_s=T0 // 1000 + 9)
    *plain, by_hn = note.signatures
    c = Cosignature.from_line(by_hn)
    assert c is not None
    moved = Note(
        note.text, (*plain, Cosignature(c.name, c.key_hash, c.time_s + 1, c.signature).line())
    )
    other_text = Note(note.text.replace("\n7\n", "\n8\n"), note.signatures)
    stranger = SigningKey.generate("puente.witness/GT")  # same name, another key
    witnesses = [cosigner_vkey(gt.public), cosigner_vkey(hn.public)]

    def ask(n: Note, keys: list[str]) -> dict[str, Any]:
        data = base64.b64encode(n.to_bytes()).decode()
        return {"note": data, "log": node.public.vkey, "witnesses": keys}

    good, shifted, altered, unknown = go(
        go_verifier,
        [
            ask(note, witnesses),
            ask(moved, witnesses),
            ask(other_text, witnesses),
            ask(note, [cosigner_vkey(stranger.public)]),
        ],
    )
    assert good == {
        "log_ok": True,
        "cosigned": {"puente.witness/GT": T0 // 1000 + 5, "puente.witness/HN": T0 // 1000 + 9},
    }
    assert shifted["log_ok"] and shifted["cosigned"] == {"puente.witness/GT": T0 // 1000 + 5}
    assert altered == {"log_ok": False, "cosigned": {}}
    assert unknown == {"log_ok": True, "cosigned": {}}
