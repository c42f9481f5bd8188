"""``puente serve policy``: run one instance of the policy service."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from puente.app.runtime import Runtime
from puente.evidence._time import now_ms

app = typer.Typer(help="Run Puente's services.", no_args_is_help=True)


@app.command()
def policy(
    instance: Annotated[
        str, typer.Option(help="a name for this instance (logs, client ids)")
    ] = "policy-1",
    mode: Annotated[str | None, typer.Option(help="signing mode: batch or each")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port (0: off)")] = None,
) -> None:
    """Consume every ingress topic; decide, transform, sign and deliver, exactly once.

    SIGTERM or Ctrl-C: the current batch finishes, a checkpoint is written, the instance leaves.
    """
    from prometheus_client import start_http_server

    runtime = Runtime.from_settings()
    settings = runtime.settings
    port = settings.policy.metrics_port if metrics_port is None else metrics_port
    if port:
        start_http_server(port, addr="127.0.0.1")
    service = runtime.policy_service(
        instance=instance, key=runtime.service_key(now_ms()), mode=mode
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await service.run(stop)

    asyncio.run(main())
