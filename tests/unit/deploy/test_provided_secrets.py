"""A rendered deployment provides every secret and file its services read, read-only.

Each container of the committed deploy/compose and deploy/k8s files is rebuilt as a directory
tree: the secrets its orchestrator mounts (made by ``puente deploy compose secrets`` /
``puente deploy k8s secrets``, plus the Secrets Strimzi and cert-manager provide), its volumes
(a Kubernetes init container's command is run on them), and its environment with every
in-container path mapped into the tree. Then each service's own start-up code runs on that
environment — each state's node builds itself as ``puente serve node --as CC`` does
(``Runtime.node``: its Kafka credential, key store, pseudonymisation secret, trust anchors),
takes the signed trust list from the mounted file, loads its policies, checks the floor the list
pins and finds its own signing and encryption keys named in the list, and counts for early
warning (triggers loaded, its key of usage early-warning found); the evaluator builds itself as
``puente serve warnings`` does and finds its key named in the list; each state's gateway
builds its app (serving that state only, with that state's member keys, which the list names as
the key deliveries to it are sealed to), its TLS context and its Kafka TLS context;
provisioning finds a credential for every principal; a Kafka node finds the files its
properties and start script refer to. Nothing may be written into a read-only mount, and a
secret a service reads but the render does not provide fails the walk — which is what removing
each mounted file shows.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from puente.config import Settings
from puente.deploy import contract
from puente.deploy import k8s as k
from puente.deploy.material import (
    compose_secrets,
    k8s_secret_manifests,
    k8s_trust_configmap,
    node_keys_dir,
    root_keys_dir,
    self_signed_certificate,
    witness_keys_dir,
)
from puente.errors import PuenteError
from puente.evidence._time import now_ms
from puente.evidence.keystore import GENESIS_FILE, TRUST_LIST_FILE, KeyStore
from puente.evidence.trust import Usage, member_holder, node_holder, service_holder
from puente.evidence.trustsource import file_fetch
from puente.kafka.broker_config import ADMIN_USER
from puente.kafka.connection import admin_credential, resolve_endpoint
from puente.secrets import SecretStore
from puente.topics import Naming

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "deploy" / "compose"
K8S = REPO / "deploy" / "k8s"
INPUTS = contract.deploy_inputs(REPO / "policies")


@dataclass
class Container:
    """One container's file system as a tree of host directories, and its environment."""

    name: str
    mounts: dict[str, Path] = field(default_factory=dict)  # mount path -> host path
    secret_mounts: set[str] = field(default_factory=set)  # mount paths that are read-only secrets
    readonly: set[str] = field(default_factory=set)  # every read-only mount (secrets included)
    env: dict[str, str] = field(default_factory=dict)

    def host(self, path: str) -> Path:
        """Where an in-container path lives; AssertionError if nothing is mounted there."""
        found = [m for m in self.mounts if path == m or path.startswith(m.rstrip("/") + "/")]
        assert found, f"{self.name}: {path} is not on any mounted volume"
        mount = max(found, key=len)
        return self.mounts[mount] / path[len(mount) :].lstrip("/")

    def host_env(self) -> dict[str, str]:
        """The environment with every absolute path mapped into the tree."""
        return {k: str(self.host(v)) if v.startswith("/") else v for k, v in self.env.items()}

    def link_nested(self) -> None:
        """Make a mount inside another one (the trust material in <state dir>/keys, on the
        scratch volume) visible through the outer one's tree too, as in the container: paths a
        service derives from a mapped one (``state_dir / "keys"``) then lead to it."""
        for mount, root in self.mounts.items():
            outer = [m for m in self.mounts if m != mount and mount.startswith(m.rstrip("/") + "/")]
            if outer:
                parent = max(outer, key=len)
                link = self.mounts[parent] / mount[len(parent) :].lstrip("/")
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(root, target_is_directory=True)

    def on_mount(self, path: str) -> bool:
        return any(path == m or path.startswith(m.rstrip("/") + "/") for m in self.mounts)

    def host_paths(self, text: str) -> str:
        """``text`` (a shell command, say) with every in-container path on a mount mapped."""
        return re.sub(
            r"/[\w.*/-]+",
            lambda m: str(self.host(m.group())) if self.on_mount(m.group()) else m.group(),
            text,
        )

    def files(self, mounts: set[str]) -> dict[str, tuple[bytes, int]]:
        """Every file on ``mounts``: content and mode."""
        out = {}
        for mount in mounts:
            root = self.mounts[mount]
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    out[f"{mount}/{path.relative_to(root)}"] = (
                        path.read_bytes(),
                        path.stat().st_mode,
                    )
        return out

    def secret_files(self) -> dict[str, tuple[bytes, int]]:
        """Every file on a secret mount."""
        return self.files(self.secret_mounts)


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Container], None]]:
    """Put a container's environment (and only it) in place of this process's PUENTE_*."""

    def use(container: Container) -> None:
        for name in list(os.environ):
            if name.startswith("PUENTE_"):
                monkeypatch.delenv(name)
        for name, value in container.host_env().items():
            monkeypatch.setenv(name, value)

    yield use


