"""GET /v1/deliveries and /v1/rejections: pages and SSE over the caller's own topics, written in
Kafka transactions as a node writes them (deliveries sealed to their recipient), verified as a
recipient verifies them, and opened by the gateway for its state only."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from puente.codec.jsonconv import to_json
from puente.codec.wire import decode, encode
from puente.evidence.trust import TrustList
from puente.evidence.verify import Verifier, open_verified
from puente.kafka.clients import producer, start
from puente.topics import DELIVER, REJECTED
from puente_gateway.clock import now_ms
from tests.harness import Tenant
from tests.integration.gateway.conftest import Gateway
from tests.integration.gateway.support import (
    notice_json,
    produce,
    run,
    signed_delivery,
)

pytestmark = pytest.mark.kafka


async def _transactional(
    tenant: Tenant, topic: str, committed: list[bytes], aborted: list[bytes], *, node: str = "MX"
) -> None:
    """Write like state ``node``'s node: one committed and one aborted transaction."""
    cred = tenant.node(node)
    tx = producer(
        tenant.endpoint,
        cred,
        transactional_id=tenant.naming.node_transactional_id_prefix(node) + uuid.uuid4().hex[:8],
    )
    await start(tx, tenant.endpoint, cred)
    try:
        if aborted:
            await tx.begin_transaction()
            for v in aborted:
                await tx.send_and_wait(topic, v, key=uuid.uuid4().bytes)
            await tx.abort_transaction()
        await tx.begin_transaction()
        for v in committed:
            await tx.send_and_wait(topic, v, key=uuid.uuid4().bytes)
        await tx.commit_transaction()
    finally:
        await tx.stop()


