"""deploy/k8s/: Puente on Kubernetes with the Strimzi operator (API ``kafka.strimzi.io/v1``).

Rendered, so that names shared between files (users, secrets, labels, ports) and everything the
local provisioner also decides (topics, their configs, principals, ACLs, broker settings) come
from one source:

- ``00-namespace.yaml``: the namespace (Pod Security ``baseline`` enforced, ``restricted`` warned);
- ``10-kafka.yaml``: Kafka (KRaft, SCRAM-SHA-512 over TLS, simple authorization, super user
  ``admin``) and one KafkaNodePool of 3 combined broker+controller nodes;
- ``20-topics.yaml``: a KafkaTopic per topic of :func:`~puente.kafka.plan.build_plan`;
- ``21-users.yaml``: a KafkaUser per principal with exactly the plan's ACLs, password from a
  Secret the operator creates (``puente deploy k8s secrets``);
- ``30-node-cc.yaml``, one per member state: everything state CC's node runs (ServiceAccount,
  Deployment with probes, resources and security context, PodDisruptionBudget, metrics Service,
  NetworkPolicy) and the same for its receipt tracker and its witness (one instance each, no
  budget; the witness with its own key store), so that one file is what a state's operator
  reviews or takes away;
- ``31-gateway-cc.yaml``, one per member state: the same for state CC's gateway, its edge
  (it serves CC's agencies only, with CC's member encryption keys);
- ``32-warnings.yaml``: the early-warning evaluator (``puente serve warnings``);
- ``40-network-policies.yaml``: default-deny ingress for the namespace;
- ``kustomization.yaml``: the list, for ``kubectl apply -k deploy/k8s``.

Secrets (passwords, each node's and witness's key store and the node's pseudonymisation secret,
each gateway's key store and TLS certificate) and the operator's ConfigMaps (policies, public
trust material) are referenced by name, never included. No Secret holds a state's root key:
trust lists are signed outside the cluster, which gets only the signed lists.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from puente.deploy import contract as c
from puente.deploy.material import (
    TRUST_CONFIGMAP,
    gateway_keys_secret_name,
    node_keys_secret_name,
    node_pseudonym_secret_name,
    password_secret_name,
)
from puente.deploy.render import GENERATED_BY, to_yaml, yaml_stream
from puente.kafka.broker_config import ADMIN_USER, node_ports, server_properties
from puente.kafka.plan import Acl, Operation, Pattern, Principal, Resource, Topic
from puente.secrets import Credential

K8S_DIR = Path("deploy/k8s")
NAMESPACE = "puente"
CLUSTER = "puente"
NODE_POOL = "combined"
STRIMZI_API = "kafka.strimzi.io/v1"
BOOTSTRAP = f"{CLUSTER}-kafka-bootstrap.{NAMESPACE}.svc:{c.KAFKA_CLIENT_PORT}"
CLUSTER_CA_SECRET = f"{CLUSTER}-cluster-ca-cert"  # created by Strimzi; clients trust its ca.crt
POLICIES_CONFIGMAP = "puente-policies"
# The policy directory's top-level files: members, the regional floor, and early warning's
# triggers and gazetteer (docs/early-warning.md), read by every node and by the evaluator.
POLICY_FILES = ("members.yaml", "regional.yaml", "triggers.yaml", "places.yaml")
PART_OF = {"app.kubernetes.io/part-of": "puente"}
METADATA_VERSION = "4.1-IV1"  # what `kafka-storage format` of Kafka 4.1 writes

# Broker settings that are cluster-wide policy (not per-node plumbing Strimzi owns, such as
# listeners, SASL, authorizer and log dirs, nor the small-machine thread counts of local runs).
CLUSTER_CONFIG_KEYS = (
    "auto.create.topics.enable",
    "default.replication.factor",
    "min.insync.replicas",
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
    "unclean.leader.election.enable",
    "transaction.max.timeout.ms",
    "transactional.id.expiration.ms",
    "num.partitions",
)

# Strimzi's ACL vocabulary.
RESOURCE_TYPES = {
    Resource.TOPIC: "topic",
    Resource.GROUP: "group",
    Resource.TRANSACTIONAL_ID: "transactionalId",
}
PATTERN_TYPES = {Pattern.LITERAL: "literal", Pattern.PREFIXED: "prefix"}
OPERATIONS = {Operation.READ: "Read", Operation.WRITE: "Write", Operation.DESCRIBE: "Describe"}
OPERATION_ORDER = list(OPERATIONS.values())


def typed(value: str) -> int | bool | str:
    """A Kafka config value as Strimzi's examples write it (numbers and booleans unquoted)."""
    if value in ("true", "false"):
        return value == "true"
    try:
        return int(value)
    except ValueError:
        return value


