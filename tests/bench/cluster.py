"""Cluster benchmark: member states' nodes on a local 3-broker cluster (RF 3, min ISR 2,
acks=all) against the single broker, in one run with the same workload and the same code; and how
long the nodes take to resume after the leader broker of their partitions is killed.

    .venv/bin/python -m tests.bench.cluster [--runs 3] [--notices 2000] [--partitions 2]
        [--origins MX,US,CO,GT] [--rate R] [--latency-seconds 10] [--latency-runs 2]
        [--resume-runs 3] [--resume-rate R] [--phases throughput,resume,latency] [--json FILE]

Both clusters run side by side for the whole benchmark (local brokers from Maven jars, free
loopback ports); measured runs alternate between them (1, 3, 3, 1, 1, 3, ...) so a change in
the shared machine's load hits both alike. Each run's tenant is deleted after it.

1. **Throughput** — ``tests.bench.pipeline``'s measured pipeline run, unchanged: ``--notices``
   CaseNotices padded to >= 1 KiB pre-loaded into the ingress topics of ``--origins`` of a fresh
   tenant (sealed to each origin's node); a node per origin (sealed ingress opened, deliveries
   sealed; shipped policies, batch signatures, transactions) starts in this process; the clock
   runs from the first batch once every node owns its partitions to the commit of the
   transaction holding the last input.
   ``--runs`` per cluster; medians.
2. **Resume after a leader kill** (3 brokers) — the nodes of ``--origins`` run while a publisher
   process offers ``--resume-rate`` notices/s; after a steady period the broker leading most of
   the busy ingress partitions (not the active controller, so this is a partition-leader
   failover, not a controller election) is killed with SIGKILL. Resume time = from the kill to
   the first committed transaction whose batch began after the kill; "all resumed" = until every
   busy ingress partition has committed such a batch. Also reported: the broker's restart and
   its catch-up (ISR 3 again for the tenant's topics). ``--resume-runs`` kills (whichever broker
   leads most then), each followed by the restart.
3. **End-to-end latency** — ``tests.bench.pipeline``'s latency phase, unchanged: a paced
   publisher process sealing each notice to its node, a subscriber process (one ``Subscriber``
   per member verifying every delivery against the trust list and opening it with the member's
   keys); latency = verified − published, per delivery. The same
   rate on both clusters. ``--latency-runs`` per cluster; medians of p50/p99.

Offered rates (``--rate`` for latency, ``--resume-rate``) default to a quarter of the slower
cluster's measured throughput (at most 500/s): a rate the pipeline sustains on this machine,
so the figures measure the pipeline, not a growing queue.

Results: a table on stdout and JSON in ``reports/cluster-<time>.json`` (git-ignored) or
``--json FILE``. The machine's load average is recorded at start, per phase and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from puente.codec.registry import Registry
from puente.config import Settings
from puente.kafka.admin import admin_client
from puente.service.processor import BatchOutput
from puente.service.takeover import Owned
from tests.bench import pipeline
from tests.harness import KafkaHarness, kafka_harness
from tests.integration.cluster.chaos import Probe, busiest_leader, ingress_topics, tenant_topics
from tests.integration.service.support import Deployment

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = "180"  # three JVMs on two busy cores, and a killed broker's log recovery


# --- clusters ----------------------------------------------------------------------------------


@contextlib.contextmanager
def clusters() -> Iterator[dict[int, KafkaHarness]]:
    """A single broker and a 3-broker cluster, both local, for the whole benchmark."""
    if os.environ.get("PUENTE_KAFKA_BOOTSTRAP"):
        raise SystemExit(
            "tests.bench.cluster starts (and kills) its own local brokers; unset "
            "PUENTE_KAFKA_BOOTSTRAP"
        )
    previous = os.environ.get("PUENTE_LOCAL__START_TIMEOUT_S")
    os.environ["PUENTE_LOCAL__START_TIMEOUT_S"] = previous or START_TIMEOUT_S
    try:
        with kafka_harness(brokers=1) as one, kafka_harness(brokers=3) as three:
            assert one.cluster is not None and three.cluster is not None
            yield {1: one, 3: three}
    finally:
        if previous is None:
            os.environ.pop("PUENTE_LOCAL__START_TIMEOUT_S", None)


def topics_now(kafka: KafkaHarness) -> set[str]:
    with admin_client(kafka.endpoint, kafka.admin) as admin:
        return set(admin.list_topics())


def purge(kafka: KafkaHarness, keep: set[str]) -> int:
    """Delete the topics a measured run created (its tenant): every run then meets a cluster
    of the same size, and a broker restarted later has no extra partitions to recover."""
    with admin_client(kafka.endpoint, kafka.admin) as admin:
        doomed = sorted(t for t in set(admin.list_topics()) - keep if not t.startswith("__"))
        if doomed:
            admin.delete_topics(doomed)
    return len(doomed)


def broker_pids(kafka: KafkaHarness) -> list[int]:
    info = kafka.cluster.info() if kafka.cluster else None
    return [n.pid for n in (info.nodes if info else []) if n.pid]


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def alternate(runs: int) -> list[int]:
    """Cluster order of the measured runs: 1, 3, 3, 1, 1, 3, ..."""
    order: list[int] = []
    for i in range(runs):
        order += [1, 3] if i % 2 == 0 else [3, 1]
    return order


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- 1. throughput -----------------------------------------------------------------------------


async def throughput(ks: dict[int, KafkaHarness], args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    registry = Registry.load(settings.schemas_dir)
    created = pipeline.now_utc() - dt.timedelta(minutes=1)
    notices = pipeline.make_notices(
        registry, args.origins, args.notices, args.seed, created=created
    )
    runs: dict[int, list[pipeline.RunStats]] = {1: [], 3: []}
    loads = []
    for n in alternate(args.runs):
        pipeline.BROKER_PIDS[:] = broker_pids(ks[n])
        keep = await asyncio.to_thread(topics_now, ks[n])
        stats = await pipeline.pipeline_run(ks[n], notices, args)
        await asyncio.to_thread(purge, ks[n], keep)
        runs[n].append(stats)
        loads.append(load())
        f = stats.figures()
        print(
            f"throughput, {n} broker(s): {f['notices_per_s']:,.0f} notices/s "
            f"({stats.inputs} in {f['seconds']:.1f} s, complete={stats.complete}); "
            f"load {loads[-1]}",
            flush=True,
        )
    pipeline.BROKER_PIDS.clear()
    out: dict[str, Any] = {"notices": args.notices, "origins": args.origins, "load": loads}
    for n, rs in runs.items():
        keys = rs[0].figures().keys()
        out[str(n)] = {k: median([r.figures()[k] for r in rs]) for k in keys} | {
            "runs": len(rs),
            "each": [r.figures()["notices_per_s"] for r in rs],
            "complete": [r.complete for r in rs],
        }
    out["ratio_3_to_1"] = out["3"]["notices_per_s"] / out["1"]["notices_per_s"]
    return out


# --- 2. latency --------------------------------------------------------------------------------


async def latency(
    ks: dict[int, KafkaHarness], args: argparse.Namespace, rate: float
) -> dict[str, Any]:
    runs: dict[int, list[pipeline.Latency]] = {1: [], 3: []}
    loads = []
    for n in alternate(args.latency_runs):
        keep = await asyncio.to_thread(topics_now, ks[n])
        got = await pipeline.latency_runs(ks[n], args, [rate])
        await asyncio.to_thread(purge, ks[n], keep)
        runs[n] += got
        loads.append(load())
        x = got[0]
        print(
            f"latency at {rate:.0f}/s, {n} broker(s): p50 {x.p50_ms:.0f} ms, p99 {x.p99_ms:.0f} ms "
            f"({x.verified} deliveries verified, {x.missing} missing); load {loads[-1]}",
            flush=True,
        )
    out: dict[str, Any] = {"rate": rate, "seconds": args.latency_seconds, "load": loads}
    for n, rs in runs.items():
        out[str(n)] = {
            "p50_ms": median([r.p50_ms for r in rs]),
            "p90_ms": median([r.p90_ms for r in rs]),
            "p99_ms": median([r.p99_ms for r in rs]),
            "max_ms": max(r.max_ms for r in rs),
            "achieved_rate": median([r.achieved_rate for r in rs]),
            "missing": sum(r.missing for r in rs),
            "unverified": sum(r.unverified for r in rs),
            "runs": len(rs),
            "each": [asdict(r) for r in rs],
        }
    return out


# --- 3. resume after a leader kill --------------------------------------------------------------


class WatchedNode(pipeline.TimedNode):
    """The benchmark's node, also noting when each committed batch began and ended."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commits: list[tuple[float, float, TopicPartition, int]] = []  # began, done, tp, n
        self._batch_began = 0.0

    async def _process(self, batches: Any) -> None:
        self._batch_began = time.time()
        await super()._process(batches)

    async def _commit(
        self, owned: Owned, out: BatchOutput, *, first_offset: int | None
    ) -> BatchOutput | None:
        began = self._batch_began
        done = await super()._commit(owned, out, first_offset=first_offset)
        if done is not None and first_offset is not None:
            self.commits.append((began, time.time(), owned.tp, sum(done.outcomes.values())))
        return done


