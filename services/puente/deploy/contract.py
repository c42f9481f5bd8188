"""What the deployment files assume about Puente's processes, in one place.

The processes run as ``puente serve node --as CC`` (one node per member state), ``puente serve
receipts --as CC`` (its receipt tracker), ``puente gateway serve`` (one gateway per member state,
its edge: ``PUENTE_GATEWAY__STATES`` names the state), ``puente serve warnings`` (the
early-warning evaluator) and ``puente kafka provision`` and read ``PUENTE_*`` settings
(:mod:`puente.config`; ``tests/unit/deploy`` checks that every variable a render sets is one of
them). When the services rename a setting, change it here and re-render.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from puente.config import KafkaSettings, LocalBrokerSettings
from puente.kafka.plan import Plan, build_plan
from puente.members import load_members
from puente.resources import project_root
from puente.service.secret import PSEUDONYM_SECRET_FILE
from puente.topics import Naming

# --- images --------------------------------------------------------------------------------------
KAFKA_VERSION: str = KafkaSettings.model_fields["version"].default
KAFKA_IMAGE = f"apache/kafka:{KAFKA_VERSION}"
PUENTE_IMAGE = "puente:0.1.0"
# The apache/kafka image runs as appuser (uid 1000); Puente's image (deploy/Dockerfile) uses the
# same uid so one owner fits every secret file of a Compose deployment.
RUN_UID = 1000

# --- processes -----------------------------------------------------------------------------------
NODE_COMMAND = ("puente", "serve", "node")
TRACKER_COMMAND = ("puente", "serve", "receipts")
WITNESS_COMMAND = ("puente", "serve", "witness")
GATEWAY_COMMAND = ("puente", "gateway", "serve")
WARNINGS_COMMAND = ("puente", "serve", "warnings")
PROVISION_COMMAND = ("puente", "kafka", "provision")
# Instances of one state's node share its ingress partitions (4: up to 4 instances). On one
# Compose host a second container guards against nothing a restart does not (a crashed
# instance's partitions wait for its session timeout either way); Kubernetes spreads two over
# machines.
NODE_REPLICAS_COMPOSE = 1
NODE_REPLICAS_K8S = 2
GATEWAY_REPLICAS = 2  # per state, in Kubernetes (Compose: one per state)
# The evaluator keeps no state and replays the aggregates at start; a second instance would
# publish every warning twice (readers list a copy once): one, restarted when it fails.
WARNINGS_REPLICAS = 1
# One receipt tracker per state: a second instance fences the first (one transactional id per
# state), so a restart replaces it rather than running two.
TRACKER_REPLICAS = 1
# One witness per state, for the same reason (one transactional id per state).
WITNESS_REPLICAS = 1

# Ports. A gateway serves its API, /healthz, /readyz and /metrics over TLS on one port (inside its
# container; Compose publishes state number i of members.yaml on GATEWAY_PORT + i of the host).
GATEWAY_PORT = 8443
NODE_METRICS_PORT = 9464
TRACKER_METRICS_PORT = 9465
WITNESS_METRICS_PORT = 9466
# Each its own container or pod: the tracker's and the evaluator's metrics share a number.
WARNINGS_METRICS_PORT = 9465
KAFKA_CLIENT_PORT = 9092

# Settings of a node (puente.config.PolicyServiceSettings) the deployment sets.
ENV_NODE_METRICS_PORT = "PUENTE_POLICY__METRICS_PORT"
ENV_NODE_METRICS_HOST = "PUENTE_POLICY__METRICS_HOST"
ENV_NODE_KEYS_DIR = "PUENTE_POLICY__KEYS_DIR"
# Settings of a receipt tracker (puente.config.ReceiptsSettings); it signs its overdue reports
# with its state's node key, from the same key store (ENV_NODE_KEYS_DIR).
ENV_TRACKER_METRICS_PORT = "PUENTE_RECEIPTS__METRICS_PORT"
ENV_TRACKER_METRICS_HOST = "PUENTE_RECEIPTS__METRICS_HOST"
# Settings of a witness (puente.config.WitnessSettings); its witness key (node:CC, usage
# witness) is in its own key store, which nothing else mounts.
ENV_WITNESS_METRICS_PORT = "PUENTE_WITNESS__METRICS_PORT"
ENV_WITNESS_METRICS_HOST = "PUENTE_WITNESS__METRICS_HOST"
ENV_WITNESS_KEYS_DIR = "PUENTE_WITNESS__KEYS_DIR"
# Settings of a state's gateway (puente.config.GatewaySettings) the deployment sets.
ENV_GATEWAY_STATES = "PUENTE_GATEWAY__STATES"
ENV_GATEWAY_KEYS_DIR = "PUENTE_GATEWAY__KEYS_DIR"
# Settings of the evaluator (puente.config.WarningsSettings).
ENV_WARNINGS_METRICS_PORT = "PUENTE_WARNINGS__METRICS_PORT"
ENV_WARNINGS_METRICS_HOST = "PUENTE_WARNINGS__METRICS_HOST"
ENV_WARNINGS_KEYS_DIR = "PUENTE_WARNINGS__KEYS_DIR"

# In-container paths.
SECRETS_MOUNT = "/run/secrets"  # Compose mounts every secret here
K8S_SECRETS_DIR = "/var/run/puente/secrets"
POLICIES_MOUNT = "/etc/puente/policies"
# Scratch only (a private tmpfs or emptyDir): services keep their state in Kafka.
STATE_DIR = "/tmp/puente"  # noqa: S108
# A node's key store (PUENTE_POLICY__KEYS_DIR): its node:CC signing and encryption keys, read
# only (Compose bind-mounts the state's folder; in Kubernetes an init container copies the
# Secret's files in, 0600 and owned by the process, as puente.evidence.keys demands).
NODE_KEYS_DIR = "/var/run/puente/keys"
# A state's gateway's key store (PUENTE_GATEWAY__KEYS_DIR): its member:CC encryption keys, which
# open the deliveries sealed to CC; read only, mounted like a node's.
GATEWAY_KEYS_DIR = "/var/run/puente/keys"
# The evaluator's key store (PUENTE_WARNINGS__KEYS_DIR): its service:warnings key, the same way.
WARNINGS_KEYS_DIR = "/var/run/puente/keys"
# A state's witness's key store (PUENTE_WITNESS__KEYS_DIR): its witness key alone, the same way.
WITNESS_KEYS_DIR = "/var/run/puente/keys"
# The public trust material, where a Puente process looks for the embedded default's key store
# (<state dir>/keys): the genesis trust list (trust-genesis.note: the trust anchor) and the
# signed trust list (trust-list.note, read when the trust topic has none). No private key.
TRUST_MOUNT = f"{STATE_DIR}/keys"
# What a single-root deployment's public material held beside its operator root's verifier keys
# (one per line): handed out until the transition list is signed (puente.deploy.material).
TRUST_ANCHORS_FILE = "trust-anchors.txt"

# A node reads its pseudonymisation secret from <secrets dir>/<this file>; each state's node
# has its own, and all its instances read the same one (puente.service.secret.pseudonym_secret
# never makes one when a key store is configured).
NODE_PSEUDONYM_FILE = PSEUDONYM_SECRET_FILE
# The broker's PLAIN password, read by Kafka's FileConfigProvider (a file name, not a secret).
BROKER_SECRET_FILE = "kafka-broker.properties"  # noqa: S105
GATEWAY_TLS_CERT = "gateway-tls.crt"
GATEWAY_TLS_KEY = "gateway-tls.key"

# Partitions per topic: the local provisioner's default, so every deployment has the same shape.
PARTITIONS: int = LocalBrokerSettings.model_fields["partitions"].default
BROKERS = 3


def repo_root() -> Path:
    """The checkout the deploy files live in (deploy/ is not part of an installed wheel)."""
    root = project_root()
    if root is None:
        raise RuntimeError("puente deploy works in a checkout of the Puente repository")
    return root


def node_command(member: str) -> tuple[str, ...]:
    """State ``member``'s node: ``puente serve node --as CC``."""
    return (*NODE_COMMAND, "--as", member)


