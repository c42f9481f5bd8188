"""deploy/compose/: a 3-node Kafka (KRaft) cluster, provisioning, one node and one gateway per
member state, the early-warning evaluator.

Roles are combined (every Kafka node is broker and controller), as in ``puente kafka up
--brokers 3``: three voters tolerate one node down, the nodes' ``server.properties`` come from
the same :func:`~puente.kafka.broker_config.server_properties` as the local cluster (listeners,
SASL, StandardAuthorizer, super users, RF 3 / min ISR 2), and a single host has no use for three
more controller-only containers. Only what differs between loopback and containers is overridden
here: host names, bind address, data directory, and the broker's own password, which is read
from a Compose secret file through Kafka's FileConfigProvider instead of being written into the
file.

Each member state's node is its own service (``node-cc``: ``puente serve node --as CC``), never
one process hosting several: each holds only its own state's credential, key store and
pseudonymisation secret, and restarts, scales and rotates keys on its own. So is each state's
gateway, its edge (``gateway-cc``: ``puente gateway serve`` serving CC only, with CC's member
encryption keys), published on its own host port. Beside each node runs the state's receipt
tracker (``tracker-cc``: ``puente serve receipts --as CC``), its own principal, reading the
node's key store to sign overdue reports as the state's node; and its witness (``witness-cc``:
``puente serve witness --as CC``), its own principal, with its own key store holding the
state's witness key alone. The states' root keys (``secrets/roots/``), which sign trust lists,
are mounted by no service.

Every secret is a file under ``deploy/compose/secrets/`` (``puente deploy compose secrets``
creates them; they are git-ignored), mounted with Compose ``secrets:`` or, for a key store (a
folder whose file names carry key ids), bind-mounted read-only; no password is inline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from puente.deploy import contract as c
from puente.deploy.material import (
    GATEWAY_KEYS_SUBDIR,
    GATEWAYS_DIR,
    NODE_KEYS_SUBDIR,
    NODES_DIR,
    TRUST_PUBLIC_DIR,
    WARNINGS_DIR,
    WITNESSES_DIR,
)
from puente.deploy.render import GENERATED_BY, yaml_stream
from puente.kafka.broker_config import (
    ADMIN_USER,
    BROKER_USER,
    NodePorts,
    render_properties,
    server_properties,
)
from puente.secrets import Credential
from puente.topics import Naming

COMPOSE_DIR = Path("deploy/compose")
KAFKA_NODES = 3
DATA_DIR = "/var/lib/kafka/data"
NODE_CONFIG = "/etc/puente/server.properties"
START_SCRIPT = "/etc/puente/start-kafka.sh"
BOOTSTRAP = ",".join(f"kafka-{i}:{c.KAFKA_CLIENT_PORT}" for i in range(1, KAFKA_NODES + 1))


def container_ports(node_id: int) -> NodePorts:
    """Inside its own container every node uses the same ports."""
    return NodePorts(node_id, client=c.KAFKA_CLIENT_PORT, internal=9091, controller=9093)


def node_properties(
    node: NodePorts,
    voters: list[tuple[str, NodePorts]],
    *,
    bind: str,
    log_dir: str,
    broker_secret: str,
) -> dict[str, str]:
    """``server.properties`` of one node whose peers are reachable at ``voters`` (host, ports).

    ``broker_secret`` is a properties file holding ``password=...`` for the broker principal;
    the JAAS lines refer to it (``${file:...:password}``) so the password never enters this file.
    """
    host = dict((p.node_id, h) for h, p in voters)[node.node_id]
    reference = Credential(BROKER_USER, "${file:" + broker_secret + ":password}")
    props = server_properties(
        node, [p for _, p in voters], host=host, log_dir=log_dir, broker=reference
    )
    props["controller.quorum.voters"] = ",".join(
        f"{p.node_id}@{h}:{p.controller}" for h, p in voters
    )
    props["listeners"] = (
        f"CLIENT://{bind}:{node.client},INTERNAL://{bind}:{node.internal},"
        f"CONTROLLER://{bind}:{node.controller}"
    )
    props["advertised.listeners"] = (
        f"CLIENT://{host}:{node.client},INTERNAL://{host}:{node.internal}"
    )
    props["config.providers"] = "file"
    props["config.providers.file.class"] = (
        "org.apache.kafka.common.config.provider.FileConfigProvider"
    )
    return props


def compose_node_files() -> dict[Path, str]:
    """deploy/compose/kafka/node-N.properties for the three containers."""
    voters = [(f"kafka-{i}", container_ports(i)) for i in range(1, KAFKA_NODES + 1)]
    files = {}
    for _, ports in voters:
        props = node_properties(
            ports,
            voters,
            bind="0.0.0.0",  # noqa: S104 - inside the container, on the Compose network only
            log_dir=DATA_DIR,
            broker_secret=f"{c.SECRETS_MOUNT}/{c.BROKER_SECRET_FILE}",
        )
        files[COMPOSE_DIR / "kafka" / f"node-{ports.node_id}.properties"] = (
            GENERATED_BY + render_properties(props)
        )
    return files


def _secret(name: str, target: str | None = None) -> dict[str, str]:
    return {"source": name, "target": target or name}


def _principal_secret(principal: str) -> dict[str, str]:
    # SecretStore reads <secrets dir>/<principal>.json; Compose mounts it at /run/secrets/<target>.
    return _secret(principal, f"{principal}.json")


def _puente_service(command: tuple[str, ...], **extra: Any) -> dict[str, Any]:
    """What every Puente container shares: image, user, read-only root, no privileges."""
    service: dict[str, Any] = {
        "image": "${PUENTE_IMAGE:-" + c.PUENTE_IMAGE + "}",
        "build": {"context": "../..", "dockerfile": "deploy/Dockerfile"},
        "command": list(command),
        "user": f"{c.RUN_UID}:{c.RUN_UID}",
        "read_only": True,
        "tmpfs": ["/tmp"],  # noqa: S108 - a private tmpfs per container
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
    }
    service.update(extra)
    return service


def _base_env() -> dict[str, str]:
    return {
        "PUENTE_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "PUENTE_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "PUENTE_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
        "PUENTE_KAFKA_TOPIC_PREFIX": "${PUENTE_KAFKA_TOPIC_PREFIX:-puente}",
        "PUENTE_SECRETS_DIR": c.SECRETS_MOUNT,
        "PUENTE_STATE_DIR": c.STATE_DIR,
        "PUENTE_POLICIES_DIR": c.POLICIES_MOUNT,
        "PUENTE_LOG_FORMAT": "json",
    }


def _kafka_node(node_id: int) -> dict[str, Any]:
    return {
        "image": c.KAFKA_IMAGE,
        "hostname": f"kafka-{node_id}",
        "entrypoint": ["/bin/bash", START_SCRIPT],
        "environment": {
            "CLUSTER_ID": "${PUENTE_CLUSTER_ID:?run `puente deploy compose secrets` first}",
            # The stock scripts default to a 1 GiB heap; state it so sizing is visible here.
            "KAFKA_HEAP_OPTS": "-Xms1g -Xmx1g",
        },
        "configs": [
            {"source": f"kafka-node-{node_id}", "target": NODE_CONFIG},
            {"source": "kafka-start", "target": START_SCRIPT},
        ],
        "secrets": [_secret("kafka-broker", c.BROKER_SECRET_FILE), _principal_secret(ADMIN_USER)],
        "volumes": [f"kafka-{node_id}-data:{DATA_DIR}"],
        "healthcheck": {
            # The client port accepts connections only once the node has joined the quorum and
            # loaded the metadata log; provisioning then retries until every broker answers.
            "test": ["CMD-SHELL", f"bash -c '</dev/tcp/127.0.0.1/{c.KAFKA_CLIENT_PORT}'"],
            "interval": "10s",
            "timeout": "5s",
            "retries": 12,
            "start_period": "60s",
        },
        "restart": "unless-stopped",
        "stop_grace_period": "60s",
        "deploy": {"resources": {"limits": {"memory": "2g"}, "reservations": {"memory": "1g"}}},
    }


def node_service_name(member: str) -> str:
    """The Compose service of state ``member``'s node: ``node-cc``."""
    return f"node-{member.lower()}"


