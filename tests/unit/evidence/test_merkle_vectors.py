"""Every RFC 6962 vector of transparency-dev/merkle (vendored in tests/fixtures/rfc6962): accept all
``wantErr: false``, reject all ``wantErr: true``."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from puente.evidence.errors import ProofError
from puente.evidence.merkle import verify_consistency, verify_inclusion

VECTORS = Path(__file__).resolve().parents[2] / "fixtures" / "rfc6962"


def _files(kind: str) -> list[Path]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    return files


def _b64(s: str) -> bytes:
    return base64.b64decode(s)


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


INCLUSION = _files("inclusion")
CONSISTENCY = _files("consistency")


def test_vectors_are_present() -> None:
    # A missing folder must fail loudly, never pass as "zero vectors checked".
    assert len(INCLUSION) >= 80
    assert len(CONSISTENCY) >= 50
    kinds = {_load(p)["wantErr"] for p in INCLUSION + CONSISTENCY}
    assert kinds == {True, False}


@pytest.mark.parametrize("path", INCLUSION, ids=lambda p: str(p.relative_to(VECTORS)))
def test_inclusion_vector(path: Path) -> None:
    v = _load(path)
    args = (
        v["leafIdx"],
        v["treeSize"],
        _b64(v["leafHash"]),
        [_b64(h) for h in v["proof"] or []],
        _b64(v["root"]),
    )
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY, ids=lambda p: str(p.relative_to(VECTORS)))
def test_consistency_vector(path: Path) -> None:
    v = _load(path)
    args = (
        v["size1"],
        v["size2"],
        [_b64(h) for h in v["proof"] or []],
        _b64(v["root1"]),
        _b64(v["root2"]),
    )
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)
