"""Helpers for the gateway tests: a real uvicorn server in a thread, tokens issued through its
shared state, a federation's keys and a trust list valid now, a state's own key store for its
gateway, deliveries as a node makes them, notices in their JSON form, and Kafka probes (end
offsets, records). The end-to-end tests run real nodes with tests.integration.service.support."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from aiokafka import TopicPartition
from fastapi import FastAPI

from puente.app.operator import (
    regional_floor_digest,
)
from puente.codec.jsonconv import to_json
from puente.codec.registry import Registry
from puente.codec.wire import encode
from puente.config import GatewaySettings, Settings
from puente.evidence.delivery import (
    Delivery,
    DeliveryDecision,
    DeliverySigner,
    DeliveryStatement,
)
from puente.evidence.enckeys import KeyRing
from puente.evidence.keys import PublicKey, SigningKey, ensure_private_dir
from puente.evidence.keystore import KeyStore
from puente.evidence.records import AuditDecision
from puente.evidence.seal import seal_delivery, sealing_key
from puente.evidence.trust import ROOT_HOLDER, TrustList, Usage, member_holder, node_holder
from puente.evidence.witness import witness_key_name
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
    return asyncio.run_coroutine_threadsafe(coro, loop_of(url)).result(timeout=60)


def loop_of(url: str) -> asyncio.AbstractEventLoop:
    """The event loop of the server at ``url``."""
    return _LOOPS[url]


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
    """A federation's keys in one key store, as the embedded default keeps them: the operator's
    root, and per member state its node's signing and encryption keys, its witness key and its
    own receipt-signing and encryption keys; and a trust list of them all, signed by the root, that
    pins the regional floor."""

    store: KeyStore
    root: SigningKey
    nodes: dict[str, SigningKey]  # state -> its node's signing key
    members: dict[str, SigningKey]  # state -> its receipt-signing key
    floor: bytes
    trust_bytes: bytes
    anchors: Path  # the root's verifier key, as a gateway's trust_anchors_file
    witnesses: dict[str, SigningKey]  # state -> its witness's cosigning key

    @classmethod
    def make(cls, members: tuple[str, ...], directory: Path) -> Keys:
        """The keys of ``members`` in a new key store at ``directory`` (its anchors file
        beside it)."""
        store = KeyStore(directory)
        since = now_ms() - DAY
        root, _ = store.generate(ROOT_HOLDER, valid_from=since)
        nodes = {m: store.generate(node_holder(m), valid_from=since)[0] for m in members}
        receipts = {m: store.generate(member_holder(m), valid_from=since)[0] for m in members}
        witnesses = {
            m: store.generate(
                node_holder(m),
                valid_from=since,
                usages=(Usage.WITNESS,),
                name=witness_key_name(m),
            )[0]
            for m in members
        }
        for m in members:
            store.generate_encryption(node_holder(m), valid_from=since)
            store.generate_encryption(member_holder(m), valid_from=since)
        floor = regional_floor_digest(Settings())
        anchors = anchors_file([root.public], directory.with_name(directory.name + "-anchors.vkey"))
        keys = cls(store, root, nodes, receipts, floor, b"", anchors, witnesses)
        keys.trust_bytes = keys.relisted(1)
        return keys

    def gateway(self, base: GatewaySettings | None = None, /, **settings: Any) -> GatewaySettings:
        """Gateway settings that follow this federation's trust list (its anchors), serve
        every state of the federation and hold every state's keys, as the embedded default
        does for every member; ``base`` and ``settings`` add to them."""
        values = base.model_dump(exclude_unset=True) if base is not None else {}
        values |= {
            "trust_anchors_file": self.anchors,
            "keys_dir": self.store.root,
            "states": tuple(self.nodes),
        } | settings
        return GatewaySettings.model_validate(values)

    def relisted(self, serial: int) -> bytes:
        """The key store's keys in a trust list of ``serial``, valid now, signed by the root."""
        now = now_ms()
        unsigned = self.store.trust_list(
            serial=serial, issued_at=now - DAY, expires_at=now + 30 * DAY, floor_digest=self.floor
        )
        return unsigned.sign(self.root)

    def trust_list(self) -> TrustList:
        """The signed trust list, opened with the root as anchor."""
        return TrustList.open(self.trust_bytes, [self.root.public], now=now_ms())

    def ring(self, state: str) -> KeyRing:
        """``state``'s member encryption keys: what opens the deliveries sealed to it."""
        return self.store.keyring(member_holder(state))

    def store_of(self, state: str, directory: Path) -> Path:
        """A key store holding only ``state``'s member encryption keys, as its own gateway
        would (copied from the federation's)."""
        return copy_member_keys(self.store, state, directory)


def copy_member_keys(store: KeyStore, state: str, directory: Path) -> Path:
    """Copy ``state``'s member encryption keys (private parts, descriptions, public parts) from
    ``store`` into the key store at ``directory``: what ``state``'s own gateway holds. Keys
    already there are overwritten, others kept (a second call adds a rotated key)."""
    ensure_private_dir(directory)
    stem = member_holder(state).replace(":", "-") + "-"
    for meta in store.key_metas():
        if meta.holder == member_holder(state) and meta.is_encryption:
            for path in store.root.glob(f"{stem}{meta.key_id}.*"):
                shutil.copy2(path, directory / path.name)
    return directory


def anchors_file(anchors: Iterable[PublicKey], path: Path) -> Path:
    """The operator's root verifier keys, one per line, as a gateway's ``trust_anchors_file``."""
    path.write_text("".join(k.vkey + "\n" for k in anchors))
    return path


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
    sealed_to: str | None = None,
) -> tuple[Delivery, bytes]:
    """A delivery as ``origin``'s node makes it (per-delivery mode): the notice sealed to
    ``sealed_to``'s member encryption key (by default the recipient's, as a node does), signed
    with the node's key; and its encoding."""
    gen = Generator(uuid.uuid4().int % 2**32)
    name = "puente.ConsularNotification" if consular else "puente.CaseNotice"
    record = (
        gen.consular_notification(origin=origin) if consular else gen.case_notice(origin=origin)
    )
    payload = encode(registry, name, record)
    now = now_ms()
    delivery_id = str(uuid.uuid4())
    sealed = seal_delivery(
        payload,
        to=sealing_key(keys.trust_list(), member_holder(sealed_to or recipient), at=now),
        notice_id=record["notice_id"],
        recipient=recipient,
        delivery_id=delivery_id,
    )
    statement = DeliveryStatement.for_payload(
        payload,
        payload_schema=name,
        delivery_id=delivery_id,
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
        sealed_sha256=sealed.sealed_sha256,
        sealed_size=len(sealed.envelope),
        sealed_key_id=sealed.key_id,
    )
    delivery = DeliverySigner(keys.nodes[origin], registry).sign(statement, sealed.envelope)
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


async def end_offsets(tenant: Tenant, topic: str, *, reader: str = "node") -> dict[int, int]:
    """Per-partition end offsets of ``topic``, read as service ``reader``, or with ``node`` or
    ``gateway`` as the node or the gateway of the topic's state (a node reads its state's ingress
    topic; a state's gateway may describe its own receipts topic)."""
    state = topic.rsplit(".", 1)[1]
    if reader == "node":
        cred = tenant.node(state)
    elif reader == "gateway":
        cred = tenant.gateway(state)
    else:
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
