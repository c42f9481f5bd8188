"""Gateway benchmark: ``POST /v1/notices`` under load, against a bare endpoint of the same
framework (FastAPI on uvicorn, one worker, same loop and HTTP parser) that does nothing, in the
same run.

    .venv/bin/python -m tests.bench.gateway [--runs 3] [--duration 15] [--connections 50]
                                            [--profile FILE] [--baseline REV]

Load comes from ``wrk`` (C, epoll; one thread is far from being the bottleneck at these rates)
with a Lua script that POSTs a realistic CaseNotice with a fresh notice id per request, so every
request is a new notice: validated, encoded, produced with acks=all and acknowledged by the
broker before the 202. Install wrk with ``apt-get install wrk`` (Debian/Ubuntu) or
``brew install wrk`` (macOS); the benchmark stops with that hint when it is missing.

Every notice is sealed to MX's node key from a trust list the gateway follows (as every
gateway does since it became its state's edge), so the figures include one HPKE seal per
request.

Kafka is the test harness's broker (``PUENTE_KAFKA_BOOTSTRAP`` or the local one from Maven
Central jars), so broker, server and load generator share the machine, as in the targets of
../shared/design/performance.md. ``--profile FILE`` runs the gateway under pyinstrument and
writes its text report to FILE (the figures of that run are slower and only indicative).
``--baseline REV`` also measures the gateway of git revision REV (its ``gateway/`` and
``services/``, extracted with ``git archive``), in the same run, as one more row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from puente.codec.jsonconv import to_json
from puente.codec.registry import Registry
from puente.evidence.trust import TRUST_LIST_KEY
from puente.synth import Generator
from puente.topics import INGRESS, TRUST
from puente_gateway.app import NO_TELEMETRY
from tests.harness import KafkaHarness, Tenant, kafka_harness
from tests.integration.gateway.support import Keys, end_offsets, produce

PLACEHOLDER = "00000000-0000-4000-8000-000000000000"
REPO = Path(__file__).resolve().parents[2]

bare = FastAPI()


@bare.post("/v1/notices")
async def nothing() -> Response:
    """The baseline: routed by the same framework, answers 202 and does nothing else."""
    return Response(b"{}", status_code=202, media_type="application/json")


async def _nothing(request: Request) -> Response:
    return Response(b"{}", status_code=202, media_type="application/json")


# The second baseline mounts its route as the gateway mounts its hot path: a Starlette route
# in a FastAPI app without OpenTelemetry hooks. The difference between the two baselines is
# what those two choices save; the gateway's own work is measured against either.
bare_lean = FastAPI(
    telemetry=NO_TELEMETRY, routes=[Route("/v1/notices", _nothing, methods=["POST"])]
)


LUA = r"""
local body = [==[BODY]==]
local thread_id = 0
local counter = 0

function setup(thread)
  thread:set("tid", ID_BASE + math.random(0, 65535))
end

function init(args)
  thread_id = tid
  math.randomseed(os.time() + thread_id)
end

function request()
  counter = counter + 1
  local id = string.format("%08x-%04x-4%03x-a%03x-%06x%06x",
    math.random(0, 2147483646), thread_id % 65536, math.random(0, 4095),
    math.random(0, 4095), math.floor(counter / 16777216) % 16777216, counter % 16777216)
  local payload = string.gsub(body, "XNOTICEIDX", id, 1)
  return wrk.format("POST", "/v1/notices", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer TOKEN",
  }, payload)
end
"""


@dataclass
class Result:
    """One wrk run."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_s: float