def cluster_config() -> dict[str, int | bool | str]:
    """The cluster-wide broker settings of a 3-node cluster, from the local broker's config."""
    ports = node_ports(9000, c.BROKERS)
    placeholder = Credential("broker", "unused")
    props = server_properties(ports[0], ports, host="h", log_dir="/d", broker=placeholder)
    return {k: typed(props[k]) for k in CLUSTER_CONFIG_KEYS}


def _meta(name: str, **labels: str) -> dict[str, Any]:
    return {"name": name, "namespace": NAMESPACE, "labels": {**PART_OF, **labels}}


def namespace() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NAMESPACE,
            "labels": {
                **PART_OF,
                # Strimzi's default pod security provider meets "baseline"; Puente's pods meet
                # "restricted", which is warned about for everything else.
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/warn": "restricted",
            },
        },
    }


def kafka_cluster() -> list[dict[str, Any]]:
    """The Kafka resource and its node pool."""
    kafka = {
        "apiVersion": STRIMZI_API,
        "kind": "Kafka",
        "metadata": _meta(CLUSTER),
        "spec": {
            "kafka": {
                "version": c.KAFKA_VERSION,
                "metadataVersion": METADATA_VERSION,
                "listeners": [
                    {
                        "name": "client",
                        "port": c.KAFKA_CLIENT_PORT,
                        "type": "internal",
                        # SASL_SSL: SCRAM-SHA-512 inside TLS (the local broker's SASL_PLAINTEXT
                        # is fine on loopback, not across machines).
                        "tls": True,
                        "authentication": {"type": "scram-sha-512"},
                        "networkPolicyPeers": [{"podSelector": {"matchLabels": dict(PART_OF)}}],
                    }
                ],
                "authorization": {"type": "simple", "superUsers": [ADMIN_USER]},
                "config": cluster_config(),
                "metricsConfig": {
                    "type": "strimziMetricsReporter",
                    "values": {
                        "allowList": [
                            "kafka_server_replicamanager_.*",
                            "kafka_controller_kafkacontroller_.*",
                            "kafka_server_brokertopicmetrics_.*",
                            "kafka_network_requestmetrics_.*",
                            "kafka_log_log_size",
                        ]
                    },
                },
            },
            "entityOperator": {
                "topicOperator": {"resources": _resources("100m", "256Mi", "512Mi")},
                "userOperator": {"resources": _resources("100m", "256Mi", "512Mi")},
            },
            # Consumer lag per group and partition (kafka_consumergroup_lag) for the alerts.
            "kafkaExporter": {"topicRegex": "puente\\..*", "groupRegex": ".*"},
        },
    }
    pool = {
        "apiVersion": STRIMZI_API,
        "kind": "KafkaNodePool",
        "metadata": _meta(NODE_POOL, **{"strimzi.io/cluster": CLUSTER}),
        "spec": {
            "replicas": c.BROKERS,
            "roles": ["controller", "broker"],
            "storage": {
                "type": "jbod",
                "volumes": [
                    {
                        "id": 0,
                        "type": "persistent-claim",
                        # deploy/README.md, "Sizing": at 10 M notices a year a broker holds
                        # ~46 GiB after one year, +22 GiB a year after; 100 GiB lasts ~3 years.
                        "size": "100Gi",
                        "deleteClaim": False,
                        "kraftMetadata": "shared",
                    }
                ],
            },
            "resources": _resources("1", "4Gi", "4Gi"),
            "jvmOptions": {"-Xms": "2g", "-Xmx": "2g"},
            "template": {
                "pod": {
                    "topologySpreadConstraints": [
                        _spread(
                            {"strimzi.io/pool-name": NODE_POOL, "strimzi.io/cluster": CLUSTER},
                            "DoNotSchedule",
                        )
                    ]
                }
            },
        },
    }
    return [kafka, pool]


