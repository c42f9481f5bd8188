"""Helpers for the gateway tests: a real uvicorn server in a thread, tokens issued through its
shared state, keys and a trust list valid now, notices in their JSON form, and Kafka probes
(end offsets, records)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import uvicorn
from aiokafka import TopicPartition
from fastapi import FastAPI

from puente.codec.jsonconv import to_json
from puente.codec.registry import Registry
from puente.config import GatewaySettings
from puente.evidence.delivery import (
    Delivery,
    DeliveryDecision,
    DeliverySigner,
    DeliveryStatement,
)
from puente.evidence.keys import SigningKey
from puente.evidence.records import AuditDecision
from puente.evidence.trust import KeyEntry, TrustList, Usage, member_holder, service_holder
from puente.kafka.clients import consumer, producer, start
from puente.secrets import Credential
from puente.synth.generator import Generator
from puente_gateway.clock import now_ms
from puente_gateway.context import GatewayContext
from puente_gateway.server import uvicorn_config
from puente_gateway.tokens import TokenRecord, new_token, revoked
from tests.harness import Tenant

DAY = 86_400_000
T = TypeVar("T")


_LOOPS: dict[str, asyncio.AbstractEventLoop] = {}


@contextmanager
def serving(
    app: FastAPI, gw: GatewaySettings, *, ready: bool = True, **overrides: Any
) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port in a thread; yields the base URL once
    the app's shared state is loaded (unless ``ready=False``: for a gateway without Kafka)."""
    config = uvicorn_config(
        app, gw.model_copy(update={"host": "127.0.0.1", "port": 0}), **overrides
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started or (ready and not context_of(app).shared.current()):
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if "ssl_certfile" in overrides or gw.tls_cert else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    _LOOPS[url] = server.servers[0].get_loop()
    try:
        yield url
    finally:
        _LOOPS.pop(url, None)
        server.should_exit = True
        thread.join(timeout=30)


def context_of(app: FastAPI) -> GatewayContext:
    """The gateway context of an app."""
    ctx = app.state.ctx
    assert isinstance(ctx, GatewayContext)
    return ctx


def on_server(url: str, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the event loop of the server at ``url`` (from the test's thread)."""
    return asyncio.run_coroutine_threadsafe(coro, _LOOPS[url]).result(timeout=60)


def issue_token(
    app: FastAPI,
    url: str,
    state: str,
    *,
    types: tuple[str, ...] = (),
    agency: str = "",
    expires_ms: int | None = None,
    now: int | None = None,
) -> tuple[TokenRecord, str]:
    """A new token, written to the shared token topic by the gateway at ``url`` (which has it
    once this returns; other replicas learn it from the topic)."""
    record, token = new_token(
        state=state,
        agency=agency or f"Policía de prueba {state}",
        types=types,
        expires_ms=expires_ms,
        now=now,
    )
    on_server(url, context_of(app).shared.put_token(record))
    return record, token


def revoke_token(app: FastAPI, url: str, token_id: str) -> TokenRecord:
    """Revoke a token through the gateway at ``url``."""
    shared = context_of(app).shared
    current = shared.tokens.get(token_id)
    assert current is not None
    gone = revoked(current)
    on_server(url, shared.put_token(gone))
    return gone


def wait_until(check: Callable[[], bool], *, timeout_s: float = 30, what: str = "") -> None:
    """Wait (polling) until ``check()`` holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(0.02)


@dataclass
class Keys:
    """An operator root, the policy service's key, member receipt keys, and a signed list."""

    root: SigningKey
    service: SigningKey
    members: dict[str, SigningKey]
    trust_bytes: bytes

    @classmethod
    def make(cls, members: tuple[str, ...]) -> Keys:
        root = SigningKey.generate("puente.operator/root")
        service = SigningKey.generate("puente.svc/policy")
        keys = {m: SigningKey.generate(f"puente.member/{m}") for m in members}
        return cls(root, service, keys, _signed_list(1, root, service, keys))

    def relisted(self, serial: int) -> bytes:
        """The same keys in a newer trust list, signed by the same root."""
        return _signed_list(serial, self.root, self.service, self.members)


def _signed_list(
    serial: int, root: SigningKey, service: SigningKey, members: dict[str, SigningKey]
) -> bytes:
    now = now_ms()
    entries = [
        KeyEntry(
            service.public,
            service_holder(),
            frozenset({Usage.DELIVERY, Usage.CHECKPOINT}),
            now - DAY,
        ),
        *(
            KeyEntry(k.public, member_holder(m), frozenset({Usage.RECEIPT}), now - DAY)
            for m, k in members.items()
        ),
    ]
    return TrustList(serial, now - DAY, now + 30 * DAY, tuple(entries)).sign(root)


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


def receipt_record(recipient: str, **overrides: Any) -> dict[str, Any]:
    """A DeliveryReceipt record of ``recipient`` with fresh ids."""
    record = {
        "receipt_id": str(uuid.uuid4()),
        "notice_id": str(uuid.uuid4()),
        "recipient": recipient,
        "delivery_digest": "ab" * 32,
        "log_id": "puente.audit/MX/0",
        "log_index": 12,
        "status": "VERIFIED",
        "received_at": dt.datetime.now(dt.UTC).replace(microsecond=0),
    }
    return record | overrides


async def open_streams(
    url: str, tokens: list[str], n: int, path: str = "/v1/deliveries"
) -> tuple[list[tuple[int, str]], list[tuple[httpx.AsyncClient, Any]]]:
    """Try to open ``n`` event streams at once, round-robin over ``tokens``: each attempt's
    status and reason, and the streams that opened (still open: :func:`close_streams`)."""
    opened: list[tuple[httpx.AsyncClient, Any]] = []
    answers: list[tuple[int, str]] = []

    async def one(i: int) -> None:
        auth = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
        client = httpx.AsyncClient(
            base_url=url, headers=auth | {"Accept": "text/event-stream"}, timeout=60
        )
        cm = client.stream("GET", path)
        r = await cm.__aenter__()
        if r.status_code == 200:
            opened.append((client, cm))
            answers.append((200, ""))
            return
        await r.aread()
        answers.append((r.status_code, str(r.json().get("reason", ""))))
        await cm.__aexit__(None, None, None)
        await client.aclose()

    await asyncio.gather(*(one(i) for i in range(n)))
    return answers, opened


async def close_streams(opened: list[tuple[httpx.AsyncClient, Any]]) -> None:
    """Close streams :func:`open_streams` opened."""
    for client, cm in opened:
        await cm.__aexit__(None, None, None)
        await client.aclose()


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
            action=AuditDecision.DELIVERED,
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


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from a synchronous test."""
    return asyncio.run(coro)
