"""End to end through the member states' own gateways and a real node, on the node model.

Each gateway is its state's edge, as in production: it serves its own state only
(``PUENTE_GATEWAY__STATES``), holds only its own state's member encryption keys
(``PUENTE_GATEWAY__KEYS_DIR``) and connects to Kafka as its own state's gateway principal
(``<prefix>-gateway-cc``), which reaches that state's topics only. A Mexican police agency
reports, over HTTP at Mexico's gateway, the arrest of a Colombian national who asked for
consular notification; the gateway seals it to Mexico's node, the only one that can read it on
Kafka; Mexico's node decides and seals the delivery to Colombia; the Colombian consulate reads
it opened from Colombia's gateway's event stream, verifies the bytes against the signed trust
list the gateway serves, and sends a signed receipt back. Nowhere else does it open. Keys
rotate under the running gateways and node.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from fastapi import FastAPI

from puente.app.operator import members_sign, publish_trust_list
from puente.app.runtime import Runtime
from puente.codec.jsonconv import to_json
from puente.codec.wire import decode, encode
from puente.config import GatewaySettings
from puente.evidence.errors import SealError
from puente.evidence.keystore import GENESIS_FILE, KeyStore
from puente.evidence.note import Note
from puente.evidence.seal import parse_envelope
from puente.evidence.trust import TrustList, Usage, member_holder, node_holder
from puente.evidence.verify import DELIVERY_RECEIPT, Verifier, open_verified, sign_receipt
from puente.kafka.clients import consumer, start
from puente.synth.generator import Generator
from puente.topics import DELIVER, INGRESS
from puente_gateway.app import create_app
from puente_gateway.clock import now_ms
from tests.harness import KafkaHarness
from tests.integration.gateway.support import (
    context_of,
    copy_member_keys,
    end_offsets,
    issue_token,
    loop_of,
    produce,
    serving,
)
from tests.integration.service.support import (
    Deployment,
    NodeGroup,
    deploy,
    now_stamped,
    running,
)
from tests.jsonfuzz import strings

pytestmark = pytest.mark.kafka
POLICE = "Instituto Nacional de Migración"
CONSULATE = "Consulado de Colombia en Tapachula"
STATES = ("MX", "CO", "GT")
DAY = 86_400_000


@dataclass
class StateGateway:
    """One member state's own gateway: it serves that state only, with that state's keys."""

    state: str
    app: FastAPI
    url: str
    keys_dir: Path

    def token(self, *, agency: str, types: tuple[str, ...] = ()) -> str:
        """A new agency token of this gateway's state."""
        return issue_token(self.app, self.url, self.state, agency=agency, types=types)[1]

    def client(self, token: str) -> httpx.AsyncClient:
        auth = {"Authorization": f"Bearer {token}"}
        return httpx.AsyncClient(base_url=self.url, headers=auth, timeout=60)

    def knows(self, token: str) -> bool:
        """Whether this gateway's shared state holds ``token``."""
        return context_of(self.app).shared.tokens.lookup(token.encode()) is not None

    async def synced(self) -> None:
        """Return once this gateway has read every record of its state's shared topics that
        was acknowledged before the call (what a replica of it would know)."""
        shared = context_of(self.app).shared
        await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(shared.sync(), loop_of(self.url))
        )


@dataclass
class World:
    """Every member state deployed, and the gateways of MX, CO and GT."""

    dep: Deployment
    gateways: dict[str, StateGateway]
    anchors: Path

    def arrest(self, seed: int) -> dict[str, Any]:
        """The POST body of a consular notification: a Colombian arrested in Mexico."""
        notice = Generator(seed).scenario("requested-arrest", origin="MX", nationality="CO")
        return {
            "type": "ConsularNotification",
            "notice": to_json(self.dep.registry, notice.name, now_stamped(notice)),
        }