Commit = tuple[float, float, TopicPartition, int]


def commits_of(group: pipeline.TimedNodes) -> list[Commit]:
    """Every node's committed batches: (began, done, partition, inputs)."""
    return [c for n in group.nodes if isinstance(n, WatchedNode) for c in n.commits]


@dataclass
class Resume:
    victim: int
    controller: int
    led: int  # busy ingress partitions the victim led
    busy: int  # ingress partitions with traffic before the kill
    first_s: float  # kill -> first commit of a batch begun after the kill
    all_s: float  # kill -> every busy partition has committed such a batch
    stalled_batch_s: float | None  # kill -> the batch in flight at the kill committed
    restart_s: float  # start_node until the cluster answers with 3 brokers
    catch_up_s: float  # then until every tenant partition has ISR 3
    load: list[float] = field(default_factory=list)


async def resume_runs(kafka: KafkaHarness, args: argparse.Namespace, rate: float) -> list[Resume]:
    dep = await pipeline.deploy(kafka, args.partitions)
    probe = Probe(kafka)
    group = pipeline.TimedNodes(
        dep, args.origins, sealed=True, instance="bench-resume", node=WatchedNode
    )
    ingress = ingress_topics(dep, args.origins)
    stop = asyncio.Event()
    task = asyncio.create_task(group.run_all(stop))
    results: list[Resume] = []
    try:
        await asyncio.wait_for(group.ready(), 300)
        for i in range(args.resume_runs):
            results.append(await _resume_once(dep, probe, group, ingress, args, rate, seed=i))
            r = results[-1]
            print(
                f"resume {i + 1}: killed broker {r.victim} (leader of {r.led} of {r.busy} busy "
                f"ingress partitions; controller {r.controller}): first commit after "
                f"{r.first_s:.2f} s, all partitions after {r.all_s:.2f} s; restart "
                f"{r.restart_s:.1f} s, ISR 3 {r.catch_up_s:.1f} s later; load {r.load}",
                flush=True,
            )
            if task.done():
                raise RuntimeError(f"a node stopped: {task.exception()!r}")
    finally:
        stop.set()
        await asyncio.wait_for(task, 120)
    return results


