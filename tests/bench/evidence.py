"""Evidence benchmark: signing and verifying deliveries in both modes, and the auditor's rate
from an export file, against hashing alone.

    .venv/bin/python -m tests.bench.evidence [--records 400000] [--logs 4] [--batch 1000]
                                             [--deliveries 2000] [--runs 5]

Rates are per core (one thread) from the process's CPU time, median of the runs: the machines
are shared and noisy, and CPU time leaves out waiting for a core. Rows:

- raw primitives on 1 KiB: Ed25519 sign, Ed25519 verify, SHA-256 (the ceiling);
- per-delivery mode: DeliverySigner.sign (statement encoding + Ed25519) and
  Verifier.verify_delivery (decode, payload digest, Ed25519 verify, trust check);
- batch mode: DeliveryBatch.add + seal (one Ed25519 signature per batch) per delivery, and
  Verifier.verify_delivery of batch deliveries (the batch note verified once, then cached;
  per delivery an inclusion proof);
- the auditor on an export file in batch mode (records verified by recomputing each log's tree
  against its signed checkpoints), against reading the same file and only hashing the records
  (leaf hashes), and against full RFC 6962 tree hashing of the records held in memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from puente.codec.registry import Registry
from puente.evidence.audit.auditor import AuditOptions, Auditor
from puente.evidence.audit.source import ExportFile, ExportWriter, RecordBatch
from puente.evidence.delivery import DeliveryBatch, DeliverySigner
from puente.evidence.log import AuditLog, audit_log_id
from puente.evidence.merkle.compact import CompactRange
from puente.evidence.records import AuditDecision
from puente.evidence.verify import Verifier
from puente.resources import project_root
from puente.topics import AUDIT, CHECKPOINTS, TRUST, Naming
from tests.unit.evidence.conftest import T0, World, audit_record, make_world

KIB = 1024


def cpu_rate(runs: int, count: int, once: Callable[[], object]) -> float:
    """Median operations per CPU second over ``runs`` (after one warm-up run)."""
    once()
    rates = []
    for _ in range(runs):
        t = time.process_time()
        once()
        rates.append(count / max(time.process_time() - t, 1e-9))
    return statistics.median(rates)


def payload_of(n: int) -> bytes:
    body = (b"notice %d " % n) * 200
    return b"\xc3\x01" + bytes(8) + body[: KIB - 10]


def bench_primitives(runs: int) -> list[tuple[str, float]]:
    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    msg = os.urandom(KIB)
    sig = key.sign(msg)
    n = 2000
    return [
        ("Ed25519 sign, 1 KiB", cpu_rate(runs, n, lambda: [key.sign(msg) for _ in range(n)])),
        (
            "Ed25519 verify, 1 KiB",
            cpu_rate(runs, n, lambda: [pub.verify(sig, msg) for _ in range(n)]),
        ),
        (
            "SHA-256, 1 KiB",
            cpu_rate(runs, 50 * n, lambda: [sha256(msg).digest() for _ in range(50 * n)]),
        ),
    ]


def bench_deliveries(
    world: World, count: int, batch_size: int, runs: int
) -> list[tuple[str, float]]:
    reg = world.registry
    payloads = [payload_of(i) for i in range(count)]
    statements = [world.statement(p, n=i) for i, p in enumerate(payloads)]
    signer = DeliverySigner(world.service, reg)
    pairs = list(zip(statements, payloads, strict=True))
    singles = [signer.sign(s, p).encode(reg) for s, p in zip(statements, payloads, strict=True)]

    def batch_sign() -> list[bytes]:
        out: list[bytes] = []
        for start in range(0, count, batch_size):
            b = DeliveryBatch(reg, f"MX/0/{start}")
            for s, p in zip(
                statements[start : start + batch_size],
                payloads[start : start + batch_size],
                strict=True,
            ):
                b.add(s, p)
            out += [d.encode(reg) for d in b.seal(world.service, time_ms=T0 + 10_000)]
        return out

    batched = batch_sign()

    def verify_all(items: list[bytes]) -> None:
        v = Verifier(trust_list=world.trust_list, registry=reg)  # cold cache each run
        for d in items:
            v.verify_delivery(d, recipient="GT")  # world.statement's recipient

    return [
        (
            "per-delivery: sign (Ed25519 each)",
            cpu_rate(runs, count, lambda: [signer.sign(s, p).encode(reg) for s, p in pairs]),
        ),
        ("per-delivery: verify", cpu_rate(runs, count, lambda: verify_all(singles))),
        (f"batch of {batch_size}: sign, per delivery", cpu_rate(runs, count, batch_sign)),
        (
            f"batch of {batch_size}: verify, per delivery",
            cpu_rate(runs, count, lambda: verify_all(batched)),
        ),
    ]


def write_export(world: World, path: Path, records: int, logs: int, batch: int) -> int:
    """A real log: ``logs`` partitions of MX's audit topic, a checkpoint every ``batch``."""
    reg = world.registry
    naming = Naming()
    per_log = records // logs
    decisions = [
        AuditDecision.DELIVERED,
        AuditDecision.TRANSFORMED,
        AuditDecision.WITHHELD,
        AuditDecision.REJECTED,
    ]
    size = 0
    with path.open("wb") as fh, ExportWriter(fh) as w:
        w.write_batch(RecordBatch(naming.topic(TRUST), 0, [0], [T0], [None], [world.trust_bytes]))
        cps: list[bytes] = []
        parts: list[tuple[int, list[bytes]]] = []
        for p in range(logs):
            log = AuditLog(audit_log_id("MX", p))
            values = []
            for n in range(per_log):
                _, data = log.append_record(reg, audit_record(n, decision=decisions[n % 4]))
                values.append(data)
                size += len(data)
                if (n + 1) % batch == 0 or n == per_log - 1:
                    cps.append(log.checkpoint(world.service, time_ms=T0 + n).encode(reg))
            parts.append((p, values))
        w.write_batch(
            RecordBatch(
                naming.topic(CHECKPOINTS),
                0,
                list(range(len(cps))),
                [T0] * len(cps),
                [None] * len(cps),
                cps,
            )
        )
        for p, values in parts:
            w.write_batch(
                RecordBatch(
                    naming.topic(AUDIT, "MX"),
                    p,
                    list(range(len(values))),
                    [T0] * len(values),
                    [None] * len(values),
                    values,
                )
            )
    return size // max(records, 1)


