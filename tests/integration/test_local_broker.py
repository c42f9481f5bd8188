"""The embedded broker's faults: each a one-line error with a hint, a non-zero exit, no hang."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from puente.config import Settings
from puente.kafka.broker_config import BROKER_USER
from puente.kafka.clusterinfo import LocalKafkaError
from puente.kafka.local import LocalCluster
from puente.maven import MavenError, fetch_jars
from puente.secrets import SecretStore
from tests.harness import free_base_port, settings_with

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[2]
BOUND_S = 180.0  # no fault may take longer than this to report (never a hang)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_with(
        state_dir=tmp_path / "state",
        cache_dir=Settings().cache_dir,
        local={"client_port": free_base_port(), "start_timeout_s": 60},
    )


@pytest.fixture
def cluster(settings: Settings) -> Iterator[LocalCluster]:
    c = LocalCluster(settings)
    yield c
    c.down()


def _fake_bin(tmp_path: Path, name: str, script: str) -> str:
    """A PATH holding a fake ``name`` first, then only the system folders (no java/mvn)."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    exe = bindir / name
    exe.write_text("#!/bin/sh\n" + script + "\n")
    exe.chmod(0o755)
    return f"{bindir}:/usr/bin:/bin"


def test_up_status_down_and_restart(cluster: LocalCluster, settings: Settings) -> None:
    info = cluster.up()
    assert [s.running for s in cluster.status()] == [True]
    assert info.bootstrap.endswith(str(settings.local.client_port))
    secrets = settings.secrets_dir
    for f in secrets.iterdir():
        assert f.stat().st_mode & 0o077 == 0, f"{f} is readable by others"
    props = Path(info.nodes[0].directory) / "server.properties"
    assert props.stat().st_mode & 0o077 == 0
    assert cluster.up().cluster_id == info.cluster_id  # already running: nothing new
    stopped = cluster.down()
    assert stopped and not any(s.running for s in cluster.status())
    again = cluster.up()  # warm start on the same data (its time is a benchmark figure)
    assert again.cluster_id == info.cluster_id


def test_no_password_on_any_command_line(
    cluster: LocalCluster, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every process `puente kafka up` starts (the storage tool formatting the node with the
    admin's SCRAM credential, the broker) has no password in its command line, which every
    local user can read in /proc/<pid>/cmdline."""
    started: list[list[str]] = []

    class Recording(subprocess.Popen[Any]):
        def __init__(self, args: list[str], *rest: Any, **kwargs: Any) -> None:
            started.append([str(a) for a in args])
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    info = cluster.up()
    monkeypatch.undo()
    passwords = [cluster.admin_credential().password]
    passwords.append(SecretStore(settings.secrets_dir).require(BROKER_USER).password)
    jvms = [argv for argv in started if Path(argv[0]).name == "java" and "-version" not in argv]
    assert len(jvms) == 2  # the storage tool, then the broker
    for argv in started:  # (the message names the program, never the password)
        assert not any(p in a for p in passwords for a in argv), f"a password given to {argv[0]}"
    (pid,) = [n.pid for n in info.nodes]
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    assert not any(p in cmdline for p in passwords), "a password in the broker's command line"
    node_dir = Path(info.nodes[0].directory)
    assert not list(node_dir.glob("*.args"))  # the argument file is gone after formatting


def test_port_in_use(cluster: LocalCluster, settings: Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", settings.local.client_port))
        s.listen()
        t0 = time.monotonic()
        with pytest.raises(LocalKafkaError, match="in use") as info:
            cluster.up()
    assert "PUENTE_LOCAL__CLIENT_PORT" in (info.value.hint or "")
    assert time.monotonic() - t0 < BOUND_S


def test_half_formatted_state_directory(cluster: LocalCluster, settings: Settings) -> None:
    (settings.state_dir / "kafka" / "node-1").mkdir(parents=True)
    with pytest.raises(LocalKafkaError, match="half-formatted") as info:
        cluster.up()
    assert "puente kafka reset" in (info.value.hint or "")


def test_corrupt_cluster_file(cluster: LocalCluster, settings: Settings) -> None:
    (settings.state_dir / "kafka").mkdir(parents=True)
    (settings.state_dir / "kafka" / "cluster.json").write_text("{not json")
    with pytest.raises(LocalKafkaError, match="corrupt"):
        cluster.up()
    cluster.reset()  # the way out the hint names
    assert not (settings.state_dir / "kafka").exists()


def test_stale_pid_is_never_killed(cluster: LocalCluster) -> None:
    """A recorded pid that now belongs to another program is left alone."""
    info = cluster.up()
    cluster.down()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        info.nodes[0].pid = sleeper.pid
        info.save(cluster.info_path)
        assert cluster.down() == []
        assert sleeper.poll() is None
        assert not cluster.status()[0].running
    finally:
        sleeper.kill()


def test_broker_that_dies_during_start(cluster: LocalCluster) -> None:
    info = cluster.up()
    cluster.down()
    props = Path(info.nodes[0].directory) / "server.properties"
    props.write_text(props.read_text().replace("node.id=1", "node.id=not-a-number"))
    t0 = time.monotonic()
    with pytest.raises(LocalKafkaError, match="exited during start"):
        cluster.up()
    assert time.monotonic() - t0 < BOUND_S


def test_java_too_old(
    tmp_path: Path, cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _fake_bin(tmp_path, "java", "echo 'openjdk version \"11.0.21\" 2023-10-17' >&2")
    monkeypatch.setenv("PATH", path)
    with pytest.raises(LocalKafkaError, match="too old"):
        cluster.up()


def test_java_missing(
    tmp_path: Path, cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LocalKafkaError, match="Java is not installed"):
        cluster.up()


def test_maven_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MavenError, match="Maven"):
        fetch_jars("x", ["org.apache.kafka:kafka_2.13:4.1.1"], tmp_path / "cache")


def test_unresolvable_artifact(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(MavenError, match="could not fetch"):
        fetch_jars("x", ["org.example.puente:does-not-exist:0.0.1"], tmp_path / "cache")
    assert time.monotonic() - t0 < BOUND_S


def test_cli_reports_a_fault_in_one_line(tmp_path: Path) -> None:
    """The command exits non-zero with the reason code and a hint, not a traceback."""
    env = dict(os.environ, PUENTE_STATE_DIR=str(tmp_path / "state"))
    (tmp_path / "state" / "kafka" / "node-1").mkdir(parents=True)
    out = subprocess.run(
        [sys.executable, "-m", "puente", "kafka", "up"],
        capture_output=True,
        text=True,
        env=env,
        timeout=BOUND_S,
        cwd=REPO,
    )
    assert out.returncode == 2
    assert "[LOCAL_KAFKA_FAILED]" in out.stderr
    assert "hint: run `puente kafka reset`" in out.stderr
    assert "Traceback" not in out.stderr