# --- what each service reads at start ----------------------------------------------------------


def start_node(member: str) -> Callable[[Container], None]:
    """State ``member``'s node, built as ``puente serve node --as CC`` builds it, then what
    ``Node.run`` does before it reaches Kafka."""

    def start(c: Container) -> None:
        from puente.app.runtime import Runtime

        runtime = Runtime.from_settings(Settings())
        node, topic = runtime.node(member, instance="walk")
        node.endpoint.aiokafka_kwargs(node.cred)  # the Kafka TLS context, when configured
        # The trust list from the mounted file (the trust topic's source needs a broker).
        files = [fetch for fetch in node.trust_sources if fetch != topic.newest]
        assert asyncio.run(node.trust.refresh(files)), "no trust list taken from the files"
        loaded = node.policies.reload()
        assert loaded.ok, loaded.error
        node.check_floor()  # the policies' floor is the one the trust list pins
        # Its own keys, which the trust list names as node:CC's: it signs with one and opens
        # its agencies' notices with the other.
        now = now_ms()
        trust_list = node.trust.verifier().trust_list
        signing = node.keys.signing_key(now)
        assert trust_list.entry(signing.key_id).holder == node_holder(member)
        ring = node.keys.ingress_keys()
        assert ring is not None
        sealed_to = trust_list.encryption_key(node_holder(member), at=now)
        assert ring.get(sealed_to.key_id) is not None
        # Early warning is on: the triggers are mounted and its key signs aggregates.
        assert node.aggregation is not None, "early warning is off on this node"
        counting = trust_list.entry(node.keys.early_warning_key(now).key_id)
        assert counting.holder == node_holder(member) and Usage.EARLY_WARNING in counting.usages

    return start


def start_tracker(member: str) -> Callable[[Container], None]:
    """State ``member``'s receipt tracker, built as ``puente serve receipts --as CC`` builds it:
    its own Kafka credential, the trust list from the mounted file, and the node key its
    overdue reports are signed with, which the trust list names as node:CC's."""

    def start(c: Container) -> None:
        from puente.app.runtime import Runtime

        runtime = Runtime.from_settings(Settings())
        tracker, topic = runtime.tracker(member, instance="walk")
        assert tracker.cred.username == runtime.naming.tracker_principal(member)
        tracker.endpoint.aiokafka_kwargs(tracker.cred)  # the Kafka TLS context, when configured
        files = [fetch for fetch in tracker.trust_sources if fetch != topic.newest]
        assert asyncio.run(tracker.trust.refresh(files)), "no trust list taken from the files"
        now = now_ms()
        signing = tracker.keys.signing_key(now)
        assert tracker.trust.verifier().trust_list.entry(signing.key_id).holder == node_holder(
            member
        )

    return start


def start_witness(member: str) -> Callable[[Container], None]:
    """State ``member``'s witness, built as ``puente serve witness --as CC`` builds it: its own
    Kafka credential, the trust list from the mounted file, and its witness key (from its own
    key store, PUENTE_WITNESS__KEYS_DIR), which the trust list names as node:CC's, usage
    witness."""

    def start(c: Container) -> None:
        from puente.app.runtime import Runtime

        runtime = Runtime.from_settings(Settings())
        witness, topic = runtime.witness(member, instance="walk")
        assert witness.cred.username == runtime.naming.witness_principal(member)
        witness.endpoint.aiokafka_kwargs(witness.cred)
        files = [fetch for fetch in witness.trust_sources if fetch != topic.newest]
        assert asyncio.run(witness.trust.refresh(files)), "no trust list taken from the files"
        key = witness.key(now_ms())
        entry = witness.trust.verifier().trust_list.entry(key.key_id)
        assert entry.holder == node_holder(member) and entry.usages == {Usage.WITNESS}

    return start


