"""deploy/k8s: valid against the Kubernetes and Strimzi schemas, and one source of truth with
the local provisioner (topics, principals, ACLs, broker settings)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from puente.deploy import contract
from puente.deploy import k8s as k
from puente.deploy.material import (
    gateway_keys_secret_name,
    k8s_secret_manifests,
    k8s_trust_configmap,
    node_keys_secret_name,
    node_pseudonym_secret_name,
    password_secret_name,
)
from puente.kafka.broker_config import ADMIN_USER, node_ports, server_properties
from puente.kafka.plan import Acl
from puente.members import load_members
from puente.secrets import Credential
from tests.unit.deploy.inverse import plan_acls
from tests.unit.deploy.schema_tools import (
    k8s_errors,
    strimzi_errors,
    strimzi_unknown_fields,
)

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "k8s"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.fixture(scope="module")
def inputs() -> contract.DeployInputs:
    return contract.deploy_inputs(REPO / "policies")


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    """Every resource in the committed deploy/k8s files (not the kustomization)."""
    return [d for p in sorted(K8S.glob("[0-9]*.yaml")) for d in _docs(p)]


def _strimzi(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["apiVersion"].startswith("kafka.strimzi.io/")]


def _builtin(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if not d["apiVersion"].startswith("kafka.strimzi.io/")]


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


# --- schemas ----------------------------------------------------------------------------------


def test_builtin_resources_are_valid_kubernetes(manifests: list[dict[str, Any]]) -> None:
    builtin = _builtin(manifests)
    kinds = {d["kind"] for d in builtin}
    assert kinds == {
        "Namespace",
        "ServiceAccount",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "NetworkPolicy",
    }
    errors = [e for d in builtin for e in k8s_errors(d)]
    assert errors == []


def test_kubernetes_check_rejects_an_unknown_field(manifests: list[dict[str, Any]]) -> None:
    """The validator is strict: a misspelt field is an error, not silently dropped."""
    deployment = json.loads(json.dumps(_by_kind(manifests, "Deployment")[0]))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    assert k8s_errors(deployment)
    deployment = json.loads(json.dumps(_by_kind(manifests, "Deployment")[0]))
    deployment["spec"]["replicas"] = "two"
    assert k8s_errors(deployment)


def test_strimzi_resources_match_strimzi_schemas(manifests: list[dict[str, Any]]) -> None:
    docs = _strimzi(manifests)
    assert {d["kind"] for d in docs} == {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"}
    assert all(d["apiVersion"] == "kafka.strimzi.io/v1" for d in docs)
    assert strimzi_errors(docs) == []


def test_strimzi_check_rejects_wrong_values(manifests: list[dict[str, Any]]) -> None:
    user = json.loads(json.dumps(_by_kind(manifests, "KafkaUser")[1]))
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Wrte"]
    topic = json.loads(json.dumps(_by_kind(manifests, "KafkaTopic")[0]))
    topic["spec"]["partitions"] = "four"
    pool = json.loads(json.dumps(_by_kind(manifests, "KafkaNodePool")[0]))
    del pool["spec"]["roles"]
    errors = strimzi_errors([user, topic, pool])
    assert len(errors) >= 3, errors
    assert any("Wrte" in e or "enum" in e for e in errors)


def test_strimzi_resources_have_no_unknown_fields(
    manifests: list[dict[str, Any]], tmp_path: Path
) -> None:
    docs = _strimzi(manifests)
    assert strimzi_unknown_fields(docs, tmp_path) == []
    bad = json.loads(json.dumps(_by_kind(docs, "KafkaUser")[1]))
    bad["spec"]["authorization"]["acls"][0]["hosts"] = "*"
    kafka = json.loads(json.dumps(_by_kind(docs, "Kafka")[0]))
    kafka["spec"]["kafka"]["listeners"][0]["authentification"] = {"type": "scram-sha-512"}
    errors = strimzi_unknown_fields([bad, kafka], tmp_path / "bad")
    assert any('"hosts"' in e for e in errors), errors
    assert any('"authentification"' in e for e in errors), errors


# --- one source of truth ------------------------------------------------------------------------


def test_a_kafkatopic_per_planned_topic(
    manifests: list[dict[str, Any]], inputs: contract.DeployInputs
) -> None:
    topics = {d["spec"]["topicName"]: d for d in _by_kind(manifests, "KafkaTopic")}
    assert set(topics) == {t.name for t in inputs.plan.topics}
    # Per member: thirteen kinds (six, its gateway's tokens and answers, its receipt tracker's
    # tracker, due and overdue, its node's partials, its witness's state); global: checkpoints,
    # cosignatures, equivocations, trust, aggregates, warnings.
    assert len(topics) == 13 * len(inputs.members) + 6
    single = {"puente.trust", "puente.aggregates", "puente.warnings", "puente.equivocations"}
    for t in inputs.plan.topics:
        spec = topics[t.name]["spec"]
        assert spec["partitions"] == t.partitions
        one = t.name in single or t.name.startswith("puente.partials.")
        assert t.partitions == (1 if one else contract.PARTITIONS)
        assert spec["replicas"] == t.replication == 3
        assert {key: str(v) for key, v in spec["config"].items()} == {
            key: str(k.typed(v)) for key, v in t.configs.items()
        }
        assert spec["config"]["min.insync.replicas"] == 2
        meta = topics[t.name]["metadata"]
        assert meta["labels"]["strimzi.io/cluster"] == k.CLUSTER
        assert meta["name"] == t.name.lower()  # a valid Kubernetes name for an upper-case topic


def test_a_kafkauser_per_principal_with_exactly_the_plans_acls(
    manifests: list[dict[str, Any]], inputs: contract.DeployInputs
) -> None:
    users = {d["metadata"]["name"]: d for d in _by_kind(manifests, "KafkaUser")}
    assert set(users) == {p.name for p in inputs.plan.principals} | {ADMIN_USER}
    planned: dict[str, set[Acl]] = defaultdict(set)
    for a in inputs.plan.acls:
        planned[a.principal].add(a)
    for name, user in users.items():
        spec = user["spec"]
        assert spec["authentication"]["type"] == "scram-sha-512"
        ref = spec["authentication"]["password"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": password_secret_name(name), "key": "password"}
        rules = spec.get("authorization", {}).get("acls", [])
        assert all(r["type"] == "allow" and r["host"] == "*" for r in rules)
        assert plan_acls(name, rules) == planned[name], name
    # The admin is a super user and needs no ACL; members reach only their own topics.
    assert "authorization" not in users[ADMIN_USER]["spec"]
    mx = users[inputs.naming.member_principal("MX")]
    names = {r["resource"]["name"] for r in mx["spec"]["authorization"]["acls"]}
    assert "puente.ingress.MX" in names and "puente.deliver.MX" in names
    assert not any(n.endswith(".US") for n in names)
    # Each state's node is its own user; it reads its own state's ingress and no other.
    for member in inputs.members:
        node = users[inputs.naming.node_principal(member)]
        assert node["metadata"]["labels"]["puente.io/member"] == member
        read = {
            r["resource"]["name"]
            for r in node["spec"]["authorization"]["acls"]
            if r["resource"]["type"] == "topic" and "Read" in r["operations"]
        }
        assert {n for n in read if ".ingress." in n} == {f"puente.ingress.{member}"}
        # So is its gateway; every topic it may touch is its own state's, or the trust list.
        gateway = users[inputs.naming.gateway_principal(member)]
        assert gateway["metadata"]["labels"]["puente.io/member"] == member
        touched = {r["resource"]["name"] for r in gateway["spec"]["authorization"]["acls"]}
        assert {n for n in touched if not n.endswith(f".{member}")} == {
            "puente.trust",
            "puente.warnings",
            "puente.cosignatures",
        }
    assert not [u for u in users if u.endswith("-svc-policy")]  # the hub is gone
    assert not [u for u in users if u.endswith("-svc-gateway")]  # no gateway of every state


def test_kafka_cluster_matches_the_local_broker_settings(manifests: list[dict[str, Any]]) -> None:
    (kafka,) = _by_kind(manifests, "Kafka")
    (pool,) = _by_kind(manifests, "KafkaNodePool")
    ports = node_ports(9000, 3)
    local = server_properties(
        ports[0], ports, host="h", log_dir="/d", broker=Credential("broker", "x")
    )
    config = kafka["spec"]["kafka"]["config"]
    assert {key: str(v).lower() for key, v in config.items()} == {
        key: local[key] for key in k.CLUSTER_CONFIG_KEYS
    }
    assert config["default.replication.factor"] == 3 and config["min.insync.replicas"] == 2
    assert config["transaction.state.log.min.isr"] == 2
    assert config["unclean.leader.election.enable"] is False
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["authentication"]["type"] == "scram-sha-512" and listener["tls"] is True
    authz = kafka["spec"]["kafka"]["authorization"]
    assert authz == {"type": "simple", "superUsers": [ADMIN_USER]}
    assert kafka["spec"]["kafka"]["version"] == contract.KAFKA_VERSION
    assert pool["spec"]["replicas"] == 3
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]


# --- Puente's processes -------------------------------------------------------------------------

MEMBERS = load_members(REPO / "policies").codes


def _deployment(manifests: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (d,) = [x for x in _by_kind(manifests, "Deployment") if x["metadata"]["name"] == name]
    return d


def test_a_deployment_and_a_file_per_state(manifests: list[dict[str, Any]]) -> None:
    names = {d["metadata"]["name"] for d in _by_kind(manifests, "Deployment")}
    assert names == {
        "puente-warnings",
        *(f"puente-gateway-{m.lower()}" for m in MEMBERS),
        *(f"puente-node-{m.lower()}" for m in MEMBERS),
        *(f"puente-tracker-{m.lower()}" for m in MEMBERS),
        *(f"puente-witness-{m.lower()}" for m in MEMBERS),
    }
    for member in MEMBERS:
        # Everything one state's node and tracker, and its gateway, run is in its own file (what
        # its operator reviews).
        for file in (f"30-node-{member.lower()}.yaml", f"31-gateway-{member.lower()}.yaml"):
            docs = _docs(K8S / file)
            assert {d["kind"] for d in docs} == {
                "ServiceAccount",
                "Deployment",
                "PodDisruptionBudget",
                "Service",
                "NetworkPolicy",
            }
            assert {d["metadata"]["labels"]["puente.io/member"] for d in docs} == {member}


@pytest.mark.parametrize(
    "name",
    [
        *(f"puente-gateway-{m.lower()}" for m in MEMBERS),
        *(f"puente-node-{m.lower()}" for m in MEMBERS),
    ],
)
def test_deployments_have_probes_resources_and_a_budget(
    manifests: list[dict[str, Any]], name: str
) -> None:
    d = _deployment(manifests, name)
    pod = d["spec"]["template"]["spec"]
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert d["spec"]["replicas"] >= 2
    assert all(labels[key] == v for key, v in d["spec"]["selector"]["matchLabels"].items())
    for c in pod["containers"] + pod.get("initContainers", []):
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
    (main,) = pod["containers"]
    ports = {p["name"] for p in main["ports"]}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert main[probe]["httpGet"]["port"] in ports, probe
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == name  # its own identity
    accounts = {sa["metadata"]["name"] for sa in _by_kind(manifests, "ServiceAccount")}
    assert pod["serviceAccountName"] in accounts

    def selects(selector: dict[str, str]) -> bool:
        return all(labels.get(key) == v for key, v in selector.items())

    pdbs = [
        p
        for p in _by_kind(manifests, "PodDisruptionBudget")
        if selects(p["spec"]["selector"]["matchLabels"])
    ]
    assert len(pdbs) == 1 and pdbs[0]["spec"]["minAvailable"] < d["spec"]["replicas"]
    assert [s for s in _by_kind(manifests, "Service") if selects(s["spec"]["selector"])]
    policies = [
        n
        for n in _by_kind(manifests, "NetworkPolicy")
        if selects(n["spec"]["podSelector"].get("matchLabels", {}))
    ]
    assert len(policies) == 2  # the namespace's default deny and its own
    (own,) = [n for n in policies if n["spec"]["podSelector"]]
    assert own["spec"]["policyTypes"] == ["Ingress", "Egress"]
    # It reaches only Kafka's client port and DNS.
    assert [e["ports"] for e in own["spec"]["egress"]] == [
        [{"protocol": "TCP", "port": contract.KAFKA_CLIENT_PORT}],
        [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    ]


def _mounted_secrets(pod: dict[str, Any]) -> set[str]:
    """The names of the Secrets a pod mounts, as volumes or projected into one."""
    return {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v} | {
        s["secret"]["name"]
        for v in pod["volumes"]
        if "projected" in v
        for s in v["projected"]["sources"]
    }


@pytest.mark.parametrize("member", MEMBERS)
def test_node_shape(
    manifests: list[dict[str, Any]], inputs: contract.DeployInputs, member: str
) -> None:
    name = f"puente-node-{member.lower()}"
    d = _deployment(manifests, name)
    pod = d["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    assert [main["command"][0], *main["args"]] == list(contract.node_command(member))
    assert pod["terminationGracePeriodSeconds"] >= 30  # the batch in flight finishes on SIGTERM
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["PUENTE_KAFKA_BOOTSTRAP"] == k.BOOTSTRAP
    assert env["PUENTE_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env[contract.ENV_NODE_KEYS_DIR] == contract.NODE_KEYS_DIR
    # Probes and scrapes come from outside the pod: the metrics endpoint binds every address.
    assert env[contract.ENV_NODE_METRICS_HOST] == "0.0.0.0"
    # Secrets are referenced, never inline: no env var carries a password or key.
    assert not any("PASSWORD" in name for name in env)
    assert not any(v.startswith("PRIVATE+KEY") for v in env.values())
    assert env["PUENTE_SECRETS_DIR"] == contract.K8S_SECRETS_DIR  # files from mounted Secrets
    assert all(e.keys() == {"name", "value"} for e in main["env"])
    # Least privilege: the only Secrets it mounts are its own (and Strimzi's cluster CA).
    principal = inputs.naming.node_principal(member)
    secrets = _mounted_secrets(pod)
    assert secrets == {
        password_secret_name(principal),
        node_keys_secret_name(principal),
        node_pseudonym_secret_name(principal),
        k.CLUSTER_CA_SECRET,
    }
    # Its key store is copied, 0600, into a memory volume the node reads.
    (init,) = pod["initContainers"]
    assert "install -m 0600" in init["command"][-1]
    keys = {v["name"]: v for v in pod["volumes"]}["keys"]
    assert keys["emptyDir"]["medium"] == "Memory"


@pytest.mark.parametrize("member", MEMBERS)
def test_tracker_shape(
    manifests: list[dict[str, Any]], inputs: contract.DeployInputs, member: str
) -> None:
    d = _deployment(manifests, f"puente-tracker-{member.lower()}")
    # One instance, replaced rather than rolled: a second one would fence the first.
    assert d["spec"]["replicas"] == contract.TRACKER_REPLICAS == 1
    assert d["spec"]["strategy"] == {"type": "Recreate"}
    pod = d["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    assert [main["command"][0], *main["args"]] == list(contract.tracker_command(member))
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env[contract.ENV_TRACKER_METRICS_PORT] == str(contract.TRACKER_METRICS_PORT)
    assert env[contract.ENV_NODE_KEYS_DIR] == contract.NODE_KEYS_DIR
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert main[probe]["httpGet"]["port"] == "metrics"
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["serviceAccountName"] == f"puente-tracker-{member.lower()}"
    # Its own credential, its state's node keys (it signs as the node), Strimzi's CA: no more.
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v} | {
        s["secret"]["name"]
        for v in pod["volumes"]
        if "projected" in v
        for s in v["projected"]["sources"]
    }
    assert secrets == {
        password_secret_name(inputs.naming.tracker_principal(member)),
        node_keys_secret_name(inputs.naming.node_principal(member)),
        k.CLUSTER_CA_SECRET,
    }
    budgets = [
        p
        for p in _by_kind(manifests, "PodDisruptionBudget")
        if p["metadata"]["name"] == d["metadata"]["name"]
    ]
    assert budgets == []  # one instance: a budget would block every node drain


@pytest.mark.parametrize("member", MEMBERS)
def test_gateway_shape(
    manifests: list[dict[str, Any]], inputs: contract.DeployInputs, member: str
) -> None:
    """State CC's gateway serves CC only and mounts CC's gateway key store: no node key, no
    other state's key."""
    pod = _deployment(manifests, f"puente-gateway-{member.lower()}")["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    assert [main["command"][0], *main["args"]] == list(contract.GATEWAY_COMMAND)
    env = {e["name"]: e["value"] for e in main["env"]}
    assert json.loads(env[contract.ENV_GATEWAY_STATES]) == [member]
    assert env[contract.ENV_GATEWAY_KEYS_DIR] == contract.GATEWAY_KEYS_DIR
    secrets = _mounted_secrets(pod)
    assert secrets == {
        password_secret_name(inputs.naming.gateway_principal(member)),
        gateway_keys_secret_name(member),
        k.gateway_tls_secret(member),
        k.CLUSTER_CA_SECRET,
    }
    (init,) = pod["initContainers"]
    assert "install -m 0600" in init["command"][-1]
    mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
    assert mounts[contract.GATEWAY_KEYS_DIR]["readOnly"] is True


def test_evaluator_shape(manifests: list[dict[str, Any]], inputs: contract.DeployInputs) -> None:
    """`puente serve warnings`: one instance (replaced, never doubled: two would publish every
    warning twice), probed and scraped on its metrics port, its own credential and key store
    only, reaching only Kafka and DNS."""
    docs = _docs(K8S / "32-warnings.yaml")
    assert {d["kind"] for d in docs} == {"ServiceAccount", "Deployment", "Service", "NetworkPolicy"}
    d = _deployment(manifests, "puente-warnings")
    assert d["spec"]["replicas"] == 1 and d["spec"]["strategy"] == {"type": "Recreate"}
    pod = d["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    assert [main["command"][0], *main["args"]] == list(contract.WARNINGS_COMMAND)
    ports = {p["name"] for p in main["ports"]}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert main[probe]["httpGet"]["port"] in ports, probe
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env[contract.ENV_WARNINGS_KEYS_DIR] == contract.WARNINGS_KEYS_DIR
    principal = inputs.naming.service_principal("warnings")
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {
        password_secret_name(principal),
        node_keys_secret_name(principal),  # its key store: <principal>-keys, as a node's
        k.CLUSTER_CA_SECRET,
    }
    (init,) = pod["initContainers"]
    assert "install -m 0600" in init["command"][-1]
    (policy,) = [n for n in docs if n["kind"] == "NetworkPolicy"]
    assert [e["ports"] for e in policy["spec"]["egress"]] == [
        [{"protocol": "TCP", "port": contract.KAFKA_CLIENT_PORT}],
        [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    ]
    monitoring = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    assert policy["spec"]["ingress"] == [
        {
            "from": [monitoring],
            "ports": [{"protocol": "TCP", "port": contract.WARNINGS_METRICS_PORT}],
        }
    ]


def test_every_reference_resolves(
    manifests: list[dict[str, Any]], inputs: contract.DeployInputs, tmp_path: Path
) -> None:
    """Secrets, ConfigMaps and their keys: what the manifests name will exist."""
    secrets = k8s_secret_manifests(tmp_path / "s", inputs, namespace=k.NAMESPACE)
    secret_keys = {s["metadata"]["name"]: set(s["stringData"]) for s in secrets}
    external = {k.CLUSTER_CA_SECRET: {"ca.crt"}}
    external |= {k.gateway_tls_secret(m): {"tls.crt", "tls.key"} for m in inputs.members}
    configmaps = {
        cm["metadata"]["name"]: set(cm["data"])
        for cm in (
            k.policies_configmap(REPO / "policies", inputs.members),
            k8s_trust_configmap(tmp_path / "s", namespace=k.NAMESPACE),
        )
    }
    for user in _by_kind(manifests, "KafkaUser"):
        ref = user["spec"]["authentication"]["password"]["valueFrom"]["secretKeyRef"]
        assert ref["key"] in secret_keys[ref["name"]]
    for d in _by_kind(manifests, "Deployment"):
        for volume in d["spec"]["template"]["spec"]["volumes"]:
            sources = []
            if "secret" in volume:
                sources = [volume["secret"] | {"name": volume["secret"]["secretName"]}]
            elif "projected" in volume:
                sources = [s["secret"] for s in volume["projected"]["sources"]]
            for source in sources:
                known = secret_keys.get(source["name"]) or external[source["name"]]
                assert {i["key"] for i in source.get("items", [])} <= known
            if "configMap" in volume:
                keys = configmaps[volume["configMap"]["name"]]
                items = {i["key"] for i in volume["configMap"].get("items", [])}
                assert items == keys or not items
    # Passwords are kept locally (0600) so the operator can hand them to member states.
    store_file = tmp_path / "s" / f"{inputs.naming.member_principal('MX')}.json"
    assert store_file.stat().st_mode & 0o077 == 0
    again = k8s_secret_manifests(tmp_path / "s", inputs, namespace=k.NAMESPACE)
    assert again == secrets  # re-running keeps every password and key


def test_no_secret_material_in_the_committed_manifests() -> None:
    for path in K8S.glob("*.yaml"):
        docs = _docs(path)
        assert not [d for d in docs if d.get("kind") == "Secret"], path
        assert "PRIVATE+KEY" not in path.read_text()


def test_kustomization_lists_every_file() -> None:
    (kust,) = _docs(K8S / "kustomization.yaml")
    assert kust["resources"] == sorted(p.name for p in K8S.glob("[0-9]*.yaml"))
    assert kust["namespace"] == k.NAMESPACE
