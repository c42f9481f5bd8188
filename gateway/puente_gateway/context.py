"""What every handler needs, built once per app and kept on ``app.state.ctx``."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from puente.codec.errors import SchemaError
from puente.codec.jsonconv import to_json
from puente.codec.registry import Registry
from puente.codec.wire import decode, header_fingerprint
from puente.config import GatewaySettings
from puente.topics import Naming, TopicKind
from puente_gateway.auth import Authenticator, Caller
from puente_gateway.broker import GatewayKafka
from puente_gateway.metrics import GatewayMetrics
from puente_gateway.once import Once
from puente_gateway.pool import ReaderPool
from puente_gateway.shared import SharedState

if TYPE_CHECKING:
    from puente_gateway.edge import Edge
    from puente_gateway.finality import FinalityView
    from puente_gateway.trust import TrustSource


@dataclass
class GatewayContext:
    """The app's collaborators."""

    gw: GatewaySettings
    naming: Naming
    registry: Registry
    kafka: GatewayKafka
    shared: SharedState
    readers: ReaderPool
    authenticator: Authenticator
    metrics: GatewayMetrics
    once: Once
    trust: TrustSource
    edge: Edge
    finality: FinalityView

    def topic(self, kind: TopicKind, caller: Caller) -> str:
        """The caller's own topic of ``kind``."""
        return self.naming.topic(kind, caller.state)

    def notice_type(self, name: str) -> str | None:
        """The full name of a publishable notice type (full or short name), or None."""
        try:
            full = self.registry.full_name(name)
        except SchemaError:
            return None
        return full if full in self.gw.notice_types else None


def context(request: Request) -> GatewayContext:
    """The context of the app serving ``request``."""
    ctx = request.app.state.ctx
    assert isinstance(ctx, GatewayContext)
    return ctx


def b64(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode("ascii")


def json_of(registry: Registry, data: bytes) -> tuple[str, dict[str, Any]]:
    """Decode single-object bytes with their writer schema: (full name, natural JSON form)."""
    record = decode(registry, data)
    header = header_fingerprint(data)
    sv = registry.by_fingerprint(header) if header is not None else None
    assert sv is not None  # decode found it
    return sv.full_name, to_json(registry, sv.full_name, record, version=sv.version)