def tracker_command(member: str) -> tuple[str, ...]:
    """State ``member``'s receipt tracker: ``puente serve receipts --as CC``."""
    return (*TRACKER_COMMAND, "--as", member)


def witness_command(member: str) -> tuple[str, ...]:
    """State ``member``'s witness: ``puente serve witness --as CC``."""
    return (*WITNESS_COMMAND, "--as", member)


def gateway_settings(member: str) -> dict[str, str]:
    """The environment that makes ``puente gateway serve`` state ``member``'s own gateway: it
    serves that state only, and opens its deliveries with the keys at :data:`GATEWAY_KEYS_DIR`."""
    return {ENV_GATEWAY_STATES: json.dumps([member]), ENV_GATEWAY_KEYS_DIR: GATEWAY_KEYS_DIR}


@dataclass(frozen=True)
class DeployInputs:
    """The sources every rendered file (and every secrets folder) derives from."""

    naming: Naming
    members: tuple[str, ...]
    plan: Plan
    floor_digest: bytes  # SHA-256 of regional.yaml: the floor the trust list pins
    partitions: int = PARTITIONS
    brokers: int = BROKERS


def deploy_inputs(
    policies_dir: Path, *, prefix: str = "puente", partitions: int = PARTITIONS
) -> DeployInputs:
    """The plan a 3-broker deployment of the member list in ``policies_dir`` needs."""
    naming = Naming(prefix)
    members = load_members(policies_dir).codes
    plan = build_plan(naming, members, partitions=partitions, brokers=BROKERS)
    # The policy loader's floor digest (PolicySet.digests.floor): the bytes of regional.yaml.
    floor = hashlib.sha256((policies_dir / "regional.yaml").read_bytes()).digest()
    return DeployInputs(naming, members, plan, floor, partitions, BROKERS)
