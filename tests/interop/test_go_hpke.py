"""Proof from outside: Go's standard library (``crypto/hpke``, Go 1.26) opens Puente's sealed
deliveries (kinds 0x01 and 0x04) and notices, and Puente opens what Go seals, from
docs/evidence.md §9 alone.

The Go program (tests/interop/hpke/main.go, standard library only, built offline) shares no code
with Puente: it parses the key files' text, computes the key id, splits the envelope and builds
HPKE's ``info`` (and kind 0x04's AAD) as the documentation says, then calls ``hpke.Open`` /
``hpke.Seal`` (and AES-256-GCM from ``crypto/cipher`` for kind 0x04's payloads).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from puente.evidence.keystore import KeyStore
from puente.evidence.seal import (
    BatchSealer,
    Kind,
    open_delivery,
    open_notice,
    seal_delivery,
    seal_notice,
)
from tests.interop.gobuild import go_build, go_lines

GO_SOURCE = Path(__file__).with_name("hpke")
T0 = 1_767_225_600_000


@pytest.fixture(scope="module")
def go_hpke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return go_build(
        GO_SOURCE, tmp_path_factory.mktemp("go"), needs="Go 1.26 or newer (crypto/hpke)"
    )


def go(binary: Path, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answers = go_lines(binary, requests)
    assert len(answers) == len(requests)
    return answers


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def payload(n: int, size: int) -> bytes:
    return b"\xc3\x01" + bytes([n] * 8) + os.urandom(size)


def test_go_opens_sealed_deliveries_and_notices(go_hpke: Path, tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    members = {
        cc: store.generate_encryption(f"member:{cc}", valid_from=T0)[0] for cc in ["GT", "HN", "CR"]
    }
    node = store.generate_encryption("node:MX", valid_from=T0)[0]
    # What Go is given: the key file's text, as the holder keeps it (0600).
    skey = {
        k.key_id: next(store.root.glob(f"*-{k.key_id}.skey")).read_text()
        for k in [*members.values(), node]
    }
    requests: list[dict[str, Any]] = []
    expected: list[bytes] = []
    for i, (cc, key) in enumerate(members.items()):
        batch = BatchSealer(key.public, cc)  # kind 0x04: one data key for the three below
        for size in (0, 1014, 65_536):
            plain = payload(i, size)
            binding = {
                "notice_id": f"0000000{i}-1111-4111-8111-{size:012d}",
                "recipient": cc,
                "delivery_id": f"d{i}-{size}",
            }
            ids = {k: binding[k] for k in ("notice_id", "delivery_id")}
            for sealed in (
                seal_delivery(plain, to=key.public, **binding),
                batch.seal(plain, **ids),
            ):
                requests.append(
                    {
                        "op": "open-delivery",
                        "key": skey[key.key_id],
                        "envelope": b64(sealed.envelope),
                        "fingerprint": plain[2:10].hex(),
                        **binding,
                    }
                )
                expected.append(plain)
    for size in (10, 1024, 100_000):
        plain = payload(9, size)
        sealed = seal_notice(plain, to=node.public, origin="MX")
        requests.append(
            {
                "op": "open-notice",
                "key": skey[node.key_id],
                "envelope": b64(sealed.envelope),
                "origin": "MX",
            }
        )
        expected.append(plain)
    answers = go(go_hpke, requests)
    for answer, plain in zip(answers, expected, strict=True):
        assert answer == {"ok": True, "plaintext": b64(plain)}
    # Go checks the binding too: another delivery id, notice id or fingerprint, another origin,
    # another recipient's key; for both delivery kinds (requests 0 and 1).
    assert [base64.b64decode(r["envelope"])[3] for r in requests[:2]] == [1, 4]
    wrong = [
        *({**requests[i], "delivery_id": "d0-other"} for i in (0, 1)),
        *({**requests[i], "notice_id": "n-other"} for i in (0, 1)),
        *({**requests[i], "fingerprint": "ff" * 8} for i in (0, 1)),
        *({**requests[i], "key": skey[members["HN"].key_id]} for i in (0, 1)),
        {**requests[-1], "origin": "GT"},
    ]
    for i, answer in enumerate(go(go_hpke, wrong)):
        assert answer["ok"] is False and answer["error"], (i, answer)


def test_puente_opens_what_go_seals(go_hpke: Path, tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    gt = store.generate_encryption("member:GT", valid_from=T0)[0]
    node = store.generate_encryption("node:MX", valid_from=T0)[0]
    plain = payload(3, 1014)
    binding = {"notice_id": "n-1", "recipient": "GT", "delivery_id": "d-1"}
    delivery, notice = go(
        go_hpke,
        [
            {
                "op": "seal-delivery",
                "key": gt.public.ekey,
                "plaintext": b64(plain),
                "fingerprint": plain[2:10].hex(),
                **binding,
            },
            {"op": "seal-notice", "key": node.public.ekey, "plaintext": b64(plain), "origin": "MX"},
        ],
    )
    assert delivery["ok"] and notice["ok"]
    opened = open_delivery(
        base64.b64decode(delivery["envelope"]),
        keys=store.keyring("member:GT"),
        payload_fingerprint=plain[2:10],
        **binding,
    )
    assert opened.plaintext == plain
    got = open_notice(
        base64.b64decode(notice["envelope"]), keys=store.keyring("node:MX"), origin="MX"
    )
    assert got.plaintext == plain


def test_puente_opens_a_batch_go_seals(go_hpke: Path, tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    gt = store.generate_encryption("member:GT", valid_from=T0)[0]
    plains = [payload(i, 1014) for i in range(3)]
    ids = [{"notice_id": f"n-{i}", "delivery_id": f"d-{i}"} for i in range(3)]
    (answer,) = go(
        go_hpke,
        [
            {
                "op": "seal-batch",
                "key": gt.public.ekey,
                "recipient": "GT",
                "deliveries": [
                    {"plaintext": b64(p), "fingerprint": p[2:10].hex(), **b}
                    for p, b in zip(plains, ids, strict=True)
                ],
            }
        ],
    )
    assert answer["ok"]
    envelopes = [base64.b64decode(e) for e in answer["envelopes"]]
    assert {e[3] for e in envelopes} == {Kind.BATCH_DELIVERY} and len(
        {e[:92] for e in envelopes}
    ) == 1
    keys = store.keyring("member:GT")
    for env, plain, b in zip(envelopes, plains, ids, strict=True):
        opened = open_delivery(env, keys=keys, recipient="GT", payload_fingerprint=plain[2:10], **b)
        assert opened.plaintext == plain
    assert len(keys.opened) == 1