def _found(pattern: str, out: str) -> str:
    """The first group of ``pattern`` in wrk's output; a ValueError showing the output if absent."""
    m = re.search(pattern, out)
    if m is None:
        raise ValueError(f"no {pattern!r} in wrk's output:\n{out}")
    return m.group(1)


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if m is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    value, unit = m.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def _parse(out: str) -> tuple[float, float, float, int, int]:
    rps = float(_found(r"Requests/sec:\s+([\d.]+)", out))
    p50 = _ms(_found(r"\s50%\s+(\S+)", out))
    p99 = _ms(_found(r"\s99%\s+(\S+)", out))
    requests = int(_found(r"(\d+) requests in", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    if sockets:
        errors += sum(int(x) for x in sockets.groups())
    return rps, p50, p99, requests, errors


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, *, script: Path, duration: int, connections: int, pid: int) -> Result:
    """One measured wrk run against ``url`` (server process ``pid``)."""
    cpu0 = _cpu_seconds(pid)
    proc = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    cpu = _cpu_seconds(pid) - cpu0
    rps, p50, p99, requests, errors = _parse(proc.stdout)
    return Result(rps, p50, p99, requests, errors, cpu)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}; see its log")
        try:
            if httpx.get(url + path, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become ready")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _notice_body(registry: Registry) -> bytes:
    record = Generator(2025).case_notice(origin="MX")
    record["notice_id"] = PLACEHOLDER
    notice = to_json(registry, "puente.CaseNotice", record)
    # wrk's script puts a fresh UUID where the marker is, so every request is a new notice.
    return orjson.dumps({"type": "CaseNotice", "notice": notice}).replace(
        PLACEHOLDER.encode(), b"XNOTICEIDX"
    )


def _script(work: Path, body: bytes, token: str, name: str = "post.lua") -> Path:
    text = (
        LUA.replace("BODY", body.decode())
        .replace("TOKEN", token)
        .replace("ID_BASE", str(uuid.uuid4().int % 60000))
    )
    path = work / name
    path.write_text(text)
    return path


def _env(kafka: KafkaHarness, tenant: Tenant, work: Path) -> dict[str, str]:
    """A gateway's environment on ``tenant``, with a federation's keys: the trust list (on the
    trust topic) names MX's node key the gateway seals each notice to, and the gateway follows
    it with the operator's anchors."""
    keys = Keys.make(("MX",), work / "keys")
    trust = tenant.topic(TRUST)
    operator = tenant.service("operator")
    asyncio.run(produce(tenant, operator, trust, [keys.trust_bytes], key=TRUST_LIST_KEY))
    return os.environ | {
        "PUENTE_GATEWAY__TRUST_ANCHORS_FILE": str(keys.anchors),
        # MX's own gateway: MX's member keys, connecting as MX's gateway principal.
        "PUENTE_GATEWAY__STATES": '["MX"]',
        "PUENTE_GATEWAY__KEYS_DIR": str(keys.store.root),
        "PUENTE_STATE_DIR": str(work / "state"),
        "PUENTE_SECRETS_DIR": str(tenant.secrets.directory),
        "PUENTE_KAFKA_BOOTSTRAP": kafka.endpoint.bootstrap,
        "PUENTE_KAFKA_TOPIC_PREFIX": tenant.naming.prefix,
        "PUENTE_GATEWAY__RATE_PER_S": "1000000",
        "PUENTE_GATEWAY__RATE_BURST": "1000000",
        "PUENTE_LOG_FORMAT": "json",
        "PUENTE_LOG_LEVEL": "info",
    }


def machine() -> str:
    """Python, CPU model, cores and the load average now: the context of a measurement."""
    cpu = next(
        (
            x.split(":", 1)[1].strip()
            for x in Path("/proc/cpuinfo").read_text().splitlines()
            if x.startswith("model name")
        ),
        platform.processor(),
    )
    py = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{py}, {cpu}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"


def baseline_source(rev: str, into: Path) -> str:
    """``gateway/`` and ``services/`` of git revision ``rev``, extracted under ``into``: the
    PYTHONPATH that runs that revision's gateway (with this checkout's schemas and policies)."""
    archive = into / "baseline.tar"
    with archive.open("wb") as fh:
        cmd = ["git", "archive", rev, "gateway", "services"]
        subprocess.run(cmd, cwd=REPO, stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return os.pathsep.join(str(into / d) for d in ("gateway", "services"))


def baseline_env(env: dict[str, str], pythonpath: str) -> dict[str, str]:
    """``env`` for a process that runs the extracted baseline."""
    return env | {
        "PYTHONPATH": os.pathsep.join([pythonpath, env.get("PYTHONPATH", "")]),
        # An extracted baseline is not a checkout: point it at this one's data.
        "PUENTE_SCHEMAS_DIR": str(REPO / "schemas"),
        "PUENTE_POLICIES_DIR": str(REPO / "policies"),
    }


def create_token(env: dict[str, str], state: str, agency: str) -> str:
    """A new agency token, made with ``puente gateway token create`` (as an operator would)."""
    cmd = [sys.executable, "-m", "puente", "gateway", "token", "create"]
    cmd += ["--state", state, "--agency", agency, "--json"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    token: str = orjson.loads(out)["token"]
    return token


def _report(name: str, runs: list[Result]) -> Result:
    med = Result(
        statistics.median(r.rps for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.requests for r in runs),
        sum(r.errors for r in runs),
        sum(r.cpu_s for r in runs),
    )
    each = ", ".join(f"{r.rps:,.0f}" for r in runs)
    cpu_ms = 1000 * med.cpu_s / max(1, med.requests)
    print(
        f"{name:<22}{med.rps:>10,.0f}{med.p50_ms:>9.2f}{med.p99_ms:>9.2f}"
        f"{cpu_ms:>12.3f}   runs: {each}; errors {med.errors}"
    )
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=15, help="seconds per run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--profile", type=Path, help="pyinstrument text report of the gateway")
    parser.add_argument("--baseline", help="also measure the gateway of this git revision")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not installed: `apt-get install wrk` (Debian/Ubuntu) or `brew install wrk`"
        )
    work = Path(tempfile.mkdtemp(prefix="puente-bench-gw-"))
    print(machine())
    with kafka_harness() as kafka:
        tenant = kafka.provision(["MX"], partitions=2)
        env = _env(kafka, tenant, work)
        registry = Registry.load(Path(__file__).resolve().parents[2] / "schemas")
        token = create_token(env, "MX", "benchmark agency")
        body = _notice_body(registry)
        script = _script(work, body, token)
        print(
            f"kafka: {kafka.source}; notice body {len(body)} bytes; wrk -t1 -c{args.connections} "
            f"-d{args.duration}s x {args.runs} runs (medians)"
        )
        gw_port = _free_port()
        gw_cmd = [sys.executable, "-m", "puente", "gateway", "serve", "--port", str(gw_port)]
        if args.profile:
            profiler = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(args.profile)]
            gw_cmd = [*profiler, *gw_cmd[1:]]
        log = (work / "gateway.log").open("wb")
        scripts: dict[str, Path] = {}
        servers = {
            "POST /v1/notices": (subprocess.Popen(gw_cmd, env=env, stderr=log, stdout=log), gw_port)
        }
        if args.baseline:
            base = baseline_env(env, baseline_source(args.baseline, work))
            base["PUENTE_STATE_DIR"] = str(work / "state-baseline")
            base_token = create_token(base, "MX", "benchmark agency (baseline)")
            base_port = _free_port()
            base_cmd = [
                sys.executable,
                "-m",
                "puente",
                "gateway",
                "serve",
                "--port",
                str(base_port),
            ]
            name = f"POST ({args.baseline[:10]})"
            servers[name] = (
                subprocess.Popen(base_cmd, env=base, stderr=log, stdout=log),
                base_port,
            )
            scripts = {name: _script(work, body, base_token, "post-baseline.lua")}
        for name, target in (
            ("bare FastAPI route", "bare"),
            ("bare Starlette route", "bare_lean"),
        ):
            port = _free_port()
            cmd = [sys.executable, "-m", "uvicorn", f"tests.bench.gateway:{target}"]
            cmd += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
            servers[name] = (subprocess.Popen(cmd, env=env), port)
        results: dict[str, list[Result]] = {name: [] for name in servers}
        try:
            for name, (proc, port) in servers.items():
                ready = "/readyz" if name.startswith("POST") else "/docs"
                _wait_ready(f"http://127.0.0.1:{port}", proc, ready)
            topic = tenant.topic(INGRESS, "MX")
            before = sum(asyncio.run(end_offsets(tenant, topic)).values())

            def run(name: str, url: str, *, duration: int, pid: int) -> Result:
                lua = scripts.get(name, script)
                return wrk(
                    url, script=lua, connections=args.connections, duration=duration, pid=pid
                )

            # Warm every server (connections, caches, the producer's metadata), then alternate.
            for name, (proc, port) in servers.items():
                run(name, f"http://127.0.0.1:{port}", duration=3, pid=proc.pid)
            for _ in range(args.runs):
                for name, (proc, port) in servers.items():
                    url = f"http://127.0.0.1:{port}"
                    results[name].append(run(name, url, duration=args.duration, pid=proc.pid))
            produced = sum(asyncio.run(end_offsets(tenant, topic)).values()) - before
        finally:
            for proc, _ in servers.values():
                _stop(proc)
            log.close()
        print(f"{'':<22}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms/req':>12}")
        med = {name: _report(name, runs) for name, runs in results.items()}
        g = med["POST /v1/notices"]
        ratios = ", ".join(
            f"{g.rps / m.rps:.2f} of the {name}"
            for name, m in med.items()
            if name != "POST /v1/notices"
        )
        print(f"gateway throughput: {ratios}; targets: >= 2,000 req/s, p99 <= 50 ms")
        accepted = sum(
            r.requests for name, runs in results.items() if name.startswith("POST") for r in runs
        ) - sum(m.errors for name, m in med.items() if name.startswith("POST"))
        print(
            f"records produced to {topic} during the measured and warm-up runs: {produced:,} "
            f"(measured runs answered {accepted:,} requests with 202)"
        )
        if produced < accepted:
            print("ERROR: fewer records than 202s: the requests were not all new notices")
        if g.errors:
            print(f"WARNING: {g.errors} gateway responses were not 2xx; see {work / 'gateway.log'}")
        if args.profile:
            print(f"profile written to {args.profile}")


if __name__ == "__main__":
    main()