def bench_auditor(
    world: World, records: int, logs: int, batch: int, runs: int
) -> tuple[list[tuple[str, float]], int]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.pxp"
        t = time.perf_counter()
        avg = write_export(world, path, records, logs, batch)
        print(
            f"(export: {records:,} records of {avg} B, {path.stat().st_size / 1e6:.1f} MB, "
            f"{time.perf_counter() - t:.0f} s)"
        )

        def audit() -> None:
            report = Auditor(
                registry=world.registry,
                anchors=[world.root.public],
                options=AuditOptions(now=T0 + 1),
            ).run(ExportFile(path))
            assert report.ok and report.records == records, report.to_text()

        def read_and_hash() -> None:
            for b in ExportFile(path).batches(AUDIT):
                for v in b.values:
                    if v is not None:  # (an audit record always has a value)
                        sha256(b"\x00" + v).digest()

        values = [v for b in ExportFile(path).batches(AUDIT) for v in b.values if v is not None]

        def tree_hash() -> None:
            CompactRange().extend_data(values)

        rows = [
            ("auditor from file, batch mode", cpu_rate(runs, records, audit)),
            ("  read file + leaf hashes only", cpu_rate(runs, records, read_and_hash)),
            ("  RFC 6962 tree hashing, in memory", cpu_rate(runs, records, tree_hash)),
        ]
        return rows, avg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=400_000)
    ap.add_argument("--logs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000, help="records per checkpoint")
    ap.add_argument("--deliveries", type=int, default=2000)
    ap.add_argument("--delivery-batch", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    root = project_root() or Path.cwd()
    world = make_world(Registry.load(root / "schemas"))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}"
    )
    print(f"rates: operations per CPU second, one core, median of {args.runs} runs\n")
    prim = bench_primitives(args.runs)
    deliv = bench_deliveries(world, args.deliveries, args.delivery_batch, args.runs)
    aud, avg = bench_auditor(world, args.records, args.logs, args.batch, args.runs)
    sha = prim[2][1]
    tree = aud[2][1]
    print(f"\n{'what':48} {'per second':>14}  {'vs SHA-256 1 KiB':>16}")
    for name, rate in prim + deliv:
        print(f"{name:48} {rate:>14,.0f}  {rate / sha:>15.3f}x")
    print(
        f"\n{f'auditor ({avg} B records, checkpoint every {args.batch})':48} "
        f"{'records/s':>14}  {'vs tree hashing':>16}"
    )
    for name, rate in aud:
        print(f"{name:48} {rate:>14,.0f}  {rate / tree:>15.3f}x")
    target = 200_000
    print(
        f"\nauditor target >= {target:,} records/s: {'met' if aud[0][1] >= target else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