async def _resume_once(
    dep: Deployment,
    probe: Probe,
    group: pipeline.TimedNodes,
    ingress: list[str],
    args: argparse.Namespace,
    rate: float,
    seed: int,
) -> Resume:
    await probe.call(probe.wait_isr, tenant_topics(dep), 3, 300.0)
    pub = pipeline.Child.publisher(
        dep,
        args.origins,
        rate,
        args.resume_steady_s + args.resume_window_s,
        args.seed + 1000 + seed,
    )
    await pub.start()
    try:
        # Steady state: batches committing, the nodes keeping up with the offered rate.
        t0 = time.time()
        await asyncio.sleep(args.resume_steady_s)
        recent = time.time() - args.resume_steady_s / 2
        busy = {(c[2].topic, c[2].partition) for c in commits_of(group) if c[0] >= recent}
        if not busy:
            raise RuntimeError(
                f"no batch began and committed in the {args.resume_steady_s / 2:.0f} s before "
                f"the kill (only {len(commits_of(group))} commits since {t0 - time.time():.0f} s)"
            )
        layout = await probe.call(probe.partitions, ingress)
        controller = await probe.call(probe.controller)
        victim = busiest_leader({tp: layout[tp] for tp in busy}, ingress, avoid=controller)
        led = sum(1 for tp in busy if layout[tp]["leader"] == victim)
        killed_at = time.time()
        await probe.call(probe.kill, victim)

        def after(tp: tuple[str, int] | None = None) -> list[Commit]:
            return [
                c
                for c in commits_of(group)
                if c[0] >= killed_at and (tp is None or (c[2].topic, c[2].partition) == tp)
            ]

        deadline = time.monotonic() + args.resume_window_s
        while time.monotonic() < deadline:
            if all(after(tp) for tp in busy):
                break
            await asyncio.sleep(0.05)
        firsts = [min(c[1] for c in after(tp)) for tp in busy if after(tp)]
        if len(firsts) < len(busy):
            raise RuntimeError(
                f"{len(busy) - len(firsts)} busy partitions did not resume within "
                f"{args.resume_window_s:.0f} s of the kill"
            )
        stalled = [c[1] for c in commits_of(group) if c[0] < killed_at <= c[1]]
        t0 = time.monotonic()
        await probe.call(probe.restart, victim)
        restart = time.monotonic() - t0
        catch_up = await probe.call(probe.wait_isr, tenant_topics(dep), 3, 300.0)
    finally:
        await pub.stop()
    return Resume(
        victim=victim,
        controller=controller,
        led=led,
        busy=len(busy),
        first_s=min(firsts) - killed_at,
        all_s=max(firsts) - killed_at,
        stalled_batch_s=(max(stalled) - killed_at) if stalled else None,
        restart_s=restart,
        catch_up_s=catch_up,
        load=load(),
    )


