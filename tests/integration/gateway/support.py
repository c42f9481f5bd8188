"""Helpers for the gateway tests: a real uvicorn server in a thread, keys and a trust list valid
now, notices in their JSON form, and Kafka probes (end offsets, records)."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from aiokafka import TopicPartition
from fastapi import FastAPI

from puente.codec.jsonconv import to_json
from puente.codec.registry import Registry
from puente.evidence.delivery import (
    Delivery,
    DeliveryAction,
    DeliveryDecision,
    DeliverySigner,
    DeliveryStatement,
)
from puente.evidence.keys import SigningKey
from puente.evidence.trust import KeyEntry, TrustList, Usage, member_holder, service_holder
from puente.kafka.clients import consumer, producer, start
from puente.secrets import Credential
from puente.synth.generator import Generator
from puente_gateway.clock import now_ms
from puente_gateway.server import uvicorn_config
from puente_gateway.settings import GatewaySettings
from tests.harness import Tenant

DAY = 86_400_000


@contextmanager
def serving(app: FastAPI, gw: GatewaySettings, **overrides: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port in a thread; yields the base URL."""
    config = uvicorn_config(
        app, gw.model_copy(update={"host": "127.0.0.1", "port": 0}), **overrides
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if "ssl_certfile" in overrides or gw.tls_cert else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class Keys:
    """An operator root, the policy service's key, member receipt keys, and a signed list."""

    root: SigningKey
    service: SigningKey
    members: dict[str, SigningKey]
    trust_bytes: bytes

    @classmethod
    def make(cls, members: tuple[str, ...]) -> Keys:
        now = now_ms()
        root = SigningKey.generate("puente.operator/root")
        service = SigningKey.generate("puente.svc/policy")
        keys = {m: SigningKey.generate(f"puente.member/{m}") for m in members}
        entries = [
            KeyEntry(
                service.public,
                service_holder(),
                frozenset({Usage.DELIVERY, Usage.CHECKPOINT}),
                now - DAY,
            ),
            *(
                KeyEntry(k.public, member_holder(m), frozenset({Usage.RECEIPT}), now - DAY)
                for m, k in keys.items()
            ),
        ]
        tl = TrustList(1, now - DAY, now + 30 * DAY, tuple(entries))
        return cls(root, service, keys, tl.sign(root))


def notice_json(
    registry: Registry, origin: str, *, seed: int | None = None, consular: bool = False
) -> dict[str, Any]:
    """A realistic notice of ``origin`` in its JSON form, with a fresh notice id."""
    gen = Generator(seed if seed is not None else uuid.uuid4().int % 2**32)
    if consular:
        record = gen.consular_notification(origin=origin)
        name = "puente.ConsularNotification"
    else:
        record = gen.case_notice(origin=origin)
        name = "puente.CaseNotice"
    record["notice_id"] = str(uuid.uuid4())
    return to_json(registry, name, record)


def signed_delivery(
    registry: Registry,
    keys: Keys,
    *,
    recipient: str,
    origin: str = "MX",
    consular: bool = False,
) -> tuple[Delivery, bytes]:
    """A delivery as the policy service signs it (per-delivery mode) and its encoding."""
    gen = Generator(uuid.uuid4().int % 2**32)
    name = "puente.ConsularNotification" if consular else "puente.CaseNotice"
    record = (
        gen.consular_notification(origin=origin) if consular else gen.case_notice(origin=origin)
    )
    from puente.codec.wire import encode

    payload = encode(registry, name, record)
    now = now_ms()
    statement = DeliveryStatement.for_payload(
        payload,
        payload_schema=name,
        delivery_id=str(uuid.uuid4()),
        notice_id=record["notice_id"],
        origin=origin,
        recipient=recipient,
        original_sha256=hashlib.sha256(payload).digest(),
        decision=DeliveryDecision(
            action=DeliveryAction.DELIVERED,
            rule_ids=(f"{origin.lower()}.share",),
            legal_bases=("LA Declaration",),
            handling_code="H0",
            purposes=("CRIMINAL_INVESTIGATION",),
        ),
        policy_set_version="test.1",
        notice_created_at=now - 1000,
        decided_at=now - 10,
        signed_at=now,
        audit_log_id=f"puente.audit/{origin}/0",
        audit_leaf_index=0,
    )
    delivery = DeliverySigner(keys.service, registry).sign(statement, payload)
    return delivery, delivery.encode(registry)


async def produce(
    tenant: Tenant, cred: Credential, topic: str, values: list[bytes], *, key: bytes | None = None
) -> list[tuple[int, int]]:
    """Produce ``values`` (acks=all) as ``cred``; their (partition, offset)s."""
    p = producer(tenant.endpoint, cred)
    await start(p, tenant.endpoint, cred)
    try:
        out = []
        for v in values:
            md = await p.send_and_wait(topic, v, key=key or uuid.uuid4().bytes)
            out.append((md.partition, md.offset))
        return out
    finally:
        await p.stop()


async def end_offsets(tenant: Tenant, topic: str, *, reader: str = "policy") -> dict[int, int]:
    """Per-partition end offsets of ``topic``, read as service ``reader`` (the policy service
    reads every ingress topic; the receipt tracker every receipts topic)."""
    cred = tenant.service(reader)
    c = consumer(tenant.endpoint, cred)
    await start(c, tenant.endpoint, cred)
    try:
        parts = await c._client._wait_on_metadata(topic)  # test-only: partitions of a topic
        tps = [TopicPartition(topic, p) for p in parts]
        ends = await c.end_offsets(tps)
        return {tp.partition: o for tp, o in ends.items()}
    finally:
        await c.stop()


async def read_records(
    tenant: Tenant, cred: Credential, topic: str, partition: int, offset: int, n: int = 1
) -> list[Any]:
    """``n`` records of ``topic`` from ``partition``/``offset`` as ``cred``."""
    c = consumer(tenant.endpoint, cred)
    await start(c, tenant.endpoint, cred)
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek(tp, offset)
        got: list[Any] = []
        deadline = time.monotonic() + 10
        while len(got) < n and time.monotonic() < deadline:
            batch = await c.getmany(tp, timeout_ms=500)
            got += batch.get(tp, [])
        return got[:n]
    finally:
        await c.stop()


def run(coro: Any) -> Any:
    """Run a coroutine from a synchronous test."""
    return asyncio.run(coro)