def start_warnings(c: Container) -> None:
    """The evaluator, built as ``puente serve warnings`` builds it: its credential, key store,
    triggers and trust anchors; its key named in the mounted trust list."""
    from puente.app.runtime import Runtime

    runtime = Runtime.from_settings(Settings())
    service, topic = runtime.warnings_evaluator(instance="walk")
    service.endpoint.aiokafka_kwargs(service.cred)
    files = [fetch for fetch in service.trust_sources if fetch != topic.newest]
    assert asyncio.run(service.trust.refresh(files)), "no trust list taken from the files"
    assert service.triggers.triggers, "no trigger mounted"
    entry = service.trust.verifier().trust_list.entry(service.key.key_id)
    assert entry.holder == service_holder("warnings") and Usage.EARLY_WARNING in entry.usages


def start_gateway(member: str) -> Callable[[Container], None]:
    """State ``member``'s gateway, built as ``puente gateway serve`` builds it; then the trust
    list from the mounted file, in which its key store's key is the one deliveries to the
    state are sealed to."""

    def start(c: Container) -> None:
        from puente.app.runtime import Runtime
        from puente_gateway.app import create_app
        from puente_gateway.context import GatewayContext
        from puente_gateway.server import uvicorn_config

        runtime = Runtime.from_settings(Settings())
        settings, gw = runtime.settings, runtime.settings.gateway
        # Its own state's gateway credential, and no other: it connects as <prefix>-gateway-cc.
        credentials = runtime.gateway_credentials()
        principal = Naming(settings.kafka.topic_prefix).gateway_principal(member)
        assert {s: cred.username for s, cred in credentials.items()} == {member: principal}
        # refuses a state whose member keys it does not hold
        app = create_app(settings, gw, credentials=credentials)
        uvicorn_config(app, gw).load()  # reads the TLS certificate and key
        resolve_endpoint(settings).aiokafka_kwargs(credentials[member])
        ctx = app.state.ctx
        assert isinstance(ctx, GatewayContext)
        assert ctx.edge.states == {member} and set(ctx.kafka.states) == {member}
        tracker = ctx.trust.tracker
        assert asyncio.run(tracker.refresh([file_fetch(ctx.trust.file)])), "no trust list"
        sealed_to = tracker.verifier().trust_list.encryption_key(member_holder(member), at=now_ms())
        assert ctx.edge.keyring(member).get(sealed_to.key_id) is not None

    return start


def start_provisioning(c: Container) -> None:
    settings = Settings()
    admin_credential(settings)
    inputs = contract.deploy_inputs(Path(os.environ["PUENTE_POLICIES_DIR"]))
    store = SecretStore(settings.secrets_dir)
    # `puente kafka provision` creates each principal with the password in its secret file
    # (get_or_create): a missing file would be written into the read-only mount.
    missing = [p.name for p in inputs.plan.principals if store.get(p.name) is None]
    assert not missing, f"no credential file for {missing}"


def start_kafka_node(c: Container) -> None:
    """The properties' ${file:PATH:KEY} references and the start script's admin secret."""
    script = c.host("/etc/puente/start-kafka.sh").read_text()
    props = c.host("/etc/puente/server.properties").read_text()
    for path, key in re.findall(r"\$\{file:([^:}]+):([^}]+)\}", props):
        lines = c.host(path).read_text().splitlines()
        assert any(line.startswith(f"{key}=") for line in lines), (path, key)
    (admin,) = re.findall(r"^ADMIN_SECRET=(\S+)$", script, re.MULTILINE)
    assert SecretStore(c.host(admin).parent).get(ADMIN_USER) is not None


# --- Compose ------------------------------------------------------------------------------------


