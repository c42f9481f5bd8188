"""Early-warning benchmark: the evaluator's cost per window for twenty members, against decoding
(and verifying) the same aggregates without evaluating them.

    .venv/bin/python -m tests.bench.warnings [--days 95] [--shards 1,4] [--cells 12] [--runs 5]

The input is what the shipped triggers make twenty members publish over ``days`` days: each
origin's aggregates of the tables its triggers read (daily detentions by nationality, 72-hour
deaths by place, weekly returns of unaccompanied children and weekly smuggling routes), signed,
in topic order, with up to ``cells`` published cells each (a busy day: far more than the
synthetic background publishes). ``shards`` 1 is a node with one counter per origin; 4 is
a node with four ingress partitions (the deployments' default), each counting apart.

Rows, CPU time of one core, median of the runs:

- decode: Aggregate.decode of every record (the baseline: reading the input);
- decode + verify: open_aggregate (signature against the trust list, checks), what the service
  does before evaluating;
- decode + verify + evaluate: the whole evaluator (Evaluator.add for each, in order).

The cost per window is the evaluate-only time (third row minus second) divided by the days
evaluated (every trigger's windows that end in a day), and per (trigger, window) evaluation.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from puente.codec.registry import Registry
from puente.evidence.keys import SigningKey
from puente.evidence.trust import KeyEntry, TrustList, Usage, node_holder
from puente.members import load_members
from puente.resources import project_root
from puente.warnings.aggregate import Aggregate
from puente.warnings.evaluator import Evaluator
from puente.warnings.loader import load_triggers
from puente.warnings.signing import AGGREGATE_CONTEXT, Signature, open_aggregate, sign
from puente.warnings.tables import Dimension
from puente.warnings.triggers import TriggerSet

DAY = 86_400_000
START = 20_000 * DAY
VALUES = {
    Dimension.NATIONALITY: [f"{a}{b}" for a in "ABCDEFGH" for b in "XYZW"],
    Dimension.PLACE: [f"MX/division-{i}" for i in range(30)],
    Dimension.ROUTE: [f"VE>{x}>US" for x in ("CO", "PA", "NI", "HN", "GT", "MX", "CR")],
}


def make_input(
    triggers: TriggerSet, members: tuple[str, ...], days: int, shards: int, cells: int, seed: int
) -> tuple[list[tuple[bytes, Signature]], TrustList]:
    """Signed aggregates in the order they would reach the topic."""
    rng = random.Random(seed)
    keys = {m: SigningKey.generate(f"puente.member/{m}") for m in members}
    registry = Registry.load((project_root() or Path.cwd()) / "schemas")
    out: list[tuple[int, str, int, str, bytes, Signature]] = []
    for origin in members:
        for table in triggers.tables_for(origin):
            dim = table.by[0]
            first = table.window_of(START)
            for window in range(first, START + days * DAY, table.window_ms):
                for shard in range(shards):
                    n = rng.randint(0, cells)
                    chosen = sorted(rng.sample(VALUES[dim], min(n, len(VALUES[dim]))))
                    a = Aggregate(
                        origin,
                        shard,
                        shards,
                        table,
                        window,
                        triggers.k,
                        tuple(((v,), rng.randint(5, 60)) for v in chosen),
                    )
                    body = a.encode(registry)
                    at = a.window_end + triggers.lateness_ms
                    sig = sign(keys[origin], AGGREGATE_CONTEXT, body, signed_at=at)
                    out.append((at, origin, shard, table.id, body, sig))
    out.sort(key=lambda x: x[:4])
    trust = TrustList(
        1,
        0,
        1 << 50,
        tuple(
            KeyEntry(k.public, node_holder(m), frozenset({Usage.EARLY_WARNING}), 0)
            for m, k in keys.items()
        ),
    )
    return [(body, sig) for *_, body, sig in out], trust


def cpu_seconds(runs: int, once: Callable[[], object]) -> float:
    """Median CPU seconds of ``once`` over ``runs`` (after one warm-up run)."""
    once()
    times = []
    for _ in range(runs):
        t = time.process_time()
        once()
        times.append(time.process_time() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=95, help="days of aggregates (60 + warm-up)")
    ap.add_argument("--shards", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4])
    ap.add_argument("--cells", type=int, default=12, help="most published cells per aggregate")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    root = project_root() or Path.cwd()
    registry = Registry.load(root / "schemas")
    triggers = load_triggers(root / "policies", root / "schemas")
    members = load_members(root / "policies").codes
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{len(members)} members, {len(triggers.triggers)} shipped triggers, {args.days} days, "
        f"up to {args.cells} cells per aggregate; CPU time of one core, median of {args.runs}\n"
    )
    for shards in args.shards:
        bench(registry, triggers, members, shards, args.days, args.cells, args.runs)


def bench(
    registry: Registry,
    triggers: TriggerSet,
    members: tuple[str, ...],
    shards: int,
    days: int,
    cells: int,
    runs: int,
) -> None:
    records, trust = make_input(triggers, members, days, shards, cells, seed=1)
    evaluated = [0]

    def decode() -> None:
        for body, _ in records:
            Aggregate.decode(registry, body)

    def verify() -> None:
        for body, sig in records:
            open_aggregate(trust, registry, body, sig.headers(), min_k=triggers.k)

    def evaluate() -> None:
        ev = Evaluator(triggers)
        for body, sig in records:
            ev.add(open_aggregate(trust, registry, body, sig.headers(), min_k=triggers.k))
        evaluated[0] = ev.evaluated

    t_decode = cpu_seconds(runs, decode)
    t_verify = cpu_seconds(runs, verify)
    t_full = cpu_seconds(runs, evaluate)
    days_evaluated = days - 35  # the first windows only build the baselines
    n = len(records)
    print(f"shards per origin: {shards} ({n} aggregates)")
    print(f"  {'what':34} {'CPU s':>8} {'µs/aggregate':>13} {'vs decode':>10}")
    for name, t in (
        ("decode", t_decode),
        ("decode + verify", t_verify),
        ("decode + verify + evaluate", t_full),
    ):
        print(f"  {name:34} {t:>8.3f} {t / n * 1e6:>13.1f} {t / t_decode:>9.2f}x")
    evaluate_only = max(t_full - t_verify, 0.0)
    print(
        f"  evaluate only: {evaluate_only * 1000:.1f} ms for {evaluated[0]} (trigger, window) "
        f"evaluations: {evaluate_only / max(evaluated[0], 1) * 1e3:.2f} ms each, "
        f"{evaluate_only / days_evaluated * 1e3:.2f} ms per evaluated day of twenty members; "
        f"whole pipeline {t_full / days_evaluated * 1e3:.1f} ms per day\n"
    )


if __name__ == "__main__":
    main()
