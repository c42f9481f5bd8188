"""Policy-engine benchmark: decisions with the shipped policies on synthetic notices, and the same
conditions under cel-python's interpreter as the baseline.

    .venv/bin/python -m tests.bench.policy [--notices 300] [--runs 5] [--baseline-notices 20]

Measures (median of the runs, one core):
- one (notice, recipient) decision: ``PolicySet.decide`` over every pair, mean per pair;
- the fan-out: ``PolicySet.decide_all`` (20 members), mean per notice;
- the conditions alone, per pair, as the engine walks them (plan order, up to the first match):
  compiled closures vs cel-python's interpreter on the very same conditions and activations.
Times are the process's CPU time (``time.process_time``): the machines are shared and noisy, and
CPU time leaves out the waits for a core that wall time would add.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from puente.policy.engine import PolicySet
from puente.policy.loader import CEL_VARIABLES, load_policy_set
from puente.policy.transforms import PseudonymKeys
from puente.resources import project_root
from puente.synth import Generator

Pair = tuple[dict[str, Any], str, str]  # (notice, type, recipient)


def notices(count: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """Three case notices for every consular notification, as a plausible traffic mix."""
    gen = Generator(seed)
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(count):
        if i % 4 == 3:
            out.append(("ConsularNotification", gen.consular_notification()))
        else:
            out.append(("CaseNotice", gen.case_notice()))
    return out


def median_of(runs: int, once: Callable[[], float]) -> float:
    once()  # warm-up
    return statistics.median(once() for _ in range(runs))


def bench_pairs(
    ps: PolicySet,
    keys: PseudonymKeys,
    items: list[tuple[str, dict[str, Any]]],
    runs: int,
    *,
    shuffled: bool = False,
) -> float:
    """Mean time of one decide() call. In order, a notice's recipients come one after another,
    as when a service decides recipient by recipient; shuffled, every call meets a notice other
    than the last one (no reuse of the notice's floor facts)."""
    pairs = [(n, t, r) for t, n in items for r in ps.members]
    if shuffled:
        random.Random(7).shuffle(pairs)  # a reproducible order, not a secret
    decide = ps.decide

    def once() -> float:
        start = time.process_time()
        for n, t, r in pairs:
            decide(n, t, r, keys)
        return (time.process_time() - start) / len(pairs)

    return median_of(runs, once)


def bench_fanout(
    ps: PolicySet, keys: PseudonymKeys, items: list[tuple[str, dict[str, Any]]], runs: int
) -> float:
    decide_all = ps.decide_all

    def once() -> float:
        start = time.process_time()
        for t, n in items:
            decide_all(n, t, keys)
        return (time.process_time() - start) / len(items)

    return median_of(runs, once)


def condition_walks(
    ps: PolicySet, items: list[tuple[str, dict[str, Any]]]
) -> list[tuple[Any, list[Any]]]:
    """For each pair, the activation and the conditions the engine evaluates (plan order, up to
    and including the first that matches)."""
    walks = []
    for t, n in items:
        origin = n["origin"]
        for r in ps.members:
            if r == origin:
                continue
            plan = ps.plan(origin, r, t)
            args = (n, t, origin, r, list(plan.recipient_groups), list(plan.mandatory))
            conds = []
            for rule in plan.rules:
                cond = rule.conditions[t]
                if cond is None:
                    break
                conds.append(cond)
                try:
                    if cond.fn(*args):
                        break
                except Exception:
                    continue
            walks.append((args, conds))
    return walks


def bench_conditions(walks: list[tuple[Any, list[Any]]], runs: int) -> tuple[float, int]:
    evaluations = sum(len(c) for _, c in walks)

    def once() -> float:
        start = time.process_time()
        for args, conds in walks:
            for cond in conds:
                try:
                    cond.fn(*args)
                except Exception:
                    continue
        return (time.process_time() - start) / len(walks)

    return median_of(runs, once), evaluations


def bench_celpy(walks: list[tuple[Any, list[Any]]], runs: int) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import celpy
        from celpy import celtypes

    def to_cel(v: Any) -> Any:
        if isinstance(v, bool):
            return celtypes.BoolType(v)
        if isinstance(v, int):
            return celtypes.IntType(v)
        if isinstance(v, float):
            return celtypes.DoubleType(v)
        if isinstance(v, str):
            return celtypes.StringType(v)
        if isinstance(v, list):
            return celtypes.ListType([to_cel(x) for x in v])
        if isinstance(v, dict):
            return celtypes.MapType({celtypes.StringType(k): to_cel(x) for k, x in v.items()})
        return None if v is None else celtypes.StringType(str(v))

    env = celpy.Environment()
    programs: dict[str, Any] = {}
    prepared = []
    for args, conds in walks:
        activation = {name: to_cel(v) for name, v in zip(CEL_VARIABLES, args, strict=True)}
        progs = []
        for cond in conds:
            if cond.source not in programs:
                programs[cond.source] = env.program(env.compile(cond.source))
            progs.append(programs[cond.source])
        prepared.append((activation, progs))

    def once() -> float:
        start = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for activation, progs in prepared:
                for prog in progs:
                    try:
                        prog.evaluate(activation)
                    except Exception:
                        continue
        return (time.process_time() - start) / len(prepared)

    return median_of(max(1, min(runs, 3)), once)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notices", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-notices", type=int, default=20)
    args = parser.parse_args()
    root = project_root() or Path.cwd()
    ps = load_policy_set(root / "policies", root / "schemas")
    keys = PseudonymKeys(b"bench-secret-0123456789abcdef")
    items = notices(args.notices, 2024)

    shared = sum(d.shared for t, n in items for d in ps.decide_all(n, t, keys))
    pair = bench_pairs(ps, keys, items, args.runs)
    cold = bench_pairs(ps, keys, items, args.runs, shuffled=True)
    fan = bench_fanout(ps, keys, items, args.runs)
    few = items[: args.baseline_notices]
    walks = condition_walks(ps, few)
    compiled, evaluations = bench_conditions(walks, args.runs)
    interpreted = bench_celpy(walks, args.runs)

    us = 1e6
    print(
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
        f"policy {ps.version[:19]}, {len(ps.rules)} rules"
    )
    print(
        f"{len(items)} synthetic notices x {len(ps.members)} members; "
        f"{shared} of {len(items) * len(ps.members)} decisions share; medians of {args.runs} runs"
    )
    print(f"{'measure':<52}{'median':>12}{'target':>10}")
    print(f"{'decide(): one (notice, recipient) pair, mean':<52}{pair * us:>10.2f}µs{'≤ 10µs':>10}")
    print(f"{'decide(): same, pairs in random order (no reuse)':<52}{cold * us:>10.2f}µs")
    print(
        f"{'decide_all(): fan-out to 20 members, per notice':<52}{fan * us:>10.1f}µs{'≤ 200µs':>10}"
    )
    print(
        f"conditions only, {evaluations / len(walks):.2f} evaluations per pair"
        f" over {len(walks)} pairs:"
    )
    print(f"{'  compiled closures, per pair':<52}{compiled * us:>10.2f}µs")
    print(f"{'  cel-python interpreter (baseline), per pair':<52}{interpreted * us:>10.0f}µs")
    print(f"{'  speed-up of the compiled conditions':<52}{interpreted / compiled:>11.0f}x")
    print(f"{'  full decide() vs interpreted conditions alone':<52}{interpreted / pair:>11.0f}x")


if __name__ == "__main__":
    main()
