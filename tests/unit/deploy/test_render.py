"""One source of truth: the committed deploy files are exactly what the generator renders."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from puente.app.commands.deploy import app, rendered
from puente.deploy.compose import COMPOSE_DIR
from puente.deploy.k8s import K8S_DIR
from puente.deploy.render import GENERATED_BY, check_files, write_files

REPO = Path(__file__).resolve().parents[3]
runner = CliRunner()


def test_committed_files_match_the_generator() -> None:
    drift = check_files(rendered(), REPO, owned_dirs=[COMPOSE_DIR, K8S_DIR])
    assert drift == [], "run `puente deploy render` and commit: " + ", ".join(
        f"{d.path} ({d.problem})" for d in drift
    )


def test_check_command_passes_on_the_checkout() -> None:
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def _policies_with(tmp_path: Path, extra: str) -> Path:
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    members = policies / "members.yaml"
    members.write_text(members.read_text() + f"  - {{code: {extra}, name: Test State}}\n")
    return policies


def test_a_new_member_changes_exactly_its_resources(tmp_path: Path) -> None:
    """Adding a member to members.yaml adds its topics, users, node, gateway and policy item,
    nothing else."""
    before = rendered()
    after = rendered(_policies_with(tmp_path, "ZZ"))
    # ZZ's own node and gateway.
    assert set(after) - set(before) == {K8S_DIR / "30-node-zz.yaml", K8S_DIR / "31-gateway-zz.yaml"}
    assert set(before) <= set(after)
    changed = {p for p in before if before[p] != after[p]}
    # Every Puente pod mounts the policies ConfigMap with an item per state (states/ZZ.yaml).
    pods = {p for p in before if p.name.startswith(("30-node-", "31-gateway-", "32-warnings"))}
    assert changed == {
        COMPOSE_DIR / "compose.yaml",  # ZZ's node and gateway; provisioning mounts its credentials
        K8S_DIR / "20-topics.yaml",
        K8S_DIR / "21-users.yaml",
        K8S_DIR / "kustomization.yaml",  # lists 30-node-zz.yaml and 31-gateway-zz.yaml
        *pods,
    }
    for path in pods:
        removed = set(before[path].splitlines()) - set(after[path].splitlines())
        assert not removed, path  # only lines added
    topics = [d for d in yaml.safe_load_all(after[K8S_DIR / "20-topics.yaml"]) if d]
    new = {d["spec"]["topicName"] for d in topics} - {
        d["spec"]["topicName"] for d in yaml.safe_load_all(before[K8S_DIR / "20-topics.yaml"]) if d
    }
    kinds = ("ingress", "deliver", "rejected", "receipts", "audit", "state", "tracker", "due")
    assert new == {
        f"puente.{k}.ZZ"
        for k in (*kinds, "overdue", "gateway-tokens", "gateway-answers", "partials", "witness")
    }
    users = [
        d["metadata"]["name"] for d in yaml.safe_load_all(after[K8S_DIR / "21-users.yaml"]) if d
    ]
    assert {
        "puente-zz",
        "puente-node-zz",
        "puente-gateway-zz",
        "puente-tracker-zz",
        "puente-witness-zz",
    } <= set(users)
    compose = yaml.safe_load(after[COMPOSE_DIR / "compose.yaml"])
    assert compose["services"]["node-zz"]["command"][-2:] == ["--as", "ZZ"]
    assert compose["services"]["tracker-zz"]["command"][-2:] == ["--as", "ZZ"]


def test_drift_is_reported(tmp_path: Path) -> None:
    files = rendered()
    write_files(files, tmp_path)
    assert check_files(files, tmp_path, owned_dirs=[COMPOSE_DIR, K8S_DIR]) == []
    (tmp_path / K8S_DIR / "21-users.yaml").write_text("edited by hand\n")
    (tmp_path / K8S_DIR / "10-kafka.yaml").unlink()
    (tmp_path / K8S_DIR / "22-old.yaml").write_text(GENERATED_BY + "kind: KafkaUser\n")
    (tmp_path / K8S_DIR / "notes.yaml").write_text("# hand-written, not ours to judge\n")
    problems = {
        (d.path.name, d.problem)
        for d in check_files(files, tmp_path, owned_dirs=[COMPOSE_DIR, K8S_DIR])
    }
    assert problems == {
        ("21-users.yaml", "differs"),
        ("10-kafka.yaml", "missing"),
        ("22-old.yaml", "stale"),
    }
    assert write_files(files, tmp_path) == [K8S_DIR / "10-kafka.yaml", K8S_DIR / "21-users.yaml"]


def test_render_command_writes_under_a_root(tmp_path: Path) -> None:
    result = runner.invoke(app, ["render", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / COMPOSE_DIR / "compose.yaml").is_file()
    result = runner.invoke(app, ["render", "--root", str(tmp_path)])
    assert "0 file(s) changed" in result.output


def test_policies_configmap_command(tmp_path: Path) -> None:
    out = tmp_path / "cm.yaml"
    result = runner.invoke(app, ["k8s", "policies", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (cm,) = [d for d in yaml.safe_load_all(out.read_text()) if d]
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "puente-policies"
    assert cm["data"]["states.MX.yaml"] == (REPO / "policies" / "states" / "MX.yaml").read_text()
    # members, regional floor, early warning's triggers and gazetteer, the twenty states.
    assert len(cm["data"]) == 4 + 20
    assert cm["data"]["triggers.yaml"] == (REPO / "policies" / "triggers.yaml").read_text()


@pytest.mark.parametrize("broken", ["states/MX.yaml", "triggers.yaml"])
def test_policies_configmap_refuses_an_invalid_set(tmp_path: Path, broken: str) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    path = policies / broken
    path.write_text(path.read_text() + "\nnot_a_key: [\n")
    result = runner.invoke(app, ["k8s", "policies", "--policies-dir", str(policies)])
    assert result.exit_code != 0
    assert "kind: ConfigMap" not in result.output


@pytest.mark.parametrize("owner", ["1000", "1000:1000"])
def test_compose_secrets_command_keeps_existing_files(tmp_path: Path, owner: str) -> None:
    import os

    target = tmp_path / "s"
    args = ["compose", "secrets", "--dir", str(target)]
    if os.geteuid() == 0:
        args += ["--owner", owner]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert (target / "admin.json").is_file()
    second = runner.invoke(app, args)
    assert "0 secret file(s) created" in second.output


def _rendered_environments() -> dict[str, dict[str, str]]:
    """Every container's environment in the committed Compose file and Deployments."""
    compose = yaml.safe_load((REPO / COMPOSE_DIR / "compose.yaml").read_text())
    out = {f"compose/{n}": s.get("environment", {}) for n, s in compose["services"].items()}
    for path in sorted((REPO / K8S_DIR).glob("3*.yaml")):
        for d in yaml.safe_load_all(path.read_text()):
            if d and d["kind"] == "Deployment":
                pod = d["spec"]["template"]["spec"]
                for c in [*pod.get("initContainers", []), *pod["containers"]]:
                    env = {e["name"]: e["value"] for e in c.get("env", [])}
                    out[f"k8s/{d['metadata']['name']}/{c['name']}"] = env
    return out


def test_every_variable_a_render_sets_is_a_setting() -> None:
    """A misspelt PUENTE_ variable would be ignored silently (pydantic-settings drops unknown
    names): each one names a field of puente.config.Settings (or one of its short aliases)."""
    from pydantic import BaseModel

    from puente.config import _SHORT_ALIASES, Settings

    names = {n for env in _rendered_environments().values() for n in env if "PUENTE_" in n}
    assert {"PUENTE_POLICY__KEYS_DIR", "PUENTE_POLICY__METRICS_HOST"} <= names
    for name in names - set(_SHORT_ALIASES):
        model: Any = Settings
        for part in name.removeprefix("PUENTE_").lower().split("__"):
            assert model is not None and part in model.model_fields, name
            annotation = model.model_fields[part].annotation
            nested = isinstance(annotation, type) and issubclass(annotation, BaseModel)
            model = annotation if nested else None
