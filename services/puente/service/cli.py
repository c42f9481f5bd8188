"""``puente serve policy``: run one instance of the policy service."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from puente.config import Settings, get_settings

app = typer.Typer(help="Run Puente's services.", no_args_is_help=True)


def build_service(settings: Settings, *, instance: str, mode: str | None = None) -> object:
    """A :class:`PolicyService` wired from settings (keys, policies, Kafka)."""
    from puente.codec.registry import Registry
    from puente.evidence.keys import read_private_key
    from puente.kafka.connection import credential, resolve_endpoint
    from puente.members import load_members
    from puente.policy.store import PolicyStore
    from puente.service.aggregates import Aggregation
    from puente.service.setup import ensure_evidence, pseudonym_secret
    from puente.service.worker import PolicyService, ServiceConfig
    from puente.topics import Naming

    naming = Naming(settings.kafka.topic_prefix)
    cfg = settings.policy
    if cfg.signing_key_file is not None:
        # A deployment: the operator issued this key and lists it in the trust list.
        key = read_private_key(cfg.signing_key_file)
    else:
        key = ensure_evidence(settings, load_members(settings.policies_dir).codes).service_key
    registry = Registry.load(settings.schemas_dir)
    return PolicyService(
        endpoint=resolve_endpoint(settings),
        credential=credential(settings, naming.service_principal("policy")),
        naming=naming,
        registry=registry,
        policies=PolicyStore(
            settings.policies_dir, settings.schemas_dir, secret=pseudonym_secret(settings)
        ),
        key=key,
        config=ServiceConfig.from_settings(cfg, mode=mode),
        instance=instance,
        aggregation=Aggregation.from_settings(settings, registry),  # early warning
    )


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

    from puente.service.worker import PolicyService

    settings = get_settings()
    port = settings.policy.metrics_port if metrics_port is None else metrics_port
    if port:
        start_http_server(port, addr="127.0.0.1")
    service = build_service(settings, instance=instance, mode=mode)
    assert isinstance(service, PolicyService)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await service.run(stop)

    asyncio.run(main())
