"""The partner-state side on the real broker: verify, decode, acknowledge; never trust a forgery."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from puente.evidence.delivery import Delivery
from puente.kafka.clients import consumer, producer, start
from puente.synth.generator import Generator
from puente.topics import DELIVER, RECEIPT_KEY_ID_HEADER, RECEIPT_SIGNATURE_HEADER, RECEIPTS
from tests.harness import KafkaHarness
from tests.integration.service.support import Deployment, deploy, encoded, publish, running

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
async def dep(kafka: KafkaHarness) -> Deployment:
    return await deploy(kafka, partitions=1)


async def test_subscriber_verifies_acknowledges_and_flags_forgeries(dep: Deployment) -> None:
    gen = Generator(5)
    # A dual national of GT and HN arrested in MX: both nationality states are notified.
    notices = [
        gen.scenario("dual-national-arrest", origin="MX", nationalities=("GT", "HN"))
        for _ in range(3)
    ]
    nationals = {n.record["person"]["nationalities"][0] for n in notices}
    member = sorted(nationals)[0]
    async with running(dep.nodes("MX")):
        await publish(dep, "MX", [encoded(dep, n) for n in notices])
        # Wait until the deliveries are committed, then forge one more: a real delivery whose
        # payload was swapped (only the policy service's principal may write there).
        sub = dep.subscriber(member, "test")
        got = []
        async with sub:
            async for r in sub.stream(idle_timeout_s=10):
                got.append(r)
                if len(got) == 1:
                    await _forge(dep, member)
                if len(got) >= 2 and not got[-1].ok:
                    break
    good = [r for r in got if r.ok]
    bad = [r for r in got if not r.ok]
    assert good and all(r.notice and r.notice["origin"] == "MX" for r in good)
    assert len(bad) == 1 and bad[0].notice is None
    assert bad[0].error is not None and bad[0].error.reason == "PAYLOAD_MISMATCH"

    # Every delivery got a signed receipt that verifies against the trust list.
    verifier = dep.verifier()
    # Read as a receipt tracker (every state's tracker reads every receipts topic).
    c = consumer(dep.tenant.endpoint, dep.tenant.tracker("MX"))
    await start(c, dep.tenant.endpoint, dep.tenant.tracker("MX"))
    try:
        tp = TopicPartition(dep.tenant.topic(RECEIPTS, member), 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        batch = await c.getmany(tp, timeout_ms=5000)
        receipts = batch.get(tp, [])
    finally:
        await c.stop()
    assert len(receipts) == len(got)
    statuses = []
    for msg in receipts:
        headers = dict(msg.headers)
        verifier.verify_receipt(
            msg.value,
            key_id=headers[RECEIPT_KEY_ID_HEADER].decode(),
            signature=headers[RECEIPT_SIGNATURE_HEADER],
        )
        from puente.codec.wire import decode

        statuses.append(decode(dep.registry, msg.value)["status"])
    assert statuses.count("VERIFICATION_FAILED") == 1


async def _forge(dep: Deployment, member: str) -> None:
    """Copy the member's first delivery with a different payload into its deliver topic."""
    c = consumer(dep.tenant.endpoint, dep.tenant.member(member))
    await start(c, dep.tenant.endpoint, dep.tenant.member(member))
    try:
        tp = TopicPartition(dep.tenant.topic(DELIVER, member), 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        first = (await c.getmany(tp, timeout_ms=5000))[tp][0]
    finally:
        await c.stop()
    real = Delivery.decode(dep.registry, first.value)
    forged = Delivery(real.statement, real.payload[:-1] + b"\x00", real.proof)
    p = producer(dep.tenant.endpoint, dep.tenant.node("MX"))
    await start(p, dep.tenant.endpoint, dep.tenant.node("MX"))
    try:
        await p.send_and_wait(tp.topic, forged.encode(dep.registry), partition=0)
    finally:
        await p.stop()
