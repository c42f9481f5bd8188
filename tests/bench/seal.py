"""Sealing benchmark: per-delivery seal and open of 1 KiB payloads (HPKE base mode,
DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305), against baselines in the same run.

    .venv/bin/python -m tests.bench.seal [--count 2000] [--runs 5] [--per-batch 1,10,50]

Rates are per core (one thread) from the process's CPU time, median of the runs (the machine is
shared and noisy; CPU time leaves out waiting for a core). Rows:

- baselines on the same 1 KiB: an Ed25519 signature (what per-delivery mode already costs per
  delivery), ChaCha20-Poly1305 alone (the symmetric part), one X25519 key agreement, and
  ``DeliverySigner.sign`` (statement encoding + Ed25519: today's whole per-delivery evidence);
- ``seal_delivery`` / ``open_delivery`` (kind 0x01: one HPKE seal per delivery) and
  ``seal_notice`` / ``open_notice`` (envelope, info, HPKE; open includes the binding checks);
- batch-sealed deliveries (kind 0x04), per delivery, for batches of ``--per-batch`` deliveries
  to one recipient: a ``BatchSealer`` per batch (one HPKE seal of the data key) and its
  ``seal`` per delivery; ``open_delivery`` of each record of a batch with a key ring that has
  opened none of them before (one HPKE open per batch, then the memoised data key);
- HPKE alone (no envelope, info or digests) with ChaCha20-Poly1305 and with AES-128-GCM, the
  AEAD not chosen, for the record.
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from puente.codec.registry import Registry
from puente.evidence.delivery import DeliverySigner
from puente.evidence.enckeys import EncryptionKey, KeyRing
from puente.evidence.seal import (
    BatchSealer,
    open_delivery,
    open_notice,
    seal_delivery,
    seal_notice,
)
from puente.resources import project_root
from tests.bench.evidence import cpu_rate
from tests.unit.evidence.conftest import make_world

KIB = 1024
NOTICE_ID = "8a0c3f52-3c1e-4d8e-9f6a-0b6f3e2d1c40"
DELIVERY_ID = "1f5e2b7c-9d3a-4c61-8e0f-7a2b5c4d3e21"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=2000, help="operations per run")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--per-batch", default="1,10,50", help="deliveries per (batch, recipient), kind 0x04"
    )
    args = ap.parse_args()
    n, runs = args.count, args.runs
    per_batch = [int(x) for x in args.per_batch.split(",")]
    load_before = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load {load_before[0]:.1f} (1 min), "
        f"{load_before[1]:.1f} (5 min)"
    )
    print(f"costs: CPU microseconds per operation, one core, median of {runs} runs of {n}\n")

    payload = b"\xc3\x01" + os.urandom(KIB - 2)
    fp = payload[2:10]
    gt = EncryptionKey.generate("puente.member/GT")
    node = EncryptionKey.generate("puente.node/MX")
    gt_ring, node_ring = KeyRing("member:GT", (gt,)), KeyRing("node:MX", (node,))
    binding = {"notice_id": NOTICE_ID, "recipient": "GT", "delivery_id": DELIVERY_ID}

    def seal_d() -> bytes:
        return seal_delivery(payload, to=gt.public, **binding).envelope

    def seal_n() -> bytes:
        return seal_notice(payload, to=node.public, origin="MX").envelope

    sealed_d, sealed_n = seal_d(), seal_n()

    ed = Ed25519PrivateKey.generate()
    chacha, nonce = ChaCha20Poly1305(os.urandom(32)), os.urandom(12)
    x_a, x_b = X25519PrivateKey.generate(), X25519PrivateKey.generate().public_key()
    world = make_world(Registry.load((project_root() or Path.cwd()) / "schemas"))
    signer = DeliverySigner(world.service, world.registry)
    statement = world.statement(payload)
    chacha_suite = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)
    chacha_ct = chacha_suite.encrypt(payload, gt.public.crypto(), b"info")
    aes = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_128_GCM)
    aes_ct = aes.encrypt(payload, gt.public.crypto(), b"info")

    def each(op: Callable[[], object]) -> Callable[[], None]:
        def once() -> None:
            for _ in range(n):
                op()

        return once

    rows: list[tuple[str, Callable[[], object]]] = [
        ("baseline: Ed25519 sign, 1 KiB", lambda: ed.sign(payload)),
        (
            "baseline: ChaCha20-Poly1305 encrypt, 1 KiB",
            lambda: chacha.encrypt(nonce, payload, None),
        ),
        ("baseline: X25519 key agreement", lambda: x_a.exchange(x_b)),
        ("baseline: DeliverySigner.sign (per-delivery)", lambda: signer.sign(statement, payload)),
        ("seal_delivery, 1 KiB", seal_d),
        (
            "open_delivery, 1 KiB",
            lambda: open_delivery(sealed_d, keys=gt_ring, payload_fingerprint=fp, **binding),
        ),
        ("seal_notice, 1 KiB", seal_n),
        ("open_notice, 1 KiB", lambda: open_notice(sealed_n, keys=node_ring, origin="MX")),
        (
            "HPKE alone, ChaCha20-Poly1305: seal, 1 KiB",
            lambda: chacha_suite.encrypt(payload, gt.public.crypto(), b"info"),
        ),
        (
            "HPKE alone, ChaCha20-Poly1305: open, 1 KiB",
            lambda: chacha_suite.decrypt(chacha_ct, gt.crypto(), b"info"),
        ),
        (
            "HPKE alone, AES-128-GCM: seal, 1 KiB",
            lambda: aes.encrypt(payload, gt.public.crypto(), b"info"),
        ),
        ("HPKE alone, AES-128-GCM: open, 1 KiB", lambda: aes.decrypt(aes_ct, gt.crypto(), b"info")),
    ]
    # CPU seconds per operation: the inverse of the median rate (odd runs: the median cost).
    results = [(name, 1 / cpu_rate(runs, n, each(op))) for name, op in rows]
    for per in per_batch:
        batches = max(1, n // per)
        results.append(
            (
                f"batch seal, 1 KiB, {per}/batch",
                1 / cpu_rate(runs, batches * per, batch_seal(payload, gt, batches, per)),
            )
        )
        records = [batch_seal(payload, gt, 1, per)() for _ in range(batches)]
        results.append(
            (
                f"batch open, 1 KiB, {per}/batch",
                1 / cpu_rate(runs, batches * per, batch_open(records, gt, fp)),
            )
        )
    ed_cost = results[0][1]
    sign_cost = results[3][1]
    print(f"{'what':46} {'us/op':>9} {'ops/s':>10} {'vs Ed25519':>11} {'vs sign':>8}")
    for name, cost in results:
        print(
            f"{name:46} {cost * 1e6:>9.1f} {1 / cost:>10,.0f} {cost / ed_cost:>10.2f}x "
            f"{cost / sign_cost:>7.2f}x"
        )
    seal_cost, open_cost = results[4][1], results[5][1]
    print(
        f"\nper delivery, kind 0x01: seal {seal_cost * 1e6:.0f} us + open {open_cost * 1e6:.0f} "
        f"us; a seal costs {seal_cost / sign_cost:.2f}x a per-delivery signature "
        "(DeliverySigner.sign)"
    )
    batch_rows = results[len(rows) :]
    for per, (seal_row, open_row) in zip(per_batch, pairwise(batch_rows), strict=True):
        print(
            f"per delivery, kind 0x04, {per}/batch: seal {seal_row[1] * 1e6:.0f} us "
            f"({seal_row[1] / seal_cost:.2f}x kind 0x01) + open {open_row[1] * 1e6:.0f} us "
            f"({open_row[1] / open_cost:.2f}x kind 0x01)"
        )
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.1f} (1 min), {load_after[1]:.1f} (5 min)")


def pairwise(rows: list[tuple[str, float]]) -> list[tuple[tuple[str, float], tuple[str, float]]]:
    """(seal row, open row) pairs, as appended per batch size."""
    return list(zip(rows[::2], rows[1::2], strict=True))


def batch_seal(
    payload: bytes, key: EncryptionKey, batches: int, per: int
) -> Callable[[], list[bytes]]:
    """``batches`` batches of ``per`` deliveries of ``payload`` to ``key``'s holder (GT)."""

    def once() -> list[bytes]:
        out = []
        for b in range(batches):
            sealer = BatchSealer(key.public, "GT")
            for i in range(per):
                sealed = sealer.seal(payload, notice_id=f"n-{b}-{i}", delivery_id=f"d-{b}-{i}")
                out.append(sealed.envelope)
        return out

    return once


def batch_open(records: list[list[bytes]], key: EncryptionKey, fp: bytes) -> Callable[[], None]:
    """Open every record of each batch (as :func:`batch_seal` made them) with a fresh ring."""

    def once() -> None:
        for batch in records:
            ring = KeyRing("member:GT", (key,))
            for i, env in enumerate(batch):
                binding = {"notice_id": f"n-0-{i}", "delivery_id": f"d-0-{i}"}
                open_delivery(env, keys=ring, recipient="GT", payload_fingerprint=fp, **binding)

    return once


if __name__ == "__main__":
    main()
