"""Early warning's figures over many simulated runs: per shipped trigger, how often and how fast
the mass movement is detected, and how many false alarms the background alone sets off.

    .venv/bin/python -m tests.bench.warnings_simulation [--movement-seeds 10] \\
        [--background-seeds 40] [--days 60] [--shards 1,4] [--json OUT]

Each run is ``puente warnings simulate`` (``puente.warnings.simulate``, deterministic by seed):
``--movement-seeds`` runs of ``mass-movement`` (seeds 1..N) and ``--background-seeds`` runs of
``background`` (seeds 1..M), for each shard count (counters per origin: a node counts each of its
ingress partitions apart and sums them before suppression; the deployments give ingress topics 4
partitions). Per trigger:

- detected: in how many movement runs an episode about the movement started;
- delay: first movement day → the day its first such warning can be published (its window's end
  plus the lateness), median (min–max) over the runs that detected it;
- false alarms: episodes not about the movement, in the background runs (and, apart, in the
  background of the movement runs), per 60 simulated days.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections import defaultdict
from typing import Any

from puente.codec.registry import Registry
from puente.members import load_members
from puente.resources import project_root
from puente.warnings.loader import load_triggers
from puente.warnings.simulate import simulate


def run(
    *, movement_seeds: int, background_seeds: int, days: int, shards: int
) -> dict[str, dict[str, Any]]:
    """Per trigger id: detections, delays and false alarms over the runs."""
    root = project_root()
    assert root is not None, "run from a checkout"
    triggers = load_triggers(root / "policies", root / "schemas")
    registry = Registry.load(root / "schemas")
    members = load_members(root / "policies").codes
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"detected": 0, "delays": [], "false_bg": 0, "false_mv": 0}
    )
    for scenario, seeds in (("mass-movement", movement_seeds), ("background", background_seeds)):
        for seed in range(1, seeds + 1):
            doc = simulate(
                triggers,
                registry,
                members,
                scenario=scenario,
                days=days,
                seed=seed,
                shards=shards,
            )
            for t in doc["triggers"]:
                row = out[t["id"]]
                if scenario == "background":
                    row["false_bg"] += t["false_alarms"]
                    continue
                row["false_mv"] += t["false_alarms"]
                if t["fired_on_movement"]:
                    row["detected"] += 1
                    row["delays"].append(t["detection_delay_days"])
    return dict(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movement-seeds", type=int, default=10)
    parser.add_argument("--background-seeds", type=int, default=40)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--shards", default="1,4")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    figures = {}
    for shards in (int(s) for s in args.shards.split(",")):
        t0 = time.process_time()
        rows = run(
            movement_seeds=args.movement_seeds,
            background_seeds=args.background_seeds,
            days=args.days,
            shards=shards,
        )
        figures[shards] = rows
        print(f"\n{shards} shard(s) per origin ({time.process_time() - t0:.0f} s CPU)")
        for tid, r in rows.items():
            d = sorted(r["delays"])
            delay = f"{statistics.median(d):.2f} ({d[0]:.2f}–{d[-1]:.2f})" if d else "-"
            print(
                f"  {tid:<34} detected {r['detected']}/{args.movement_seeds}, delay {delay} "
                f"days; false alarms {r['false_bg']} in {args.background_seeds} background "
                f"runs ({r['false_bg'] / max(args.background_seeds, 1):.3f} per {args.days} "
                f"days), {r['false_mv']} in the movement runs' background"
            )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
