"""The embedded default: Apache Kafka in KRaft mode, run from Maven Central jars, no Docker.

``LocalCluster`` starts one combined broker+controller (or ``brokers=N`` of them on loopback, a
KRaft quorum of N voters) in the background, with data, logs, configs and generated credentials
in a project-local state directory:

    <state>/kafka/cluster.json        what was started: version, cluster id, ports, pids
    <state>/kafka/node-<id>/          server.properties (0600), data/, broker.log, jvm.log
    <state>/secrets/<user>.json       generated credentials (0600)

Every wait is bounded; every failure is a :class:`LocalKafkaError` with a hint.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from puente.config import Settings
from puente.kafka.broker_config import (
    ADMIN_USER,
    BROKER_USER,
    LOG4J2_YAML,
    NodePorts,
    node_ports,
    render_properties,
    server_properties,
)
from puente.kafka.clusterinfo import (
    HOST,
    ClusterInfo,
    LocalKafkaError,
    NodeInfo,
    cluster_info_path,
    read_cluster_info,
)
from puente.logs import get_logger
from puente.maven import classpath, fetch_jars
from puente.secrets import Credential, SecretStore, write_private

MIN_JAVA = 17
log = get_logger("kafka.local")


def kafka_coordinates(version: str) -> list[str]:
    """Maven coordinates of the broker, Kafka's own command-line tools (``puente kafka tool``)
    and the logging backend (Kafka 4.x logs via log4j2)."""
    return [
        f"org.apache.kafka:kafka_2.13:{version}",
        f"org.apache.kafka:kafka-tools:{version}",
        "org.apache.logging.log4j:log4j-slf4j-impl:2.24.3",
    ]


def java_major_version(java: str = "java") -> int:
    """The major version of ``java`` on PATH; LocalKafkaError if missing."""
    exe = shutil.which(java)
    if exe is None:
        raise LocalKafkaError(
            "Java is not installed (no `java` on PATH)",
            hint=f"install OpenJDK {MIN_JAVA}+ (Debian: apt-get install openjdk-17-jre-headless)",
        )
    out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise LocalKafkaError(f"cannot read the Java version from: {out.stderr.strip()[:200]}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


@dataclass(frozen=True)
class NodeStatus:
    node_id: int
    pid: int | None
    running: bool
    client_port: int
    rss_mb: float | None


def _process_marker(node_dir: Path) -> str:
    return f"-Dpuente.node={node_dir}"


def _is_our_process(pid: int, node_dir: Path) -> bool:
    """True if ``pid`` is alive and is the broker we started for ``node_dir`` (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return _process_marker(node_dir).encode() in cmdline


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    interesting = [t for t in text if " ERROR " in t or "Exception" in t or "Error:" in t]
    return " | ".join((interesting or text)[-lines:])


class LocalCluster:
    """A Kafka cluster of ``brokers`` combined nodes on loopback, owned by one state directory."""

    def __init__(
        self, settings: Settings, *, brokers: int | None = None, base_port: int | None = None
    ):
        """``brokers=None``: as many as the state directory holds, else one."""
        if brokers is not None and brokers < 1:
            raise ValueError("brokers must be >= 1")
        self.settings = settings
        self.base_port = base_port or settings.local.client_port
        self.root = settings.state_dir / "kafka"
        self.info_path = cluster_info_path(settings)
        self.secrets = SecretStore(settings.secrets_dir)
        if brokers is None:
            recorded = self.info() if self.info_path.is_file() else None
            brokers = len(recorded.nodes) if recorded else 1
        self.brokers = brokers
        # Children started by this object: poll() is the reliable liveness test while the JVM
        # starts (its /proc cmdline can briefly read empty).
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # --- queries -----------------------------------------------------------------------------

    def info(self) -> ClusterInfo | None:
        return read_cluster_info(self.settings)

    def status(self) -> list[NodeStatus]:
        info = self.info()
        if info is None:
            return []
        out = []
        for n in info.nodes:
            running = n.pid is not None and _is_our_process(n.pid, Path(n.directory))
            out.append(
                NodeStatus(
                    n.node_id,
                    n.pid if running else None,
                    running,
                    n.client_port,
                    _rss_mb(n.pid) if running and n.pid else None,
                )
            )
        return out

    def admin_credential(self) -> Credential:
        return self.secrets.require(ADMIN_USER)

    # --- lifecycle ---------------------------------------------------------------------------

    def up(self) -> ClusterInfo:
        """Start the cluster (formatting it the first time) and wait until it answers."""
        major = java_major_version()
        if major < MIN_JAVA:
            raise LocalKafkaError(
                f"Java {major} is too old; Kafka 4 needs Java {MIN_JAVA} or newer",
                hint="install OpenJDK 17 and put it first on PATH (or set JAVA_HOME)",
            )
        version = self.settings.kafka.version
        libs = fetch_jars(f"kafka-{version}", kafka_coordinates(version), self.settings.cache_dir)

        info = self.info()
        if info is not None:
            if len(info.nodes) != self.brokers:
                raise LocalKafkaError(
                    f"the state directory holds a {len(info.nodes)}-broker cluster, "
                    f"not {self.brokers}",
                    hint="run `puente kafka reset` first, or use another PUENTE_STATE_DIR",
                )
            if info.version != version:
                raise LocalKafkaError(
                    f"the state directory was formatted by Kafka {info.version}, not {version}",
                    hint="run `puente kafka reset` first, or set PUENTE_KAFKA__VERSION",
                )
            running = {s.node_id for s in self.status() if s.running}
            if len(running) == len(info.nodes):
                return info
            self._check_ports([p for p in info.ports() if p.node_id not in running])
        else:
            self._check_no_stale_data()
            self._check_ports(node_ports(self.base_port, self.brokers))
            info = self._format(libs, version)
        for node in info.nodes:
            if node.pid is not None and _is_our_process(node.pid, Path(node.directory)):
                continue
            node.pid = self._start_node(libs, node)
        info.save(self.info_path)
        try:
            self._wait_ready(info)
        except LocalKafkaError:
            self.down()
            raise
        return info

    def down(self, *, timeout_s: float = 30.0) -> list[int]:
        """Stop the brokers this state directory started (SIGTERM, then SIGKILL); their pids."""
        info = self.info()
        if info is None:
            return []
        stopped = []
        for node in info.nodes:
            if node.pid is None or not _is_our_process(node.pid, Path(node.directory)):
                continue
            os.kill(node.pid, signal.SIGTERM)
            stopped.append(node.pid)
        deadline = time.monotonic() + timeout_s
        for node in info.nodes:
            if node.pid not in stopped:
                continue
            while _is_our_process(node.pid, Path(node.directory)):
                if time.monotonic() > deadline:
                    os.kill(node.pid, signal.SIGKILL)
                    break
                time.sleep(0.2)
            node.pid = None
        info.save(self.info_path)
        return stopped

    def kill_node(self, node_id: int) -> int:
        """SIGKILL one node (failure tests); returns its pid."""
        info = self._require_info()
        node = next(n for n in info.nodes if n.node_id == node_id)
        if node.pid is None or not _is_our_process(node.pid, Path(node.directory)):
            raise LocalKafkaError(f"node {node_id} is not running")
        pid = node.pid
        os.kill(pid, signal.SIGKILL)
        child = self._children.pop(pid, None)
        if child is not None:
            child.wait(timeout=10)  # reap it, so no zombie keeps the pid
        deadline = time.monotonic() + 10
        while _is_our_process(pid, Path(node.directory)) and time.monotonic() < deadline:
            time.sleep(0.05)
        node.pid = None
        info.save(self.info_path)
        return pid

    def start_node(self, node_id: int) -> None:
        """Restart one stopped node and wait for the cluster to answer."""
        info = self._require_info()
        libs = fetch_jars(
            f"kafka-{info.version}", kafka_coordinates(info.version), self.settings.cache_dir
        )
        node = next(n for n in info.nodes if n.node_id == node_id)
        node.pid = self._start_node(libs, node)
        info.save(self.info_path)
        self._wait_ready(info)

    def reset(self) -> None:
        """Stop the brokers and delete their state (data, configs, cluster.json)."""
        with contextlib.suppress(LocalKafkaError):
            # A corrupt cluster.json names no process we could safely stop.
            self.down()
        if self.root.exists():
            shutil.rmtree(self.root)

    # --- internals ---------------------------------------------------------------------------

    def _require_info(self) -> ClusterInfo:
        info = self.info()
        if info is None:
            raise LocalKafkaError(
                "no local Kafka in this state directory", hint="run `puente kafka up`"
            )
        return info

    def _check_no_stale_data(self) -> None:
        if self.root.exists() and any(self.root.iterdir()):
            raise LocalKafkaError(
                f"{self.root} holds a half-formatted broker (no cluster.json)",
                hint="run `puente kafka reset` to delete it, then `puente kafka up`",
            )

    def _check_ports(self, ports: list[NodePorts]) -> None:
        for p in ports:
            for port in (p.client, p.internal, p.controller):
                if not _port_free(port):
                    raise LocalKafkaError(
                        f"port {HOST}:{port} is in use by another program",
                        hint="stop it, or choose other ports with PUENTE_LOCAL__CLIENT_PORT "
                        "(after `puente kafka reset`)",
                    )

    def _format(self, libs: Path, version: str) -> ClusterInfo:
        broker, _ = self.secrets.get_or_create(BROKER_USER)
        admin, _ = self.secrets.get_or_create(ADMIN_USER)
        ports = node_ports(self.base_port, self.brokers)
        cluster_id = _random_cluster_id()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "log4j2.yaml").write_text(LOG4J2_YAML)
        nodes, formatting = [], []
        for p in ports:
            node_dir = (self.root / f"node-{p.node_id}").resolve()
            props = server_properties(
                p, ports, host=HOST, log_dir=str(node_dir / "data"), broker=broker
            )
            node_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_private(node_dir / "server.properties", render_properties(props).encode())
            # The admin's password reaches the storage tool in an argument file (0600), never
            # on its command line: /proc/<pid>/cmdline is readable by every local user.
            args = storage_format_args(cluster_id, node_dir / "server.properties", admin)
            argfile = java_argfile(node_dir / "format.args", args)
            cmd = [*self._java(libs, node_dir), f"@{argfile}"]
            # Each format is a JVM start; run them side by side.
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            formatting.append((p, proc, argfile))
            nodes.append(NodeInfo(p.node_id, p.client, p.internal, p.controller, str(node_dir)))
        for p, proc, argfile in formatting:
            try:
                output, _ = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                output = b"timed out after 120 s"
            finally:
                argfile.unlink(missing_ok=True)
            if proc.returncode != 0:
                last = output.decode(errors="replace").strip().splitlines()[-1:]
                raise LocalKafkaError(
                    f"formatting node {p.node_id} failed: {last}",
                    hint="run `puente kafka reset` and retry",
                )
        info = ClusterInfo(version=version, cluster_id=cluster_id, nodes=nodes)
        info.save(self.info_path)
        log.info("kafka.formatted", cluster_id=cluster_id, nodes=len(nodes))
        return info

    def _java(self, libs: Path, node_dir: Path) -> list[str]:
        heap = self.settings.local.heap_mb
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else "java"
        return [
            java,
            f"-Xms{heap // 2}m",
            f"-Xmx{heap}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:MaxDirectMemorySize=256m",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.root.resolve() / 'log4j2.yaml'}",
            f"-Dpuente.logdir={node_dir}",
            _process_marker(node_dir),
            "-cp",
            classpath(libs),
        ]

    def _start_node(self, libs: Path, node: NodeInfo) -> int:
        node_dir = Path(node.directory)
        meta = node_dir / "data" / "meta.properties"
        if not meta.is_file():
            raise LocalKafkaError(
                f"node {node.node_id}'s data directory is not formatted ({meta} missing)",
                hint="run `puente kafka reset` to delete the local broker's state and start anew",
            )
        cmd = [*self._java(libs, node_dir), "kafka.Kafka", str(node_dir / "server.properties")]
        with open(node_dir / "jvm.log", "ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=node_dir,
            )
        self._children[proc.pid] = proc
        log.info("kafka.node_started", node_id=node.node_id, pid=proc.pid)
        return proc.pid

    def _alive(self, node: NodeInfo) -> bool:
        if node.pid is None:
            return False
        child = self._children.get(node.pid)
        if child is not None:
            return child.poll() is None
        return _is_our_process(node.pid, Path(node.directory))

    def _wait_ready(self, info: ClusterInfo) -> None:
        from puente.kafka.admin import admin_client  # kafka-python import is slow; defer
        from puente.kafka.connection import KafkaEndpoint

        deadline = time.monotonic() + self.settings.local.start_timeout_s
        for node in info.nodes:
            node_dir = Path(node.directory)
            while not _port_open(node.client_port):
                if not self._alive(node):
                    raise LocalKafkaError(
                        f"broker node {node.node_id} exited during start: "
                        f"{_tail(node_dir / 'broker.log')} {_tail(node_dir / 'jvm.log')}",
                        hint=f"see {node_dir / 'broker.log'}; `puente kafka reset` starts anew",
                    )
                if time.monotonic() > deadline:
                    raise LocalKafkaError(
                        f"broker node {node.node_id} did not open port {node.client_port} within "
                        f"{self.settings.local.start_timeout_s:.0f} s",
                        hint=f"see {node_dir / 'broker.log'}",
                    )
                time.sleep(0.2)
        # The port is open; now a real metadata request must see every broker registered.
        admin = self.admin_credential()
        last_error = ""
        while time.monotonic() < deadline:
            try:
                with admin_client(
                    KafkaEndpoint(info.bootstrap, request_timeout_s=5), admin
                ) as client:
                    brokers = client.describe_cluster().get("brokers", [])
                    if len(brokers) == len(info.nodes):
                        return
                    last_error = f"{len(brokers)} of {len(info.nodes)} brokers registered"
            except Exception as exc:  # any failure here means "not ready yet"
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.5)
        raise LocalKafkaError(
            f"Kafka did not answer a metadata request within "
            f"{self.settings.local.start_timeout_s:.0f} s ({last_error})",
            hint=f"see the broker logs under {self.root}",
        )


def storage_format_args(cluster_id: str, config: Path, admin: Credential) -> list[str]:
    """The main class and arguments of ``kafka-storage format`` for one node, with the admin's
    SCRAM-SHA-512 credential (a secret: pass them in :func:`java_argfile`, never on a command
    line)."""
    scram = f"SCRAM-SHA-512=[name={admin.username},password={admin.password}]"
    return [
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id,
        "-c",
        str(config),
        "--add-scram",
        scram,
    ]


def java_argfile(path: Path, args: list[str]) -> Path:
    """Write ``args`` as a Java launcher argument file (``java ... @path``), owner-only.

    The launcher expands the file itself, so the arguments never appear in the process's
    command line (world-readable in /proc). Each argument is quoted, with backslash and double
    quote escaped, as the launcher's argument-file syntax requires.
    """
    quoted = ['"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"' for a in args]
    write_private(path, ("\n".join(quoted) + "\n").encode())
    return path


def _random_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as StorageTool).

    Like Kafka's own Uuid.randomUuid, ids starting with '-' are drawn again: the storage tool
    would read one as a command-line option.
    """
    import base64

    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid
