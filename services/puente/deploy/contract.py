"""What the deployment files assume about Puente's processes, in one place.

The services run as ``puente serve policy``, ``puente gateway serve`` and ``puente kafka provision``
and read ``PUENTE_*`` settings (:mod:`puente.config`). The few names below that those commands
do not define yet (the policy service's metrics port and signing key file) are assumptions of the
deployment; when the services settle on other names, change them here and re-render.
"""

from __future__ import annotations

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
POLICY_COMMAND = ("puente", "serve", "policy")
GATEWAY_COMMAND = ("puente", "gateway", "serve")
PROVISION_COMMAND = ("puente", "kafka", "provision")
POLICY_REPLICAS = 2
GATEWAY_REPLICAS = 2

# Ports. The gateway serves its API, /healthz, /readyz and /metrics over TLS on one port.
GATEWAY_PORT = 8443
POLICY_METRICS_PORT = 9464
KAFKA_CLIENT_PORT = 9092

# Environment variables the deployment sets that puente.config does not define (assumptions).
ENV_POLICY_METRICS_PORT = "PUENTE_POLICY__METRICS_PORT"
ENV_POLICY_SIGNING_KEY = "PUENTE_POLICY__SIGNING_KEY_FILE"

# In-container paths.
SECRETS_MOUNT = "/run/secrets"  # Compose mounts every secret here
K8S_SECRETS_DIR = "/var/run/puente/secrets"
K8S_KEYS_DIR = "/var/run/puente/keys"
POLICIES_MOUNT = "/etc/puente/policies"
# Scratch only (a private tmpfs or emptyDir): services keep their state in Kafka.
STATE_DIR = "/tmp/puente"  # noqa: S108

# Secret names that are not Kafka principals.
SIGNING_KEY_NAME = "puente-policy"  # signed-note key name of the policy service's Ed25519 key
SIGNING_KEY_FILE = f"{SIGNING_KEY_NAME}.skey"
# The policy service reads its pseudonymisation secret from <secrets dir>/<this file>; every
# replica must read the same one (puente.service.secret.pseudonym_secret never makes one when a
# signing key file is configured).
POLICY_PSEUDONYM_FILE = PSEUDONYM_SECRET_FILE
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


@dataclass(frozen=True)
class DeployInputs:
    """The sources every rendered file derives from."""

    naming: Naming
    members: tuple[str, ...]
    plan: Plan
    partitions: int = PARTITIONS
    brokers: int = BROKERS


def deploy_inputs(
    policies_dir: Path, *, prefix: str = "puente", partitions: int = PARTITIONS
) -> DeployInputs:
    """The plan a 3-broker deployment of the member list in ``policies_dir`` needs."""
    naming = Naming(prefix)
    members = load_members(policies_dir).codes
    plan = build_plan(naming, members, partitions=partitions, brokers=BROKERS)
    return DeployInputs(naming, members, plan, partitions, BROKERS)