def tracker_service_name(member: str) -> str:
    """The Compose service of state ``member``'s receipt tracker: ``tracker-cc``."""
    return f"tracker-{member.lower()}"


def witness_service_name(member: str) -> str:
    """The Compose service of state ``member``'s witness: ``witness-cc``."""
    return f"witness-{member.lower()}"


def _secrets_path(*parts: str) -> str:
    """A path under ./secrets/ as the Compose file (in deploy/compose/) names it."""
    return "./" + "/".join(("secrets", *parts))


def _state_node(naming: Naming, member: str, depends_on: dict[str, Any]) -> dict[str, Any]:
    """State ``member``'s node: its credential, key store and pseudonymisation secret only."""
    name = node_service_name(member)
    keys = _secrets_path(NODES_DIR, member, NODE_KEYS_SUBDIR)
    return _puente_service(
        c.node_command(member),
        environment=_base_env()
        | {
            c.ENV_NODE_METRICS_PORT: str(c.NODE_METRICS_PORT),
            c.ENV_NODE_METRICS_HOST: "0.0.0.0",  # noqa: S104 - the container's own network
            c.ENV_NODE_KEYS_DIR: c.NODE_KEYS_DIR,
        },
        secrets=[
            _principal_secret(naming.node_principal(member)),
            # One pseudonymisation secret for every instance of this node: stable pseudonyms.
            _secret(f"{name}-pseudonym", c.NODE_PSEUDONYM_FILE),
        ],
        volumes=[
            _POLICIES,
            # Read live: a key file added to the state's folder (rotation) is used from its
            # valid-from on, without a restart.
            f"{keys}:{c.NODE_KEYS_DIR}:ro",
            _TRUST,
        ],
        depends_on=depends_on,
        # SIGTERM lets the current batch (one Kafka transaction) finish before the process exits.
        stop_signal="SIGTERM",
        stop_grace_period="60s",
        restart="unless-stopped",
        healthcheck=_http_check(f"http://127.0.0.1:{c.NODE_METRICS_PORT}/metrics"),
        deploy={
            "replicas": c.NODE_REPLICAS_COMPOSE,
            "resources": {"limits": {"cpus": "0.5", "memory": "1g"}},
        },
    )