@pytest.fixture(scope="module")
async def world(
    kafka: KafkaHarness, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    dep = await deploy(kafka, partitions=1)
    base = tmp_path_factory.mktemp("edges")
    # The genesis trust list is handed out of band; each state copies its own member keys
    # (made on its side) into its gateway's key store, and nothing else.
    anchors = base / GENESIS_FILE
    anchors.write_bytes((dep.evidence.store.root / GENESIS_FILE).read_bytes())
    gateways: dict[str, StateGateway] = {}
    with ExitStack() as stack:
        for state in STATES:
            keys_dir = copy_member_keys(dep.evidence.store, state, base / f"{state}-keys")
            gw = GatewaySettings(
                states=(state,),
                keys_dir=keys_dir,
                trust_anchors_file=anchors,
                trust_refresh_s=0.5,
                keys_reload_s=0.2,
                sse_heartbeat_s=0.5,
            )
            app = create_app(dep.settings, gw, registry=dep.registry)
            url = stack.enter_context(serving(app, gw))
            gateways[state] = StateGateway(state, app, url, keys_dir)
        yield World(dep, gateways, anchors)


async def until(check: Callable[[], bool], *, what: str, timeout_s: float = 60) -> None:
    """Wait (polling, without blocking the event loop the nodes run in) until ``check()``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _first_delivery(client: httpx.AsyncClient, cursor: str) -> dict[str, Any]:
    headers = {"Accept": "text/event-stream", "Last-Event-ID": cursor}
    async with client.stream("GET", "/v1/deliveries", headers=headers) as r:
        assert r.status_code == 200
        event: dict[str, str] = {}
        async for line in r.aiter_lines():
            if line == "":
                if event.get("event") == "delivery":
                    return dict(orjson.loads(event["data"]))
                event = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                event[name] = value
    raise AssertionError("the stream ended without a delivery")


async def _item_of(client: httpx.AsyncClient, notice_id: str) -> dict[str, Any]:
    """The delivery item of ``notice_id`` in the caller's pages (long-polling until it is
    there, or failing after 90 s)."""
    cursor: str | None = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        params: dict[str, Any] = {"wait": 5} | ({"cursor": cursor} if cursor else {})
        page = await client.get("/v1/deliveries", params=params)
        assert page.status_code == 200, page.text
        for item in page.json()["items"]:
            if item.get("statement", {}).get("notice_id") == notice_id:
                return dict(item)
        cursor = page.json()["next_cursor"]
    raise AssertionError(f"no delivery of {notice_id} within 90 s")


async def _every_item(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every delivery item of the caller's state, from the beginning to the end."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await client.get("/v1/deliveries", params={"cursor": cursor} if cursor else {})
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if page.json()["caught_up"]:
            return items


def _identifying(notice: dict[str, Any]) -> set[str]:
    """What of a notice must never be on Kafka in clear: its strings (names, document
    numbers, dates of birth, places, the summary...) but its id."""
    return {s for s in strings(notice) if len(s) >= 4} - {notice["notice_id"]}


async def _every_record(world: World, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` (aborted ones too), read from the beginning as the cluster's
    administrator: what whoever operates Kafka can see."""
    kafka = world.dep.kafka
    c = consumer(kafka.endpoint, kafka.admin, isolation_level="read_uncommitted")
    await start(c, kafka.endpoint, kafka.admin)
    try:
        partitions = next(t.partitions for t in world.dep.tenant.plan.topics if t.name == topic)
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        ends = await c.end_offsets(tps)
        out: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + 30
        while [tp for tp in tps if await c.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, "the topic was not read to its end"
            for batch in (await c.getmany(timeout_ms=500)).values():
                out += batch
        return out
    finally:
        await c.stop()


async def test_post_deliver_stream_verify_receipt(world: World) -> None:
    dep, mx, co = world.dep, world.gateways["MX"], world.gateways["CO"]
    police = mx.token(agency=POLICE, types=("puente.ConsularNotification",))
    consulate = co.token(agency=CONSULATE)
    body = world.arrest(42)
    notice_id = body["notice"]["notice_id"]
    async with co.client(consulate) as reader, mx.client(police) as publisher:
        start = (await reader.get("/v1/deliveries")).json()["next_cursor"]
        async with running(dep.nodes("MX")):
            waiting = asyncio.create_task(_first_delivery(reader, start))
            posted = await publisher.post("/v1/notices", json=body)
            assert posted.status_code == 202, posted.text
            item = await asyncio.wait_for(waiting, 90)

        # Verify exactly the bytes received, with the trust list CO's gateway serves and the
        # anchor held out of band: nothing from the gateway is taken on trust.
        served = await reader.get("/v1/trust-list")
        assert served.status_code == 200
        trust = TrustList.open(served.content, dep.evidence.anchors, now=now_ms())
        verified = Verifier(trust_list=trust, registry=dep.registry).verify_delivery(
            base64.b64decode(item["delivery"]), recipient="CO"
        )
        assert verified.statement.notice_id == notice_id
        assert verified.statement.origin == "MX"
        assert verified.key_ids == (dep.evidence.node_key("MX").key_id,)  # MX's own node key
        assert verified.statement.original_sha256.hex() == posted.json()["sha256"]
        assert item["delivery_digest"] == verified.digest.hex()
        # Sealed to CO on Kafka; CO's gateway opened it with CO's key, and what it gives is the
        # notice the signed statement commits to.
        assert verified.sealed
        notice = base64.b64decode(item["notice_avro"])
        assert hashlib.sha256(notice).digest() == verified.statement.payload_sha256
        assert open_verified(verified, dep.member_keys("CO")) == notice
        delivered = decode(dep.registry, notice)
        assert delivered["notice_id"] == notice_id
        assert delivered["event"] == "ARREST"
        assert delivered["person"]["nationalities"] == ["CO"]
        assert item["notice"] == body["notice"]  # what the police posted, opened for CO

        # The consulate acknowledges with its own key; the gateway checks the signature.
        key = dep.evidence.store.current(member_holder("CO"), usage=Usage.RECEIPT, at=now_ms())
        receipt = encode(
            dep.registry,
            DELIVERY_RECEIPT,
            {
                "receipt_id": "7d8d7e1e-7d64-4b2a-9a43-2f1f0c1b5a61",
                "notice_id": notice_id,
                "recipient": "CO",
                "delivery_digest": verified.digest.hex(),
                "log_id": verified.statement.audit_log_id,
                "log_index": verified.statement.audit_leaf_index,
                "status": "VERIFIED",
                "received_at": dt.datetime.now(dt.UTC),
            },
        )
        acked = await reader.post(
            "/v1/receipts",
            json={
                "receipt_avro": base64.b64encode(receipt).decode(),
                "signature": {
                    "key_id": key.key_id,
                    "signature": base64.b64encode(sign_receipt(key, receipt)).decode(),
                },
            },
        )
        assert acked.status_code == 202, acked.text
        assert acked.json()["signature_verified"] is True


async def test_a_posted_notice_is_sealed_on_kafka_and_opens_only_at_its_recipients_gateway(
    world: World,
) -> None:
    dep = world.dep
    mx, co, gt = (world.gateways[s] for s in ("MX", "CO", "GT"))
    for g in (mx, co, gt):  # each as its own state's gateway principal, and no other
        principals = {s: k.cred.username for s, k in context_of(g.app).kafka.states.items()}
        assert principals == {g.state: dep.tenant.naming.gateway_principal(g.state)}
    body = world.arrest(8)  # shared with CO unchanged (DELIVERED)
    notice_id = body["notice"]["notice_id"]
    async with mx.client(mx.token(agency=POLICE)) as publisher:
        posted = await publisher.post("/v1/notices", json=body)
    assert posted.status_code == 202, posted.text
    # MX's ingress topic read raw, as the cluster's administrator: the notice's id is the
    # record's key, its value an envelope sealed to MX's node; nothing else of the notice is
    # in any record's key, value or headers.
    records = await _every_record(world, dep.tenant.topic(INGRESS, "MX"))
    [ours] = [r for r in records if r.key == notice_id.encode()]
    assert ours.value is not None and ours.value[:2] == b"PS"
    assert hashlib.sha256(ours.value).hexdigest() == posted.json()["sealed_sha256"]
    node_keys = dep.evidence.store.keyring(node_holder("MX"))
    assert parse_envelope(ours.value).key_id in {k.key_id for k in node_keys.keys}
    values = _identifying(body["notice"])
    assert len(values) > 10  # names, document numbers, places, the summary...
    for rec in records:
        seen = b"".join([rec.key or b"", rec.value or b"", *(v for _, v in rec.headers)])
        assert POLICE.encode() not in seen  # the agency's name stays off the topic
        leaked = [v for v in values if v.encode() in seen]
        assert not leaked, leaked

    # MX's node opens it, decides, and seals it to CO; CO's gateway opens it for CO.
    consulate = co.token(agency=CONSULATE)
    async with co.client(consulate) as reader, running(dep.nodes("MX")):
        item = await _item_of(reader, notice_id)
    assert "error" not in item
    assert item["statement"]["decision"]["action"] == "DELIVERED"
    assert item["notice"] == body["notice"]
    delivery = base64.b64decode(item["delivery"])
    assert not [v for v in values if v.encode() in delivery]  # sealed on deliver.CO too

    # Nowhere else does it open. MX's gateway does not serve CO's agencies: it cannot even
    # read CO's token topic, so once it has read everything of its own it still does not know
    # CO's token; and it holds no key of CO's...
    await mx.synced()
    assert not mx.knows(consulate)
    async with mx.client(consulate) as elsewhere:
        refused = await elsewhere.get("/v1/deliveries")
    assert (refused.status_code, refused.json()["reason"]) == (401, "AUTH_INVALID")
    assert context_of(mx.app).edge.keyring("CO").keys == ()
    # ...GT's key does not open it...
    verified = dep.verifier().verify_delivery(delivery, recipient="CO")
    with pytest.raises(SealError):
        open_verified(verified, dep.member_keys("GT"))
    # ...and the same bytes put on GT's topic (as MX's node principal may) are not GT's: GT's
    # gateway shows them without a notice.
    await produce(dep.tenant, dep.tenant.node("MX"), dep.tenant.topic(DELIVER, "GT"), [delivery])
    async with gt.client(gt.token(agency="Ministerio de Relaciones Exteriores")) as other:
        copies = [
            i for i in await _every_item(other) if base64.b64decode(i["delivery"]) == delivery
        ]
    assert len(copies) == 1
    assert copies[0]["error"]["reason"] == "RECIPIENT_MISMATCH"
    assert "notice" not in copies[0] and "notice_avro" not in copies[0]


async def test_mexicos_gateway_refuses_a_guatemalan_caller(world: World) -> None:
    """A valid token of GT (issued at GT's gateway, on GT's own token topic, which MX's
    gateway principal cannot read) is unknown on every route of MX's gateway, and nothing it
    sends is produced."""
    dep, mx, gt = world.dep, world.gateways["MX"], world.gateways["GT"]
    token = gt.token(agency="Policía Nacional Civil")
    await mx.synced()
    assert not mx.knows(token)
    ingress = [dep.tenant.topic(INGRESS, s) for s in ("MX", "GT")]
    before = [await end_offsets(dep.tenant, t) for t in ingress]
    notice = Generator(5).scenario("requested-arrest", origin="GT", nationality="MX")
    record = to_json(dep.registry, notice.name, now_stamped(notice))
    body = {"type": "ConsularNotification", "notice": record}
    async with mx.client(token) as c:
        answers = [
            await c.post("/v1/notices", json=body),
            await c.get("/v1/deliveries"),
            await c.get("/v1/rejections"),
            await c.get("/v1/trust-list"),
            await c.get("/v1/schemas"),
        ]
    for r in answers:
        assert (r.status_code, r.json()["reason"]) == (401, "AUTH_INVALID"), r.text
    assert [await end_offsets(dep.tenant, t) for t in ingress] == before
    async with gt.client(token) as c:  # at its own state's gateway it is served
        assert (await c.get("/v1/schemas")).status_code == 200


async def _operator_publishes(dep: Deployment, serial: int) -> None:
    """The members sign a trust list of the keys now known under a new ``serial``, pinning the
    same floor and naming the same quorum, and the operator publishes it on the trust topic."""
    store = dep.evidence.store
    now = now_ms()
    current = dep.evidence.open_trust_list()
    unsigned = store.trust_list(
        serial=serial,
        issued_at=now,  # the members' root keys are valid from the deployment on
        expires_at=now + 30 * DAY,
        floor_digest=current.floor_digest,
        quorum=current.quorum,
    )
    operator = dep.tenant.service("operator")
    signed = members_sign(store, unsigned, at=now)
    await publish_trust_list(dep.tenant.endpoint, operator, dep.tenant.naming, signed)


async def _served_serial(client: httpx.AsyncClient) -> int:
    """The serial of the trust list a gateway serves (and seals and verifies with)."""
    r = await client.get("/v1/trust-list")
    return int(r.headers.get("X-Puente-Trust-Serial", -1))


async def test_rotated_keys_are_used_without_restarting_gateways_or_node(
    world: World,
) -> None:
    """MX's node encryption key and CO's member encryption key rotate while both gateways and
    MX's node run: MX's gateway seals to the new node key once the operator's new trust list
    is out, MX's node opens it and seals to CO's new key, CO's gateway opens that with the key
    it re-read from its key store; what was sealed to CO's old key still opens there."""
    dep, mx, co = world.dep, world.gateways["MX"], world.gateways["CO"]
    police, consulate = mx.token(agency=POLICE), co.token(agency=CONSULATE)
    # MX's node as `puente serve node --as MX` wires it: its key store, and the trust list
    # followed from the trust topic.
    policy = dep.settings.policy.model_copy(update={"trust_refresh_s": 0.5})
    runtime = Runtime.from_settings(dep.settings.model_copy(update={"policy": policy}))
    node, trust_topic = runtime.node("MX", instance="rotation")
    operator = dep.evidence.store
    co_store = KeyStore(co.keys_dir)
    async with mx.client(police) as publisher, co.client(consulate) as reader:
        try:
            async with running(NodeGroup([node])):
                # Before the rotation: a delivery sealed to CO's key of now (its own, so that
                # this test does not depend on what others sent).
                before = world.arrest(76)
                posted = await publisher.post("/v1/notices", json=before)
                assert posted.status_code == 202, posted.text
                old_item = await _item_of(reader, before["notice"]["notice_id"])
                # MX's state makes its node's new encryption key in its node's key store (here
                # the embedded default's) and CO makes its new member key in its gateway's key
                # store; the operator records the public parts and the old keys' end, and
                # publishes a new list.
                at = now_ms()
                new_node, _ = operator.rotate_encryption(node_holder("MX"), at=at, overlap_ms=0)
                new_co, retired = co_store.rotate_encryption(
                    member_holder("CO"), at=at, overlap_ms=0
                )
                operator.import_encryption(new_co.public, member_holder("CO"), valid_from=at)
                for meta in retired:
                    operator.update(meta)
                serial = dep.evidence.open_trust_list().serial + 1
                await _operator_publishes(dep, serial)
                # Wait for the conditions, not for time: the gateways and the node follow the
                # list, the node and CO's gateway re-read their key stores.
                while await _served_serial(publisher) != serial:
                    await asyncio.sleep(0.1)  # MX's gateway follows the trust topic
                await until(
                    lambda: context_of(co.app).edge.keyring("CO").get(new_co.key_id) is not None,
                    what="CO's gateway to read CO's new key from its key store",
                )
                await until(
                    lambda: node.trust.current is not None and node.trust.current.serial == serial,
                    what="MX's node to take the new trust list",
                )
                await until(
                    lambda: (
                        (ring := node.keys.ingress_keys()) is not None
                        and ring.get(new_node.key_id) is not None
                    ),
                    what="MX's node to read its new key from its key store",
                )
                body = world.arrest(77)
                notice_id = body["notice"]["notice_id"]
                posted = await publisher.post("/v1/notices", json=body)
                assert posted.status_code == 202, posted.text
                item = await _item_of(reader, notice_id)
        finally:
            await trust_topic.close()
        records = await _every_record(world, dep.tenant.topic(INGRESS, "MX"))
        [ours] = [r for r in records if r.key == notice_id.encode()]
        assert ours.value is not None
        assert parse_envelope(ours.value).key_id == new_node.key_id  # sealed to the new key
        assert "error" not in item and item["notice"] == body["notice"]
        assert item["statement"]["sealed_key_id"] == new_co.key_id
        # Every delivery to CO so far, sealed to the old key or the new one, opens at CO's
        # gateway: the old private key stays in its key store.
        every = await _every_item(reader)
    assert old_item["statement"]["sealed_key_id"] in {m.key_id for m in retired}
    sealed_to = {i["statement"]["sealed_key_id"] for i in every}
    assert sealed_to == {new_co.key_id, *(m.key_id for m in retired)}
    assert all("error" not in i and "notice" in i for i in every), [i.get("error") for i in every]


async def test_a_list_short_of_quorum_on_the_trust_topic_is_refused_by_the_gateway(
    world: World,
) -> None:
    """Whoever can write to the trust topic cannot make a gateway take a list fewer than k
    member states signed: it keeps serving (sealing and verifying with) the list in force; the
    same list with the k-th signature is taken at the next refresh."""
    dep, mx = world.dep, world.gateways["MX"]
    async with mx.client(mx.token(agency=POLICE)) as client:
        served = await client.get("/v1/trust-list")
        current = TrustList.open(served.content, dep.evidence.anchors, now=now_ms())
        assert current.quorum is not None
        now = now_ms()
        unsigned = dep.evidence.store.trust_list(
            serial=current.serial + 1,
            issued_at=now,
            expires_at=now + 30 * DAY,
            floor_digest=current.floor_digest,
            quorum=current.quorum,
        )
        roots = sorted(unsigned.roots(at=now))
        note = Note.unsigned(unsigned.text())
        for holder in roots[: current.quorum - 1]:
            note = note.sign(dep.evidence.store.current(holder, usage=Usage.TRUST_LIST, at=now))
        operator = dep.tenant.service("operator")
        naming = dep.tenant.naming
        await publish_trust_list(dep.tenant.endpoint, operator, naming, note.to_bytes())
        await asyncio.sleep(4 * 0.5)  # four refreshes of the gateway (trust_refresh_s=0.5)
        assert await _served_serial(client) == current.serial
        holder = roots[current.quorum - 1]
        note = note.sign(dep.evidence.store.current(holder, usage=Usage.TRUST_LIST, at=now))
        await publish_trust_list(dep.tenant.endpoint, operator, naming, note.to_bytes())
        deadline = time.monotonic() + 30
        while await _served_serial(client) != current.serial + 1:
            assert time.monotonic() < deadline, "the gateway did not take the signed list"
            await asyncio.sleep(0.1)
