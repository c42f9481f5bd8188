"""Start-up benchmark: one process hosting all twenty member states' nodes (the demo's case,
``Deployment.nodes(*ALL_MEMBERS)``), from start to every node owning its partitions and
processing, against the real broker.

    .venv/bin/python -m tests.bench.startup [--runs 3] [--partitions 4] [--json FILE]

Each run provisions a fresh tenant (every member, ``--partitions`` per topic: 4 is the local
broker's default, so the demo's 80 ingress partitions), makes the keys and publishes the trust
list, then publishes one notice per member, sealed to its node. The clock starts when the twenty
nodes are started in this process (one event loop, as ``puente serve node --as ...`` or the
demo); for each node it notes when it first owns partitions (its ``ready``, what the demo waits
for), when it owns all of its ingress partitions, and when it has committed its first batch
(the notice waiting for it: processing). Reported per run: the time until all twenty reached
each of these, and the median node; per take-over (the nodes' ``policy.partitions_assigned``
events): fencing (a transactional producer started per partition), the changelog restore and
the offsets lookup. Medians of ``--runs``; the tenant's topics are deleted after each run.

Targets (docs ../shared/design/performance.md): a node's take-over of all its partitions by a
new instance <= 5 s; the hub's take-over of 80 partitions at the demo's start was 42 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from puente.config import Settings
from puente.synth.generator import Generator
from puente.synth.notice import Notice
from tests.bench import pipeline
from tests.harness import kafka_harness
from tests.integration.service.support import ALL_MEMBERS, Deployment, encoded, publish

REPO = Path(__file__).resolve().parents[2]
TAKEOVER_EVENT = "policy.partitions_assigned"


@dataclass
class NodeTimes:
    """Seconds from the start to each milestone of one node (None: not reached)."""

    first_owned: float | None = None  # owns some partitions (Node.ready)
    all_owned: float | None = None  # owns all its ingress partitions
    processing: float | None = None  # committed its first batch


@dataclass
class StartRun:
    partitions: int
    nodes: dict[str, NodeTimes]
    takeovers: list[dict[str, float]]  # per take-over: seconds, fence_s, restore_s, offsets_s
    load: tuple[float, float, float]
    deploy_s: float
    stop_s: float = 0.0
    all: dict[str, float] = field(default_factory=dict)  # milestone -> slowest node
    median: dict[str, float] = field(default_factory=dict)  # milestone -> median node


def capture_takeovers(into: list[dict[str, Any]]) -> None:
    """Log only warnings and errors (to stderr), and keep the nodes' take-over events."""

    def keep(_logger: Any, _name: str, event: Any) -> Any:
        if event.get("event") == TAKEOVER_EVENT:
            into.append(dict(event))
            raise structlog.DropEvent
        if event.get("level") in ("debug", "info"):
            raise structlog.DropEvent
        return event

    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            keep,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(20),  # info and above
        cache_logger_on_first_use=False,
    )


async def one_run(dep: Deployment, events: list[dict[str, Any]], timeout_s: float) -> StartRun:
    gen = Generator(11)
    for origin in ALL_MEMBERS:
        notice = encoded(dep, Notice("puente.CaseNotice", gen.case_notice(origin=origin)))
        await publish(dep, origin, [notice])  # sealed to the node, as its agencies do
    partitions = pipeline.ingress_partitions(dep.tenant, ALL_MEMBERS[0])
    group = dep.nodes(*ALL_MEMBERS, instance="bench-startup")
    times = {n.origin: NodeTimes() for n in group.nodes}
    events.clear()
    stop = asyncio.Event()
    t0 = time.monotonic()
    task = asyncio.create_task(group.run(stop))
    try:
        while time.monotonic() - t0 < timeout_s and not task.done():
            now = time.monotonic() - t0
            for node in group.nodes:
                t = times[node.origin]
                owned = node.owned
                if t.first_owned is None and owned:
                    t.first_owned = now
                if t.all_owned is None and len(owned) >= partitions:
                    t.all_owned = now
                if t.processing is None and any(o.next_offset for o in owned.values()):
                    t.processing = now
            if all(t.processing is not None and t.all_owned is not None for t in times.values()):
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        t_stop = time.monotonic()
        await asyncio.wait_for(task, 300)
    run = StartRun(
        partitions=partitions,
        nodes=times,
        takeovers=[
            {k: float(e[k]) for k in ("count", "seconds", "fence_s", "restore_s", "offsets_s")}
            for e in events
        ],
        load=os.getloadavg(),
        deploy_s=0.0,
        stop_s=time.monotonic() - t_stop,
    )
    for milestone in ("first_owned", "all_owned", "processing"):
        reached = [getattr(t, milestone) for t in times.values()]
        if all(x is not None for x in reached):
            run.all[milestone] = max(x for x in reached if x is not None)
        done = sorted(x for x in reached if x is not None)
        if done:
            run.median[milestone] = statistics.median(done)
    return run