def _resources(cpu: str, memory: str, memory_limit: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


def _spread(labels: dict[str, str], when: str = "ScheduleAnyway") -> dict[str, Any]:
    return {
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": labels},
    }


def kafka_topic(topic: Topic) -> dict[str, Any]:
    """A KafkaTopic for one planned topic (Kubernetes names are lower case; the topic is not)."""
    labels = {"strimzi.io/cluster": CLUSTER, "puente.io/topic-kind": topic.kind.stem}
    member = topic.name.rsplit(".", 1)[-1] if topic.kind.scope.value == "member" else None
    if member:
        labels["puente.io/member"] = member
    return {
        "apiVersion": STRIMZI_API,
        "kind": "KafkaTopic",
        "metadata": _meta(topic.name.lower(), **labels),
        "spec": {
            "topicName": topic.name,
            "partitions": topic.partitions,
            "replicas": topic.replication,
            "config": {k: typed(v) for k, v in sorted(topic.configs.items())},
        },
    }


def strimzi_acls(acls: list[Acl]) -> list[dict[str, Any]]:
    """The plan's ACL bindings as Strimzi ACL rules (one rule per resource pattern)."""
    grouped: dict[tuple[Resource, str, Pattern], set[str]] = defaultdict(set)
    for a in acls:
        grouped[(a.resource, a.name, a.pattern)].add(OPERATIONS[a.operation])
    rules = []
    for (resource, name, pattern), ops in sorted(
        grouped.items(), key=lambda kv: (kv[0][0].value, kv[0][1], kv[0][2].value)
    ):
        rules.append(
            {
                "type": "allow",
                "resource": {
                    "type": RESOURCE_TYPES[resource],
                    "name": name,
                    "patternType": PATTERN_TYPES[pattern],
                },
                "operations": sorted(ops, key=OPERATION_ORDER.index),
                "host": "*",
            }
        )
    return rules


def kafka_user(principal: Principal | str, acls: list[Acl]) -> dict[str, Any]:
    """A KafkaUser: SCRAM-SHA-512 with the password of its Secret, and its ACLs (if any)."""
    name = principal if isinstance(principal, str) else principal.name
    labels = {"strimzi.io/cluster": CLUSTER}
    if isinstance(principal, Principal):
        labels["puente.io/role"] = principal.role
        if principal.member:
            labels["puente.io/member"] = principal.member
    spec: dict[str, Any] = {
        "authentication": {
            "type": "scram-sha-512",
            "password": {
                "valueFrom": {
                    "secretKeyRef": {"name": password_secret_name(name), "key": "password"}
                }
            },
        }
    }
    if acls:
        spec["authorization"] = {"type": "simple", "acls": strimzi_acls(acls)}
    return {
        "apiVersion": STRIMZI_API,
        "kind": "KafkaUser",
        "metadata": _meta(name, **labels),
        "spec": spec,
    }


def kafka_users(inputs: c.DeployInputs) -> list[dict[str, Any]]:
    """The admin super user (no ACLs needed) and one user per planned principal."""
    by_principal: dict[str, list[Acl]] = defaultdict(list)
    for a in inputs.plan.acls:
        by_principal[a.principal].append(a)
    users = [kafka_user(ADMIN_USER, [])]
    users += [kafka_user(p, by_principal[p.name]) for p in inputs.plan.principals]
    return users


# --- Puente's own processes ----------------------------------------------------------------------


@dataclass(frozen=True)
class App:
    """One Puente process as Kubernetes knows it: the name of its ServiceAccount, Deployment,
    PodDisruptionBudget and NetworkPolicy, its component, and for a node its member state."""

    name: str
    component: str
    member: str | None = None

    @property
    def labels(self) -> dict[str, str]:
        """Every label of its resources and pods."""
        labels = {
            **PART_OF,
            "app.kubernetes.io/name": self.name,
            "app.kubernetes.io/component": self.component,
        }
        if self.member:
            labels["puente.io/member"] = self.member
        return labels

    @property
    def selector(self) -> dict[str, str]:
        """The label that selects its pods (and only its)."""
        return {"app.kubernetes.io/name": self.name}


def gateway_app(member: str) -> App:
    """State ``member``'s gateway: ``puente-gateway-cc``."""
    return App(f"puente-gateway-{member.lower()}", "gateway", member)


def gateway_file(member: str) -> str:
    """The file holding everything state ``member``'s gateway runs."""
    return f"31-gateway-{member.lower()}.yaml"


def gateway_tls_secret(member: str) -> str:
    """State ``member``'s gateway's ``kubernetes.io/tls`` Secret, from cert-manager or the
    operator (a Secret's name, not a secret): each state's edge has its own certificate."""
    return f"puente-gateway-{member.lower()}-tls"


WARNINGS = App("puente-warnings", "warnings")


def node_app(member: str) -> App:
    """State ``member``'s node: ``puente-node-cc``."""
    return App(f"puente-node-{member.lower()}", "node", member)


def node_file(member: str) -> str:
    """The file holding everything state ``member``'s node runs (hand it to its operator)."""
    return f"30-node-{member.lower()}.yaml"


def _env(extra: dict[str, str]) -> list[dict[str, Any]]:
    base = {
        "PUENTE_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "PUENTE_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "PUENTE_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
        "PUENTE_KAFKA__SSL_CAFILE": "/var/run/puente/kafka-ca/ca.crt",
        "PUENTE_KAFKA_TOPIC_PREFIX": "puente",
        "PUENTE_SECRETS_DIR": c.K8S_SECRETS_DIR,
        "PUENTE_STATE_DIR": c.STATE_DIR,
        "PUENTE_POLICIES_DIR": c.POLICIES_MOUNT,
        "PUENTE_LOG_FORMAT": "json",
    }
    return [{"name": k, "value": v} for k, v in (base | extra).items()]


_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}