# --- report ------------------------------------------------------------------------------------


def print_report(result: dict[str, Any]) -> None:
    print("\n=== Puente on 1 vs 3 brokers (same workload, same code, alternating runs) ===")
    m = result["machine"]
    print(
        f"machine: {m['cpu']}, {m['cores']} cores, {m['python']}; load at start "
        f"{result['load_start']}, at end {result['load_end']}"
    )
    rows: list[tuple[str, str, str, str]] = []
    tp = result.get("throughput")
    if tp:
        one, three = tp["1"], tp["3"]
        rows.append(
            (
                f"pipeline notices/s (median of {one['runs']}/{three['runs']})",
                f"{one['notices_per_s']:,.0f}",
                f"{three['notices_per_s']:,.0f}",
                f"{tp['ratio_3_to_1']:.2f}",
            )
        )
        for key, label in (
            ("broker_cpu_ms_per_notice", "broker CPU ms/notice (all brokers)"),
            ("python_cpu_ms_per_notice", "nodes' process CPU ms/notice"),
        ):
            if key in one and key in three:
                rows.append(
                    (label, f"{one[key]:.2f}", f"{three[key]:.2f}", f"{three[key] / one[key]:.2f}")
                )
    lat = result.get("latency")
    if lat:
        one, three = lat["1"], lat["3"]
        for key in ("p50_ms", "p99_ms"):
            rows.append(
                (
                    f"end-to-end {key[:3]} ms at {lat['rate']:.0f}/s (median of {one['runs']})",
                    f"{one[key]:.0f}",
                    f"{three[key]:.0f}",
                    f"{three[key] / one[key]:.2f}",
                )
            )
    if rows:
        width = max(len(r[0]) for r in rows)
        print(f"\n{'':<{width}}  {'1 broker':>10}  {'3 brokers':>10}  {'3/1':>6}")
        for label, a, b, c in rows:
            print(f"{label:<{width}}  {a:>10}  {b:>10}  {c:>6}")
    res = result.get("resume")
    if res:
        print("\nresume after SIGKILL of the leader broker (3 brokers):")
        print(
            f"  {'run':>3}  {'victim':>6}  {'led':>7}  {'first s':>8}  {'all s':>7}  "
            f"{'restart s':>9}  {'ISR 3 s':>8}"
        )
        for i, r in enumerate(res["each"], 1):
            print(
                f"  {i:>3}  {r['victim']:>6}  {r['led']:>3}/{r['busy']:<3}  {r['first_s']:>8.2f}  "
                f"{r['all_s']:>7.2f}  {r['restart_s']:>9.1f}  {r['catch_up_s']:>8.1f}"
            )
        print(
            f"  median: first committed outcome {res['first_s']:.2f} s after the kill, every "
            f"busy partition {res['all_s']:.2f} s"
        )
    for key in ("throughput_error", "latency_error", "resume_error"):
        if key in result:
            print(f"\n{key}: {result[key]}")


