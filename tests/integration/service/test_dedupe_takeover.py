"""Accepted notice ids survive a take-over on the real broker: written as one chunk record per
batch to the partition's compacted changelog, read back by the next owner, which then refuses a
re-sent notice; a changelog written before chunks (one ``n/<id>`` record per id) still counts."""

from __future__ import annotations

import hashlib

import pytest
from aiokafka import TopicPartition

from puente.codec.wire import decode
from puente.kafka.clients import consumer, producer, start
from puente.service.dedupe import CHUNK_PREFIX, LEGACY_PREFIX
from puente.synth.generator import Generator
from puente.topics import AUDIT, REJECTED, STATE
from tests.harness import KafkaHarness
from tests.integration.service.support import (
    ALL_MEMBERS,
    Deployment,
    deploy,
    encoded,
    publish,
    read_topic,
    running,
)

pytestmark = pytest.mark.kafka


async def _changelog(dep: Deployment) -> list[tuple[bytes, bytes | None]]:
    """Every committed record of state.MX[0], as the policy service reads it."""
    cred = dep.tenant.node("MX")
    c = consumer(dep.tenant.endpoint, cred)
    await start(c, dep.tenant.endpoint, cred)
    try:
        tp = TopicPartition(dep.tenant.topic(STATE, "MX"), 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        end = (await c.end_offsets([tp]))[tp]
        out: list[tuple[bytes, bytes | None]] = []
        while await c.position(tp) < end:
            for batch in (await c.getmany(tp, timeout_ms=1000)).values():
                out += [(m.key or b"", m.value) for m in batch]
        return out
    finally:
        await c.stop()


async def test_a_resent_notice_is_refused_after_a_take_over(kafka: KafkaHarness) -> None:
    dep = await deploy(kafka, partitions=1)
    gen = Generator(23)
    fresh = [encoded(dep, gen.scenario("plain-smuggling-case", origin="MX")) for _ in range(6)]
    # A changelog record as the service wrote them before chunks, for a notice not yet sent.
    old_key, old_value = fresh.pop()
    p = producer(dep.tenant.endpoint, kafka.admin)
    await start(p, dep.tenant.endpoint, kafka.admin)
    try:
        digest = hashlib.sha256(old_value).digest()
        await p.send_and_wait(
            dep.tenant.topic(STATE, "MX"), digest, key=LEGACY_PREFIX + old_key, partition=0
        )
    finally:
        await p.stop()

    per_notice = len(ALL_MEMBERS) - 1
    async with running(dep.nodes("MX", instance="first")):
        await publish(dep, "MX", fresh)
        await read_topic(
            dep, dep.tenant.topic(AUDIT, "MX"), expect=len(fresh) * per_notice, timeout_s=90
        )
    chunks = [k for k, v in await _changelog(dep) if k.startswith(CHUNK_PREFIX) and v]
    assert 1 <= len(chunks) <= len(fresh)  # per batch, not per notice

    async with running(dep.nodes("MX", instance="second")):  # a new owner restores the changelog
        await publish(dep, "MX", [fresh[0], fresh[-1], (old_key, old_value)])
        rejected = await read_topic(
            dep, dep.tenant.topic(REJECTED, "MX"), "MX", expect=3, timeout_s=90
        )
    reasons = sorted(str(decode(dep.registry, v)["reason_code"]) for _, v in rejected)
    assert reasons == ["DUPLICATE_NOTICE"] * 3
