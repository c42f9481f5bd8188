"""Checkpoint liveness: how long audit records wait for their signed checkpoint when the
exchange goes quiet, against the real broker.

    .venv/bin/python -m tests.bench.liveness [--idle 120] [--interval 5] [--bursts 3]

One policy service instance (in-process, the default checkpoint interval unless ``--interval``)
owns every partition of a fresh tenant. Agencies publish ``--bursts`` bursts of notices, each
followed by ``--idle`` seconds without any input. Afterwards every audit record is matched with
the first checkpoint of its log that covers it: the wait is the checkpoint's signed time minus
the record's ``decided_at``. Reported: the longest wait, its quantiles, and the promise it is
held against (interval + slack, ``puente.config.max_checkpoint_wait_s``). Before this work the
tail of a log waited for the next input to reach its partition (hours on a quiet night).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

from puente.config import max_checkpoint_wait_s
from puente.synth.generator import Generator
from puente.synth.notice import Notice
from puente.topics import INGRESS
from tests.harness import kafka_harness
from tests.integration.service.support import (
    checkpoint_waits,
    deploy,
    encoded,
    publish,
    running,
    wait_committed,
)

ORIGINS = ("MX", "GT", "US", "CO")


async def run(idle_s: float, interval_s: float, bursts: int, per_burst: int) -> dict[str, object]:
    with kafka_harness() as kafka:
        dep = await deploy(kafka, partitions=2)
        gen = Generator(31)
        async with running(
            dep.nodes(*ORIGINS, instance="liveness", checkpoint_interval_s=interval_s)
        ):
            for b in range(bursts):
                ends: dict[tuple[str, int], int] = {}
                for origin in ORIGINS:
                    notices = [
                        encoded(dep, Notice("puente.CaseNotice", gen.case_notice(origin=origin)))
                        for _ in range(per_burst)
                    ]
                    topic = dep.tenant.topic(INGRESS, origin)
                    for partition, offset in await publish(dep, origin, notices):
                        ends[(topic, partition)] = max(ends.get((topic, partition), 0), offset + 1)
                await wait_committed(dep, ends, timeout_s=300)
                print(f"burst {b + 1}/{bursts} processed; idle for {idle_s:.0f} s", flush=True)
                await asyncio.sleep(idle_s)
        waits = await checkpoint_waits(dep, ORIGINS)
    return {
        "records": len(waits.waits_ms),
        "uncovered": waits.uncovered,
        "interval_s": interval_s,
        "promise_s": max_checkpoint_wait_s(interval_s),
        "idle_s": idle_s,
        "bursts": bursts,
        "max_wait_s": waits.max_s,
        "p99_wait_s": waits.quantile_s(0.99),
        "p50_wait_s": waits.quantile_s(0.5),
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle", type=float, default=120.0, help="seconds without input")
    parser.add_argument("--interval", type=float, default=5.0, help="checkpoint interval (s)")
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--per-burst", type=int, default=25, help="notices per origin")
    args = parser.parse_args()
    t0 = time.monotonic()
    result = asyncio.run(run(args.idle, args.interval, args.bursts, args.per_burst))
    result["elapsed_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(result, indent=2))
    print(
        f"longest wait of a record for its checkpoint: {result['max_wait_s']:.2f} s "
        f"(promise: {result['promise_s']:.1f} s; {result['records']} records, "
        f"{result['uncovered']} uncovered)"
    )


if __name__ == "__main__":
    main()