async def bench(ks: dict[int, KafkaHarness], args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {}
    slower: float | None = None
    if "throughput" in args.phases:
        result["load_before_throughput"] = load()
        try:
            tp = result["throughput"] = await throughput(ks, args)
            slower = min(tp["1"]["notices_per_s"], tp["3"]["notices_per_s"])
        except Exception as exc:  # keep the other figures
            result["throughput_error"] = repr(exc)
    # Offered rates the pipeline sustains on this machine (a quarter of its measured throughput:
    # small batches cost more per notice), unless given.
    auto = float(min(500, max(5, round((slower or 40.0) * 0.25))))
    if "resume" in args.phases:
        rate = args.resume_rate or auto
        result["load_before_resume"] = load()
        try:
            runs = await resume_runs(ks[3], args, rate)
            result["resume"] = {
                "first_s": median([r.first_s for r in runs]),
                "all_s": median([r.all_s for r in runs]),
                "restart_s": median([r.restart_s for r in runs]),
                "catch_up_s": median([r.catch_up_s for r in runs]),
                "rate": rate,
                "runs": len(runs),
                "each": [asdict(r) for r in runs],
            }
        except Exception as exc:
            result["resume_error"] = repr(exc)
    if "latency" in args.phases:
        result["load_before_latency"] = load()
        try:
            result["latency"] = await latency(ks, args, args.rate or auto)
        except Exception as exc:
            result["latency_error"] = repr(exc)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="throughput runs per cluster")
    parser.add_argument("--notices", type=int, default=2000, help="inputs per throughput run")
    parser.add_argument("--partitions", type=int, default=2, help="partitions per topic")
    parser.add_argument("--origins", type=lambda s: s.split(","), default=["MX", "US", "CO", "GT"])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--rate", type=float, help="latency: notices/s (default: see above)")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--latency-runs", type=int, default=2, help="per cluster")
    parser.add_argument("--resume-runs", type=int, default=3)
    parser.add_argument("--resume-rate", type=float, help="notices/s offered (default: as --rate)")
    parser.add_argument("--resume-steady-s", type=float, default=10.0)
    parser.add_argument("--resume-window-s", type=float, default=90.0)
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--timeout", type=float, default=900.0, help="per measured run")
    parser.add_argument(
        "--phases",
        type=lambda v: v.split(","),
        default=["throughput", "resume", "latency"],
        help="comma-separated: throughput,resume,latency",
    )
    parser.add_argument("--json", type=Path, help="where to write the JSON (default reports/)")
    args = parser.parse_args()
    from puente.logs import configure_logging

    configure_logging("warning")
    started = pipeline.now_utc().strftime("%Y-%m-%dT%H:%M:%SZ")
    load_start = load()
    t0 = time.monotonic()
    with clusters() as ks:
        print(
            f"clusters up in {time.monotonic() - t0:.0f} s: 1 broker at "
            f"{ks[1].endpoint.bootstrap}, 3 brokers at {ks[3].endpoint.bootstrap}",
            flush=True,
        )
        result = asyncio.run(bench(ks, args))
    result |= {
        "started": started,
        "seconds": round(time.monotonic() - t0),
        "load_start": load_start,
        "load_end": load(),
        "machine": pipeline.machine(),
        "args": {k: v for k, v in vars(args).items() if k != "json"},
    }
    print_report(result)
    pipeline.save_report(
        result, args.json or REPO / "reports" / f"cluster-{started.replace(':', '')}.json"
    )


if __name__ == "__main__":
    main()
