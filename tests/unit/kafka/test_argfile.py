"""Secrets reach the Kafka tools in Java argument files, never on a command line.

``java_argfile`` is checked against the real Java launcher (Java is a prerequisite of the local
broker): the launcher must read back exactly the arguments written, whatever they contain.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from puente.kafka.local import java_argfile

TRICKY = ["plain", "with space", 'quote " inside', "back\\slash", 'both \\" end\\', "#hash", ""]


def parse_argfile(text: str) -> list[str]:
    """The arguments of an argument file written one quoted argument per line (the only form
    java_argfile and start-kafka.sh write), unescaped as the Java launcher does."""
    out = []
    for line in text.splitlines():
        assert line.startswith('"') and line.endswith('"'), line
        body, arg, i = line[1:-1], [], 0
        while i < len(body):
            if body[i] == "\\":
                i += 1
            arg.append(body[i])
            i += 1
        out.append("".join(arg))
    return out


def test_java_argfile_is_private_and_round_trips(tmp_path: Path) -> None:
    path = java_argfile(tmp_path / "a.args", TRICKY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert parse_argfile(path.read_text()) == TRICKY


@pytest.mark.skipif(shutil.which("java") is None, reason="Java is not installed")
def test_the_java_launcher_reads_back_every_argument(tmp_path: Path) -> None:
    # System properties from the argument file, printed by the launcher itself.
    args = [f"-Dpuente.arg{i}=<{a}>" for i, a in enumerate(TRICKY)]
    path = java_argfile(tmp_path / "a.args", [*args, "-XshowSettings:properties", "-version"])
    proc = subprocess.run(
        ["java", f"@{path}"], capture_output=True, text=True, timeout=60, check=True
    )
    shown = dict(
        line.strip().split(" = ", 1)
        for line in proc.stderr.splitlines()
        if line.strip().startswith("puente.arg")
    )
    assert shown == {f"puente.arg{i}": f"<{a}>" for i, a in enumerate(TRICKY)}
