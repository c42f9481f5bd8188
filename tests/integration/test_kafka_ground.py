"""Proof that the ground holds: SASL/SCRAM, transactions and the ACL matrix on a real broker."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from puente.kafka.clients import KafkaAuthError, consumer, producer, start
from puente.secrets import Credential
from puente.topics import (
    AUDIT,
    DELIVER,
    GATEWAY_ANSWERS,
    GATEWAY_TOKENS,
    INGRESS,
    RECEIPTS,
    REJECTED,
    TRUST,
    TopicKind,
)
from tests.harness import KafkaHarness, Tenant

pytestmark = pytest.mark.kafka

FAST_S = 10.0  # an authorization error must arrive well before any timeout


@pytest.fixture(scope="module")
def tenant(kafka: KafkaHarness) -> Tenant:
    return kafka.provision(["MX", "GT"])


async def test_produce_and_consume_over_scram(tenant: Tenant) -> None:
    topic = tenant.topic(INGRESS, "MX")
    p = producer(tenant.endpoint, tenant.member("MX"))
    await start(p, tenant.endpoint, tenant.member("MX"))
    try:
        sent = await p.send_and_wait(topic, b"notice-bytes", key=b"k1")
    finally:
        await p.stop()
    # MX's node is the reader of MX's ingress topic.
    c = consumer(tenant.endpoint, tenant.node("MX"))
    await start(c, tenant.endpoint, tenant.node("MX"))
    try:
        tp = TopicPartition(topic, sent.partition)
        c.assign([tp])
        c.seek(tp, sent.offset)
        batch = await c.getmany(tp, timeout_ms=10_000)
        values = [r.value for r in batch.get(tp, [])]
    finally:
        await c.stop()
    assert values == [b"notice-bytes"]


async def test_transaction_invisible_until_commit(tenant: Tenant) -> None:
    topic = tenant.topic(DELIVER, "GT")
    policy = tenant.node("MX")
    tx = producer(
        tenant.endpoint,
        policy,
        transactional_id=tenant.naming.node_transactional_id_prefix("MX") + "test-0",
    )
    await start(tx, tenant.endpoint, policy)
    reader = consumer(tenant.endpoint, tenant.member("GT"), isolation_level="read_committed")
    await start(reader, tenant.endpoint, tenant.member("GT"))
    try:
        tp = TopicPartition(topic, 0)
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        await tx.begin_transaction()
        await tx.send_and_wait(topic, b"in-flight", partition=0)
        pending = await reader.getmany(tp, timeout_ms=1500)
        assert pending.get(tp, []) == []
        await tx.commit_transaction()
        seen: list[bytes] = []
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            got = await reader.getmany(tp, timeout_ms=500)
            seen += [r.value for r in got.get(tp, [])]
        assert seen == [b"in-flight"]
    finally:
        await reader.stop()
        await tx.stop()


async def test_aborted_transaction_never_visible(tenant: Tenant) -> None:
    topic = tenant.topic(DELIVER, "GT")
    policy = tenant.node("MX")
    tx = producer(
        tenant.endpoint,
        policy,
        transactional_id=tenant.naming.node_transactional_id_prefix("MX") + "test-1",
    )
    await start(tx, tenant.endpoint, policy)
    marker = uuid.uuid4().bytes
    try:
        await tx.begin_transaction()
        await tx.send_and_wait(topic, b"aborted-" + marker, partition=1)
        await tx.abort_transaction()
        await tx.begin_transaction()
        await tx.send_and_wait(topic, b"committed-" + marker, partition=1)
        await tx.commit_transaction()
    finally:
        await tx.stop()
    reader = consumer(tenant.endpoint, tenant.member("GT"))
    await start(reader, tenant.endpoint, tenant.member("GT"))
    try:
        tp = TopicPartition(topic, 1)
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        got = await reader.getmany(tp, timeout_ms=3000)
        values = [r.value for r in got.get(tp, [])]
    finally:
        await reader.stop()
    assert b"committed-" + marker in values
    assert b"aborted-" + marker not in values


async def _read_one(tenant: Tenant, member: str, topic: str) -> None:
    """Subscribe as ``member`` (with its own consumer group) and read once."""
    cred = tenant.member(member)
    group = tenant.naming.member_group_prefix(member) + "test"
    c = consumer(tenant.endpoint, cred, topic, group_id=group)
    await start(c, tenant.endpoint, cred)
    try:
        await c.getmany(timeout_ms=int(FAST_S * 1000))
    finally:
        await c.stop()


async def test_member_reads_its_own_deliveries(tenant: Tenant) -> None:
    await _read_one(tenant, "GT", tenant.topic(DELIVER, "GT"))


async def test_member_cannot_read_another_members_deliveries(tenant: Tenant) -> None:
    t0 = time.monotonic()
    with pytest.raises(TopicAuthorizationFailedError):
        await _read_one(tenant, "GT", tenant.topic(DELIVER, "MX"))
    assert time.monotonic() - t0 < FAST_S


async def test_member_cannot_read_another_members_rejections(tenant: Tenant) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await _read_one(tenant, "GT", tenant.topic(REJECTED, "MX"))


@pytest.mark.parametrize("owner", ["MX", "GT"])
async def test_member_cannot_read_any_ingress_topic(tenant: Tenant, owner: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(TopicAuthorizationFailedError):
        await _read_one(tenant, "GT", tenant.topic(INGRESS, owner))
    assert time.monotonic() - t0 < FAST_S


async def test_member_cannot_write_another_members_ingress(tenant: Tenant) -> None:
    cred = tenant.member("GT")
    p = producer(tenant.endpoint, cred)
    await start(p, tenant.endpoint, cred)
    t0 = time.monotonic()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(p.send_and_wait(tenant.topic(INGRESS, "MX"), b"spoofed"), FAST_S)
    finally:
        await p.stop()
    assert time.monotonic() - t0 < FAST_S


async def test_member_cannot_write_its_own_deliveries(tenant: Tenant) -> None:
    cred = tenant.member("GT")
    p = producer(tenant.endpoint, cred)
    await start(p, tenant.endpoint, cred)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(p.send_and_wait(tenant.topic(DELIVER, "GT"), b"x"), FAST_S)
    finally:
        await p.stop()


async def _consume_in_group(tenant: Tenant, cred: Credential, topic: str, group: str) -> None:
    """Consume ``topic`` as ``cred`` in consumer group ``group`` (one record, within FAST_S)."""
    c = consumer(tenant.endpoint, cred, topic, group_id=group)
    try:
        await start(c, tenant.endpoint, cred)
        await asyncio.wait_for(c.getone(), FAST_S)
    finally:
        await c.stop()


async def test_member_cannot_use_another_members_consumer_group(tenant: Tenant) -> None:
    group = tenant.naming.member_group_prefix("MX") + "spy"
    t0 = time.monotonic()
    with pytest.raises(GroupAuthorizationFailedError):
        await _consume_in_group(tenant, tenant.member("GT"), tenant.topic(DELIVER, "GT"), group)
    assert time.monotonic() - t0 < FAST_S


@pytest.mark.parametrize("who", ["member", "node"])
async def test_no_one_else_can_open_a_nodes_transactions(tenant: Tenant, who: str) -> None:
    """Neither a member state nor another state's node can take MX's node's transactional ids
    (which would fence it, or write its audit log)."""
    cred = tenant.member("GT") if who == "member" else tenant.node("GT")
    p = producer(
        tenant.endpoint,
        cred,
        transactional_id=tenant.naming.node_transactional_id_prefix("MX") + "hijack",
    )
    with pytest.raises(TransactionalIdAuthorizationFailed):
        await asyncio.wait_for(p.start(), FAST_S)
    await p.stop()


async def test_a_node_cannot_read_another_states_ingress(tenant: Tenant) -> None:
    """GT's node reads GT's notices only: MX's ingress (sealed anyway) is refused to it, even in
    a consumer group its ACLs allow."""
    cred = tenant.node("GT")
    group = tenant.naming.node_group("GT") + ".test"
    c = consumer(tenant.endpoint, cred, tenant.topic(INGRESS, "MX"), group_id=group)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await start(c, tenant.endpoint, cred)
            await c.getmany(timeout_ms=int(FAST_S * 1000))
    finally:
        await c.stop()


# --- each state's gateway: its own state's edge and nothing else -------------------------------


async def _write(cred: Credential, tenant: Tenant, topic: str) -> None:
    """Produce one record to ``topic`` as ``cred`` (acks=all), within FAST_S."""
    p = producer(tenant.endpoint, cred)
    await start(p, tenant.endpoint, cred)
    try:
        await asyncio.wait_for(p.send_and_wait(topic, b"x", key=b"k"), FAST_S)
    finally:
        await p.stop()


async def _read(cred: Credential, tenant: Tenant, topic: str) -> None:
    """Read ``topic`` from offset 0 as ``cred``, as the gateway does: its partitions from the
    metadata (refused without DESCRIBE, which READ and WRITE each imply: so no read either),
    then assign() without a group, read_committed, and fetch (refused without READ)."""
    c = consumer(tenant.endpoint, cred, isolation_level="read_committed")
    await start(c, tenant.endpoint, cred)
    try:
        parts = await asyncio.wait_for(c._client._wait_on_metadata(topic), FAST_S)
        tps = [TopicPartition(topic, p) for p in parts]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, 0)
        # A refused fetch is raised by the call after it; make sure there is one.
        await c.getmany(timeout_ms=1000)
        await c.getmany(timeout_ms=1000)
    finally:
        await c.stop()


GATEWAY_WRITES = (INGRESS, RECEIPTS, GATEWAY_TOKENS, GATEWAY_ANSWERS)
GATEWAY_READS = (DELIVER, REJECTED, GATEWAY_TOKENS, GATEWAY_ANSWERS)


@pytest.mark.parametrize("kind", GATEWAY_WRITES, ids=lambda k: k.stem)
async def test_a_gateway_writes_its_own_states_topics(tenant: Tenant, kind: TopicKind) -> None:
    await _write(tenant.gateway("MX"), tenant, tenant.topic(kind, "MX"))


@pytest.mark.parametrize("kind", GATEWAY_READS, ids=lambda k: k.stem)
async def test_a_gateway_reads_its_own_states_topics(tenant: Tenant, kind: TopicKind) -> None:
    await _read(tenant.gateway("MX"), tenant, tenant.topic(kind, "MX"))


@pytest.mark.parametrize("kind", GATEWAY_WRITES, ids=lambda k: k.stem)
async def test_a_gateway_cannot_write_another_states_topics(
    tenant: Tenant, kind: TopicKind
) -> None:
    """MX's gateway cannot put a notice on GT's ingress, a receipt on GT's receipts, a token
    in GT's token table or an answer in GT's ledger."""
    t0 = time.monotonic()
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(tenant.gateway("MX"), tenant, tenant.topic(kind, "GT"))
    assert time.monotonic() - t0 < FAST_S


@pytest.mark.parametrize("kind", GATEWAY_READS, ids=lambda k: k.stem)
async def test_a_gateway_cannot_read_another_states_topics(tenant: Tenant, kind: TopicKind) -> None:
    """MX's gateway cannot read GT's deliveries (sealed to GT anyway), rejections, tokens or
    first answers."""
    t0 = time.monotonic()
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(tenant.gateway("MX"), tenant, tenant.topic(kind, "GT"))
    assert time.monotonic() - t0 < FAST_S


@pytest.mark.parametrize("kind", [INGRESS, RECEIPTS, AUDIT], ids=lambda k: k.stem)
async def test_a_gateway_cannot_read_what_it_only_writes(tenant: Tenant, kind: TopicKind) -> None:
    """Its own state's ingress and receipts are written, never read, by its gateway; audit
    records are none of its business."""
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(tenant.gateway("MX"), tenant, tenant.topic(kind, "MX"))


@pytest.mark.parametrize("kind", [DELIVER, REJECTED], ids=lambda k: k.stem)
async def test_a_gateway_cannot_write_what_its_node_decides(
    tenant: Tenant, kind: TopicKind
) -> None:
    """Deliveries and rejections come from nodes only: a gateway cannot forge one, not even on
    its own state's topics, and it cannot publish the trust list."""
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(tenant.gateway("MX"), tenant, tenant.topic(kind, "MX"))


