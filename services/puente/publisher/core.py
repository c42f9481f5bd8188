"""An agency of member state CC publishes notices: each one sealed to CC's node (HPKE, to the
node's encryption key from the trust list), produced to ``<prefix>.ingress.CC`` as CC's own
principal, keyed by its notice id. Nothing identifying is ever on Kafka in clear: only CC's node
can open what its agencies publish.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer

from puente.codec.registry import Registry
from puente.codec.wire import decode, encode
from puente.evidence._time import now_ms
from puente.evidence.seal import seal_notice, sealing_key
from puente.evidence.trust import TrustList, node_holder
from puente.evidence.trustsource import TrustTracker
from puente.kafka.clients import producer, start
from puente.kafka.connection import KafkaEndpoint
from puente.secrets import Credential
from puente.topics import INGRESS, Naming


def seal_for_node(trust_list: TrustList, origin: str, notice: bytes, *, at: int) -> bytes:
    """``notice`` (single-object bytes) sealed to ``origin``'s node's current encryption key."""
    to = sealing_key(trust_list, node_holder(origin), at=at)
    return seal_notice(notice, to=to, origin=origin).envelope


class Publisher:
    """Publish member ``member``'s notices, sealed. Use as ``async with``."""

    def __init__(
        self,
        *,
        endpoint: KafkaEndpoint,
        credential: Credential,
        naming: Naming,
        member: str,
        registry: Registry,
        trust: TrustTracker,
    ) -> None:
        self.endpoint = endpoint
        self.cred = credential
        self.naming = naming
        self.member = member
        self.registry = registry
        self.trust = trust
        self.topic = naming.topic(INGRESS, member)
        self._producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> Publisher:
        self._producer = producer(self.endpoint, self.cred)
        await start(self._producer, self.endpoint, self.cred)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._producer is not None:
            await self._producer.stop()

    def sealed(self, notice: bytes) -> bytes:
        """``notice`` sealed to this state's node (the trust list in force decides the key)."""
        return seal_for_node(self.trust.verifier().trust_list, self.member, notice, at=now_ms())

    async def publish(self, notice: bytes) -> tuple[int, int]:
        """Seal and produce one encoded notice (acks=all); its (partition, offset)."""
        assert self._producer is not None, "use `async with Publisher(...)`"
        notice_id = str(decode(self.registry, notice)["notice_id"]).encode()
        md = await self._producer.send_and_wait(self.topic, self.sealed(notice), key=notice_id)
        return md.partition, md.offset

    async def publish_records(
        self, name: str, records: Iterable[dict[str, Any]]
    ) -> list[tuple[int, int]]:
        """Encode records of schema ``name``, seal and produce them; their positions."""
        return [await self.publish(encode(self.registry, name, r)) for r in records]
