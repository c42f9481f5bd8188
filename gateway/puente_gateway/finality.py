"""Finality of what the gateway serves (docs/evidence.md §5.4): each delivery item says whether
its origin's log is only signed there or witnessed — covered by a checkpoint a quorum of other
states' witnesses cosigned — and ``GET /v1/finality`` lists every log as this gateway knows it.

A :class:`FinalityView` follows the cosignatures topic in the background (as the first served
state's gateway principal, which may read it) and counts each cosigned checkpoint into a
:class:`~puente.evidence.finality.FinalityBook` with the trust list in force; it counts anew,
from its start point, when the trust list changes (a removed or revoked witness key stops
counting). A final checkpoint covers every record below it, so the view needs only the latest
checkpoints of each log, not the topic's history: it starts at the records written in the last
``PUENTE_WITNESS__FINALITY_LOOKBACK_S`` (default a day; null: the beginning). A log whose last final
checkpoint is older than that shows its records as ``signed`` until its next one is final.

``signed`` is never a claim that a record is *not* witnessed: only that this gateway has not
seen a quorum for it (yet, or since its start point). The follower's position is in
``caught_up``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from puente.evidence.finality import Finality, FinalityBook, add_all
from puente.evidence.trust import TrustList
from puente.evidence.verify import Verifier
from puente.kafka.reading import caught_up, seek_back
from puente.logs import get_logger
from puente.topics import COSIGNATURES
from puente_gateway.body import JSON_TYPE
from puente_gateway.broker import Following, GatewayKafka
from puente_gateway.openapi import error_responses
from puente_gateway.trust import TrustSource

log = get_logger("gateway.finality")
router = APIRouter(tags=["evidence"])
CONTRACT = "puente.finality/v1"


class FinalityView:
    """The witnesses' cosignatures as far as this gateway has read them."""

    def __init__(
        self,
        kafka: GatewayKafka,
        trust: TrustSource,
        *,
        quorum: int,
        lookback_s: float | None,
        poll_s: float = 0.5,
    ) -> None:
        self.kafka = kafka
        self.trust = trust
        self.quorum = quorum
        self.lookback_s = lookback_s
        self.poll_s = poll_s
        self.book = FinalityBook(quorum)
        self.caught_up = False
        self.refused = 0
        self.since_ms: int | None = None
        self._counted_with: TrustList | None = None
        self._following = Following(kafka.first, self._follow, name="finality", on_lost=self._lost)

    def finality(self, log_id: str, leaf_index: int) -> Finality:
        """Whether the record at ``leaf_index`` of log ``log_id`` is known to be witnessed."""
        return self.book.finality(log_id, leaf_index)

    def document(self, log_id: str | None = None) -> dict[str, Any]:
        """``GET /v1/finality``'s body: every log (or ``log_id``) as the book has it."""
        logs = [e for e in self.book.status() if log_id is None or e["log"] == log_id]
        return {
            "contract": CONTRACT,
            "quorum": self.quorum,
            "caught_up": self.caught_up,
            "since_ms": self.since_ms,
            "refused": self.refused,
            "logs": logs,
        }

    def start(self) -> None:
        """Follow the cosignatures topic in the background (retrying while Kafka is down)."""
        self._following.start()

    async def stop(self) -> None:
        await self._following.stop()

    def _lost(self) -> None:
        self.caught_up = False  # items may stay "signed" meanwhile; /v1/finality says so

    async def _follow(self, c: AIOKafkaConsumer) -> None:
        topic = self.kafka.naming.topic(COSIGNATURES)
        tps = [TopicPartition(topic, p) for p in await self.kafka.first.partitions(topic)]
        self._counted_with = None  # a new consumer: placed (and counting begun) below
        while True:
            verifier = await self.trust.verifier()
            if verifier is None:  # nothing can be counted without a trust list
                await asyncio.sleep(self.poll_s)
                continue
            if verifier.trust_list is not self._counted_with:
                await self._restart(c, tps, verifier)
            got = await c.getmany(timeout_ms=int(self.poll_s * 1000))
            self._count(got, verifier)
            if not got:
                self.caught_up = await caught_up(c, tps)

    async def _restart(
        self, c: AIOKafkaConsumer, tps: list[TopicPartition], verifier: Verifier
    ) -> None:
        """Count from the start point again, with ``verifier``'s trust list."""
        self.since_ms = await seek_back(c, tps, self.lookback_s)
        self.book = FinalityBook(self.quorum)
        self.caught_up = False
        self.refused = 0
        self._counted_with = verifier.trust_list

    def _count(self, got: dict[TopicPartition, list[Any]], verifier: Verifier) -> None:
        values = [m.value for ms in got.values() for m in ms if m.value is not None]
        refused = add_all(self.book, values, verifier)
        if refused:
            self.refused += refused
            log.warning("finality: cosigned checkpoints refused", count=refused)


class LogFinality(BaseModel):
    """One log as ``GET /v1/finality`` lists it."""

    log: str = Field(description="the audit log's id (its checkpoints' origin line)")
    size: int = Field(description="the largest checkpoint size seen")
    root: str | None = Field(description="hex root hash at that size")
    cosigners: list[str] = Field(description="states whose witnesses cosigned that checkpoint")
    final: bool = Field(description="that checkpoint has a quorum of other states' witnesses")
    final_size: int = Field(description="records below this leaf index are witnessed")
    quorum: int


class FinalityList(BaseModel):
    """The witnesses' cosignatures as this gateway counted them."""

    contract: str = Field(description=CONTRACT)
    quorum: int = Field(description="distinct other states' witnesses a checkpoint needs")
    caught_up: bool = Field(description="the gateway has read the cosignatures topic to its end")
    since_ms: int | None = Field(
        description="the write time (Unix ms) it started reading cosignatures at; null: the "
        "beginning"
    )
    refused: int = Field(description="cosigned checkpoints whose log signature did not verify")
    logs: list[LogFinality]


@router.get(
    "/v1/finality",
    summary="Which logs' records are witnessed (every member state may read it)",
    response_model=FinalityList,
    responses=error_responses(422, 503),
)
async def get_finality(
    request: Request,
    log_id: Annotated[
        str | None, Query(max_length=200, description="only this audit log (its id)")
    ] = None,
) -> Response:
    """Every audit log's latest checkpoint, its cosigners and whether it is final, as far as
    this gateway has read the witnesses' cosignatures (``caught_up``)."""
    view: FinalityView = request.app.state.ctx.finality
    await view.trust.require()  # counted with a trust list, or nothing to say
    body = orjson.dumps(view.document(log_id))
    return Response(body, media_type=JSON_TYPE, headers={"Cache-Control": "no-store"})