async def test_a_gateway_cannot_publish_the_trust_list(tenant: Tenant) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(tenant.gateway("MX"), tenant, tenant.topic(TRUST))


async def test_a_gateway_uses_no_consumer_group(tenant: Tenant) -> None:
    """It reads with assign() only: no group is granted, not even one under its state's."""
    group = tenant.naming.member_group_prefix("MX") + "gateway"
    with pytest.raises(GroupAuthorizationFailedError):
        await _consume_in_group(tenant, tenant.gateway("MX"), tenant.topic(DELIVER, "MX"), group)


async def test_wrong_password_is_refused_fast(tenant: Tenant) -> None:
    wrong = Credential(tenant.member("MX").username, "not-the-password")
    p = producer(tenant.endpoint, wrong)
    t0 = time.monotonic()
    with pytest.raises(KafkaAuthError) as info:
        await start(p, tenant.endpoint, wrong)
    assert info.value.reason == "KAFKA_AUTHENTICATION_FAILED"
    assert time.monotonic() - t0 < FAST_S


async def test_unknown_principal_is_refused(tenant: Tenant) -> None:
    nobody = Credential(f"{tenant.naming.prefix}-zz", "whatever")
    with pytest.raises(KafkaAuthError):
        await start(producer(tenant.endpoint, nobody), tenant.endpoint, nobody)
