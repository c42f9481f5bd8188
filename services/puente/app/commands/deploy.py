"""``puente deploy``: render deploy/compose and deploy/k8s, check them, make their secrets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from puente.config import get_settings
from puente.deploy import contract as c
from puente.errors import ConfigError, PuenteError

app = typer.Typer(
    help="Deployment files: Compose and Kubernetes (Strimzi), rendered from the member list.",
    no_args_is_help=True,
)
compose_app = typer.Typer(
    help="deploy/compose: secrets for a Compose deployment.", no_args_is_help=True
)
k8s_app = typer.Typer(help="deploy/k8s: secrets and the policies ConfigMap.", no_args_is_help=True)
app.add_typer(compose_app, name="compose")
app.add_typer(k8s_app, name="k8s")

PoliciesOpt = Annotated[
    Path | None,
    typer.Option(help="folder with members.yaml (default: the checkout's policies/)"),
]


class DeployDrift(PuenteError):
    reason = "DEPLOY_FILES_STALE"


def rendered(policies_dir: Path | None = None) -> dict[Path, str]:
    """Every generated deploy file, relative to the repository root."""
    from puente.deploy.compose import compose_files
    from puente.deploy.k8s import k8s_files

    inputs = c.deploy_inputs(policies_dir or c.repo_root() / "policies")
    return compose_files(inputs) | k8s_files(inputs)


@app.command()
def render(
    policies_dir: PoliciesOpt = None,
    root: Annotated[
        Path | None, typer.Option(help="write under this folder (default: checkout)")
    ] = None,
) -> None:
    """Write deploy/compose and deploy/k8s from the member list, topics, plan and broker config."""
    from puente.deploy.render import write_files

    target = root or c.repo_root()
    changed = write_files(rendered(policies_dir), target)
    for path in changed:
        typer.echo(f"wrote {path}")
    typer.echo(f"{len(changed)} file(s) changed")


@app.command()
def check(policies_dir: PoliciesOpt = None) -> None:
    """Fail when the committed deploy files differ from what `puente deploy render` writes."""
    from puente.deploy.compose import COMPOSE_DIR
    from puente.deploy.k8s import K8S_DIR
    from puente.deploy.render import check_files

    drift = check_files(rendered(policies_dir), c.repo_root(), owned_dirs=[COMPOSE_DIR, K8S_DIR])
    if drift:
        listing = ", ".join(f"{d.path} ({d.problem})" for d in drift)
        raise DeployDrift(
            f"deploy files out of date: {listing}",
            hint="run `puente deploy render` and commit the result",
        )
    typer.echo("deploy files are up to date")


def _owner(value: str | None) -> tuple[int, int] | None:
    if value is None:
        # Root would leave files the containers' user (uid 1000) cannot read.
        return (c.RUN_UID, c.RUN_UID) if os.geteuid() == 0 else None
    try:
        uid, _, gid = value.partition(":")
        return int(uid), int(gid or uid)
    except ValueError:
        raise ConfigError(f"--owner takes UID[:GID], not {value!r}") from None


@compose_app.command("secrets")
def compose_secrets_cmd(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="default: deploy/compose/secrets (.env goes beside it)"),
    ] = None,
    owner: Annotated[
        str | None, typer.Option(help="UID[:GID] to own the files (default 1000 when root)")
    ] = None,
    policies_dir: PoliciesOpt = None,
) -> None:
    """Create every secret file the Compose file mounts (existing files are kept): credentials,
    each node's, witness's and gateway's key store and pseudonymisation secret, each state's
    root key in <dir>/roots/CC (unless the state keeps its own: its public part imported into
    <dir>/trust), and a trust list of their public parts signed by a majority of the states'
    roots (signed anew when its keys changed). Short of that quorum: the proposal in
    <dir>/trust and the `puente trust sign --as CC` commands that remain, exit 2."""
    from puente.deploy.material import compose_secrets

    compose_dir = c.repo_root() / "deploy" / "compose"
    target = directory or compose_dir / "secrets"
    inputs = c.deploy_inputs(policies_dir or c.repo_root() / "policies")
    created = compose_secrets(
        target,
        inputs,
        # Compose reads .env beside compose.yaml: deploy/compose/.env for the default folder.
        env_file=target.parent / ".env",
        owner=_owner(owner),
    )
    typer.echo(
        f"{len(created)} secret file(s) created or signed anew in {target} (existing ones kept)"
    )
    typer.echo(f"next: docker compose -f {compose_dir / 'compose.yaml'} up -d")


@k8s_app.command("secrets")
def k8s_secrets_cmd(
    secrets_dir: Annotated[
        Path, typer.Option(help="local folder holding (or receiving) the generated passwords")
    ],
    out: Annotated[
        Path | None, typer.Option(help="default: <secrets-dir>/k8s-secrets.yaml")
    ] = None,
    policies_dir: PoliciesOpt = None,
) -> None:
    """Write Secret manifests (0600 file) for every principal's password, every node's,
    witness's and gateway's key store and pseudonymisation secret, and the public puente-trust
    ConfigMap (the genesis list and the trust list, signed by a majority of the states' roots
    as for Compose). The roots in <secrets-dir>/roots go into no Secret."""
    from puente.deploy.k8s import NAMESPACE
    from puente.deploy.material import k8s_secret_manifests, k8s_trust_configmap
    from puente.deploy.render import yaml_stream
    from puente.secrets import write_private

    inputs = c.deploy_inputs(policies_dir or c.repo_root() / "policies")
    docs = k8s_secret_manifests(secrets_dir, inputs, namespace=NAMESPACE)
    docs.append(k8s_trust_configmap(secrets_dir, namespace=NAMESPACE))
    target = out or secrets_dir / "k8s-secrets.yaml"
    header = "# Secrets and the trust ConfigMap for deploy/k8s: kubectl apply, never commit.\n"
    write_private(target, yaml_stream(docs, header=header).encode())
    typer.echo(
        f"wrote {len(docs) - 1} Secret(s) and ConfigMap puente-trust to {target}; "
        f"apply: kubectl apply -f {target}"
    )


@k8s_app.command("policies")
def k8s_policies_cmd(
    policies_dir: PoliciesOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="file to write (default: standard output)")
    ] = None,
) -> None:
    """Render the puente-policies ConfigMap, after checking that the policy set and the
    early-warning triggers load."""
    from puente.deploy.k8s import policies_configmap
    from puente.deploy.render import yaml_stream
    from puente.policy.loader import load_policy_set
    from puente.warnings.loader import load_triggers

    source = policies_dir or c.repo_root() / "policies"
    load_policy_set(source)  # an invalid set is refused here, before it reaches the cluster
    load_triggers(source, get_settings().schemas_dir)
    members = c.deploy_inputs(source).members
    text = yaml_stream([policies_configmap(source, members)], header="")
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}; apply: kubectl apply -f {out}")


if __name__ == "__main__":  # pragma: no cover
    app()
