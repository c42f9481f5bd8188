"""Proof from outside: a Go program written from docs/evidence.md §5.3 and the C2SP specs alone
(tests/interop/cosignature/main.go, standard library only, built offline) verifies the log's
signature and the witnesses' cosignature/v1 lines on Puente's cosigned checkpoints, and refuses
a cosignature whose time, text or key was changed."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from puente.evidence.cosignature import Cosignature, cosign, cosigner_vkey
from puente.evidence.keys import SigningKey
from puente.evidence.log import AuditLog, audit_log_id
from puente.evidence.note import Note
from tests.interop.gobuild import go_build, go_lines

GO_SOURCE = Path(__file__).with_name("cosignature")
T0 = 1_767_225_600_000


@pytest.fixture(scope="module")
def go_verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return go_build(GO_SOURCE, tmp_path_factory.mktemp("go"), needs="Go 1.26 or newer")


def go(binary: Path, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return go_lines(binary, requests)


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