def _interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with nothing set in the shell."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def compose_containers(tmp: Path, generated: Path) -> dict[str, Container]:
    """The Compose file's containers, on the secrets folder ``generated`` (made if missing)."""
    doc = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    compose_secrets(generated, INPUTS, env_file=tmp / ".env")
    out = {}
    for name, svc in doc["services"].items():
        c = Container(name)
        run_secrets = tmp / name / "run-secrets"
        run_secrets.mkdir(parents=True)
        for s in svc.get("secrets", []):
            source = Path(doc["secrets"][s["source"]]["file"])
            assert source.parts[0] == "secrets", source
            target = run_secrets / s.get("target", s["source"])
            shutil.copy2(generated.joinpath(*source.parts[1:]), target)
        c.mounts[contract.SECRETS_MOUNT] = run_secrets
        c.secret_mounts.add(contract.SECRETS_MOUNT)
        for volume in svc.get("volumes", []):
            source, target, *options = volume.split(":")
            if source.startswith("./secrets/"):
                # A folder of the secrets folder (a key store, the public trust material),
                # bind-mounted read-only as it is: a copy, so that a write would show.
                c.mounts[target] = tmp / name / "binds" / target.strip("/")
                shutil.copytree(generated.joinpath(*Path(source).parts[1:]), c.mounts[target])
                assert options == ["ro"], volume
                c.readonly.add(target)
                if any(f"/{d}/" in source for d in ("nodes", "witnesses", "gateways", "warnings")):
                    c.secret_mounts.add(target)
            elif source.startswith("."):
                c.mounts[target] = (COMPOSE / source).resolve()  # a bind mount
            else:
                c.mounts[target] = tmp / name / "volumes" / source
                c.mounts[target].mkdir(parents=True)
        for mount in svc.get("tmpfs", []):
            c.mounts[mount] = tmp / name / "tmpfs" / mount.strip("/")
            c.mounts[mount].mkdir(parents=True)
        for config in svc.get("configs", []):
            c.mounts[config["target"]] = COMPOSE / doc["configs"][config["source"]]["file"]
        c.env = {k: _interpolate(str(v)) for k, v in svc.get("environment", {}).items()}
        c.readonly |= c.secret_mounts
        c.link_nested()
        out[name] = c
    return out


COMPOSE_STARTS: dict[str, Callable[[Container], None]] = {
    "provision": start_provisioning,
    "warnings": start_warnings,
    **{f"gateway-{m.lower()}": start_gateway(m) for m in INPUTS.members},
    **{f"kafka-{i}": start_kafka_node for i in (1, 2, 3)},
    **{f"node-{m.lower()}": start_node(m) for m in INPUTS.members},
    **{f"tracker-{m.lower()}": start_tracker(m) for m in INPUTS.members},
    **{f"witness-{m.lower()}": start_witness(m) for m in INPUTS.members},
}


# --- Kubernetes ---------------------------------------------------------------------------------


