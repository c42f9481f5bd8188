"""``GET /v1/trust-list``: the signed trust list, byte for byte, and the gateway's own copy.

Source: the newest record under key ``trust-list`` of the trust topic (the operator publishes
the signed note there, and under ``trust-list/<serial>``: the topic is compacted and keeps each
list, the chain a gateway holding an older list follows), else ``trust_list_file``, else the
embedded deployment's ``<state_dir>/keys/trust-list.note``. The bytes are served verbatim — the
client verifies them with the trust anchors it holds out of band. The gateway follows the list
as every long-running verifier does (:class:`TrustSource`), with its own anchors
(``trust_anchors_file`` or, on the embedded deployment, the genesis list beside the local keys):
it seals notices to the node key the list names, verifies deliveries and receipt signatures
with it, and does not start without anchors.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from puente.codec.registry import Registry
from puente.config import GatewaySettings, Settings
from puente.errors import ConfigError
from puente.evidence.errors import EvidenceError, TrustListError
from puente.evidence.keystore import TRUST_LIST_FILE
from puente.evidence.note import Note
from puente.evidence.trust import TrustList
from puente.evidence.trustsource import TrustTracker, file_fetch, local_anchor, read_anchor
from puente.evidence.verify import Verifier
from puente.kafka.trustfeed import NEWEST_TAIL, history_lists, newest_list, trust_records
from puente.logs import get_logger
from puente.topics import TRUST
from puente_gateway.broker import GatewayKafka
from puente_gateway.clock import now_ms
from puente_gateway.errors import Unavailable
from puente_gateway.openapi import error_responses

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


class TrustSource:
    """The trust list the gateway serves, seals with and verifies with, refreshed every
    ``trust_refresh_s`` from the trust topic, then the file.

    A :class:`~puente.evidence.trustsource.TrustTracker` over the gateway's trust anchors
    decides: only an anchored, unexpired list whose serial is not lower than the highest seen
    is taken (an older list re-published is refused and logged; a revoked key stops verifying
    within one refresh), and expiry is checked at every use. Raises ConfigError without
    anchors: such a gateway could neither seal a notice to a key it can trust nor verify a
    delivery.
    """

    def __init__(
        self, kafka: GatewayKafka, gw: GatewaySettings, registry: Registry, settings: Settings
    ) -> None:
        self.kafka = kafka
        self.gw = gw
        self.registry = registry
        self.file = gw.trust_list_file or settings.keys_dir / TRUST_LIST_FILE
        anchor = (
            read_anchor([str(gw.trust_anchors_file)])
            if gw.trust_anchors_file
            else local_anchor(settings.keys_dir)
        )
        if anchor is None or (not anchor.roots and anchor.pin is None):
            raise ConfigError(
                "the gateway has no trust anchor: it seals notices to their state's node and "
                "verifies deliveries with the trust list, which only an anchor makes usable",
                hint="set PUENTE_GATEWAY__TRUST_ANCHORS_FILE to the genesis trust list (or, in "
                "a single-root deployment, the operator's root verifier keys); on the embedded "
                "default, `puente demo` makes it",
            )
        self.anchors = anchor
        self.tracker = TrustTracker(self.anchors, registry, clock=now_ms, history=self._history)
        self._current: Published | None = None
        self._fetched = -1e9
        self._lock = asyncio.Lock()

    async def current(self) -> Published | None:
        """The trust list in force (refreshed when older than ``trust_refresh_s``), or None."""
        if time.monotonic() - self._fetched < self.gw.trust_refresh_s:
            return self._current
        async with self._lock:
            if time.monotonic() - self._fetched >= self.gw.trust_refresh_s:
                await self._refresh()
                self._fetched = time.monotonic()
        return self._current

    async def _refresh(self) -> None:
        await self.tracker.refresh([self._from_topic, file_fetch(self.file)])
        data = self.tracker.current_bytes
        self._current = parse(data) if data is not None else None

    async def _from_topic(self) -> bytes | None:
        return newest_list(await self._topic_records(NEWEST_TAIL))

    async def _history(self) -> list[bytes]:
        return history_lists(await self._topic_records(None))

    async def _topic_records(self, tail: int | None) -> list[tuple[bytes, bytes]]:
        """The trust topic's records (the last ``tail``; None: all); none when unreadable."""
        tp = TopicPartition(self.kafka.naming.topic(TRUST), 0)
        try:
            async with self.kafka.reader() as c:
                c.assign([tp])
                return await trust_records(c, tp, tail, self.gw.ready_timeout_s)
        except (Unavailable, KafkaError, TimeoutError) as exc:
            log.warning("trust topic unreadable", error=type(exc).__name__)
            return []

    async def verifier(self) -> Verifier | None:
        """A Verifier over the list in force, checked unexpired now; None when no valid list
        is available (the receipts route then fails closed or forwards, as configured)."""
        await self.current()
        try:
            return self.tracker.verifier()
        except TrustListError as exc:
            log.warning("trust list unusable", reason=exc.reason)
            return None

    async def require(self) -> Verifier:
        """A Verifier over the list in force, or 503 ``TRUST_LIST_UNAVAILABLE``: nothing is
        sealed or shown opened without a valid trust list."""
        verifier = await self.verifier()
        if verifier is None:
            raise Unavailable(
                "no valid trust list is available to seal or verify with; retry later",
                retry_after_s=self.gw.retry_after_s,
                reason="TRUST_LIST_UNAVAILABLE",
            )
        return verifier


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
