"""``puente serve node --as CC``: run member state CC's node (or several states' nodes, or
``--all`` of them for the embedded default, in one process); ``puente serve warnings``: the
early-warning evaluator."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer

from puente.app.commands._common import AnchorOpt, TrustListOpt
from puente.app.runtime import Runtime

app = typer.Typer(help="Run Puente's services.", no_args_is_help=True)


@app.command()
def node(
    members: Annotated[
        list[str] | None,
        typer.Option("--as", help="the member state whose node this is (repeatable)"),
    ] = None,
    all_members: Annotated[
        bool, typer.Option("--all", help="host every member state's node (embedded default)")
    ] = False,
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
    from prometheus_client import start_http_server

    runtime = Runtime.from_settings()
    codes = list(runtime.members) if all_members else [m.upper() for m in members or []]
    if not codes:
        raise typer.BadParameter("give --as CC (repeatable) or --all", param_hint="--as")
    unknown = sorted(set(codes) - set(runtime.members))
    if unknown:
        raise typer.BadParameter(f"not member states: {', '.join(unknown)}", param_hint="--as")
    port = runtime.settings.policy.metrics_port if metrics_port is None else metrics_port
    if port:
        start_http_server(port, addr=runtime.settings.policy.metrics_host)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with contextlib.AsyncExitStack() as stack:
            nodes = []
            for code in codes:
                n, reader = runtime.node(code, instance=instance, mode=mode)
                await stack.enter_async_context(reader)
                nodes.append(n)
            await asyncio.gather(*(n.run(stop) for n in nodes))

    asyncio.run(main())


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
    from prometheus_client import start_http_server

    runtime = Runtime.from_settings()
    service, topic = runtime.warnings_evaluator(
        instance=instance, anchors=anchor, trust_file=trust_list
    )
    cfg = runtime.settings.warnings
    port = cfg.metrics_port if metrics_port is None else metrics_port
    if port:
        start_http_server(port, addr=cfg.metrics_host)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with topic:
            await service.run(stop)

    asyncio.run(main())