def _state_tracker(naming: Naming, member: str, depends_on: dict[str, Any]) -> dict[str, Any]:
    """State ``member``'s receipt tracker: its own credential; the state's node key store, read
    only, to sign its overdue reports as the state's node."""
    return _keyed_service(
        c.tracker_command(member),
        naming.tracker_principal(member),
        keys=(
            _secrets_path(NODES_DIR, member, NODE_KEYS_SUBDIR),
            c.ENV_NODE_KEYS_DIR,
            c.NODE_KEYS_DIR,
        ),
        ports=(c.ENV_TRACKER_METRICS_PORT, c.ENV_TRACKER_METRICS_HOST, c.TRACKER_METRICS_PORT),
        depends_on=depends_on,
    )


def _state_witness(naming: Naming, member: str, depends_on: dict[str, Any]) -> dict[str, Any]:
    """State ``member``'s witness: its own credential; its own key store, read only, holding
    the state's witness key (node:CC, usage witness) alone."""
    return _keyed_service(
        c.witness_command(member),
        naming.witness_principal(member),
        keys=(
            _secrets_path(WITNESSES_DIR, member, NODE_KEYS_SUBDIR),
            c.ENV_WITNESS_KEYS_DIR,
            c.WITNESS_KEYS_DIR,
        ),
        ports=(c.ENV_WITNESS_METRICS_PORT, c.ENV_WITNESS_METRICS_HOST, c.WITNESS_METRICS_PORT),
        depends_on=depends_on,
    )


def _keyed_service(
    command: tuple[str, ...],
    principal: str,
    *,
    keys: tuple[str, str, str],
    ports: tuple[str, str, int],
    depends_on: dict[str, Any],
) -> dict[str, Any]:
    """One instance of a state's keyed, exactly-once service beside its node (a second would
    fence the first): its own credential and ``keys`` (a key store folder, the setting that
    names it and where it is mounted), read only."""
    folder, keys_env, mount = keys
    port_env, host_env, port = ports
    return _puente_service(
        command,
        environment=_base_env()
        | {
            port_env: str(port),
            host_env: "0.0.0.0",  # noqa: S104 - the container's own network
            keys_env: mount,
        },
        secrets=[_principal_secret(principal)],
        volumes=[_POLICIES, f"{folder}:{mount}:ro", _TRUST],
        depends_on=depends_on,
        # SIGTERM: the turn in flight (one Kafka transaction) finishes before the process exits.
        stop_signal="SIGTERM",
        stop_grace_period="30s",
        restart="unless-stopped",
        healthcheck=_http_check(f"http://127.0.0.1:{port}/metrics"),
        deploy={
            "replicas": c.TRACKER_REPLICAS,  # = WITNESS_REPLICAS: one (a second fences it)
            "resources": {"limits": {"cpus": "0.25", "memory": "512m"}},
        },
    )


