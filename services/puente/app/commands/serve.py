"""``puente serve node --as CC``: run member state CC's node (or several states' nodes, or
``--all`` of them for the embedded default, in one process); ``puente serve receipts --as CC``:
its receipt tracker, the same way; ``puente serve witness --as CC``: its witness, the same way;
``puente serve warnings``: the early-warning evaluator."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Annotated, Protocol

import typer

from puente.app.commands._common import AnchorOpt, TrustListOpt
from puente.app.runtime import Runtime
from puente.kafka.trustfeed import TrustTopicReader

app = typer.Typer(help="Run Puente's services.", no_args_is_help=True)


class Runner(Protocol):
    """A service that runs until ``stop`` is set (a node, a tracker)."""

    async def run(self, stop: asyncio.Event) -> None: ...


MembersOption = Annotated[
    list[str] | None,
    typer.Option("--as", help="the member state whose node or tracker this is (repeatable)"),
]
AllOption = Annotated[
    bool, typer.Option("--all", help="every member state's (the embedded default)")
]


def _states(runtime: Runtime, members: list[str] | None, all_members: bool) -> list[str]:
    """The member states named by ``--as`` (or ``--all``), checked against the member list."""
    codes = list(runtime.members) if all_members else [m.upper() for m in members or []]
    if not codes:
        raise typer.BadParameter("give --as CC (repeatable) or --all", param_hint="--as")
    unknown = sorted(set(codes) - set(runtime.members))
    if unknown:
        raise typer.BadParameter(f"not member states: {', '.join(unknown)}", param_hint="--as")
    return codes


def _until_signalled(
    codes: list[str], build: Callable[[str], tuple[Runner, TrustTopicReader]]
) -> None:
    """Run what ``build`` makes for each state (``run(stop)``, with the trust topic reader it
    follows the trust list with) until SIGTERM or Ctrl-C."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with contextlib.AsyncExitStack() as stack:
            runners = []
            for code in codes:
                runner, reader = build(code)
                await stack.enter_async_context(reader)
                runners.append(runner)
            await asyncio.gather(*(r.run(stop) for r in runners))

    asyncio.run(main())


@app.command()
def node(
    members: MembersOption = None,
    all_members: AllOption = False,
    instance: Annotated[
        str, typer.Option(help="a name for this instance (logs, client ids)")
    ] = "node-1",
    mode: Annotated[str | None, typer.Option(help="signing mode: batch or each")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port (0: off)")] = None,
) -> None:
    """Consume the state's ingress topic; open what its agencies sealed; decide under its policy
    and the pinned regional floor; seal each delivery to its recipient; sign with its node key;
    deliver exactly once.

    Each state's node is its own Kafka principal with its own consumer group; instances of one
    node share its partitions. SIGTERM or Ctrl-C: the current batch finishes, every log is
    checkpointed, the instance leaves.
    """
    runtime = Runtime.from_settings()
    codes = _states(runtime, members, all_members)
    _serve_metrics(runtime.settings.policy, metrics_port)

    _until_signalled(codes, lambda code: runtime.node(code, instance=instance, mode=mode))


@app.command()
def receipts(
    members: MembersOption = None,
    all_members: AllOption = False,
    instance: Annotated[
        str, typer.Option(help="a name for this instance (logs, client ids)")
    ] = "tracker-1",
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port (0: off)")] = None,
) -> None:
    """Track the deliveries the state's node sent: join its audit log with the receipts its
    recipients sign, verify each receipt (signature, recipient; fails closed), keep each
    delivery's state (delivered, received, acknowledged, declined, overdue) and escalate a
    deadline that passes: a signed report to the state, a reminder to the recipient, once.

    One tracker per state, its own Kafka principal; a second instance fences the first. Its
    state is in tracker.<CC>; a restart resumes exactly where the last transaction left it.
    PUENTE_RECEIPTS__CLOCK_SCALE speeds its clock up (demos only).
    """
    runtime = Runtime.from_settings()
    codes = _states(runtime, members, all_members)
    _serve_metrics(runtime.settings.receipts, metrics_port)

    _until_signalled(codes, lambda code: runtime.tracker(code, instance=instance))


@app.command()
def witness(
    members: MembersOption = None,
    all_members: AllOption = False,
    instance: Annotated[
        str, typer.Option(help="a name for this instance (logs, client ids)")
    ] = "witness-1",
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port (0: off)")] = None,
) -> None:
    """Witness the other states' audit logs: verify each new checkpoint is consistent with the
    last one this state cosigned for that log, cosign it (C2SP cosignature/v1, the state's
    witness key), and report every fork it can prove (signed, on the equivocations topic).

    One witness per state, its own Kafka principal; a second instance fences the first. Its
    state is in witness.<CC>: a restart never cosigns a smaller size or another root for a
    size it cosigned (docs/evidence.md §5.3).
    """
    runtime = Runtime.from_settings()
    codes = _states(runtime, members, all_members)
    _serve_metrics(runtime.settings.witness, metrics_port)

    _until_signalled(codes, lambda code: runtime.witness(code, instance=instance))


@app.command()
def warnings(
    instance: Annotated[str, typer.Option(help="a name for this instance (logs)")] = "warnings-1",
    anchor: AnchorOpt = None,
    trust_list: TrustListOpt = None,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port (0: off)")] = None,
) -> None:
    """Evaluate the early-warning triggers over every state's signed aggregates and publish
    signed early warnings (and their end) to the warnings topic (docs/early-warning.md §5).

    Runs as the ``warnings`` service principal with the evaluator's key
    (``PUENTE_WARNINGS__KEYS_DIR``); keeps no state of its own (it replays the aggregates at
    start and publishes nothing twice). SIGTERM or Ctrl-C stops it.
    """
    runtime = Runtime.from_settings()
    service, topic = runtime.warnings_evaluator(
        instance=instance, anchors=anchor, trust_file=trust_list
    )
    _serve_metrics(runtime.settings.warnings, metrics_port)

    _until_signalled(["warnings"], lambda _: (service, topic))


class _MetricsSettings(Protocol):
    metrics_port: int
    metrics_host: str


def _serve_metrics(cfg: _MetricsSettings, metrics_port: int | None) -> None:
    """Prometheus metrics on ``metrics_port`` (None: the settings' port; 0: off)."""
    from prometheus_client import start_http_server

    port = cfg.metrics_port if metrics_port is None else metrics_port
    if port:
        start_http_server(port, addr=cfg.metrics_host)
