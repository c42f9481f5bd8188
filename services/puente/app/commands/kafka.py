"""``puente kafka``: up, down, status, reset, provision; client-config and tool for Kafka's
own command-line tools."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from puente.app.operator import provision_members
from puente.config import get_settings
from puente.kafka.local import LocalCluster
from puente.kafka.plan import Acl, Operation, Pattern, Plan, Resource
from puente.kafka.provision import Action, Change

app = typer.Typer(
    help="The Kafka broker: up, down, status, reset, provision, client-config, tool.",
    no_args_is_help=True,
)
console = Console(width=None if sys.stdout.isatty() else 140)


@app.command()
def up(
    brokers: Annotated[
        int | None,
        typer.Option(help="nodes in the local KRaft cluster (default: as formatted, else 1)"),
    ] = None,
) -> None:
    """Start the local broker(s) in the background and wait until they answer."""
    settings = get_settings()
    cluster = LocalCluster(settings, brokers=brokers)
    with console.status("starting Kafka (the first run fetches its jars from Maven Central)"):
        info = cluster.up()
    admin = cluster.admin_credential()
    console.print(f"[green]Kafka {info.version} is up[/] ({len(info.nodes)} node(s), KRaft)")
    console.print(f"  bootstrap:  {info.bootstrap}")
    console.print("  security:   SASL_PLAINTEXT, SCRAM-SHA-512, ACLs (StandardAuthorizer)")
    console.print(
        f"  admin:      user {admin.username!r}, password in "
        f"{settings.secrets_dir / (admin.username + '.json')}"
    )
    console.print(f"  state:      {cluster.root}")
    console.print(
        "  connect:    PUENTE_KAFKA_BOOTSTRAP="
        f"{info.bootstrap} (other Puente commands find it without this)"
    )


@app.command()
def down() -> None:
    """Stop the broker(s) this state directory started (and nothing else)."""
    stopped = LocalCluster(get_settings()).down()
    if stopped:
        console.print(f"stopped Kafka (pid {', '.join(map(str, stopped))})")
    else:
        console.print("no local Kafka was running")


@app.command()
def status() -> None:
    """Show whether the local broker(s) run, their ports and memory."""
    cluster = LocalCluster(get_settings())
    nodes = cluster.status()
    if not nodes:
        console.print("no local Kafka in this state directory (run `puente kafka up`)")
        raise typer.Exit(1)
    table = Table("node", "state", "pid", "client port", "RSS")
    for n in nodes:
        table.add_row(
            str(n.node_id),
            "[green]running[/]" if n.running else "[red]stopped[/]",
            str(n.pid or "-"),
            str(n.client_port),
            f"{n.rss_mb:.0f} MiB" if n.rss_mb else "-",
        )
    console.print(table)
    if not all(n.running for n in nodes):
        raise typer.Exit(1)


@app.command()
def reset(
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Stop the local broker(s) and delete their data."""
    cluster = LocalCluster(get_settings())
    if not yes:
        typer.confirm(f"delete {cluster.root} and every message in it?", abort=True)
    cluster.reset()
    console.print(f"deleted {cluster.root}")


@app.command()
def provision(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the plan and what would change; change nothing")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="list every ACL")] = False,
) -> None:
    """Create every member's principal, topics and ACLs (idempotent)."""
    settings = get_settings()
    plan, changes = provision_members(settings, dry_run=dry_run)
    print_plan(plan, changes, verbose=verbose)
    todo = [c for c in changes if c.action in (Action.CREATE, Action.UPDATE)]
    verb = "would make" if dry_run else "made"
    console.print(f"{verb} {len(todo)} change(s)")


@app.command("client-config")
def client_config(
    out: Annotated[Path, typer.Option("--out", "-o", help="the properties file to write (0600)")],
    member: Annotated[
        str | None, typer.Option("--as", help="a member state's principal (ISO code)")
    ] = None,
    principal: Annotated[
        str | None, typer.Option(help="any provisioned principal, e.g. puente-svc-auditor")
    ] = None,
) -> None:
    """Write a Java client configuration (bootstrap, SASL/SCRAM login) for one principal, for
    Kafka's own tools: ``--consumer.config`` / ``--command-config FILE``. It holds the
    principal's password: it is written 0600 and never printed."""
    from puente.kafka.connection import credential, resolve_endpoint
    from puente.kafka.tools import write_client_properties
    from puente.topics import Naming

    settings = get_settings()
    if (member is None) == (principal is None):
        raise typer.BadParameter("give exactly one of --as CC or --principal NAME")
    naming = Naming(settings.kafka.topic_prefix)
    name = principal or naming.member_principal(member.upper())  # type: ignore[union-attr]
    write_client_properties(out, resolve_endpoint(settings), credential(settings, name))
    console.print(f"client configuration of {name} written to {out} (mode 0600)")
    if member:
        console.print(
            f"its consumer groups must start with {naming.member_group_prefix(member.upper())}"
        )


