"""Puente's HTTP gateway: the front door for agencies that do not run a Kafka client.

``create_app(settings, gateway)`` builds the ASGI app; ``puente gateway serve`` runs it under
uvicorn; ``puente gateway token ...`` manages agency tokens. See docs/gateway.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from puente_gateway.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `puente gateway token ...` does not import FastAPI and aiokafka.
    if name == "create_app":
        from puente_gateway.app import create_app

        return create_app
    raise AttributeError(name)