def _pod_security() -> dict[str, Any]:
    # fsGroup makes the mounted Secrets group-readable by the process (mode 0440).
    return {
        "runAsNonRoot": True,
        "runAsUser": c.RUN_UID,
        "runAsGroup": c.RUN_UID,
        "fsGroup": c.RUN_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _common_volumes(
    principal: str, members: tuple[str, ...], *, also: tuple[tuple[str, str], ...] = ()
) -> list[dict[str, Any]]:
    """The volumes every Puente pod mounts. ``also`` adds (Secret, key) files to the secrets
    directory, beside the principal's credential (one projected volume)."""
    items = [{"key": name, "path": name} for name in POLICY_FILES]
    # ConfigMap keys are flat: states/CC.yaml travels as key "states.CC.yaml".
    items += [{"key": f"states.{m}.yaml", "path": f"states/{m}.yaml"} for m in members]
    files = [(password_secret_name(principal), f"{principal}.json"), *also]
    if len(files) == 1:
        name, key = files[0]
        secrets_volume: dict[str, Any] = {
            "secret": {
                "secretName": name,
                "items": [{"key": key, "path": key}],
                "defaultMode": 0o440,
            }
        }
    else:
        sources = [{"secret": {"name": n, "items": [{"key": k, "path": k}]}} for n, k in files]
        secrets_volume = {"projected": {"sources": sources, "defaultMode": 0o440}}
    return [
        {"name": "credential", **secrets_volume},
        {
            "name": "kafka-ca",
            "secret": {
                "secretName": CLUSTER_CA_SECRET,
                "items": [{"key": "ca.crt", "path": "ca.crt"}],
            },
        },
        # Not subPath-mounted: a changed ConfigMap reaches the pod (one atomic swap of the whole
        # directory) and a node reloads it at a batch boundary.
        {"name": "policies", "configMap": {"name": POLICIES_CONFIGMAP, "items": items}},
        # Public: the trust anchors and the signed trust list (`puente deploy k8s secrets`),
        # followed the same way (a node and the gateway re-read the list while they run).
        {"name": "trust", "configMap": {"name": TRUST_CONFIGMAP}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
    ]


def _common_mounts() -> list[dict[str, Any]]:
    return [
        {"name": "credential", "mountPath": c.K8S_SECRETS_DIR, "readOnly": True},
        {"name": "kafka-ca", "mountPath": "/var/run/puente/kafka-ca", "readOnly": True},
        {"name": "policies", "mountPath": c.POLICIES_MOUNT, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own emptyDir
        {"name": "trust", "mountPath": c.TRUST_MOUNT, "readOnly": True},
    ]


def _service_account(app: App) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(app.name, **app.labels),
        # Puente never talks to the Kubernetes API.
        "automountServiceAccountToken": False,
    }


def _pdb(app: App) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(app.name, **app.labels),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": app.selector}},
    }


def _service(app: App, name: str, port_name: str, port: int) -> dict[str, Any]:
    """A Service in front of one Puente process's pods, on its named container port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, **app.labels),
        "spec": {
            "selector": app.selector,
            "ports": [{"name": port_name, "port": port, "targetPort": port_name}],
        },
    }


def _deployment(
    app: App,
    *,
    replicas: int,
    annotations: dict[str, str],
    grace_s: int,
    containers: list[dict[str, Any]],
    init_containers: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
) -> dict[str, Any]:
    """A Deployment of one Puente process, spread over nodes, one new pod at a time."""
    pod: dict[str, Any] = {
        "serviceAccountName": app.name,
        "automountServiceAccountToken": False,
        "securityContext": _pod_security(),
        "terminationGracePeriodSeconds": grace_s,
        "topologySpreadConstraints": [_spread(app.selector)],
    }
    if init_containers:
        pod["initContainers"] = init_containers
    pod |= {"containers": containers, "volumes": volumes}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(app.name, **app.labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": app.selector},
            # maxUnavailable 0: a node's handover is a rebalance with fencing, and the gateway
            # keeps serving while a new pod becomes ready.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": app.labels, "annotations": annotations},
                "spec": pod,
            },
        },
    }


_DNS = {
    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}
_KAFKA = {
    "to": [
        {
            "podSelector": {
                "matchLabels": {"strimzi.io/cluster": CLUSTER, "strimzi.io/kind": "Kafka"}
            }
        }
    ],
    "ports": [{"protocol": "TCP", "port": c.KAFKA_CLIENT_PORT}],
}
_MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


def _network_policy(app: App, ingress: list[dict[str, Any]]) -> dict[str, Any]:
    """What may reach one Puente process (``ingress``), and that it reaches only Kafka and DNS."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(app.name, **app.labels),
        "spec": {
            "podSelector": {"matchLabels": app.selector},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": [_KAFKA, _DNS],
        },
    }


