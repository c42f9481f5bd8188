"""Codec benchmark: Puente's single-object encode/decode of typical notices against fastavro's
plain schemaless writer/reader (no framing, no resolution) in the same run.

    .venv/bin/python -m tests.bench.codec [--records 200] [--runs 7]

Prints records/s (median of the runs, one core) and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro

from puente.codec.registry import Registry
from puente.codec.wire import decode, encode
from puente.resources import project_root
from puente.synth import Generator


def rate(fn: Callable[[Any], object], items: list[Any], runs: int) -> float:
    """Median records/s over ``runs`` passes (after one warm-up pass)."""
    for item in items:
        fn(item)
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for item in items:
            fn(item)
        rates.append(len(items) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    reg = Registry.load((project_root() or Path.cwd()) / "schemas")
    gen = Generator(2024)
    print(f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}")
    print(f"{'record':<22}{'op':<8}{'puente/s':>11}{'fastavro/s':>12}{'ratio':>7}{'bytes':>7}")
    for name, make in (
        ("puente.CaseNotice", gen.case_notice),
        ("puente.ConsularNotification", gen.consular_notification),
    ):
        sv = reg.latest(name)
        records = [make() for _ in range(args.records)]
        frames = [encode(reg, name, r) for r in records]
        bodies = [f[10:] for f in frames]
        parsed = sv.parsed

        def fa_write(r: Any, parsed: Any = parsed) -> bytes:
            out = io.BytesIO()
            fastavro.schemaless_writer(out, parsed, r)
            return out.getvalue()

        def fa_read(b: bytes, parsed: Any = parsed) -> object:
            return fastavro.schemaless_reader(io.BytesIO(b), parsed, None)

        def ours_write(r: Any, name: str = name) -> bytes:
            return encode(reg, name, r)

        def ours_read(f: bytes, name: str = name) -> object:
            return decode(reg, f, name)

        ours_enc = rate(ours_write, records, args.runs)
        base_enc = rate(fa_write, records, args.runs)
        ours_dec = rate(ours_read, frames, args.runs)
        base_dec = rate(fa_read, bodies, args.runs)
        size = int(statistics.median(len(f) for f in frames))
        short = name.split(".")[-1]
        for op, ours, base in (("encode", ours_enc, base_enc), ("decode", ours_dec, base_dec)):
            print(f"{short:<22}{op:<8}{ours:>11,.0f}{base:>12,.0f}{ours / base:>7.2f}{size:>7}")


if __name__ == "__main__":
    main()
