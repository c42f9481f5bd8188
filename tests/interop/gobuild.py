"""Build a Go program of tests/interop offline (standard library only, GOPROXY=off), and talk
to it in JSON Lines."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest


def go_build(source: Path, directory: Path, *, needs: str = "Go") -> Path:
    """The binary built from ``source`` into ``directory`` (fails the test if Go is missing)."""
    if shutil.which("go") is None:
        pytest.fail(f"{needs} is a prerequisite of tests/interop")
    binary = directory / source.name
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOPROXY": "off", "CGO_ENABLED": "0"}
    proc = subprocess.run(
        ["go", "build", "-o", str(binary), "."],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=570,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return binary


def go_lines(binary: Path, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each request as one JSON line on the program's stdin; its answers, one per line."""
    proc = subprocess.run(
        [str(binary)],
        input=b"".join(orjson.dumps(r) + b"\n" for r in requests),
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return [orjson.loads(line) for line in proc.stdout.splitlines()]