KEYS_SOURCE_DIR = "/var/run/puente/keys-src"


def _key_store(secret: str, mount: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A key store from Secret ``secret`` at ``mount``: the init container that puts it there
    and the two volumes it needs (mount ``keys`` read-only in the main container).

    Private key files must be 0600 and owned by the process (puente.evidence.keys refuses
    anything group-readable), which a Secret volume cannot express: the init container copies
    the Secret's files (their names carry key ids, so all of them) into a memory volume."""
    copy_keys = {
        "name": "keys",
        "image": c.PUENTE_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", f"install -m 0600 {KEYS_SOURCE_DIR}/* {mount}/"],
        "resources": _resources("10m", "16Mi", "32Mi"),
        "securityContext": _CONTAINER_SECURITY,
        "volumeMounts": [
            {"name": "keys-src", "mountPath": KEYS_SOURCE_DIR, "readOnly": True},
            {"name": "keys", "mountPath": mount},
        ],
    }
    volumes = [
        {"name": "keys-src", "secret": {"secretName": secret, "defaultMode": 0o440}},
        {"name": "keys", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
    ]
    return copy_keys, volumes


def _keyed_process(
    inputs: c.DeployInputs,
    app: App,
    *,
    principal: str,
    command: tuple[str, ...],
    env: dict[str, str],
    metrics_port: int,
    replicas: int,
    resources: dict[str, Any],
    grace_s: int,
    keys: tuple[str, str, str] | None = None,
    also: tuple[tuple[str, str], ...] = (),
    recreate: bool = False,
) -> list[dict[str, Any]]:
    """A state's process that holds a key store — its node's, or ``keys`` (the Secret, the
    setting that names the store, where it is mounted) — its own ServiceAccount and
    credential, the keys copied 0600 into a memory volume, metrics scrapes its only way in."""
    node = inputs.naming.node_principal(app.member or "")
    secret, keys_env, mount = keys or (
        node_keys_secret_name(node),
        c.ENV_NODE_KEYS_DIR,
        c.NODE_KEYS_DIR,
    )
    probe = {"httpGet": {"path": "/metrics", "port": "metrics"}, "periodSeconds": 10}
    container = {
        "name": app.component,
        "image": c.PUENTE_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": [command[0]],
        "args": list(command[1:]),
        "env": _env(env | {keys_env: mount}),
        "ports": [{"name": "metrics", "containerPort": metrics_port, "protocol": "TCP"}],
        "startupProbe": probe | {"failureThreshold": 30},
        "livenessProbe": probe | {"failureThreshold": 3, "timeoutSeconds": 3},
        "readinessProbe": probe | {"failureThreshold": 2, "timeoutSeconds": 3},
        "resources": resources,
        "securityContext": _CONTAINER_SECURITY,
        "volumeMounts": [
            *_common_mounts(),
            {"name": "keys", "mountPath": mount, "readOnly": True},
        ],
    }
    copy_keys, key_volumes = _key_store(secret, mount)
    volumes = [
        *_common_volumes(principal, inputs.members, also=also),
        *key_volumes,
    ]
    deployment = _deployment(
        app,
        replicas=replicas,
        annotations={"prometheus.io/scrape": "true", "prometheus.io/port": str(metrics_port)},
        grace_s=grace_s,
        containers=[container],
        init_containers=[copy_keys],
        volumes=volumes,
    )
    if recreate:
        deployment["spec"]["strategy"] = {"type": "Recreate"}
    # Headless: Prometheus scrapes every pod, nothing load-balances to them.
    service = _service(app, f"{app.name}-metrics", "metrics", metrics_port)
    service["spec"]["clusterIP"] = "None"
    metrics_only = [{"from": [_MONITORING], "ports": [{"protocol": "TCP", "port": metrics_port}]}]
    docs = [_service_account(app), deployment]
    if replicas > 1:
        docs.append(_pdb(app))
    return [*docs, service, _network_policy(app, metrics_only)]


def state_node(inputs: c.DeployInputs, member: str) -> list[dict[str, Any]]:
    """State ``member``'s node (``puente serve node --as CC``): its own ServiceAccount,
    credential, key store and pseudonymisation secret; ≥ 2 instances sharing its ingress
    partitions in its own consumer group; metrics scrapes its only way in."""
    principal = inputs.naming.node_principal(member)
    return _keyed_process(
        inputs,
        node_app(member),
        principal=principal,
        command=c.node_command(member),
        env={
            c.ENV_NODE_METRICS_PORT: str(c.NODE_METRICS_PORT),
            c.ENV_NODE_METRICS_HOST: "0.0.0.0",  # noqa: S104 - the pod's own address
        },
        metrics_port=c.NODE_METRICS_PORT,
        replicas=c.NODE_REPLICAS_K8S,
        # One state's share of the exchange; memory grows with the notice ids its partitions
        # accepted within the dedupe horizon (deploy/README.md, "Sizing").
        resources=_resources("100m", "256Mi", "1Gi"),
        # SIGTERM: the current batch (one transaction) finishes, then the process exits.
        grace_s=60,
        # The node's pseudonymisation secret sits in its secrets directory, one for its instances.
        also=((node_pseudonym_secret_name(principal), c.NODE_PSEUDONYM_FILE),),
    )


def tracker_app(member: str) -> App:
    """State ``member``'s receipt tracker: ``puente-tracker-cc``."""
    return App(f"puente-tracker-{member.lower()}", "tracker", member)


def state_tracker(inputs: c.DeployInputs, member: str) -> list[dict[str, Any]]:
    """State ``member``'s receipt tracker (``puente serve receipts --as CC``): its own
    ServiceAccount and credential; the state's node key store, which signs its overdue reports;
    one instance (a second would fence the first), replaced rather than rolled."""
    return _keyed_process(
        inputs,
        tracker_app(member),
        principal=inputs.naming.tracker_principal(member),
        command=c.tracker_command(member),
        env={
            c.ENV_TRACKER_METRICS_PORT: str(c.TRACKER_METRICS_PORT),
            c.ENV_TRACKER_METRICS_HOST: "0.0.0.0",  # noqa: S104 - the pod's own address
        },
        metrics_port=c.TRACKER_METRICS_PORT,
        replicas=c.TRACKER_REPLICAS,
        # The open deliveries of one state (docs/receipts.md, "Figures").
        resources=_resources("50m", "128Mi", "512Mi"),
        grace_s=30,
        recreate=True,
    )


def witness_app(member: str) -> App:
    """State ``member``'s witness: ``puente-witness-cc``."""
    return App(f"puente-witness-{member.lower()}", "witness", member)


def state_witness(inputs: c.DeployInputs, member: str) -> list[dict[str, Any]]:
    """State ``member``'s witness (``puente serve witness --as CC``): its own ServiceAccount,
    credential and key store (Secret ``puente-witness-cc-keys``: the state's witness key
    alone; the node's key store is not mounted); one instance (a second would fence the
    first), replaced rather than rolled."""
    principal = inputs.naming.witness_principal(member)
    return _keyed_process(
        inputs,
        witness_app(member),
        principal=principal,
        keys=(node_keys_secret_name(principal), c.ENV_WITNESS_KEYS_DIR, c.WITNESS_KEYS_DIR),
        command=c.witness_command(member),
        env={
            c.ENV_WITNESS_METRICS_PORT: str(c.WITNESS_METRICS_PORT),
            c.ENV_WITNESS_METRICS_HOST: "0.0.0.0",  # noqa: S104 - the pod's own address
        },
        metrics_port=c.WITNESS_METRICS_PORT,
        replicas=c.WITNESS_REPLICAS,
        # Per log it follows, the checkpoint it cosigned last (and a bounded fork memory).
        resources=_resources("50m", "128Mi", "512Mi"),
        grace_s=30,
        recreate=True,
    )


def state_gateway(inputs: c.DeployInputs, member: str) -> list[dict[str, Any]]:
    """State ``member``'s HTTP gateway, its edge: it serves CC's agencies only and opens CC's
    deliveries with CC's member encryption keys (its own key store; no node key, no other
    state's key). TLS on one port for the API, health and metrics. Stateless on disk: its
    replicas share tokens and first answers through Kafka (puente_gateway.shared)."""
    app = gateway_app(member)
    principal = inputs.naming.gateway_principal(member)

    def probe(path: str, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": "https", "scheme": "HTTPS"},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": failures,
        }

    container = {
        "name": "gateway",
        "image": c.PUENTE_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": [c.GATEWAY_COMMAND[0]],
        "args": list(c.GATEWAY_COMMAND[1:]),
        "env": _env(
            c.gateway_settings(member)
            | {
                "PUENTE_GATEWAY__HOST": "0.0.0.0",  # noqa: S104 - the pod's own address
                "PUENTE_GATEWAY__PORT": str(c.GATEWAY_PORT),
                "PUENTE_GATEWAY__TLS_CERT": "/var/run/puente/tls/tls.crt",
                "PUENTE_GATEWAY__TLS_KEY": "/var/run/puente/tls/tls.key",
            }
        ),
        "ports": [{"name": "https", "containerPort": c.GATEWAY_PORT, "protocol": "TCP"}],
        "startupProbe": probe("/healthz", 30),
        "livenessProbe": probe("/healthz", 3),
        # /readyz fails while Kafka is unreachable: the Service stops sending requests here.
        "readinessProbe": probe("/readyz", 2),
        # One state's agencies.
        "resources": _resources("100m", "256Mi", "512Mi"),
        "securityContext": _CONTAINER_SECURITY,
        "volumeMounts": [
            *_common_mounts(),
            {"name": "tls", "mountPath": "/var/run/puente/tls", "readOnly": True},
            {"name": "keys", "mountPath": c.GATEWAY_KEYS_DIR, "readOnly": True},
        ],
    }
    copy_keys, key_volumes = _key_store(gateway_keys_secret_name(member), c.GATEWAY_KEYS_DIR)
    volumes = [
        *_common_volumes(principal, inputs.members),
        {"name": "tls", "secret": {"secretName": gateway_tls_secret(member), "defaultMode": 0o440}},
        *key_volumes,
    ]
    deployment = _deployment(
        app,
        replicas=c.GATEWAY_REPLICAS,
        annotations={
            "prometheus.io/scrape": "true",
            "prometheus.io/scheme": "https",
            "prometheus.io/port": str(c.GATEWAY_PORT),
        },
        grace_s=30,
        containers=[container],
        init_containers=[copy_keys],
        volumes=volumes,
    )
    service = _service(app, app.name, "https", c.GATEWAY_PORT)
    service["spec"]["type"] = "ClusterIP"
    # Agencies come from anywhere the Service is exposed to (an Ingress or load balancer).
    anyone = [{"ports": [{"protocol": "TCP", "port": c.GATEWAY_PORT}]}]
    return [
        _service_account(app),
        deployment,
        _pdb(app),
        service,
        _network_policy(app, anyone),
    ]


def evaluator(inputs: c.DeployInputs) -> list[dict[str, Any]]:
    """The early-warning evaluator (``puente serve warnings``): its own ServiceAccount,
    credential and key store; one instance (it keeps no state, replays the aggregates at start,
    and a second one would publish every warning twice); metrics scrapes its only way in."""
    app = WARNINGS
    principal = inputs.naming.service_principal("warnings")
    probe = {"httpGet": {"path": "/metrics", "port": "metrics"}, "periodSeconds": 10}
    container = {
        "name": "warnings",
        "image": c.PUENTE_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": [c.WARNINGS_COMMAND[0]],
        "args": list(c.WARNINGS_COMMAND[1:]),
        "env": _env(
            {
                c.ENV_WARNINGS_METRICS_PORT: str(c.WARNINGS_METRICS_PORT),
                c.ENV_WARNINGS_METRICS_HOST: "0.0.0.0",  # noqa: S104 - the pod's own address
                c.ENV_WARNINGS_KEYS_DIR: c.WARNINGS_KEYS_DIR,
            }
        ),
        "ports": [{"name": "metrics", "containerPort": c.WARNINGS_METRICS_PORT, "protocol": "TCP"}],
        "startupProbe": probe | {"failureThreshold": 30},
        "livenessProbe": probe | {"failureThreshold": 3, "timeoutSeconds": 3},
        "readinessProbe": probe | {"failureThreshold": 2, "timeoutSeconds": 3},
        # Its memory holds the evaluator's fold: a few windows of aggregates per trigger.
        "resources": _resources("50m", "128Mi", "512Mi"),
        "securityContext": _CONTAINER_SECURITY,
        "volumeMounts": [
            *_common_mounts(),
            {"name": "keys", "mountPath": c.WARNINGS_KEYS_DIR, "readOnly": True},
        ],
    }
    copy_keys, key_volumes = _key_store(node_keys_secret_name(principal), c.WARNINGS_KEYS_DIR)
    deployment = _deployment(
        app,
        replicas=c.WARNINGS_REPLICAS,
        annotations={
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(c.WARNINGS_METRICS_PORT),
        },
        grace_s=30,
        containers=[container],
        init_containers=[copy_keys],
        volumes=[*_common_volumes(principal, inputs.members), *key_volumes],
    )
    # One instance: an update stops the old pod before the new one starts (two would publish
    # every warning twice).
    deployment["spec"]["strategy"] = {"type": "Recreate"}
    service = _service(app, f"{app.name}-metrics", "metrics", c.WARNINGS_METRICS_PORT)
    service["spec"]["clusterIP"] = "None"
    metrics_only = [
        {"from": [_MONITORING], "ports": [{"protocol": "TCP", "port": c.WARNINGS_METRICS_PORT}]}
    ]
    return [_service_account(app), deployment, service, _network_policy(app, metrics_only)]


def default_deny() -> dict[str, Any]:
    """Default-deny ingress for the namespace: each Puente process's own NetworkPolicy (in its
    file) lets in what it serves; Strimzi adds its own for what Kafka's pods need."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta("puente-default-deny-ingress"),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def k8s_files(inputs: c.DeployInputs) -> dict[Path, str]:
    """Every generated file under deploy/k8s/."""
    docs: dict[str, list[dict[str, Any]]] = {
        "00-namespace.yaml": [namespace()],
        "10-kafka.yaml": kafka_cluster(),
        "20-topics.yaml": [kafka_topic(t) for t in inputs.plan.topics],
        "21-users.yaml": kafka_users(inputs),
        **{
            node_file(m): state_node(inputs, m)
            + state_tracker(inputs, m)
            + state_witness(inputs, m)
            for m in inputs.members
        },
        **{gateway_file(m): state_gateway(inputs, m) for m in inputs.members},
        "32-warnings.yaml": evaluator(inputs),
        "40-network-policies.yaml": [default_deny()],
    }
    files = {K8S_DIR / name: yaml_stream(d) for name, d in docs.items()}
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "resources": sorted(docs),
        "images": [{"name": c.PUENTE_IMAGE.split(":")[0], "newTag": c.PUENTE_IMAGE.split(":")[1]}],
    }
    files[K8S_DIR / "kustomization.yaml"] = GENERATED_BY + to_yaml(kustomization)
    return files


def policies_configmap(policies_dir: Path, members: tuple[str, ...]) -> dict[str, Any]:
    """The ``puente-policies`` ConfigMap of a policies directory (flat keys, see the volume)."""
    data = {name: (policies_dir / name).read_text(encoding="utf-8") for name in POLICY_FILES}
    for m in members:
        data[f"states.{m}.yaml"] = (policies_dir / "states" / f"{m}.yaml").read_text(
            encoding="utf-8"
        )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(POLICIES_CONFIGMAP),
        "data": data,
    }
