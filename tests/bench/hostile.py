"""Hostile-load benchmark: the gateway process under a flood of megabyte tokens, one member
holding a hundred event streams while another reads a page, and fuzzed notices — for the
current code and, in the same run, a baseline revision.

    .venv/bin/python -m tests.bench.hostile [--baseline REV] [--tokens 300] [--streams 100]
                                            [--fuzz 2000] [--pages 20]

Each variant runs as its own ``python -m puente gateway serve`` process on the harness's broker
(``PUENTE_KAFKA_BOOTSTRAP`` or the local one), its tokens made by its own ``token create``. The
baseline's ``gateway/`` is taken from git (``git archive REV gateway``) and put first on
PYTHONPATH, with that revision's ``services/`` (so a fix in the codec counts as a change).
Figures:

- resident memory (VmRSS, and the peak VmHWM) of the gateway before and after ``--tokens``
  requests, each with a distinct 1 MiB bogus bearer token, and what they were answered;
- how long another member's page takes (median of ``--pages``) and what it answers, before and
  while one member tries to hold ``--streams`` event streams (over ten of its tokens);
- ``--fuzz`` mutated notices and receipts (tests/jsonfuzz.py, a fixed seed) and their statuses:
  the number of server errors (5xx) is the figure.

Broker, gateway and client share the machine; the load average is printed at the start and
the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from puente.codec.registry import Registry
from puente.evidence.trust import TRUST_LIST_KEY
from puente.topics import TRUST
from tests.bench.gateway import baseline_env, baseline_source, create_token, machine
from tests.harness import KafkaHarness, Tenant, kafka_harness
from tests.integration.gateway.support import (
    Keys,
    close_streams,
    notice_json,
    open_streams,
    produce,
)
from tests.jsonfuzz import mutations

REPO = Path(__file__).resolve().parents[2]
SSE = {"Accept": "text/event-stream"}


@dataclass
class Figures:
    """What one variant measured."""

    name: str
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    hwm_after_kib: int = 0
    flood_s: float = 0.0
    flood_answers: Counter[str] = field(default_factory=Counter)
    page_alone_ms: float = 0.0
    page_alone_status: Counter[int] = field(default_factory=Counter)
    streams_open: int = 0
    stream_answers: Counter[str] = field(default_factory=Counter)
    page_ms: float = 0.0
    page_status: Counter[int] = field(default_factory=Counter)
    fuzz: Counter[int] = field(default_factory=Counter)


def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for {pid}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gateway(env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
    """A gateway process; yields its URL and pid once /readyz answers 200."""
    port = _free_port()
    cmd = [sys.executable, "-m", "puente", "gateway", "serve", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"the gateway exited with {proc.returncode}; see {log}")
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"the gateway did not become ready; see {log}")
                time.sleep(0.2)
            yield url, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def flood(url: str, pid: int, n: int, fig: Figures) -> None:
    """``n`` requests, each with a distinct 1 MiB bogus bearer token, one after the other."""
    for _ in range(20):  # warm-up: imports, allocator arenas, connections
        _bogus(url)
    fig.rss_before_kib = _status(pid, "VmRSS")
    t0 = time.monotonic()
    for _ in range(n):
        fig.flood_answers[_bogus(url)] += 1
    fig.flood_s = time.monotonic() - t0
    fig.rss_after_kib = _status(pid, "VmRSS")
    fig.hwm_after_kib = _status(pid, "VmHWM")


def _bogus(url: str) -> str:
    header = {"Authorization": "Bearer pgw_" + secrets.token_urlsafe(768 * 1024)}
    try:
        return str(httpx.get(f"{url}/v1/schemas", headers=header, timeout=120).status_code)
    except httpx.TransportError as exc:
        return type(exc).__name__


async def _page_times(url: str, token: str, n: int) -> tuple[float, Counter[int]]:
    times, statuses = [], Counter[int]()
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as c:
        for _ in range(n):
            t0 = time.perf_counter()
            r = await c.get("/v1/deliveries", params={"limit": 100})
            times.append(time.perf_counter() - t0)
            statuses[r.status_code] += 1
    return 1000 * statistics.median(times), statuses


async def streams(
    url: str, holders: list[str], other: str, n: int, pages: int, fig: Figures
) -> None:
    """``n`` stream attempts over ``holders``' tokens, then ``other``'s pages while they hold."""
    fig.page_alone_ms, fig.page_alone_status = await _page_times(url, other, pages)
    answers, opened = await open_streams(url, holders, n)
    fig.stream_answers.update(f"{status} {reason}".strip() for status, reason in answers)
    fig.streams_open = len(opened)
    try:
        fig.page_ms, fig.page_status = await _page_times(url, other, pages)
    finally:
        await close_streams(opened)


def fuzz(url: str, token: str, registry: Registry, n: int, fig: Figures) -> None:
    """``n`` mutated notices and receipts (fixed seed), counted by status."""
    valid = [
        ("/v1/notices", {"type": kind, "notice": notice_json(registry, "MX", seed=s, consular=c)})
        for s, (kind, c) in enumerate([("CaseNotice", False), ("ConsularNotification", True)] * 3)
    ]
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    @seed(20261202)
    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        st.sampled_from(valid).flatmap(lambda v: st.tuples(st.just(v[0]), mutations(v[1]))),
        st.uuids(),
    )
    def post(request: tuple[str, Any], fresh: Any) -> None:
        path, body = request
        if isinstance(body, dict) and isinstance(body.get("notice"), dict):
            body = dict(body, notice=dict(body["notice"], notice_id=str(fresh)))
        try:
            fig.fuzz[client.post(path, json=body).status_code] += 1
        except httpx.TransportError:
            fig.fuzz[-1] += 1

    try:
        post()
    finally:
        client.close()


def run_variant(
    name: str,
    kafka: KafkaHarness,
    tenant: Tenant,
    keys: Keys,
    work: Path,
    pythonpath: str | None,
    args: argparse.Namespace,
) -> Figures:
    fig = Figures(name)
    env = os.environ | {
        "PUENTE_STATE_DIR": str(work / f"state-{name}"),
        "PUENTE_SECRETS_DIR": str(tenant.secrets.directory),
        "PUENTE_KAFKA_BOOTSTRAP": kafka.endpoint.bootstrap,
        "PUENTE_KAFKA_TOPIC_PREFIX": tenant.naming.prefix,
        "PUENTE_GATEWAY__RATE_PER_S": "1000000",
        "PUENTE_GATEWAY__RATE_BURST": "1000000",
        "PUENTE_GATEWAY__AUTH_FAIL_BURST": "1000000",
        # The gateway seals notices to the trust list's node keys: it follows the list with
        # the operator's anchors (published on the trust topic above).
        "PUENTE_GATEWAY__TRUST_ANCHORS_FILE": str(keys.anchors),
        # The tenant's two states, each as its own gateway principal, with their keys.
        "PUENTE_GATEWAY__STATES": '["MX", "GT"]',
        "PUENTE_GATEWAY__KEYS_DIR": str(keys.store.root),
        "PUENTE_LOG_FORMAT": "json",
        "PUENTE_LOG_LEVEL": "warning",
    }
    if pythonpath is not None:
        env = baseline_env(env, pythonpath)
    registry = Registry.load(REPO / "schemas")
    with gateway(env, work / f"gateway-{name}.log") as (url, pid):
        print(f"[{name}] flood of {args.tokens} x 1 MiB bogus tokens", flush=True)
        flood(url, pid, args.tokens, fig)
        holders = [create_token(env, "MX", f"bench holder {i}") for i in range(10)]
        other = create_token(env, "GT", "bench reader")
        fuzzer = create_token(env, "MX", "bench fuzzer")
        time.sleep(2)  # the replica follows the token topic (the baseline reads its file)
        print(f"[{name}] {args.streams} stream attempts and another member's pages", flush=True)
        asyncio.run(streams(url, holders, other, args.streams, args.pages, fig))
        print(f"[{name}] {args.fuzz} fuzzed requests", flush=True)
        fuzz(url, fuzzer, registry, args.fuzz, fig)
    return fig


def report(figs: list[Figures], args: argparse.Namespace) -> None:
    mib = 1024.0
    print()
    print(f"resident memory, {args.tokens} requests with distinct 1 MiB bogus tokens:")
    for f in figs:
        print(
            f"  {f.name:<10} before {f.rss_before_kib / mib:7.1f} MiB  after "
            f"{f.rss_after_kib / mib:7.1f} MiB  (+{(f.rss_after_kib - f.rss_before_kib) / mib:.1f})"
            f"  peak {f.hwm_after_kib / mib:7.1f} MiB  in {f.flood_s:5.1f} s  answers "
            f"{dict(f.flood_answers)}"
        )
    print(
        f"another member's page (median of {args.pages}), before and while one member tries "
        f"{args.streams} streams:"
    )
    for f in figs:
        print(
            f"  {f.name:<10} alone {f.page_alone_ms:7.1f} ms {dict(f.page_alone_status)}  "
            f"with streams {f.page_ms:7.1f} ms {dict(f.page_status)}  streams open "
            f"{f.streams_open}  stream answers {dict(f.stream_answers)}"
        )
    print(f"fuzzed notices ({args.fuzz} inputs, fixed seed):")
    for f in figs:
        errors = sum(v for k, v in f.fuzz.items() if k >= 500)
        tried = sum(f.fuzz.values())
        statuses = dict(sorted(f.fuzz.items()))
        print(f"  {f.name:<10} inputs tried {tried}, server errors {errors}, by status {statuses}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", help="git revision to measure as the baseline")
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--fuzz", type=int, default=2000)
    args = parser.parse_args()
    print(machine())
    work = Path(tempfile.mkdtemp(prefix="puente-bench-hostile-"))
    figs = []
    try:
        with kafka_harness() as kafka:
            variants: list[tuple[str, str | None]] = [("current", None)]
            if args.baseline:
                variants.insert(0, (args.baseline[:10], baseline_source(args.baseline, work)))
            for name, path in variants:
                tenant = kafka.provision(["MX", "GT"], partitions=2)
                keys = Keys.make(("MX", "GT"), work / f"keys-{name}")
                asyncio.run(
                    produce(
                        tenant,
                        tenant.service("operator"),
                        tenant.topic(TRUST),
                        [keys.trust_bytes],
                        key=TRUST_LIST_KEY,
                    )
                )
                figs.append(run_variant(name, kafka, tenant, keys, work, path, args))
    finally:
        print(f"load average at the end {os.getloadavg()[0]:.2f}; logs in {work}")
    report(figs, args)


if __name__ == "__main__":
    main()
