"""Witness benchmark: what a witness costs per checkpoint, how long a checkpoint takes to reach a
quorum of twenty states' witnesses on the broker, and what finality costs a subscriber.

    .venv/bin/python -m tests.bench.witness [--checkpoints 40] [--interval 0.5] [--runs 5]
        [--linger 0.25] [--baseline REV]

1. witness CPU per checkpoint, pure (median of the runs, CPU time): verify the log's signature,
   decide (consistency proof from the cosigned checkpoint), cosign — against verifying the
   log's signature alone (what any reader of the checkpoint does: the baseline);
2. on the real broker, twenty witnesses (one per member, each its own principal, all in this
   process as the embedded default runs them): from a checkpoint's publication to the quorum
   (10 of the 19 other states, the default) and to all 19, as a member reads the cosignatures
   (p50, p99); the process's CPU per checkpoint and witness over that run, the witnesses'
   transactions per checkpoint, and the process's CPU while the twenty only poll (idle);
   ``--baseline REV`` runs this part again as it was at git revision REV (a temporary
   worktree), in the same invocation, for a before/after on the same machine and load;
3. a subscriber's finality: verifying deliveries (per-delivery signatures) and, with finality,
   also counting every cosignature of every checkpoint (19 per checkpoint) and looking each
   delivery up — against verifying alone, for 10 and 100 deliveries per checkpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from puente.codec.registry import Registry
from puente.config import Settings
from puente.evidence.cosignature import cosign
from puente.evidence.delivery import DeliverySigner
from puente.evidence.finality import FinalityBook, default_quorum
from puente.evidence.log import CheckpointRecord
from puente.evidence.note import Note
from puente.evidence.verify import Verifier
from puente.evidence.witness import Cosign, WitnessBook
from puente.logs import configure_logging
from puente.witness.service import WitnessConfig
from puente.witness.shared import Reads
from tests.bench.evidence import payload_of
from tests.bench.warnings import cpu_seconds
from tests.harness import kafka_harness
from tests.integration.service.support import ALL_MEMBERS, deploy
from tests.integration.witness.support import Follower, Log, running, witness
from tests.unit.evidence.conftest import World
from tests.unit.witness.federation import STATES, T0, Federation


def checkpoints(fed: Federation, n: int) -> list[CheckpointRecord]:
    log = fed.log()
    return [fed.grow(log, 100, t=T0 + 1000 + i) for i in range(n)]


def witness_cpu(fed: Federation, n: int, runs: int) -> tuple[float, float]:
    records = checkpoints(fed, n)
    key = fed.witnesses["GT"]

    def verify_only() -> None:
        v = fed.verifier()  # a new note each time: no cache helps
        for r in records:
            v.verify_checkpoint(r.note)

    def witness_all() -> None:
        v, book = fed.verifier(), WitnessBook("GT")
        for r in records:
            v.verify_checkpoint(r.note)
            d = book.observe(r.note, previous_size=r.previous_size, proof=r.consistency_proof)
            assert isinstance(d, Cosign)
            book.cosigned_now(cosign(Note.parse(d.note), key, time_s=T0 // 1000).to_bytes())

    return cpu_seconds(runs, witness_all) / n, cpu_seconds(runs, verify_only) / n


def subscriber_cost(fed: Federation, per_checkpoint: int, runs: int) -> tuple[float, float]:
    """(with finality, verify only) CPU seconds per delivery."""
    world = World(
        fed.registry,
        fed.root,
        fed.nodes["MX"],
        fed.nodes["MX"],
        fed.nodes["GT"],
        fed.trust_list(),
        b"",
    )
    signer = DeliverySigner(fed.nodes["MX"], fed.registry)
    n_cp = 4
    deliveries = []
    for i in range(per_checkpoint * n_cp):
        p = payload_of(i)
        deliveries.append(signer.sign(world.statement(p, n=i), p).encode(fed.registry))
    log = fed.log()
    cosigned: list[list[bytes]] = []
    for _ in range(n_cp):
        note = Note.parse(fed.grow(log, per_checkpoint).note)
        cosigned.append(
            [
                cosign(note, fed.witnesses[s], time_s=T0 // 1000 + 5).to_bytes()
                for s in STATES
                if s != "MX"
            ]
        )

    def verify_only() -> None:
        v = Verifier(trust_list=fed.trust_list(), registry=fed.registry)
        for d in deliveries:
            v.verify_delivery(d, recipient="GT")

    def with_finality() -> None:
        v = Verifier(trust_list=fed.trust_list(), registry=fed.registry)
        book = FinalityBook(2)
        for c in range(n_cp):
            for d in deliveries[c * per_checkpoint : (c + 1) * per_checkpoint]:
                st = v.verify_delivery(d, recipient="GT").statement
                book.finality(st.audit_log_id, st.audit_leaf_index)
            for note in cosigned[c]:
                book.add(note, v)

    total = per_checkpoint * n_cp
    return cpu_seconds(runs, with_finality) / total, cpu_seconds(runs, verify_only) / total


@dataclass
class Quorum:
    """What part 2 measured."""

    to_quorum_s: list[float]
    to_all_s: list[float]
    cpu_s: float  # process CPU per checkpoint and witness
    transactions: float  # witness transactions per checkpoint and witness
    idle_cpu_s: float  # process CPU per second while the witnesses only poll


async def to_quorum(n: int, interval_s: float, linger_s: float) -> Quorum:
    """Twenty witnesses, as ``--all`` hosts them (sharing their reads), on the real broker."""
    with kafka_harness() as kafka:
        dep = await deploy(kafka, partitions=1)
        quorum = default_quorum(ALL_MEMBERS)
        follower = Follower(dep, "HN", quorum)
        mx = Log(dep, "MX")
        sent: dict[int, int] = {}
        config, reads = WitnessConfig(linger_s=linger_s), Reads()
        witnesses = [witness(dep, s, config=config, reads=reads) for s in ALL_MEMBERS]
        async with follower.following(), running(witnesses):
            cpu0 = time.process_time()
            await asyncio.sleep(5)
            idle = (time.process_time() - cpu0) / 5
            commits0 = sum(w.commits for w in witnesses)
            cpu0 = time.process_time()
            for _ in range(n):
                r = mx.grow(10)
                sent[r.checkpoint.size] = time.monotonic_ns()
                await mx.publish(r)
                await asyncio.sleep(interval_s)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                log = follower.book.logs.get(mx.log.log_id)
                if log and all(len(log.cosigners.get(s, {})) == 19 for s in sent):
                    break
                await asyncio.sleep(0.1)
            cpu = (time.process_time() - cpu0) / (n * 19)
            transactions = (sum(w.commits for w in witnesses) - commits0) / (n * 19)
        arrivals: dict[int, list[int]] = {}
        for note, at in follower.cosignatures:
            cp = Note.parse(note).text.split("\n")
            if cp[0] == mx.log.log_id:
                arrivals.setdefault(int(cp[1]), []).append(at)
        quorum_s = [(sorted(arrivals[s])[quorum - 1] - t) / 1e9 for s, t in sent.items()]
        all_s = [(max(arrivals[s]) - t) / 1e9 for s, t in sent.items() if len(arrivals[s]) >= 19]
        return Quorum(quorum_s, all_s, cpu, transactions, idle)


def baseline(rev: str, args: argparse.Namespace) -> str:
    """This benchmark as it was at git revision ``rev``, run from a temporary worktree with
    this virtualenv (its own code on the path first); its output."""
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="puente-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        git = ["git", "-C", str(root), "worktree"]
        subprocess.run([*git, "add", "--detach", str(tree), rev], check=True, capture_output=True)
        try:
            (tree / ".cache").symlink_to((root / ".cache").resolve())
            env = dict(
                os.environ,
                PYTHONPATH=os.pathsep.join(str(tree / d) for d in ("services", "gateway", ".")),
            )
            argv = ["--checkpoints", str(args.checkpoints), "--interval", str(args.interval)]
            out = subprocess.run(
                [sys.executable, "-m", "tests.bench.witness", *argv, "--runs", str(args.runs)],
                cwd=tree,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
        finally:
            subprocess.run([*git, "remove", "--force", str(tree)], capture_output=True)
    return out.stdout + (out.stderr[-2000:] if out.returncode else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--linger", type=float, default=WitnessConfig().linger_s)
    parser.add_argument("--baseline", metavar="REV", help="also run this part as it was at REV")
    args = parser.parse_args()
    configure_logging("warning", "console")
    print(f"cores: {os.cpu_count()}; load average at start: {os.getloadavg()}")
    fed = Federation(Registry.load(Settings().schemas_dir))

    w, v = witness_cpu(fed, 200, args.runs)
    print("\n1. witness CPU per checkpoint, pure (median of runs):")
    print(f"   verify + decide + cosign   {w * 1e6:8.0f} µs")
    print(f"   verify log signature only  {v * 1e6:8.0f} µs (baseline)")
    print(f"   a witness costs {w / v:.2f}x verifying the checkpoint")

    print("\n3. subscriber: finality checks vs verifying alone (per delivery, CPU):")
    for per in (10, 100):
        f, b = subscriber_cost(fed, per, args.runs)
        print(
            f"   {per:3} deliveries/checkpoint: {f * 1e6:7.0f} µs vs {b * 1e6:7.0f} µs "
            f"= {f / b:.2f}x"
        )

    m = asyncio.run(to_quorum(args.checkpoints, args.interval, args.linger))
    q, a = m.to_quorum_s, m.to_all_s
    qq = statistics.quantiles(q, n=100, method="inclusive")
    aq = statistics.quantiles(a, n=100, method="inclusive")
    print(
        f"\n2. on the broker: 20 witnesses, {args.checkpoints} checkpoints every {args.interval} s"
        f" (linger {args.linger} s)"
    )
    print(
        f"   to quorum ({default_quorum(ALL_MEMBERS)} of 19): p50 {statistics.median(q):.3f} s, "
        f"p99 {qq[98]:.3f} s, max {max(q):.3f} s"
    )
    print(f"   to all 19:          p50 {statistics.median(a):.3f} s, p99 {aq[98]:.3f} s")
    print(
        f"   process CPU per checkpoint and witness: {m.cpu_s * 1e3:.2f} ms (all 20 witnesses, the"
    )
    print("   member reading the cosignatures and the publisher in one process)")
    print(f"   witness transactions per checkpoint and witness: {m.transactions:.2f}")
    print(f"   idle (the twenty polling): {m.idle_cpu_s * 1e3:.0f} ms of CPU per second")
    if args.baseline:
        print(f"\nbaseline: this benchmark at {args.baseline}, same machine, just after:")
        out = baseline(args.baseline, args)
        part = out.split("\n2. ", 1)
        print("2. " + part[1].split("\nload average")[0].strip() if len(part) == 2 else out)
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
