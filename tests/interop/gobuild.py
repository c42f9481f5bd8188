"""Build a Go program of tests/interop offline (standard library only, GOPROXY=off)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

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
