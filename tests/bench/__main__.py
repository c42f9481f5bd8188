"""Run every benchmark in tests/bench, each in its own process (``make bench``).

    .venv/bin/python -m tests.bench [--only codec,policy] [--skip gateway] [--list]

Each module (``codec``, ``evidence``, ``gateway``, ``pipeline``, ``policy``, ...: every module here
with a ``main``) runs as ``python -m tests.bench.<name>`` with its own defaults, one after the
other, so they do not share the machine's cores; a failing one is reported and the rest still
run. Ends with a summary (exit status and duration of each) and a non-zero exit if any failed.
"""

from __future__ import annotations

import argparse
import pkgutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def modules() -> list[str]:
    """Benchmark modules: every module of this package that defines ``main``."""
    names = []
    for info in pkgutil.iter_modules([str(HERE)]):
        if info.name.startswith("_") or info.ispkg:
            continue
        source = (HERE / f"{info.name}.py").read_text(encoding="utf-8")
        if "\ndef main(" in source:
            names.append(info.name)
    return sorted(names)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", type=lambda s: s.split(","), help="comma-separated names")
    parser.add_argument("--skip", type=lambda s: s.split(","), default=[], help="names to skip")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args()
    names = modules()
    if args.list:
        print("\n".join(names))
        return
    unknown = set(args.only or []) - set(names)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; have {names}")
    chosen = [n for n in names if (not args.only or n in args.only) and n not in args.skip]
    results: list[tuple[str, int, float]] = []
    for name in chosen:
        print(f"\n===== tests.bench.{name} =====", flush=True)
        t0 = time.monotonic()
        try:
            code = subprocess.run(
                [sys.executable, "-m", f"tests.bench.{name}"], cwd=REPO
            ).returncode
        except KeyboardInterrupt:
            code = 130
        results.append((name, code, time.monotonic() - t0))
        if code == 130:
            break
    print("\n===== summary =====")
    for name, code, seconds in results:
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"{name:<12}{status:<22}{seconds:>8.0f} s")
    if any(code != 0 for _, code, _ in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
