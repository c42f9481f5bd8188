"""The shape of a production cluster on one machine: `puente kafka up --brokers 3`.

Three combined broker+controller JVMs on loopback (distinct node ids, ports and data
directories) form one 3-voter KRaft quorum with the single broker's SASL/SCRAM and ACL set-up;
topics provisioned on it get replication factor 3 and min.insync.replicas 2; producers use
acks=all with idempotence. Broker-failure behaviour (issue 8, item 2) is tested elsewhere.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from puente.config import Settings
from puente.deploy.compose import node_properties
from puente.kafka.admin import admin_client
from puente.kafka.broker_config import (
    ADMIN_USER,
    BROKER_USER,
    LOG4J2_YAML,
    node_ports,
    render_properties,
)
from puente.kafka.clients import consumer, producer, start
from puente.kafka.clusterinfo import ClusterInfo
from puente.kafka.connection import KafkaEndpoint
from puente.kafka.local import (
    LocalCluster,
    java_argfile,
    kafka_coordinates,
    storage_format_args,
)
from puente.maven import classpath, fetch_jars
from puente.secrets import Credential, new_password, write_private
from puente.topics import INGRESS
from tests.harness import KafkaHarness, Tenant, free_base_port, settings_with

pytestmark = pytest.mark.kafka
NODES = 3


def _read_properties(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key] = value
    return out


def _wait_for_brokers(
    endpoint: KafkaEndpoint, cred: Credential, count: int, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            with admin_client(endpoint, cred) as admin:
                brokers = admin.describe_cluster()["brokers"]
                if len(brokers) == count:
                    return
                last = f"{len(brokers)} brokers"
        except Exception as exc:  # not up yet
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(1)
    raise AssertionError(f"{count} brokers did not answer within {timeout_s:.0f} s ({last})")


# First in this module, so its three JVMs are gone before the module's cluster starts.
def test_compose_node_configuration_forms_a_secure_quorum(tmp_path: Path) -> None:
    """deploy/compose's broker configuration, run on loopback: the rendered properties (broker
    password through FileConfigProvider from a secret file) and start-kafka.sh's format step
    (admin SCRAM credential) give a 3-voter cluster with the local broker's security."""
    settings = Settings()
    version = settings.kafka.version
    libs = fetch_jars(f"kafka-{version}", kafka_coordinates(version), settings.cache_dir)
    ports = node_ports(free_base_port(10 * NODES), NODES)
    voters = [("127.0.0.1", p) for p in ports]
    broker = Credential(BROKER_USER, new_password())
    admin = Credential(ADMIN_USER, new_password())
    secret = tmp_path / "secrets" / "kafka-broker.properties"
    write_private(secret, f"username={broker.username}\npassword={broker.password}\n".encode())
    (tmp_path / "log4j2.yaml").write_text(LOG4J2_YAML)
    jvm = [
        shutil.which("java") or "java",
        "-Xms256m",
        "-Xmx384m",
        f"-Dlog4j2.configurationFile={tmp_path / 'log4j2.yaml'}",
        "-cp",
        classpath(libs),
    ]
    configs = []
    for p in ports:
        node_dir = tmp_path / f"node-{p.node_id}"
        node_dir.mkdir()
        props = node_properties(
            p, voters, bind="127.0.0.1", log_dir=str(node_dir / "data"), broker_secret=str(secret)
        )
        text = render_properties(props)
        assert broker.password not in text
        (node_dir / "server.properties").write_text(text)
        configs.append(node_dir / "server.properties")
    # Format the three nodes at once, as start-kafka.sh does in each container.
    cluster_id = "Y29tcG9zZS1zaGFwZS10ZQ"
    # The admin's password travels in an argument file, as in start-kafka.sh and LocalCluster.
    argfiles = [
        java_argfile(cfg.parent / "format.args", storage_format_args(cluster_id, cfg, admin))
        for cfg in configs
    ]
    formats = [
        subprocess.Popen(
            [*jvm, f"-Dpuente.logdir={argfile.parent}", f"@{argfile}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for argfile in argfiles
    ]
    for proc in formats:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for cfg in configs:
            with open(cfg.parent / "jvm.log", "ab") as log:
                procs.append(
                    subprocess.Popen(
                        [*jvm, f"-Dpuente.logdir={cfg.parent}", "kafka.Kafka", str(cfg)],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
        bootstrap = ",".join(f"127.0.0.1:{p.client}" for p in ports)
        _wait_for_brokers(KafkaEndpoint(bootstrap, request_timeout_s=5), admin, NODES, 150)
        with admin_client(KafkaEndpoint(bootstrap), admin) as client:
            quorum = client.describe_metadata_quorum()["topics"][0]["partitions"][0]
            assert {v["replica_id"] for v in quorum["current_voters"]} == {1, 2, 3}
        # The broker principal authenticates with the password Kafka read from the secret file.
        internal = KafkaEndpoint(f"127.0.0.1:{ports[0].internal}", sasl_mechanism="PLAIN")
        with admin_client(internal, broker) as client:
            assert len(client.describe_cluster()["brokers"]) == NODES
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, ClusterInfo]]:
    """A 3-node local cluster in its own state directory, on free loopback ports."""
    settings = settings_with(
        state_dir=tmp_path_factory.mktemp("cluster3"),
        cache_dir=Settings().cache_dir,
        local={"client_port": free_base_port(10 * NODES), "start_timeout_s": 150},
    )
    local = LocalCluster(settings, brokers=NODES)
    t0 = time.monotonic()
    info = local.up()
    print(f"3-node cluster ready in {time.monotonic() - t0:.1f} s")
    try:
        yield local, info
    finally:
        local.down()


@pytest.fixture(scope="module")
def harness(
    cluster: tuple[LocalCluster, ClusterInfo], tmp_path_factory: pytest.TempPathFactory
) -> KafkaHarness:
    local, info = cluster
    return KafkaHarness(
        KafkaEndpoint(info.bootstrap),
        local.admin_credential(),
        tmp_path_factory.mktemp("secrets"),
        NODES,
        "local",
        local,
    )


@pytest.fixture(scope="module")
def tenant(harness: KafkaHarness) -> Tenant:
    """Two members provisioned with build_plan(brokers=3), as `puente kafka provision` does."""
    return harness.provision(["AR", "MX"], partitions=2)


def test_nodes_are_distinct_and_share_one_quorum(cluster: tuple[LocalCluster, ClusterInfo]) -> None:
    local, info = cluster
    assert [n.node_id for n in info.nodes] == [1, 2, 3]
    ports = [p for n in info.nodes for p in (n.client_port, n.internal_port, n.controller_port)]
    assert len(set(ports)) == 9
    assert len({n.directory for n in info.nodes}) == NODES
    assert all(s.running for s in local.status())
    props = [_read_properties(Path(n.directory) / "server.properties") for n in info.nodes]
    voters = {p["controller.quorum.voters"] for p in props}
    assert voters == {",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in info.nodes)}
    for p, n in zip(props, info.nodes, strict=True):
        assert p["node.id"] == str(n.node_id)
        assert p["log.dirs"].startswith(n.directory)
        # The single broker's security set-up, unchanged by the node count.
        assert p["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
        assert p["authorizer.class.name"].endswith("StandardAuthorizer")
        assert p["super.users"] == f"User:{BROKER_USER};User:{ADMIN_USER}"
        assert p["allow.everyone.if.no.acl.found"] == "false"
        # Cluster-wide defaults for three nodes, internal topics included.
        assert p["default.replication.factor"] == "3"
        assert p["min.insync.replicas"] == "2"
        assert p["offsets.topic.replication.factor"] == "3"
        assert p["transaction.state.log.replication.factor"] == "3"
        assert p["transaction.state.log.min.isr"] == "2"


def test_three_voter_quorum_answers(cluster: tuple[LocalCluster, ClusterInfo]) -> None:
    local, info = cluster
    with admin_client(KafkaEndpoint(info.bootstrap), local.admin_credential()) as admin:
        brokers = admin.describe_cluster()["brokers"]
        assert sorted(b["broker_id"] for b in brokers) == [1, 2, 3]
        assert not any(b["is_fenced"] for b in brokers)
        quorum = admin.describe_metadata_quorum()
    partition = quorum["topics"][0]["partitions"][0]
    voters = {v["replica_id"]: v for v in partition["current_voters"]}
    assert set(voters) == {1, 2, 3}
    assert partition["leader_id"] in voters
    # Every voter has replicated the metadata log (up to what was committed a moment ago).
    hw = partition["high_watermark"]
    assert hw > 0
    assert all(v["log_end_offset"] >= hw - 50 for v in voters.values()), voters


def test_each_node_answers_and_authenticates_alone(
    cluster: tuple[LocalCluster, ClusterInfo],
) -> None:
    """Every node's client listener takes SCRAM and sees all three brokers."""
    local, info = cluster
    for node in info.nodes:
        endpoint = KafkaEndpoint(f"127.0.0.1:{node.client_port}", request_timeout_s=10)
        with admin_client(endpoint, local.admin_credential()) as admin:
            assert len(admin.describe_cluster()["brokers"]) == NODES


def test_provisioned_topics_have_rf3_and_min_isr2(harness: KafkaHarness, tenant: Tenant) -> None:
    names = [t.name for t in tenant.plan.topics]
    assert all(t.replication == 3 for t in tenant.plan.topics)
    assert all(t.configs["min.insync.replicas"] == "2" for t in tenant.plan.topics)
    with admin_client(harness.endpoint, harness.admin) as admin:
        described = admin.describe_topics(names)
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
        )["topic"]
    assert {t["name"] for t in described} == set(names)
    for t in described:
        assert t["partitions"], t["name"]
        for p in t["partitions"]:
            assert sorted(p["replica_nodes"]) == [1, 2, 3], (t["name"], p)
            assert sorted(p["isr_nodes"]) == [1, 2, 3], (t["name"], p)
    # Leaders spread over the nodes rather than piling onto one.
    leaders = {p["leader_id"] for t in described for p in t["partitions"]}
    assert len(leaders) >= 2
    for name in names:
        assert configs[name]["min.insync.replicas"]["value"] == "2", name


async def test_producers_use_acks_all_and_idempotence(tenant: Tenant) -> None:
    cred: Credential = tenant.member("MX")
    topic = tenant.topic(INGRESS, "MX")
    p = producer(tenant.endpoint, cred)
    # acks=all is -1 on the wire; idempotence gives the producer a transaction manager.
    assert p._sender._acks == -1
    assert p._txn_manager is not None
    await start(p, tenant.endpoint, cred)
    try:
        meta = await p.send_and_wait(topic, b"shape", key=uuid.uuid4().bytes)
        assert meta.offset >= 0
        assert p._txn_manager.producer_id >= 0  # the brokers assigned a producer id
    finally:
        await p.stop()
    # MX's node reads MX's ingress; a read_committed consumer as that node sees the record.
    svc = tenant.node("MX")
    group = f"{tenant.naming.node_group('MX')}.shape"
    c = consumer(tenant.endpoint, svc, topic, group_id=group)
    await start(c, tenant.endpoint, svc)
    try:
        # Joining the group and finding the coordinator can take a few rounds on 3 nodes.
        values: list[bytes] = []
        deadline = time.monotonic() + 60
        while b"shape" not in values and time.monotonic() < deadline:
            batch = await c.getmany(timeout_ms=2_000)
            values += [r.value for records in batch.values() for r in records]
        assert b"shape" in values
    finally:
        await c.stop()
