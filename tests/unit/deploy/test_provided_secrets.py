"""A rendered deployment provides every secret and file its services read, read-only.

Each container of the committed deploy/compose and deploy/k8s files is rebuilt as a directory
tree: the secrets its orchestrator mounts (made by ``puente deploy compose secrets`` /
``puente deploy k8s secrets``, plus the Secrets Strimzi and cert-manager provide), its volumes
(a Kubernetes init container's command is run on them), and its environment with every
in-container path mapped into the tree. Then each service's own start-up code runs on that
environment — the policy service builds itself (``build_service``: Kafka credential, signing
key, pseudonymisation secret) and loads its policies; the gateway builds its app, its TLS
context and its Kafka TLS context; provisioning finds a credential for every principal; a Kafka
node finds the files its properties and start script refer to. Nothing may be written into a
secret mount (both deployments mount them read-only), and a secret a service reads but the
render does not provide fails the walk — which is what removing each mounted file shows.
"""

from __future__ import annotations

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
    self_signed_certificate,
)
from puente.errors import PuenteError
from puente.kafka.broker_config import ADMIN_USER
from puente.kafka.connection import admin_credential, credential, resolve_endpoint
from puente.secrets import SecretStore
from puente.topics import Naming

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "deploy" / "compose"
K8S = REPO / "deploy" / "k8s"


@dataclass
class Container:
    """One container's file system as a tree of host directories, and its environment."""

    name: str
    mounts: dict[str, Path] = field(default_factory=dict)  # mount path -> host path
    secret_mounts: set[str] = field(default_factory=set)  # mount paths that are read-only secrets
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

    def secret_files(self) -> dict[str, tuple[bytes, int]]:
        """Every file on a secret mount: content and mode."""
        out = {}
        for mount in self.secret_mounts:
            root = self.mounts[mount]
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    out[f"{mount}/{path.relative_to(root)}"] = (
                        path.read_bytes(),
                        path.stat().st_mode,
                    )
        return out


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


def start_policy_service(c: Container) -> None:
    from puente.app.runtime import Runtime
    from puente.evidence._time import now_ms

    runtime = Runtime.from_settings(Settings())
    service = runtime.policy_service(instance="walk", key=runtime.service_key(now_ms()))
    service.endpoint.aiokafka_kwargs(service.cred)  # the Kafka TLS context, when configured
    loaded = service.policies.reload()
    assert loaded.ok, loaded.error


def start_gateway(c: Container) -> None:
    from puente_gateway.app import create_app
    from puente_gateway.server import uvicorn_config

    settings = Settings()
    gw = settings.gateway
    app = create_app(settings, gw)
    uvicorn_config(app, gw).load()  # reads the TLS certificate and key
    principal = Naming(settings.kafka.topic_prefix).service_principal("gateway")
    resolve_endpoint(settings).aiokafka_kwargs(credential(settings, principal))


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


def compose_containers(tmp: Path) -> dict[str, Container]:
    doc = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    inputs = contract.deploy_inputs(REPO / "policies")
    generated = tmp / "generated"
    compose_secrets(generated, [p.name for p in inputs.plan.principals], env_file=tmp / ".env")
    out = {}
    for name, svc in doc["services"].items():
        c = Container(name)
        run_secrets = tmp / name / "run-secrets"
        run_secrets.mkdir(parents=True)
        for s in svc.get("secrets", []):
            source = Path(doc["secrets"][s["source"]]["file"])
            assert source.parts[0] == "secrets", source
            shutil.copy2(generated / source.name, run_secrets / s.get("target", s["source"]))
        c.mounts[contract.SECRETS_MOUNT] = run_secrets
        c.secret_mounts.add(contract.SECRETS_MOUNT)
        for volume in svc.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
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
        out[name] = c
    return out


COMPOSE_STARTS: dict[str, Callable[[Container], None]] = {
    "provision": start_provisioning,
    "policy": start_policy_service,
    "gateway": start_gateway,
    **{f"kafka-{i}": start_kafka_node for i in (1, 2, 3)},
}


# --- Kubernetes ---------------------------------------------------------------------------------


def _k8s_sources(tmp: Path) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Secrets (rendered by `puente deploy k8s secrets`, plus those Strimzi and cert-manager
    make) and ConfigMaps (`puente deploy k8s policies`), by name."""
    inputs = contract.deploy_inputs(REPO / "policies")
    principals = [ADMIN_USER, *(p.name for p in inputs.plan.principals)]
    docs = k8s_secret_manifests(tmp / "generated", principals, namespace=k.NAMESPACE)
    secrets = {d["metadata"]["name"]: dict(d["stringData"]) for d in docs}
    cert, key = (x.decode() for x in self_signed_certificate(["gateway"], []))
    secrets[k.CLUSTER_CA_SECRET] = {"ca.crt": cert}  # Strimzi's cluster CA
    secrets[k.GATEWAY_TLS_SECRET] = {"tls.crt": cert, "tls.key": key}  # cert-manager's
    configmap = k.policies_configmap(REPO / "policies", inputs.members)
    return secrets, {configmap["metadata"]["name"]: configmap["data"]}


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


def k8s_containers(tmp: Path) -> dict[str, Container]:
    secrets, configmaps = _k8s_sources(tmp)
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
            c.env = {e["name"]: e["value"] for e in spec.get("env", [])}
            if spec in pod.get("initContainers", []):
                # Run it: its arguments' paths mapped into the tree.
                argv = [*spec["command"], *spec.get("args", [])]
                argv = [str(c.host(a)) if a.startswith("/") else a for a in argv]
                subprocess.run(argv, check=True, timeout=30)
            else:
                out[name] = c
    return out


K8S_STARTS: dict[str, Callable[[Container], None]] = {
    "puente-policy-service": start_policy_service,
    "puente-gateway": start_gateway,
}


# --- the walk ------------------------------------------------------------------------------------


def walk(
    c: Container, start: Callable[[Container], None], use: Callable[[Container], None]
) -> None:
    before = c.secret_files()
    use(c)
    start(c)
    assert c.secret_files() == before, f"{c.name} wrote into its read-only secrets"


@pytest.mark.parametrize("deployment", ["compose", "k8s"])
def test_every_service_starts_on_what_the_render_provides(
    deployment: str, tmp_path: Path, service_env: Callable[[Container], None]
) -> None:
    containers = (compose_containers if deployment == "compose" else k8s_containers)(tmp_path)
    starts = COMPOSE_STARTS if deployment == "compose" else K8S_STARTS
    assert set(containers) == set(starts)  # every service of the render is walked
    for name, c in containers.items():
        walk(c, starts[name], service_env)


@pytest.mark.parametrize("deployment", ["compose", "k8s"])
def test_every_mounted_secret_of_the_policy_service_is_read(
    deployment: str, tmp_path: Path, service_env: Callable[[Container], None]
) -> None:
    """The walk is not vacuous: without any one of its mounted secret files, the policy service
    refuses to start (it never makes a missing one itself)."""
    name = "policy" if deployment == "compose" else "puente-policy-service"
    build = compose_containers if deployment == "compose" else k8s_containers
    files = sorted(build(tmp_path / "probe")[name].secret_files())
    assert any(contract.POLICY_PSEUDONYM_FILE in f for f in files)
    for i, file in enumerate(files):
        c = build(tmp_path / str(i))[name]
        c.host(file).unlink()
        with pytest.raises((PuenteError, AssertionError)):
            walk(c, start_policy_service, service_env)
