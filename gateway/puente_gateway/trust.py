"""``GET /v1/trust-list``: the signed trust list, byte for byte, and the gateway's own copy.

Source: the newest record under key ``trust-list`` of the trust topic (the operator publishes
the signed note there; the topic is compacted), else ``trust_list_file``, else the embedded
deployment's ``<state_dir>/keys/trust-list.note``. The bytes are served verbatim — the client
verifies them with the trust anchors it holds out of band; the gateway only checks that they
parse as a trust list, for the ``serial`` header. To verify receipt signatures the gateway opens
the list with the anchors of ``trust_anchors_file`` or, on the embedded deployment, of the local
key store's ``operator:root`` keys; without anchors, signatures are forwarded unverified.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from puente.codec.registry import Registry
from puente.config import Settings
from puente.evidence.errors import EvidenceError
from puente.evidence.keys import PublicKey
from puente.evidence.keystore import KeyStore
from puente.evidence.note import Note
from puente.evidence.trust import TRUST_LIST_KEY, TrustList
from puente.evidence.verify import Verifier
from puente.logs import get_logger
from puente.service.setup import ROOT_HOLDER, TRUST_LIST_FILE, keys_dir
from puente.topics import TRUST
from puente_gateway.broker import GatewayKafka
from puente_gateway.clock import now_ms
from puente_gateway.errors import Unavailable
from puente_gateway.openapi import error_responses
from puente_gateway.settings import GatewaySettings

log = get_logger("gateway.trust")
router = APIRouter(tags=["evidence"])
NOTE_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Published:
    """A signed trust list as published, and what its text says."""

    data: bytes
    serial: int
    expires_ms: int


def parse(data: bytes) -> Published | None:
    """The trust list in ``data`` (unverified), or None if it is not one."""
    try:
        tl = TrustList.from_text(Note.parse(data).text)
    except (EvidenceError, UnicodeDecodeError, ValueError):
        return None
    return Published(data, tl.serial, tl.expires_at)


def read_anchors(path: Path) -> list[PublicKey]:
    """Verifier keys, one per line (``#`` comments allowed)."""
    lines = path.read_text(encoding="ascii").splitlines()
    return [PublicKey.from_vkey(x) for x in lines if x.strip() and not x.startswith("#")]


def local_anchors(settings: Settings) -> list[PublicKey]:
    """The embedded deployment's trust anchors: the local key store's operator root keys."""
    store = KeyStore(keys_dir(settings))
    if not store.root.is_dir():
        return []
    return [store.public(m) for m in store.key_metas() if m.holder == ROOT_HOLDER]


class TrustSource:
    """The current signed trust list, refreshed every ``trust_refresh_s``."""

    def __init__(
        self, kafka: GatewayKafka, gw: GatewaySettings, registry: Registry, settings: Settings
    ) -> None:
        self.kafka = kafka
        self.gw = gw
        self.registry = registry
        self.file = gw.trust_list_file or keys_dir(settings) / TRUST_LIST_FILE
        self.anchors = (
            read_anchors(gw.trust_anchors_file)
            if gw.trust_anchors_file
            else local_anchors(settings)
        )
        self._current: Published | None = None
        self._fetched = -1e9
        self._lock = asyncio.Lock()
        self._verifier: tuple[bytes, Verifier] | None = None

    async def current(self) -> Published | None:
        """The newest published trust list (topic first, then the file), or None."""
        if time.monotonic() - self._fetched < self.gw.trust_refresh_s:
            return self._current
        async with self._lock:
            if time.monotonic() - self._fetched >= self.gw.trust_refresh_s:
                found = await self._from_topic() or self._from_file()
                if found is not None:
                    self._current = found
                self._fetched = time.monotonic()
        return self._current

    async def _from_topic(self) -> Published | None:
        topic = self.kafka.naming.topic(TRUST)
        try:
            async with self.kafka.reader() as c:
                tp = TopicPartition(topic, 0)
                c.assign([tp])
                begin = (await c.beginning_offsets([tp]))[tp]
                end = (await c.end_offsets([tp]))[tp]
                if end <= begin:
                    return None
                # The newest few records: the last offset may be a transaction marker.
                c.seek(tp, max(begin, end - 8))
                last: bytes | None = None
                deadline = time.monotonic() + self.gw.ready_timeout_s
                while time.monotonic() < deadline and await c.position(tp) < end:
                    batch = await c.getmany(tp, timeout_ms=200)
                    for r in batch.get(tp, []):
                        if r.key == TRUST_LIST_KEY:
                            last = r.value
        except (Unavailable, KafkaError) as exc:
            log.warning("trust topic unreadable", error=type(exc).__name__)
            return None
        found = parse(last) if last else None
        if last and found is None:
            log.warning("newest trust-topic record is not a signed trust list", topic=topic)
        return found

    def _from_file(self) -> Published | None:
        path = self.file
        if not path.is_file():
            return None
        found = parse(path.read_bytes())
        if found is None:
            log.warning("trust list file is not a signed trust list", path=str(path))
        return found

    async def verifier(self) -> Verifier | None:
        """A Verifier over the current list opened with the anchors; None without anchors or
        when no valid list is available (then signatures are forwarded unverified)."""
        if not self.anchors:
            return None
        published = await self.current()
        if published is None:
            return None
        if self._verifier is not None and self._verifier[0] == published.data:
            return self._verifier[1]
        try:
            tl = TrustList.open(published.data, self.anchors, now=now_ms())
        except EvidenceError as exc:
            log.warning("trust list does not verify", reason=exc.reason)
            return None
        v = Verifier(trust_list=tl, registry=self.registry)
        self._verifier = (published.data, v)
        return v


@router.get(
    "/v1/trust-list",
    summary="The signed trust list",
    response_model=None,
    responses={
        200: {
            "description": "the signed note (C2SP signed-note format), verbatim",
            "content": {NOTE_TYPE: {"schema": {"type": "string"}}},
            "headers": {
                "ETag": {"schema": {"type": "string"}},
                "X-Puente-Trust-Serial": {"schema": {"type": "integer"}},
            },
        },
        **error_responses(503),
    },
)
async def get_trust_list(request: Request) -> Response:
    """The trust list as the operator signed it; verify it with your trust anchors."""
    source: TrustSource = request.app.state.ctx.trust
    published = await source.current()
    if published is None:
        raise Unavailable(
            "no signed trust list is published yet",
            retry_after_s=source.gw.retry_after_s,
            reason="TRUST_LIST_UNAVAILABLE",
        )
    etag = '"' + hashlib.sha256(published.data).hexdigest()[:32] + '"'
    return Response(
        published.data,
        media_type=NOTE_TYPE,
        headers={"ETag": etag, "X-Puente-Trust-Serial": str(published.serial)},
    )