def _pages(
    client: httpx.Client, path: str, *, limit: int, cursor: str | None = None
) -> Iterator[dict[str, Any]]:
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        r = client.get(path, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        yield page
        cursor = page["next_cursor"]
        if page["caught_up"]:
            return


def _verifier(gateway: Gateway) -> Verifier:
    tl = TrustList.open(gateway.keys.trust_bytes, [gateway.keys.root.public], now=now_ms())
    return Verifier(trust_list=tl, registry=gateway.registry)


@pytest.fixture(scope="module")
def gt_deliveries(gateway: Gateway) -> list[bytes]:
    """Five committed deliveries to GT (two consular), after an aborted one."""
    made = [
        signed_delivery(gateway.registry, gateway.keys, recipient="GT", consular=i in (1, 3))[1]
        for i in range(5)
    ]
    ghost = signed_delivery(gateway.registry, gateway.keys, recipient="GT")[1]
    run(_transactional(gateway.tenant, gateway.tenant.topic(DELIVER, "GT"), made, [ghost]))
    return made


def test_pages_give_every_committed_delivery_once_with_verifiable_material(
    gateway: Gateway, gt_deliveries: list[bytes]
) -> None:
    with gateway.client(gateway.token("GT")) as c:
        items = [i for page in _pages(c, "/v1/deliveries", limit=2) for i in page["items"]]
    got = [base64.b64decode(i["delivery"]) for i in items]
    assert sorted(got) == sorted(gt_deliveries)  # the aborted one never shows
    verifier = _verifier(gateway)
    for item, raw in zip(items, got, strict=True):
        verified = verifier.verify_delivery(raw, recipient="GT")
        assert verified.sealed  # on Kafka, only GT's key opens it
        assert item["verification"]["mode"] == "signature"
        assert item["verification"]["key_id"] == gateway.keys.nodes["MX"].key_id
        assert item["delivery_digest"] == verified.digest.hex()
        assert item["statement"]["recipient"] == "GT"
        assert item["log_position"] == {
            "log_id": verified.statement.audit_log_id,
            "leaf_index": verified.statement.audit_leaf_index,
        }
        assert item["statement"]["notice_id"] == verified.statement.notice_id
        assert item["notice_type"] == verified.statement.payload_schema
        # Opened by the gateway with GT's key: the notice the signed statement commits to.
        notice = base64.b64decode(item["notice_avro"])
        assert notice == open_verified(verified, gateway.keys.ring("GT"))
        assert hashlib.sha256(notice).digest() == verified.statement.payload_sha256
        assert item["notice"]["notice_id"] == verified.statement.notice_id
        assert item["notice"] == to_json(
            gateway.registry,
            verified.statement.payload_schema,
            decode(gateway.registry, notice),
        )
        assert "error" not in item


def test_resuming_from_any_item_cursor_gives_exactly_the_rest(
    gateway: Gateway, gt_deliveries: list[bytes]
) -> None:
    with gateway.client(gateway.token("GT")) as c:
        everything = [i for p in _pages(c, "/v1/deliveries", limit=1000) for i in p["items"]]
        for k, item in enumerate(everything):
            rest = [
                i
                for p in _pages(c, "/v1/deliveries", limit=3, cursor=item["cursor"])
                for i in p["items"]
            ]
            rest_ids = {(i["partition"], i["offset"]) for i in rest}
            later = {(i["partition"], i["offset"]) for i in everything[k + 1 :]}
            assert rest_ids == later


def test_agency_limited_to_a_type_sees_only_that_type(
    gateway: Gateway, gt_deliveries: list[bytes]
) -> None:
    consular = gateway.token("GT", types=("puente.ConsularNotification",))
    with gateway.client(consular) as c:
        items = [i for p in _pages(c, "/v1/deliveries", limit=10) for i in p["items"]]
    assert len(items) == 2
    assert {i["notice_type"] for i in items} == {"puente.ConsularNotification"}


def test_only_agencies_of_every_type_get_an_undecodable_delivery(gateway: Gateway) -> None:
    made = [
        signed_delivery(gateway.registry, gateway.keys, recipient="MX", origin="GT", consular=True)[
            1
        ]
    ]
    garbage = b"\xc3\x01 not a delivery"
    topic = gateway.tenant.topic(DELIVER, "MX")
    run(_transactional(gateway.tenant, topic, [*made, garbage], [], node="GT"))
    with gateway.client(gateway.token("MX")) as c:
        every = [i for p in _pages(c, "/v1/deliveries", limit=10) for i in p["items"]]
    by_raw = {base64.b64decode(i["delivery"]): i for i in every}
    assert by_raw[garbage]["error"]["reason"] == "DELIVERY_MALFORMED"
    assert "statement" not in by_raw[garbage] and "notice" not in by_raw[garbage]
    for types in (("puente.ConsularNotification",), ("puente.CaseNotice",)):
        with gateway.client(gateway.token("MX", types=types)) as c:
            pages = list(_pages(c, "/v1/deliveries", limit=10))
        raws = {base64.b64decode(i["delivery"]) for p in pages for i in p["items"]}
        assert garbage not in raws  # its type is unknown: never given to a limited agency
        assert (made[0] in raws) == (types == ("puente.ConsularNotification",))
        assert pages[-1]["next_cursor"] == _pages_end(gateway, "MX")  # the cursor moved past


def test_a_delivery_sealed_to_another_state_is_never_shown_opened(gateway: Gateway) -> None:
    """This gateway holds every state's keys (as on the embedded default), MX's included: still,
    GT's agencies never get a notice that was not sealed to GT for GT."""
    registry, keys = gateway.registry, gateway.keys
    for_mx = signed_delivery(registry, keys, recipient="MX", origin="US")[1]
    sealed_to_mx = signed_delivery(registry, keys, recipient="GT", sealed_to="MX")[1]
    for_gt = signed_delivery(registry, keys, recipient="GT")[1]
    topic = gateway.tenant.topic(DELIVER, "GT")
    run(produce(gateway.tenant, gateway.tenant.node("MX"), topic, [sealed_to_mx, for_gt]))
    run(produce(gateway.tenant, gateway.tenant.node("US"), topic, [for_mx]))
    with gateway.client(gateway.token("GT")) as c:
        by_raw = {
            base64.b64decode(i["delivery"]): i
            for p in _pages(c, "/v1/deliveries", limit=100)
            for i in p["items"]
        }
    # MX's delivery copied onto GT's topic: it does not verify for GT, nothing is opened.
    assert by_raw[for_mx]["error"]["reason"] == "RECIPIENT_MISMATCH"
    # Addressed to GT but sealed to MX's key: it verifies (the statement names the key), and
    # does not open with GT's keys; the gateway never tries MX's.
    assert by_raw[sealed_to_mx]["error"]["reason"] == "SEAL_KEY_UNKNOWN"
    assert by_raw[sealed_to_mx]["statement"]["recipient"] == "GT"
    for raw in (for_mx, sealed_to_mx):
        assert "notice" not in by_raw[raw] and "notice_avro" not in by_raw[raw]
    assert by_raw[for_gt]["notice"]["origin"] == "MX" and "error" not in by_raw[for_gt]
    # An agency limited to case notices: the unverified delivery's type is unknown (not shown).
    with gateway.client(gateway.token("GT", types=("puente.CaseNotice",))) as c:
        limited = {
            base64.b64decode(i["delivery"])
            for p in _pages(c, "/v1/deliveries", limit=100)
            for i in p["items"]
        }
    assert for_mx not in limited and {sealed_to_mx, for_gt} <= limited


def _pages_end(gateway: Gateway, state: str) -> str:
    with gateway.client(gateway.token(state)) as c:
        end: str = [p for p in _pages(c, "/v1/deliveries", limit=100)][-1]["next_cursor"]
    return end


def test_a_state_never_sees_another_states_deliveries(
    gateway: Gateway, gt_deliveries: list[bytes]
) -> None:
    with gateway.client(gateway.token("US")) as c:
        items = [i for p in _pages(c, "/v1/deliveries", limit=100) for i in p["items"]]
    assert all(i["statement"]["recipient"] == "US" for i in items)
    assert not {base64.b64decode(i["delivery"]) for i in items} & set(gt_deliveries)


def test_long_poll_returns_when_a_delivery_arrives(gateway: Gateway) -> None:
    with gateway.client(gateway.token("US")) as c:
        end = list(_pages(c, "/v1/deliveries", limit=1000))[-1]["next_cursor"]
        _, raw = signed_delivery(gateway.registry, gateway.keys, recipient="US")
        import threading

        threading.Timer(
            1.0,
            lambda: run(
                produce(
                    gateway.tenant,
                    gateway.tenant.node("MX"),
                    gateway.tenant.topic(DELIVER, "US"),
                    [raw],
                )
            ),
        ).start()
        t0 = time.monotonic()
        r = c.get("/v1/deliveries", params={"cursor": end, "wait": 20})
        waited = time.monotonic() - t0
    assert r.status_code == 200
    assert [base64.b64decode(i["delivery"]) for i in r.json()["items"]] == [raw]
    assert 0.5 < waited < 15


def test_no_wait_on_an_empty_feed_answers_at_once(gateway: Gateway) -> None:
    with gateway.client(gateway.token("US")) as c:
        end = list(_pages(c, "/v1/deliveries", limit=1000))[-1]["next_cursor"]
        t0 = time.monotonic()
        r = c.get("/v1/deliveries", params={"cursor": end})
    assert r.status_code == 200
    assert r.json()["items"] == [] and r.json()["caught_up"] is True
    assert r.json()["next_cursor"] == end
    assert time.monotonic() - t0 < 3


def _events(
    lines: Iterator[str], want: int, timeout_s: float = 20
) -> tuple[list[dict[str, str]], int]:
    """Parse SSE events until ``want`` data events; returns them and the heartbeats seen."""
    events: list[dict[str, str]] = []
    heartbeats = 0
    current: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    for line in lines:
        if line.startswith(":"):
            heartbeats += 1
        elif line == "":
            if "data" in current:
                events.append(current)
                if len(events) >= want:
                    break
            current = {}
        else:
            name, _, value = line.partition(": ")
            current[name] = value
        assert time.monotonic() < deadline, "the stream stalled"
    return events, heartbeats


def test_sse_streams_and_resumes_from_last_event_id(
    gateway: Gateway, gt_deliveries: list[bytes]
) -> None:
    import orjson

    token = gateway.token("GT")
    with gateway.client(token) as c:
        everything = [i for p in _pages(c, "/v1/deliveries", limit=1000) for i in p["items"]]
        n = len(everything)
        with c.stream("GET", "/v1/deliveries", headers={"Accept": "text/event-stream"}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            events, _ = _events(r.iter_lines(), n)
        assert [e["event"] for e in events] == ["delivery"] * n
        items = [orjson.loads(e["data"]) for e in events]
        assert [e["id"] for e in events] == [i["cursor"] for i in items]
        # Partitions interleave freely; within one, the stream keeps offset order.
        assert sorted(_where(items)) == sorted(_where(everything))
        for part in {i["partition"] for i in items}:
            offsets = [i["offset"] for i in items if i["partition"] == part]
            assert offsets == sorted(offsets)
        # Reconnect as EventSource does: same URL, Last-Event-ID of the second event.
        headers = {"Accept": "text/event-stream", "Last-Event-ID": events[1]["id"]}
        with c.stream("GET", "/v1/deliveries", headers=headers) as r:
            lines = r.iter_lines()
            rest, _ = _events(lines, n - 2)
            # A new delivery arrives while the stream is open.
            _, raw = signed_delivery(gateway.registry, gateway.keys, recipient="GT")
            topic = gateway.tenant.topic(DELIVER, "GT")
            run(produce(gateway.tenant, gateway.tenant.node("MX"), topic, [raw]))
            live, _ = _events(lines, 1)
        assert sorted(_where(orjson.loads(e["data"]) for e in rest)) == sorted(_where(items[2:]))
        assert base64.b64decode(orjson.loads(live[0]["data"])["delivery"]) == raw


def _where(items: Any) -> list[tuple[int, int]]:
    return [(i["partition"], i["offset"]) for i in items]


def test_sse_heartbeats_while_idle(gateway: Gateway) -> None:
    with gateway.client(gateway.token("US")) as c:
        end = list(_pages(c, "/v1/deliveries", limit=1000))[-1]["next_cursor"]
        headers = {"Accept": "text/event-stream", "Last-Event-ID": end}
        with c.stream("GET", "/v1/deliveries", headers=headers) as r:
            beats = 0
            t0 = time.monotonic()
            for line in r.iter_lines():
                if line.startswith(":"):
                    beats += 1
                if beats >= 2:
                    break
                assert time.monotonic() - t0 < 10
    assert beats >= 2


def test_sse_stream_ends_when_the_token_is_revoked(gateway: Gateway) -> None:
    record, token = gateway.issue("US", agency="revoked mid-stream")
    sse = {"Accept": "text/event-stream"}
    with gateway.client(token) as c, c.stream("GET", "/v1/deliveries", headers=sse) as r:
        assert r.status_code == 200
        gateway.revoke(record.id)
        lines = []
        t0 = time.monotonic()
        for line in r.iter_lines():  # ends when the server closes the stream
            lines.append(line)
            assert time.monotonic() - t0 < 15
    assert "event: error" in lines
    data = next(x for x in lines if x.startswith("data: ") and "AUTH_INVALID" in x)
    assert "AUTH_INVALID" in data


def test_bad_cursors_are_400(gateway: Gateway) -> None:
    with gateway.client(gateway.token("GT")) as c:
        rejection_cursor = c.get("/v1/rejections").json()["next_cursor"]
        for bad in (
            "nonsense",
            "d1.!!!",
            "d1." + base64.urlsafe_b64encode(b"0:x").decode(),
            rejection_cursor,
        ):
            r = c.get("/v1/deliveries", params={"cursor": bad})
            assert r.status_code == 400, bad
            assert r.json()["reason"] == "CURSOR_INVALID"
        r = c.get(
            "/v1/deliveries", headers={"Last-Event-ID": "garbage", "Accept": "text/event-stream"}
        )
        assert r.status_code == 400
        assert r.json()["reason"] == "CURSOR_INVALID"


def test_bad_query_parameters_are_422_with_paths(gateway: Gateway) -> None:
    with gateway.client(gateway.token("GT")) as c:
        for params, path in (
            ({"limit": 0}, "query.limit"),
            ({"limit": "many"}, "query.limit"),
            ({"wait": 99}, "query.wait"),
        ):
            r = c.get("/v1/deliveries", params=params)
            assert r.status_code == 422
            body = r.json()
            assert body["reason"] == "REQUEST_INVALID"
            assert [p["path"] for p in body["problems"]] == [path]


def test_unauthenticated_reads_are_401(gateway: Gateway) -> None:
    with gateway.client() as c:
        for path in ("/v1/deliveries", "/v1/rejections"):
            r = c.get(path)
            assert r.status_code == 401
            assert r.json()["reason"] == "AUTH_REQUIRED"


# --- rejections -------------------------------------------------------------------------------


def _rejection(gateway: Gateway, origin: str, notice_id: str | None = None) -> tuple[bytes, str]:
    rid = str(uuid.uuid4())
    record = {
        "rejection_id": rid,
        "scope": "NOTICE",
        "notice_id": notice_id or str(uuid.uuid4()),
        "origin": origin,
        "reason_code": "INVALID_FIELD",
        "message": "persons[0].nationalities[0] is not a country code",
        "field_paths": ["persons[0].nationalities[0]"],
        "ingress_topic": gateway.tenant.topic(DELIVER, origin).replace("deliver", "ingress"),
        "ingress_partition": 0,
        "ingress_offset": 7,
        "original_sha256": bytes(32),
        "rejected_at": __import__("datetime").datetime.now(__import__("datetime").UTC),
    }
    return encode(gateway.registry, "puente.Rejection", record), rid


def test_rejections_are_decoded_and_raw_bytes_kept(gateway: Gateway) -> None:
    topic = gateway.tenant.topic(REJECTED, "MX")
    good, rid = _rejection(gateway, "MX")
    garbage = b"not avro at all"
    run(_transactional(gateway.tenant, topic, [good, garbage], []))
    with gateway.client(gateway.token("MX")) as c:
        items = [i for p in _pages(c, "/v1/rejections", limit=10) for i in p["items"]]
    by_raw = {base64.b64decode(i["raw"]): i for i in items}
    decoded = by_raw[good]
    assert decoded["record_type"] == "puente.Rejection"
    assert decoded["rejection"]["rejection_id"] == rid
    assert decoded["rejection"]["reason_code"] == "INVALID_FIELD"
    assert decoded["rejection"]["original_sha256"] == base64.b64encode(bytes(32)).decode()
    broken = by_raw[garbage]
    assert broken["error"]["reason"] == "BAD_MAGIC"
    assert "rejection" not in broken
    # GT does not see MX's rejections.
    with gateway.client(gateway.token("GT")) as c:
        gt_items = [i for p in _pages(c, "/v1/rejections", limit=10) for i in p["items"]]
    assert not {base64.b64decode(i["raw"]) for i in gt_items} & {good, garbage}


def test_rejections_stream_as_events(gateway: Gateway) -> None:
    import orjson

    good, rid = _rejection(gateway, "US")
    run(
        produce(
            gateway.tenant,
            gateway.tenant.node("US"),
            gateway.tenant.topic(REJECTED, "US"),
            [good],
        )
    )
    with (
        gateway.client(gateway.token("US")) as c,
        c.stream("GET", "/v1/rejections", headers={"Accept": "text/event-stream"}) as r,
    ):
        events, _ = _events(r.iter_lines(), 1)
    assert events[0]["event"] == "rejection"
    assert orjson.loads(events[0]["data"])["rejection"]["rejection_id"] == rid


def test_rejections_respect_the_type_restriction(gateway: Gateway) -> None:
    # A consular notification published through the gateway (its ledger knows the type), then
    # refused; a rejection about a notice the gateway never saw; one that does not decode.
    notice = notice_json(gateway.registry, "GT", consular=True)
    with gateway.client(gateway.token("GT")) as c:
        posted = c.post("/v1/notices", json={"type": "ConsularNotification", "notice": notice})
    assert posted.status_code == 202, posted.text
    known, _ = _rejection(gateway, "GT", notice["notice_id"])
    unknown, _ = _rejection(gateway, "GT")
    garbage = b"not avro"
    topic = gateway.tenant.topic(REJECTED, "GT")
    run(_transactional(gateway.tenant, topic, [known, unknown, garbage], [], node="GT"))

    def seen(types: tuple[str, ...]) -> set[bytes]:
        with gateway.client(gateway.token("GT", types=types)) as c:
            items = [i for p in _pages(c, "/v1/rejections", limit=10) for i in p["items"]]
        return {base64.b64decode(i["raw"]) for i in items}

    assert {known, unknown, garbage} <= seen(())
    assert seen(("puente.ConsularNotification",)) == {known}
    assert seen(("puente.CaseNotice",)) == set()