@app.command(
    "tool",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def tool(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="console-consumer, console-producer, consumer-groups, topics, acls, "
            "get-offsets, producer-perf-test, or a tool class name"
        ),
    ],
) -> None:
    """Run one of Kafka's own tools (kafka-tools, the broker's version) with the arguments that
    follow, e.g. ``puente kafka tool console-consumer --bootstrap-server B --topic T
    --consumer.config FILE --group puente.CR.mine --from-beginning``."""
    import subprocess

    from puente.kafka.tools import tool_command

    command = tool_command(get_settings(), name, list(ctx.args))
    raise typer.Exit(subprocess.run(command, check=False).returncode)


def print_plan(plan: Plan, changes: list[Change], *, verbose: bool = False) -> None:
    """The member / topic / ACL tables."""
    acl_counts: dict[str, Counter[Action]] = {}
    for c in changes:
        if c.what == "acl":
            acl_counts.setdefault(c.target, Counter())[c.action] += 1
    principal_action = {c.target: c.action for c in changes if c.what == "principal"}
    topic_action = {c.target: c.action for c in changes if c.what == "topic"}

    table = Table(
        "principal", "member/role", "credential", "own topics", "ACLs", title="Principals"
    )
    for p in plan.principals:
        own = [t.name for t in plan.topics if p.member and t.name.endswith("." + p.member)]
        new = sum(1 for t in own if topic_action.get(t) is Action.CREATE)
        counts = acl_counts.get(p.name, Counter())
        acl_cell = f"{counts[Action.CREATE] + counts[Action.EXISTS]} ({counts[Action.CREATE]} new)"
        if counts[Action.EXTRA]:
            acl_cell += f", {counts[Action.EXTRA]} extra"
        table.add_row(
            p.name,
            p.member or p.role,
            _action_cell(principal_action.get(p.name, Action.CREATE)),
            f"{len(own)} ({new} new)" if own else "-",
            acl_cell,
        )
    console.print(table)

    access = Table("principal", "may write", "may read", "groups / transactions", title="Access")
    examples = [p for p in plan.principals if p.member][:1] + [
        p for p in plan.principals if not p.member
    ]
    for p in examples:
        acls = [a for a in plan.acls if a.principal == p.name]
        access.add_row(
            p.name,
            _names(acls, Resource.TOPIC, Operation.WRITE),
            _names(acls, Resource.TOPIC, Operation.READ),
            ", ".join(
                f"{a.resource.value.lower()} {a.name}{'*' if a.pattern is Pattern.PREFIXED else ''}"
                for a in acls
                if a.resource is not Resource.TOPIC and a.operation is not Operation.DESCRIBE
            ),
        )
    console.print(access)
    console.print("(every member has the same access to its own topics as the first one shown)")

    kinds = Table("topic", "partitions", "replicas", "retention", "cleanup", title="Topics")
    seen: set[str] = set()
    for t in plan.topics:
        if t.kind.stem in seen:
            continue
        seen.add(t.kind.stem)
        name = t.name if t.kind.scope.value == "global" else t.name[:-2] + "<CC>"
        days = int(t.configs["retention.ms"])
        kinds.add_row(
            name,
            str(t.partitions),
            str(t.replication),
            "forever" if days < 0 else f"{days // 86_400_000} days",
            t.configs["cleanup.policy"],
        )
    console.print(kinds)
    other = [c for c in changes if c.what in ("partitions", "config") or c.action is Action.EXTRA]
    if verbose or other:
        detail = Table("what", "target", "action", "detail", title="Changes")
        for c in changes:
            if verbose or c in other:
                detail.add_row(c.what, c.target, _action_cell(c.action), c.detail)
        console.print(detail)


def _names(acls: list[Acl], resource: Resource, op: Operation) -> str:
    return ", ".join(
        a.name + ("*" if a.pattern is Pattern.PREFIXED else "")
        for a in acls
        if a.resource is resource and a.operation is op
    )


def _action_cell(action: Action) -> str:
    colour = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.EXTRA: "red"}.get(action)
    return f"[{colour}]{action.value}[/]" if colour else action.value
