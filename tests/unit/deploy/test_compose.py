"""deploy/compose: valid Compose, the local broker's configuration, secrets only from files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from puente.deploy import contract
from puente.deploy.compose import BOOTSTRAP, container_ports, node_properties
from puente.deploy.material import compose_secrets
from puente.evidence.keystore import TRUST_LIST_FILE
from puente.kafka.broker_config import ADMIN_USER, server_properties
from puente.secrets import Credential, SecretStore
from tests.unit.deploy.inverse import secret_file_names
from tests.unit.deploy.schema_tools import compose_errors
from tests.unit.kafka.test_argfile import parse_argfile

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "deploy" / "compose"
# The keys a container node sets differently from the loopback node of `puente kafka up`.
OVERRIDDEN = {
    "controller.quorum.voters",
    "listeners",
    "advertised.listeners",
    "log.dirs",
    "listener.name.internal.plain.sasl.jaas.config",
    "listener.name.controller.plain.sasl.jaas.config",
    "config.providers",
    "config.providers.file.class",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def inputs() -> contract.DeployInputs:
    return contract.deploy_inputs(REPO / "policies")


def _properties(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    )


def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    assert compose_errors(compose) == []


def test_compose_schema_check_is_real(compose: dict[str, Any]) -> None:
    bad = json.loads(json.dumps(compose))
    bad["services"]["node-mx"]["replica"] = 2  # not a Compose key
    bad["services"]["gateway-mx"]["ports"] = "8443:8443"  # must be a list
    bad["secrets"]["admin"]["filename"] = "x"
    errors = compose_errors(bad)
    assert len(errors) >= 3, errors


def test_three_kafka_nodes_a_node_and_a_gateway_per_state_and_provisioning(
    compose: dict[str, Any], inputs: contract.DeployInputs
) -> None:
    services = compose["services"]
    nodes = {f"node-{m.lower()}": m for m in inputs.members}
    trackers = {f"tracker-{m.lower()}": m for m in inputs.members}
    gateways = {f"gateway-{m.lower()}": m for m in inputs.members}
    witnesses = {f"witness-{m.lower()}": m for m in inputs.members}
    assert len(nodes) == len(trackers) == len(gateways) == len(witnesses) == 20
    assert set(services) == {
        *("kafka-1", "kafka-2", "kafka-3", "provision", "warnings"),
        *gateways,
        *nodes,
        *trackers,
        *witnesses,
    }
    for name, member in trackers.items():
        tracker = services[name]
        assert tracker["command"] == list(contract.tracker_command(member))
        assert tracker["deploy"]["replicas"] == contract.TRACKER_REPLICAS == 1
        # Its own credential; its state's node keys, read-only, to sign overdue reports.
        assert [s["source"] for s in tracker["secrets"]] == [f"puente-tracker-{member.lower()}"]
        assert f"./secrets/nodes/{member}/keys:{contract.NODE_KEYS_DIR}:ro" in tracker["volumes"]
    for name, member in witnesses.items():
        witness = services[name]
        assert witness["command"] == list(contract.witness_command(member))
        assert witness["deploy"]["replicas"] == contract.WITNESS_REPLICAS == 1
        assert witness["environment"][contract.ENV_WITNESS_METRICS_PORT] == "9466"
        # Its own credential; its own key store (the witness key alone), read-only; not the
        # node's.
        assert [s["source"] for s in witness["secrets"]] == [f"puente-witness-{member.lower()}"]
        keys = f"./secrets/witnesses/{member}/keys:{contract.WITNESS_KEYS_DIR}:ro"
        assert keys in witness["volumes"]
        assert witness["environment"][contract.ENV_WITNESS_KEYS_DIR] == contract.WITNESS_KEYS_DIR
        assert not [v for v in witness["volumes"] if "/nodes/" in v or "/roots/" in v]
    for i in (1, 2, 3):
        node = services[f"kafka-{i}"]
        assert node["image"] == contract.KAFKA_IMAGE
        assert node["image"].startswith("apache/kafka:")
        assert node["hostname"] == f"kafka-{i}"
        assert {c["source"] for c in node["configs"]} == {f"kafka-node-{i}", "kafka-start"}
        assert any(v.startswith(f"kafka-{i}-data:") for v in node["volumes"])
        assert node["healthcheck"]["test"]
    for name, member in nodes.items():
        node = services[name]
        # One state per process: `puente serve node --as CC`, never several --as in one.
        assert node["command"] == [*contract.NODE_COMMAND, "--as", member]
        assert node["stop_signal"] == "SIGTERM"
        assert node["deploy"]["replicas"] == contract.NODE_REPLICAS_COMPOSE
        assert node["restart"] == "unless-stopped"
        env = node["environment"]
        assert env[contract.ENV_NODE_KEYS_DIR] == contract.NODE_KEYS_DIR
        # Its own key store, read-only; the public trust material where the node looks for it.
        assert f"./secrets/nodes/{member}/keys:{contract.NODE_KEYS_DIR}:ro" in node["volumes"]
        assert f"./secrets/trust-public:{contract.TRUST_MOUNT}:ro" in node["volumes"]
    ports = set()
    for name, member in gateways.items():
        gateway = services[name]
        assert gateway["command"] == list(contract.GATEWAY_COMMAND)
        env = gateway["environment"]
        # State CC's own edge: it serves CC only, with CC's member keys, read-only.
        assert json.loads(env[contract.ENV_GATEWAY_STATES]) == [member]
        assert env[contract.ENV_GATEWAY_KEYS_DIR] == contract.GATEWAY_KEYS_DIR
        assert (
            f"./secrets/gateways/{member}/keys:{contract.GATEWAY_KEYS_DIR}:ro"
            in (gateway["volumes"])
        )
        assert f"./secrets/trust-public:{contract.TRUST_MOUNT}:ro" in gateway["volumes"]
        ((host, inside),) = (p.split(":") for p in gateway["ports"])
        assert inside == str(contract.GATEWAY_PORT)
        ports.add(host)
    assert len(ports) == len(gateways)  # each state's gateway on its own host port
    evaluator = services["warnings"]
    assert evaluator["command"] == list(contract.WARNINGS_COMMAND)
    assert evaluator["deploy"]["replicas"] == contract.WARNINGS_REPLICAS == 1
    assert evaluator["environment"][contract.ENV_WARNINGS_KEYS_DIR] == contract.WARNINGS_KEYS_DIR
    assert f"./secrets/warnings/keys:{contract.WARNINGS_KEYS_DIR}:ro" in evaluator["volumes"]
    assert "ports" not in evaluator  # nothing reaches it from outside
    provision = services["provision"]["command"]
    assert (
        provision[:2] == ["/bin/sh", "-c"] and " ".join(contract.PROVISION_COMMAND) in provision[2]
    )
    assert "$" not in provision[2]  # Compose would interpolate it
    assert services["provision"]["restart"] == "no"
    # Start order: Kafka healthy, then provisioning completes, then the services.
    for name in ("warnings", *gateways, *nodes, *trackers):
        deps = services[name]["depends_on"]
        assert deps["provision"]["condition"] == "service_completed_successfully"
    for name in ("provision", "warnings", *gateways, *nodes):
        env = services[name]["environment"]
        assert env["PUENTE_KAFKA_BOOTSTRAP"] == BOOTSTRAP
        assert env["PUENTE_SECRETS_DIR"] == "/run/secrets"
        assert all(
            services[name]["depends_on"][f"kafka-{i}"]["condition"] == "service_healthy"
            for i in (1, 2, 3)
        )


def test_node_properties_are_the_local_brokers(compose: dict[str, Any]) -> None:
    """Same listeners, SASL, authorizer, super users and RF 3 / min ISR 2 as `kafka up -b 3`."""
    voters = [container_ports(i) for i in (1, 2, 3)]
    for node in voters:
        rendered = _properties(COMPOSE / "kafka" / f"node-{node.node_id}.properties")
        local = server_properties(
            node,
            voters,
            host=f"kafka-{node.node_id}",
            log_dir="x",
            broker=Credential("broker", "p"),
        )
        assert set(rendered) == set(local) | {"config.providers", "config.providers.file.class"}
        assert {k: v for k, v in rendered.items() if k not in OVERRIDDEN} == {
            k: v for k, v in local.items() if k not in OVERRIDDEN
        }
        assert rendered["min.insync.replicas"] == "2"
        assert rendered["default.replication.factor"] == "3"
        assert (
            rendered["controller.quorum.voters"] == "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        )
        assert rendered["advertised.listeners"] == (
            f"CLIENT://kafka-{node.node_id}:9092,INTERNAL://kafka-{node.node_id}:9091"
        )
        # The broker's password comes from the mounted secret file, never from this file.
        reference = "${file:/run/secrets/kafka-broker.properties:password}"
        for key in (
            "listener.name.internal.plain.sasl.jaas.config",
            "listener.name.controller.plain.sasl.jaas.config",
        ):
            assert rendered[key].count(reference) == 2
        secrets = compose["services"][f"kafka-{node.node_id}"]["secrets"]
        assert {"source": "kafka-broker", "target": "kafka-broker.properties"} in secrets
    bootstrap_hosts = {f"kafka-{n.node_id}:{n.client}" for n in voters}
    assert set(BOOTSTRAP.split(",")) == bootstrap_hosts


def test_node_properties_builder_keeps_hosts_apart() -> None:
    voters = [("a", container_ports(1)), ("b", container_ports(2)), ("c", container_ports(3))]
    props = node_properties(voters[1][1], voters, bind="0.0.0.0", log_dir="/d", broker_secret="/s")
    assert props["advertised.listeners"].startswith("CLIENT://b:9092")
    assert props["listeners"].startswith("CLIENT://0.0.0.0:9092")
    assert props["controller.quorum.voters"] == "1@a:9093,2@b:9093,3@c:9093"


def test_secrets_come_from_files_and_are_never_committed(
    compose: dict[str, Any], inputs: contract.DeployInputs
) -> None:
    declared = compose["secrets"]
    for name, spec in declared.items():
        assert set(spec) == {"file"}, name  # no inline `environment:` or `content:` secrets
        assert spec["file"].startswith("./secrets/")
    assert sorted(spec["file"][len("./secrets/") :] for spec in declared.values()) == sorted(
        secret_file_names(inputs)
    )
    used = {s["source"] for svc in compose["services"].values() for s in svc.get("secrets", [])}
    assert used == set(declared)
    # Least privilege: each node gets its own credential and pseudonymisation secret as
    # secrets, and its own key store as its only other secret mount; never another state's.
    for member in inputs.members:
        node = compose["services"][f"node-{member.lower()}"]
        assert {s["target"] for s in node["secrets"]} == {
            f"{inputs.naming.node_principal(member)}.json",
            contract.NODE_PSEUDONYM_FILE,
        }
        assert declared[
            next(
                s["source"] for s in node["secrets"] if s["target"] == contract.NODE_PSEUDONYM_FILE
            )
        ] == {"file": f"./secrets/nodes/{member}/{contract.NODE_PSEUDONYM_FILE}"}
        private = [
            v for v in node["volumes"] if v.startswith("./secrets/") and "trust-public" not in v
        ]
        assert private == [f"./secrets/nodes/{member}/keys:{contract.NODE_KEYS_DIR}:ro"]
        # Its gateway: the gateway's credential and TLS pair, and CC's gateway key store only.
        gateway = compose["services"][f"gateway-{member.lower()}"]
        assert inputs.naming.member_principal(member) not in {
            s["source"] for s in gateway["secrets"]
        }
        private = [
            v for v in gateway["volumes"] if v.startswith("./secrets/") and "trust-public" not in v
        ]
        assert private == [f"./secrets/gateways/{member}/keys:{contract.GATEWAY_KEYS_DIR}:ro"]
    # The evaluator: its own credential and key store, nothing of any state's.
    evaluator = compose["services"]["warnings"]
    assert {s["target"] for s in evaluator["secrets"]} == {
        f"{inputs.naming.service_principal('warnings')}.json"
    }
    private = [
        v for v in evaluator["volumes"] if v.startswith("./secrets/") and "trust-public" not in v
    ]
    assert private == [f"./secrets/warnings/keys:{contract.WARNINGS_KEYS_DIR}:ro"]
    # No environment variable carries a password.
    for svc in compose["services"].values():
        assert not any("PASSWORD" in k for k in svc.get("environment", {})), svc
    text = (COMPOSE / "compose.yaml").read_text()
    assert "password:" not in text.lower()
    # The folder the secret files go to is git-ignored (and so is the .env with the cluster id).
    for path in ("deploy/compose/secrets/admin.json", "deploy/compose/.env"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO, check=False)
        assert ignored.returncode == 0, f"{path} is not git-ignored"


def test_compose_secrets_creates_every_file_privately(
    tmp_path: Path, inputs: contract.DeployInputs
) -> None:
    secrets_dir = tmp_path / "secrets"
    created = compose_secrets(secrets_dir, inputs, env_file=tmp_path / ".env")
    for name in secret_file_names(inputs):
        assert (secrets_dir / name).is_file(), name
    signed = secrets_dir / "trust" / TRUST_LIST_FILE  # public: what every node verifies
    assert signed in created
    for path in set(created) - {signed}:
        assert path.stat().st_mode & 0o077 == 0, path
    store = SecretStore(secrets_dir)
    assert store.require(ADMIN_USER).password
    assert store.require(inputs.naming.node_principal("MX")).password
    broker = _properties(secrets_dir / contract.BROKER_SECRET_FILE)
    assert broker["username"] == "broker" and len(broker["password"]) >= 40
    pseudonyms = {
        (secrets_dir / "nodes" / m / contract.NODE_PSEUDONYM_FILE).read_bytes()
        for m in inputs.members
    }
    assert len(pseudonyms) == 20 and min(len(p) for p in pseudonyms) >= 32  # one per state
    assert re.fullmatch(
        r"PUENTE_CLUSTER_ID=[A-Za-z0-9_-]{22}", (tmp_path / ".env").read_text().splitlines()[-1]
    )
    before = {p: p.read_bytes() for p in secrets_dir.rglob("*") if p.is_file()}
    assert compose_secrets(secrets_dir, inputs, env_file=tmp_path / ".env") == []
    after = {p: p.read_bytes() for p in secrets_dir.rglob("*") if p.is_file()}
    assert after == before  # nothing rotated, no trust list signed anew


def test_start_script_formats_with_the_admin_password_off_every_command_line(
    tmp_path: Path,
) -> None:
    """start-kafka.sh runs with stand-ins for Kafka's scripts and logging wrappers around every
    program it starts: the admin's password (read from the secret file) reaches the storage tool
    in a private Java argument file, and no command line carries it."""
    script = COMPOSE / "kafka" / "start-kafka.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    password = "s3cr3t-Pass_word"
    SecretStore(tmp_path / "secrets").put(Credential(ADMIN_USER, password))
    kafka_bin, wrappers, log = tmp_path / "kafka-bin", tmp_path / "wrappers", tmp_path / "argv.log"
    kafka_bin.mkdir()
    wrappers.mkdir()
    record = f'printf "%s\\0" "$0" "$@" >> {log}; printf "\\n" >> {log}\n'
    # kafka-run-class.sh: keep the argument file (and its mode) for the checks below.
    (kafka_bin / "kafka-run-class.sh").write_text(
        "#!/bin/bash\n" + record + f'f="${{1#@}}"; stat -c %a "$f" > {tmp_path}/mode; '
        f'cp "$f" {tmp_path}/argfile\n'
    )
    (kafka_bin / "kafka-server-start.sh").write_text("#!/bin/bash\n" + record)
    for program in ("sed", "mktemp", "rm", "stat", "cp"):
        real = shutil.which(program)
        (wrappers / program).write_text("#!/bin/bash\n" + record + f'exec {real} "$@"\n')
    for stub in [*kafka_bin.iterdir(), *wrappers.iterdir()]:
        stub.chmod(0o755)
    text = script.read_text()
    for old, new in (
        ("/opt/kafka/bin", str(kafka_bin)),
        ("/run/secrets", str(tmp_path / "secrets")),
        ("/var/lib/kafka/data", str(tmp_path / "data")),
    ):
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "start-kafka.sh").write_text(text)
    env = {"PATH": f"{wrappers}:/usr/bin:/bin", "CLUSTER_ID": "Y29tcG9zZS1zaGFwZS10ZQ"}
    subprocess.run(["bash", str(tmp_path / "start-kafka.sh")], env=env, check=True, timeout=30)

    calls = [line.split("\0")[:-1] for line in log.read_text().splitlines() if line]
    started = [Path(c[0]).name for c in calls]
    assert "kafka-run-class.sh" in started and started[-1] == "kafka-server-start.sh"
    assert not [c for c in calls if any(password in arg for arg in c)]
    (run_class,) = [c for c in calls if c[0].endswith("kafka-run-class.sh")]
    assert len(run_class) == 2 and run_class[1].startswith("@")
    assert (tmp_path / "mode").read_text().strip() == "600"
    assert not Path(run_class[1][1:]).exists()  # removed after formatting
    assert parse_argfile((tmp_path / "argfile").read_text()) == [
        "kafka.tools.StorageTool",
        "format",
        "--cluster-id",
        "Y29tcG9zZS1zaGFwZS10ZQ",
        "--config",
        "/etc/puente/server.properties",
        "--add-scram",
        f"SCRAM-SHA-512=[name=admin,password={password}]",
        "--ignore-formatted",
    ]
