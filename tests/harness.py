"""A real Kafka for tests and benchmarks, and isolated tenants on it.

Which broker (decided once per session):
1. ``PUENTE_KAFKA_BOOTSTRAP`` (with ``PUENTE_KAFKA_USERNAME``/``PUENTE_KAFKA_PASSWORD`` of a super
   user) — an existing cluster;
2. else, when a Docker engine answers, testcontainers' apache/kafka image configured like the
   local broker;
3. else the local broker from Maven Central jars (``puente.kafka.local``), on free ports in a
   temporary state directory, stopped at the end of the session.

Each test provisions its own tenant — a unique topic/principal prefix — so tests are independent
and run in any order.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from puente.config import Settings
from puente.kafka.admin import admin_client
from puente.kafka.connection import KafkaEndpoint
from puente.kafka.local import LocalCluster
from puente.kafka.plan import Plan, build_plan
from puente.kafka.provision import apply, diff, read_state
from puente.secrets import Credential, SecretStore
from puente.topics import Naming, TopicKind


def settings_with(**values: object) -> Settings:
    """Settings as a Puente process reads them, with ``values`` on top. A section given as a dict
    (``kafka={...}``, ``local={...}``) is merged with that section's values from the environment
    (``PUENTE_KAFKA__SECURITY_PROTOCOL``, ...) and the config file, as pydantic-settings does."""
    # pydantic-settings validates (and merges) a dict for a nested section; the __init__ signature
    # pydantic declares for type checkers admits only the section's model.
    return Settings(**values)  # type: ignore[arg-type]


def free_base_port(span: int = 30) -> int:
    """A base port with ``span`` free ports after it (loopback), below the kernel's ephemeral
    range: outgoing connections (every Kafka client) take ports from that range, and one could
    take a broker's port between this check and the broker binding it."""
    low, high = 20000, min(60000, _ephemeral_start()) - span
    for _ in range(200):
        base = random.randrange(low, high)
        ok = True
        for port in range(base, base + span):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range on loopback")


