"""Serving the app with uvicorn: one worker, TLS and client certificates when configured.

Always with the gateway's own HTTP protocol (puente_gateway.protocol), which bounds request
heads in size and time before the app runs. With ``tls_client_ca`` set, uvicorn asks for a
client certificate (``required`` by default, or ``optional`` so that token callers need none)
and checks it against that CA; the subject, serial and issuer then reach the app through the
ASGI TLS extension. With ``trusted_proxies`` set, the client address (which failed
authentications are counted by) is taken from those proxies' ``X-Forwarded-For``.
"""

from __future__ import annotations

import gc
import ssl
from collections.abc import Mapping
from typing import Any

import uvicorn
from fastapi import FastAPI

from puente.config import GatewaySettings, Settings
from puente.errors import ConfigError
from puente.secrets import Credential
from puente_gateway.app import create_app
from puente_gateway.context import GatewayContext
from puente_gateway.protocol import protocol_class


def uvicorn_config(app: FastAPI, gw: GatewaySettings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration of ``app`` under ``gw``'s address and TLS settings."""
    ctx = getattr(app.state, "ctx", None)
    kwargs: dict[str, Any] = {
        "host": gw.host,
        "port": gw.port,
        "log_config": None,  # structlog owns logging; uvicorn's access log would repeat it
        "access_log": False,
        "http": protocol_class(
            max_head_bytes=gw.max_head_bytes,
            max_url_bytes=gw.max_url_bytes,
            head_timeout_s=gw.head_timeout_s,
            metrics=ctx.metrics if isinstance(ctx, GatewayContext) else None,
        ),
        # The client address counts failed authentications: believe X-Forwarded-For only
        # from the proxies named.
        "proxy_headers": bool(gw.trusted_proxies),
        "forwarded_allow_ips": list(gw.trusted_proxies) or None,
        "lifespan": "on",
        "server_header": False,
        # Event streams never end by themselves: bound how long a shutdown waits for them.
        "timeout_graceful_shutdown": 10,
        "timeout_keep_alive": gw.keep_alive_s,
    }
    if gw.tls_cert is not None or gw.tls_key is not None:
        if gw.tls_cert is None or gw.tls_key is None:
            raise ConfigError("set both PUENTE_GATEWAY__TLS_CERT and PUENTE_GATEWAY__TLS_KEY")
        kwargs |= {"ssl_certfile": str(gw.tls_cert), "ssl_keyfile": str(gw.tls_key)}
    if gw.tls_client_ca is not None:
        if "ssl_certfile" not in kwargs:
            raise ConfigError("client certificates need TLS: set PUENTE_GATEWAY__TLS_CERT/_KEY")
        kwargs |= {
            "ssl_ca_certs": str(gw.tls_client_ca),
            "ssl_cert_reqs": ssl.CERT_REQUIRED
            if gw.client_cert == "required"
            else ssl.CERT_OPTIONAL,
        }
    kwargs |= overrides
    return uvicorn.Config(app, **kwargs)


def serve(
    settings: Settings, gw: GatewaySettings, *, credentials: Mapping[str, Credential] | None = None
) -> None:
    """Run the gateway until SIGINT/SIGTERM, connecting to Kafka with ``credentials`` (each
    served state's gateway credential; by default from the secrets directory)."""
    app = create_app(settings, gw, credentials=credentials)
    # What the process holds once it is built (modules, schemas, the app) lives as long as the
    # process: out of the garbage collector's sight, a full collection under load visits only
    # what requests make (each visit stops the event loop; they were ~140 ms with the ledger).
    gc.collect()
    gc.freeze()
    # Server.run, not asyncio.run(serve()): it installs uvicorn's loop (uvloop when present).
    uvicorn.Server(uvicorn_config(app, gw)).run()