def _k8s_sources(
    generated: Path,
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Secrets (rendered by `puente deploy k8s secrets`, plus those Strimzi and cert-manager
    make) and ConfigMaps (`puente deploy k8s policies`, and the trust ConfigMap `k8s secrets`
    renders), by name."""
    docs = k8s_secret_manifests(generated, INPUTS, namespace=k.NAMESPACE)
    secrets = {d["metadata"]["name"]: dict(d["stringData"]) for d in docs}
    cert, key = (x.decode() for x in self_signed_certificate(["gateway"], []))
    secrets[k.CLUSTER_CA_SECRET] = {"ca.crt": cert}  # Strimzi's cluster CA
    for member in INPUTS.members:  # cert-manager's
        secrets[k.gateway_tls_secret(member)] = {"tls.crt": cert, "tls.key": key}
    configmaps = [
        k.policies_configmap(REPO / "policies", INPUTS.members),
        k8s_trust_configmap(generated, namespace=k.NAMESPACE),
    ]
    return secrets, {cm["metadata"]["name"]: cm["data"] for cm in configmaps}


def _write(
    root: Path, files: dict[str, str], items: list[dict[str, Any]] | None, mode: int
) -> None:
    entries: list[dict[str, Any]] = (
        [{"key": x, "path": x} for x in files] if items is None else items
    )
    for item in entries:
        path = root / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[item["key"]])  # KeyError: the manifest names a key nobody makes
        path.chmod(item.get("mode", mode))


def k8s_containers(tmp: Path, generated: Path) -> dict[str, Container]:
    """The Deployments' containers, on the secrets folder ``generated`` (made if missing)."""
    secrets, configmaps = _k8s_sources(generated)
    out = {}
    for d in (d for p in sorted(K8S.glob("3*.yaml")) for d in yaml.safe_load_all(p.read_text())):
        if not d or d["kind"] != "Deployment":
            continue
        pod, name = d["spec"]["template"]["spec"], d["metadata"]["name"]
        volumes, secret_volumes = {}, set()
        for v in pod["volumes"]:
            root = volumes[v["name"]] = tmp / name / "volumes" / v["name"]
            root.mkdir(parents=True)
            if "secret" in v:
                spec = v["secret"]
                files = secrets[spec["secretName"]]
                _write(root, files, spec.get("items"), spec.get("defaultMode", 0o644))
                secret_volumes.add(v["name"])
            elif "projected" in v:
                mode = v["projected"].get("defaultMode", 0o644)
                for source in v["projected"]["sources"]:
                    spec = source["secret"]
                    _write(root, secrets[spec["name"]], spec.get("items"), mode)
                secret_volumes.add(v["name"])
            elif "configMap" in v:
                spec = v["configMap"]
                _write(root, configmaps[spec["name"]], spec.get("items"), 0o644)
            else:
                assert "emptyDir" in v, v
        for spec in [*pod.get("initContainers", []), *pod["containers"]]:
            c = Container(f"{name}/{spec['name']}")
            for m in spec["volumeMounts"]:
                c.mounts[m["mountPath"]] = volumes[m["name"]]
                if m["name"] in secret_volumes:
                    c.secret_mounts.add(m["mountPath"])
                if m.get("readOnly"):
                    c.readonly.add(m["mountPath"])
            c.link_nested()
            c.env = {e["name"]: e["value"] for e in spec.get("env", [])}
            if spec in pod.get("initContainers", []):
                # Run it, its paths mapped into the tree. What it writes from a Secret holds
                # secrets too (a key store copied 0600 into a memory volume).
                argv = [c.host_paths(a) for a in [*spec["command"], *spec.get("args", [])]]
                subprocess.run(argv, check=True, timeout=30)
                if c.secret_mounts:
                    secret_volumes |= {
                        m["name"] for m in spec["volumeMounts"] if not m.get("readOnly")
                    }
            else:
                out[name] = c
    return out


K8S_STARTS: dict[str, Callable[[Container], None]] = {
    "puente-warnings": start_warnings,
    **{f"puente-gateway-{m.lower()}": start_gateway(m) for m in INPUTS.members},
    **{f"puente-node-{m.lower()}": start_node(m) for m in INPUTS.members},
    **{f"puente-tracker-{m.lower()}": start_tracker(m) for m in INPUTS.members},
    **{f"puente-witness-{m.lower()}": start_witness(m) for m in INPUTS.members},
}


# --- the walk ------------------------------------------------------------------------------------


def walk(
    c: Container, start: Callable[[Container], None], use: Callable[[Container], None]
) -> None:
    before = c.files(c.readonly)
    use(c)
    start(c)
    assert c.files(c.readonly) == before, f"{c.name} wrote into a read-only mount"


@pytest.mark.parametrize("deployment", ["compose", "k8s"])
def test_every_service_starts_on_what_the_render_provides(
    deployment: str, tmp_path: Path, service_env: Callable[[Container], None]
) -> None:
    build = compose_containers if deployment == "compose" else k8s_containers
    containers = build(tmp_path, tmp_path / "generated")
    starts = COMPOSE_STARTS if deployment == "compose" else K8S_STARTS
    assert set(containers) == set(starts)  # every service of the render is walked
    assert len([n for n in containers if "node-" in n]) == len(INPUTS.members) == 20
    assert len([n for n in containers if "tracker-" in n]) == 20
    assert len([n for n in containers if "witness-" in n]) == 20
    for name, c in containers.items():
        walk(c, starts[name], service_env)


# Public halves a key store keeps beside each key for people and other tools (PEM for openssl;
# the encryption key's text): a node derives what it needs from the private key and the
# description, so it starts without them.
PUBLIC_COPIES = (".pem", ".ekey")


@pytest.mark.parametrize("deployment", ["compose", "k8s"])
def test_every_mounted_secret_of_a_node_is_read(
    deployment: str, tmp_path: Path, service_env: Callable[[Container], None]
) -> None:
    """The walk is not vacuous: without any one of its mounted secret files — credential,
    pseudonymisation secret, each key's private part, verifier key or description — state MX's
    node refuses to start (it never makes a missing one itself); nor does it start without the
    trust anchors or the signed trust list."""
    name = "node-mx" if deployment == "compose" else "puente-node-mx"
    build = compose_containers if deployment == "compose" else k8s_containers
    generated = tmp_path / "generated"  # one secrets folder: the same key files every time
    probe = build(tmp_path / "probe", generated)[name]
    files = sorted(f for f in probe.secret_files() if not f.endswith(PUBLIC_COPIES))
    assert any(contract.NODE_PSEUDONYM_FILE in f for f in files)
    assert len([f for f in files if f.endswith(".skey")]) == 2  # a signing and an encryption key
    trust = sorted(probe.files({contract.TRUST_MOUNT}))
    # The genesis list (the trust anchor) and the signed list in force: nothing else.
    assert [f.rsplit("/", 1)[1] for f in trust] == [GENESIS_FILE, TRUST_LIST_FILE]
    for i, file in enumerate([*files, *trust]):
        c = build(tmp_path / str(i), generated)[name]
        c.host(file).unlink()
        with pytest.raises((PuenteError, AssertionError)):
            walk(c, start_node("MX"), service_env)


@pytest.mark.parametrize("deployment", ["compose", "k8s"])
def test_every_mounted_key_of_a_gateway_is_read(
    deployment: str, tmp_path: Path, service_env: Callable[[Container], None]
) -> None:
    """State MX's gateway does not start without its member key's private part or description
    (it could open none of MX's deliveries), nor without the trust list that names that key."""
    name = "gateway-mx" if deployment == "compose" else "puente-gateway-mx"
    build = compose_containers if deployment == "compose" else k8s_containers
    generated = tmp_path / "generated"
    probe = build(tmp_path / "probe", generated)[name]
    keys = sorted(
        f
        for f in probe.files({contract.GATEWAY_KEYS_DIR})
        if not f.endswith(PUBLIC_COPIES) and "/member-MX-" in f
    )
    assert [f.rsplit(".", 1)[1] for f in keys] == ["json", "skey"]
    trust = [f for f in probe.files({contract.TRUST_MOUNT}) if f.endswith(TRUST_LIST_FILE)]
    for i, file in enumerate([*keys, *trust]):
        c = build(tmp_path / str(i), generated)[name]
        c.host(file).unlink()
        with pytest.raises((PuenteError, AssertionError)):
            walk(c, start_gateway("MX"), service_env)


@pytest.mark.parametrize("deployment", ["compose", "k8s"])
def test_the_witness_key_is_only_in_the_witness_s_store(
    deployment: str, tmp_path: Path, service_env: Callable[[Container], None]
) -> None:
    """State MX's witness key (node:MX, usage witness) is mounted by MX's witness alone, whose
    key store holds nothing else; the witness does not start without it."""
    build = compose_containers if deployment == "compose" else k8s_containers
    generated = tmp_path / "generated"
    containers = build(tmp_path / "probe", generated)
    (witness_key,) = KeyStore(witness_keys_dir(generated, "MX")).key_metas()
    assert witness_key.holder == node_holder("MX") and witness_key.usages == (Usage.WITNESS.value,)
    assert not [
        m
        for m in KeyStore(node_keys_dir(generated, "MX")).key_metas()
        if m.usages == witness_key.usages
    ]
    holding = sorted(
        name
        for name, c in containers.items()
        if any(f"{witness_key.key_id}.skey" in f for f in c.secret_files())
    )
    assert holding == ["witness-mx" if deployment == "compose" else "puente-witness-mx"]
    (name,) = holding
    keys = sorted(f for f in containers[name].secret_files() if "/keys/" in f)
    assert {f.rsplit("/", 1)[1].rsplit(".", 1)[0] for f in keys} == {
        f"node-MX-{witness_key.key_id}"
    }
    for i, file in enumerate(f for f in keys if f.endswith((".skey", ".json"))):
        c = build(tmp_path / str(i), generated)[name]
        c.host(file).unlink()
        with pytest.raises((PuenteError, AssertionError)):
            walk(c, start_witness("MX"), service_env)


@pytest.mark.parametrize("deployment", ["compose", "k8s"])
def test_no_workload_gets_a_root_key(deployment: str, tmp_path: Path) -> None:
    """The states' root keys (usage trust-list), which sign trust lists, are in no container's
    mounts, no Secret and no ConfigMap: the public trust material carries signed lists only."""
    build = compose_containers if deployment == "compose" else k8s_containers
    generated = tmp_path / "generated"
    containers = build(tmp_path / "probe", generated)
    roots = [
        m.key_id
        for member in INPUTS.members
        for m in KeyStore(root_keys_dir(generated, member)).key_metas()
        if Usage.TRUST_LIST.value in m.usages
    ]
    assert len(roots) == len(INPUTS.members)  # the all-in-one case: every state's root is here
    for c in containers.values():
        for path, (data, _) in c.files(set(c.mounts)).items():
            if path.endswith(".skey"):
                assert not [r for r in roots if r in path], (c.name, path)
                assert not data.startswith(b"PRIVATE+KEY+puente.root/"), (c.name, path)
    if deployment == "k8s":
        secrets, configmaps = _k8s_sources(generated)
        text = yaml.safe_dump([secrets, configmaps])
        assert "PRIVATE+KEY+puente.root/" not in text
        assert not [r for r in roots if f"{r}.skey" in text]
        assert not [n for n in secrets if "root" in n]