def _ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (Linux; 32768 where it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class Tenant:
    """Members provisioned under one unique prefix, with their generated credentials."""

    naming: Naming
    members: tuple[str, ...]
    plan: Plan
    secrets: SecretStore
    endpoint: KafkaEndpoint

    def topic(self, kind: TopicKind, member: str | None = None) -> str:
        return self.naming.topic(kind, member)

    def member(self, code: str) -> Credential:
        return self.secrets.require(self.naming.member_principal(code))

    def service(self, name: str) -> Credential:
        return self.secrets.require(self.naming.service_principal(name))

    def node(self, code: str) -> Credential:
        """Member ``code``'s node principal."""
        return self.secrets.require(self.naming.node_principal(code))

    def tracker(self, code: str) -> Credential:
        """Member ``code``'s receipt tracker principal."""
        return self.secrets.require(self.naming.tracker_principal(code))

    def witness(self, code: str) -> Credential:
        """Member ``code``'s witness principal."""
        return self.secrets.require(self.naming.witness_principal(code))

    def gateway(self, code: str) -> Credential:
        """Member ``code``'s gateway principal."""
        return self.secrets.require(self.naming.gateway_principal(code))


@dataclass
class KafkaHarness:
    endpoint: KafkaEndpoint
    admin: Credential
    secrets_dir: Path
    brokers: int
    source: str  # "env", "testcontainers" or "local"
    cluster: LocalCluster | None = None

    def provision(
        self, members: Sequence[str], *, partitions: int = 2, prefix: str | None = None
    ) -> Tenant:
        naming = Naming(prefix or f"t{uuid.uuid4().hex[:10]}")
        secrets = SecretStore(self.secrets_dir / naming.prefix)
        with admin_client(self.endpoint, self.admin) as admin:
            plan = build_plan(naming, members, partitions=partitions, brokers=self.brokers)
            apply(admin, plan, diff(plan, read_state(admin, plan)), secrets)
        return Tenant(naming, tuple(members), plan, secrets, self.endpoint)

    def settings_for(self, tenant: Tenant, **overrides: object) -> Settings:
        """Settings a Puente process would use to run against this tenant."""
        values: dict[str, object] = {
            "state_dir": self.secrets_dir.parent / f"state-{tenant.naming.prefix}",
            "secrets_dir": tenant.secrets.directory,
            "kafka": {
                "bootstrap": self.endpoint.bootstrap,
                "topic_prefix": tenant.naming.prefix,
                "username": self.admin.username,
                "password": self.admin.password,
            },
        }
        values |= overrides
        return settings_with(**values)


@contextmanager
def kafka_harness(brokers: int = 1) -> Iterator[KafkaHarness]:
    """The session's broker, chosen as the module docstring says."""
    workdir = Path(tempfile.mkdtemp(prefix="puente-test-"))
    try:
        bootstrap = os.environ.get("PUENTE_KAFKA_BOOTSTRAP")
        if bootstrap:
            admin = Credential(
                os.environ["PUENTE_KAFKA_USERNAME"], os.environ["PUENTE_KAFKA_PASSWORD"]
            )
            endpoint = KafkaEndpoint(bootstrap)
            with admin_client(endpoint, admin) as a:
                count = len(a.describe_cluster()["brokers"])
            yield KafkaHarness(endpoint, admin, workdir / "secrets", count, "env")
        elif brokers == 1 and docker_available():
            with _testcontainers_kafka(workdir) as harness:
                yield harness
        else:
            local = settings_with(
                state_dir=workdir,
                cache_dir=Settings().cache_dir,
                local={"client_port": free_base_port(10 * brokers)},
            )
            cluster = LocalCluster(local, brokers=brokers)
            info = cluster.up()
            try:
                yield KafkaHarness(
                    KafkaEndpoint(info.bootstrap),
                    cluster.admin_credential(),
                    workdir / "secrets",
                    brokers,
                    "local",
                    cluster,
                )
            finally:
                cluster.down()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def _testcontainers_kafka(workdir: Path) -> Iterator[KafkaHarness]:
    """apache/kafka in Docker with the same listeners, SASL and ACL settings as the local broker.

    Ports are mapped one-to-one so the advertised listeners work from the host. The admin's
    SCRAM credential is created through the INTERNAL listener as the broker super user.
    Not exercised on machines without a Docker engine (the local broker is used there).
    """
    from kafka.admin import ScramMechanism, UserScramCredentialUpsertion
    from testcontainers.core.container import DockerContainer

    from puente.kafka.broker_config import ADMIN_USER, BROKER_USER, node_ports, server_properties
    from puente.secrets import new_password

    base = free_base_port()
    ports = node_ports(base, 1)
    broker = Credential(BROKER_USER, new_password())
    admin = Credential(ADMIN_USER, new_password())
    props = server_properties(
        ports[0], ports, host="0.0.0.0", log_dir="/var/lib/kafka/data", broker=broker
    )
    props["advertised.listeners"] = (
        f"CLIENT://127.0.0.1:{ports[0].client},INTERNAL://127.0.0.1:{ports[0].internal}"
    )
    props["controller.quorum.voters"] = f"1@localhost:{ports[0].controller}"
    container = DockerContainer("apache/kafka:4.1.1")
    for key, value in props.items():
        container = container.with_env(
            "KAFKA_" + key.upper().replace(".", "_").replace("-", "___"), value
        )
    container = container.with_env("CLUSTER_ID", "puente-test-cluster-0001")
    for port in (ports[0].client, ports[0].internal):
        container = container.with_bind_ports(port, port)
    with container:
        internal = KafkaEndpoint(
            f"127.0.0.1:{ports[0].internal}", sasl_mechanism="PLAIN", request_timeout_s=60
        )
        with admin_client(internal, broker) as a:
            a.alter_user_scram_credentials(
                [
                    UserScramCredentialUpsertion(
                        ADMIN_USER, ScramMechanism.SCRAM_SHA_512, admin.password
                    )
                ]
            )
        yield KafkaHarness(
            KafkaEndpoint(f"127.0.0.1:{ports[0].client}"),
            admin,
            workdir / "secrets",
            1,
            "testcontainers",
        )