async def bench(args: argparse.Namespace) -> list[StartRun]:
    runs = []
    events: list[dict[str, Any]] = []
    capture_takeovers(events)
    with kafka_harness() as kafka:
        for i in range(args.runs):
            t0 = time.monotonic()
            dep = await pipeline.deploy(kafka, args.partitions)
            deploy_s = time.monotonic() - t0
            try:
                run = await one_run(dep, events, args.timeout)
            finally:
                await asyncio.to_thread(pipeline.retire, dep)
            run.deploy_s = deploy_s
            runs.append(run)
            print(
                f"run {i + 1}: all {len(run.nodes)} nodes own their {run.partitions} partitions "
                f"after {run.all.get('all_owned', float('nan')):.1f} s, all processing after "
                f"{run.all.get('processing', float('nan')):.1f} s (median node "
                f"{run.median.get('processing', float('nan')):.1f} s); {len(run.takeovers)} "
                f"take-overs; provisioning + keys {deploy_s:.1f} s; load {run.load[0]:.2f}",
                flush=True,
            )
    return runs


def report(runs: list[StartRun]) -> dict[str, Any]:
    def med(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    out: dict[str, Any] = {"runs": len(runs), "partitions_per_node": runs[0].partitions}
    for milestone in ("first_owned", "all_owned", "processing"):
        out[f"all_{milestone}_s"] = med([r.all[milestone] for r in runs if milestone in r.all])
        out[f"all_{milestone}_each"] = [r.all.get(milestone) for r in runs]
        out[f"median_node_{milestone}_s"] = med(
            [r.median[milestone] for r in runs if milestone in r.median]
        )
    takeovers = [t for r in runs for t in r.takeovers]
    for key in ("seconds", "fence_s", "restore_s", "offsets_s"):
        values = sorted(t[key] for t in takeovers)
        out[f"takeover_{key}_median"] = med(values)
        out[f"takeover_{key}_max"] = values[-1] if values else float("nan")
    out["takeovers"] = len(takeovers)
    out["loads"] = [r.load for r in runs]
    out["each"] = [asdict(r) for r in runs]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--partitions",
        type=int,
        default=Settings().local.partitions,
        help="partitions per topic (default: the local broker's, as in the demo)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="per run")
    parser.add_argument("--json", type=Path, help="where to write the JSON (default reports/)")
    args = parser.parse_args()
    started = pipeline.now_utc().strftime("%Y-%m-%dT%H:%M:%SZ")
    load_start = os.getloadavg()
    runs = asyncio.run(bench(args))
    result = report(runs) | {
        "started": started,
        "load_start": load_start,
        "machine": pipeline.machine(),
    }
    n = len(ALL_MEMBERS)
    print(f"\n== {n} nodes in one process: start-up ({started}) ==")
    m = result["machine"]
    print(
        f"machine: {m['python']}, {m['cpu']}, {m['cores']} cores (shared); load average (1 min) "
        f"at start {load_start[0]:.2f}, after each run "
        + ", ".join(f"{x[0]:.2f}" for x in result["loads"])
    )
    print(
        f"{n} nodes x {result['partitions_per_node']} ingress partitions, medians of "
        f"{result['runs']} runs (each run: the slowest node; the median node):"
    )
    for milestone, label in (
        ("first_owned", "owns partitions (Node.ready, the demo's wait)"),
        ("all_owned", "owns all its partitions"),
        ("processing", "committed its first notice"),
    ):
        each = ", ".join(
            f"{x:.1f}" if x is not None else "-" for x in result[f"all_{milestone}_each"]
        )
        print(
            f"    {label:<48} all {n}: {result[f'all_{milestone}_s']:6.1f} s (runs {each}); "
            f"median node {result[f'median_node_{milestone}_s']:.1f} s"
        )
    r = result
    print(
        f"per take-over ({r['takeovers']}): median {r['takeover_seconds_median']:.1f} s (max "
        f"{r['takeover_seconds_max']:.1f}): fencing {r['takeover_fence_s_median']:.1f} s (max "
        f"{r['takeover_fence_s_max']:.1f}), restore {r['takeover_restore_s_median']:.1f} s (max "
        f"{r['takeover_restore_s_max']:.1f}), offsets {r['takeover_offsets_s_median']:.1f} s "
        f"(max {r['takeover_offsets_s_max']:.1f})"
    )
    pipeline.save_report(
        result, args.json or REPO / "reports" / f"startup-{started.replace(':', '')}.json"
    )


if __name__ == "__main__":
    main()
