"""Take-over restore benchmark: how long a new owner of an ingress partition takes to read the
partition's changelog back with many remembered notice ids, against the real broker; and what
the dedupe state costs each batch.

    .venv/bin/python -m tests.bench.restore [--ids 1000000] [--runs 3] [--batch 500]

One tenant, one ingress partition. Its changelog (``state.MX[0]``) is filled with ``--ids``
accepted notice ids (plus the audit log's state) in each of two formats, each in its own tenant:

- **per id**: one ``n/<id>`` record per id — what the policy service wrote before dedupe
  chunks (the baseline; the current code still reads it);
- **chunks**: what a node writes now — one ``d/<offset>`` record per batch of ``--batch``
  ids (:class:`~puente.service.dedupe.SeenIds`), ids created over the last two years.

Each run starts a restore consumer as MX's node (its principal reads only its own ``state.MX``)
and times ``Changelog.restore`` — what a node's take-over does between fencing and seeking —
reading the changelog to its end; the ids restored are checked.
Runs alternate between the formats; medians of ``--runs``; wall time and this process's CPU time.

Per batch, with the same number of ids in memory: the dedupe state's snapshot before a batch —
before, a copy of the whole id → digest map (``dict(seen)``, the baseline); now, opening the
batch's journal (``SeenIds.begin``), whose rollback is proportional to the batch.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable

from puente.codec.registry import Registry
from puente.config import Settings
from puente.evidence.log import AuditLog, audit_log_id
from puente.kafka.clients import consumer, producer, start
from puente.service.changelog import Changelog
from puente.service.dedupe import LEGACY_PREFIX, SeenIds
from puente.service.outbox import send_batches
from puente.service.processor import STATE_LOG_KEY
from puente.service.validate import Limits
from puente.topics import STATE
from tests.harness import KafkaHarness, Tenant, kafka_harness

ORIGIN = "MX"
HORIZON = Limits().dedupe_horizon_ms
Records = list[tuple[bytes, bytes | None]]


def _ids(count: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(count):
        notice_id = str(uuid.UUID(int=i + 1, version=4))
        out.append((notice_id, hashlib.sha256(notice_id.encode()).digest()))
    return out


def per_id_records(ids: list[tuple[str, bytes]]) -> Records:
    """The changelog as the service wrote it before chunks: one record per id."""
    return [(LEGACY_PREFIX + i.encode(), d) for i, d in ids]


def chunk_records(ids: list[tuple[str, bytes]], batch: int, now_ms: int) -> Records:
    """The changelog as the service writes it now: a chunk per batch of accepted ids."""
    rng = random.Random(7)
    seen = SeenIds(HORIZON)
    out: Records = []
    age = Limits().max_age_days * 86_400_000
    for first in range(0, len(ids), batch):
        seen.begin()
        for offset, (i, d) in enumerate(ids[first : first + batch], start=first):
            seen.add(i, d, now_ms - rng.randrange(age), offset)
        out += seen.end(now_ms)
    return out


async def write_changelog(
    kafka: KafkaHarness, tenant: Tenant, records: Records, registry: Registry
) -> None:
    topic = tenant.topic(STATE, ORIGIN)
    p = producer(kafka.endpoint, kafka.admin, linger_ms=20, max_batch_size=1024 * 1024)
    await start(p, kafka.endpoint, kafka.admin)
    try:
        log = AuditLog(audit_log_id(ORIGIN, 0, topic_prefix=tenant.naming.prefix))
        items = [*records, (STATE_LOG_KEY, log.state().encode(registry))]
        await send_batches(p, {(topic, 0): items})
    finally:
        await p.stop()


async def restore_once(tenant: Tenant, registry: Registry, expect: int) -> tuple[float, float]:
    """One take-over's restore of state.MX[0], as MX's node: (wall seconds, CPU seconds)."""
    cred = tenant.node(ORIGIN)
    reader = consumer(tenant.endpoint, cred, client_id="bench-restore")
    changelog = Changelog(
        reader, naming=tenant.naming, registry=registry, dedupe_horizon_ms=HORIZON
    )
    await start(reader, tenant.endpoint, cred)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        states = await changelog.restore([(ORIGIN, 0)])
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        await reader.stop()
    seen = states[(ORIGIN, 0)].seen
    assert len(seen) == expect, (len(seen), expect)
    return wall, cpu


def snapshot_costs(ids: list[tuple[str, bytes]], runs: int) -> dict[str, float]:
    """Median seconds of a batch's dedupe snapshot with ``len(ids)`` ids in memory."""
    as_dict = dict(ids)
    seen = SeenIds(HORIZON)
    seen.begin()
    for n, (i, d) in enumerate(ids):
        seen.add(i, d, int(time.time() * 1000), n)
    seen.end(int(time.time() * 1000))

    def median(once: Callable[[], object]) -> float:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            once()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    return {
        "copy of the map (before)": median(lambda: dict(as_dict)),
        "SeenIds.begin (now)": median(seen.begin),
    }


async def run(args: argparse.Namespace) -> None:
    print(f"load average at start: {os.getloadavg()}")
    ids = _ids(args.ids)
    now_ms = int(time.time() * 1000)
    formats = {
        "per id (before)": per_id_records(ids),
        "chunks (now)": chunk_records(ids, args.batch, now_ms),
    }
    with kafka_harness() as kafka:
        registry = Registry.load(Settings().schemas_dir)
        tenants = {}
        for name, records in formats.items():
            tenants[name] = kafka.provision([ORIGIN, "US"], partitions=1)
            t0 = time.perf_counter()
            await write_changelog(kafka, tenants[name], records, registry)
            print(
                f"{name}: {len(records):,} changelog records for {args.ids:,} ids, "
                f"{sum(len(v or b'') for _, v in records) / 1e6:.0f} MB, written in "
                f"{time.perf_counter() - t0:.1f} s"
            )
        print(f"kafka: {kafka.source}")
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in formats}
        for _ in range(args.runs):
            for name in formats:
                results[name].append(await restore_once(tenants[name], registry, args.ids))
    print(f"\ntake-over restore of {args.ids:,} remembered ids (median of {args.runs}):")
    medians = {}
    for name, rs in results.items():
        wall = statistics.median(r[0] for r in rs)
        cpu = statistics.median(r[1] for r in rs)
        medians[name] = wall
        runs = ", ".join(f"{r[0]:.2f}" for r in rs)
        print(f"  {name:<18} {wall:6.2f} s wall  {cpu:6.2f} s CPU   (runs: {runs} s)")
    ratio = medians["per id (before)"] / medians["chunks (now)"]
    print(f"  chunks restore {ratio:.1f}x faster than records per id")
    print(f"\nper batch, {args.ids:,} ids in memory (median of {args.runs * 5}):")
    for name, seconds in snapshot_costs(ids, args.runs * 5).items():
        print(f"  {name:<26} {seconds * 1e3:9.3f} ms")
    print(f"load average at end: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ids", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500, help="ids per batch (max_batch)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