def gateway_service_name(member: str) -> str:
    """The Compose service of state ``member``'s gateway: ``gateway-cc``."""
    return f"gateway-{member.lower()}"


def gateway_host_port(members: tuple[str, ...], member: str) -> int:
    """The host port state ``member``'s gateway is published on: 8443 for the first state of
    members.yaml, then one more per state."""
    return c.GATEWAY_PORT + members.index(member)


def _state_gateway(
    inputs: c.DeployInputs, member: str, depends_on: dict[str, Any]
) -> dict[str, Any]:
    """State ``member``'s gateway: it serves CC's agencies only and holds CC's member
    encryption keys only (no node key, no other state's key)."""
    keys = _secrets_path(GATEWAYS_DIR, member, GATEWAY_KEYS_SUBDIR)
    port = gateway_host_port(inputs.members, member)
    return _puente_service(
        c.GATEWAY_COMMAND,
        environment=_base_env()
        | c.gateway_settings(member)
        | {
            "PUENTE_GATEWAY__HOST": "0.0.0.0",  # noqa: S104 - the container's published port
            "PUENTE_GATEWAY__PORT": str(c.GATEWAY_PORT),
            "PUENTE_GATEWAY__TLS_CERT": f"{c.SECRETS_MOUNT}/{c.GATEWAY_TLS_CERT}",
            "PUENTE_GATEWAY__TLS_KEY": f"{c.SECRETS_MOUNT}/{c.GATEWAY_TLS_KEY}",
        },
        secrets=[
            _principal_secret(inputs.naming.gateway_principal(member)),
            _secret("gateway-tls-cert", c.GATEWAY_TLS_CERT),
            _secret("gateway-tls-key", c.GATEWAY_TLS_KEY),
        ],
        ports=[f"{port}:{c.GATEWAY_PORT}"],
        # Read-only, like the rest of its file system: its key store is read live (a key file
        # added for a rotation opens without a restart); the trust material lets it serve and
        # follow the signed trust list when the trust topic has none.
        volumes=[_POLICIES, f"{keys}:{c.GATEWAY_KEYS_DIR}:ro", _TRUST],
        depends_on=depends_on,
        stop_grace_period="30s",
        restart="unless-stopped",
        healthcheck=_http_check(f"https://127.0.0.1:{c.GATEWAY_PORT}/healthz"),
        deploy={"resources": {"limits": {"cpus": "0.5", "memory": "512m"}}},
    )


def _evaluator(naming: Naming, depends_on: dict[str, Any]) -> dict[str, Any]:
    """The early-warning evaluator (``puente serve warnings``): its credential and key store
    only; nothing reaches it but the metrics scrape."""
    keys = _secrets_path(WARNINGS_DIR, NODE_KEYS_SUBDIR)
    return _puente_service(
        c.WARNINGS_COMMAND,
        environment=_base_env()
        | {
            c.ENV_WARNINGS_METRICS_PORT: str(c.WARNINGS_METRICS_PORT),
            c.ENV_WARNINGS_METRICS_HOST: "0.0.0.0",  # noqa: S104 - the container's own network
            c.ENV_WARNINGS_KEYS_DIR: c.WARNINGS_KEYS_DIR,
        },
        secrets=[_principal_secret(naming.service_principal("warnings"))],
        volumes=[_POLICIES, f"{keys}:{c.WARNINGS_KEYS_DIR}:ro", _TRUST],
        depends_on=depends_on,
        stop_signal="SIGTERM",
        stop_grace_period="30s",
        restart="unless-stopped",
        healthcheck=_http_check(f"http://127.0.0.1:{c.WARNINGS_METRICS_PORT}/metrics"),
        deploy={
            "replicas": c.WARNINGS_REPLICAS,
            "resources": {"limits": {"cpus": "0.5", "memory": "512m"}},
        },
    )


_POLICIES = f"../../policies:{c.POLICIES_MOUNT}:ro"
# Public trust material (the genesis list, the signed trust list), where Puente looks for it.
_TRUST = f"{_secrets_path(TRUST_PUBLIC_DIR)}:{c.TRUST_MOUNT}:ro"


def compose_document(inputs: c.DeployInputs) -> dict[str, Any]:
    """The Compose file's content for the plan's principals and members' nodes."""
    principals = [p.name for p in inputs.plan.principals]
    kafka_up = {f"kafka-{i}": {"condition": "service_healthy"} for i in range(1, KAFKA_NODES + 1)}
    provisioned = {"provision": {"condition": "service_completed_successfully"}}
    services: dict[str, Any] = {f"kafka-{i}": _kafka_node(i) for i in range(1, KAFKA_NODES + 1)}
    services["provision"] = _puente_service(
        provision_command(),
        environment=_base_env(),
        # The admin creates each principal with the password pre-generated in its secret file.
        secrets=[_principal_secret(ADMIN_USER)] + [_principal_secret(p) for p in principals],
        volumes=[_POLICIES],
        depends_on=kafka_up,
        # Retried inside the container: Compose judges `service_completed_successfully` on the
        # first exit, so a restart policy would not help the services that wait for this job.
        restart="no",
    )
    for member in inputs.members:
        services[node_service_name(member)] = _state_node(
            inputs.naming, member, depends_on=kafka_up | provisioned
        )
        services[tracker_service_name(member)] = _state_tracker(
            inputs.naming, member, depends_on=kafka_up | provisioned
        )
        services[witness_service_name(member)] = _state_witness(
            inputs.naming, member, depends_on=kafka_up | provisioned
        )
    for member in inputs.members:
        services[gateway_service_name(member)] = _state_gateway(
            inputs, member, depends_on=kafka_up | provisioned
        )
    services["warnings"] = _evaluator(inputs.naming, depends_on=kafka_up | provisioned)
    secrets: dict[str, Any] = {
        "kafka-broker": {"file": _secrets_path(c.BROKER_SECRET_FILE)},
        ADMIN_USER: {"file": _secrets_path(f"{ADMIN_USER}.json")},
    }
    secrets |= {p: {"file": _secrets_path(f"{p}.json")} for p in principals}
    secrets |= {
        f"{node_service_name(m)}-pseudonym": {
            "file": _secrets_path(NODES_DIR, m, c.NODE_PSEUDONYM_FILE)
        }
        for m in inputs.members
    }
    secrets |= {
        "gateway-tls-cert": {"file": _secrets_path(c.GATEWAY_TLS_CERT)},
        "gateway-tls-key": {"file": _secrets_path(c.GATEWAY_TLS_KEY)},
    }
    configs: dict[str, Any] = {
        f"kafka-node-{i}": {"file": f"./kafka/node-{i}.properties"}
        for i in range(1, KAFKA_NODES + 1)
    }
    configs["kafka-start"] = {"file": "./kafka/start-kafka.sh"}
    volumes: dict[str, Any] = {f"kafka-{i}-data": {} for i in range(1, KAFKA_NODES + 1)}
    return {
        "name": "puente",
        "services": services,
        "volumes": volumes,
        "configs": configs,
        "secrets": secrets,
    }


PROVISION_ATTEMPTS = 12
PROVISION_PAUSE_S = 5


def provision_command() -> tuple[str, ...]:
    """`puente kafka provision`, retried a bounded number of times while brokers register.

    No ``$`` in it: Compose would interpolate it.
    """
    attempts = " ".join(str(i) for i in range(1, PROVISION_ATTEMPTS + 1))
    script = (
        f"for attempt in {attempts}; do {' '.join(c.PROVISION_COMMAND)} && exit 0; "
        f"sleep {PROVISION_PAUSE_S}; done; exit 1"
    )
    return ("/bin/sh", "-c", script)


def _http_check(url: str) -> dict[str, Any]:
    # The image has Python but no curl; the gateway's certificate may be self-signed.
    probe = (
        "import ssl,urllib.request;"
        f"urllib.request.urlopen('{url}',context=ssl._create_unverified_context(),timeout=3)"
    )
    return {
        "test": ["CMD", "python", "-c", probe],
        "interval": "15s",
        "timeout": "5s",
        "retries": 4,
        "start_period": "30s",
    }


def compose_files(inputs: c.DeployInputs) -> dict[Path, str]:
    """Every generated file under deploy/compose/."""
    files = compose_node_files()
    doc = compose_document(inputs)
    files[COMPOSE_DIR / "compose.yaml"] = yaml_stream([doc]).replace("---\n", "", 1)
    return files
