"""Gateway replicas are one service: two (then three) real servers on one tenant share tokens,
revocations and first answers through Kafka, and none of them writes a local file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from puente.codec.registry import Registry
from puente.evidence.trust import TRUST_LIST_KEY
from puente.topics import INGRESS, TRUST
from puente_gateway.app import create_app
from tests.harness import KafkaHarness, Tenant
from tests.integration.gateway.support import (
    Keys,
    context_of,
    end_offsets,
    issue_token,
    notice_json,
    on_server,
    produce,
    revoke_token,
    run,
    serving,
    wait_until,
)

pytestmark = pytest.mark.kafka


@dataclass
class Replica:
    app: FastAPI
    url: str

    def post(self, token: str, body: Any) -> httpx.Response:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}) as c:
            return c.post("/v1/notices", json=body, timeout=30)

    def get(self, token: str, path: str) -> httpx.Response:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}) as c:
            return c.get(path, timeout=30)

    def knows(self, token_id: str) -> bool:
        return context_of(self.app).shared.tokens.get(token_id) is not None

    def sync(self) -> None:
        """Wait until this replica has applied everything acknowledged until now."""
        on_server(self.url, context_of(self.app).shared.sync())


@dataclass
class World:
    tenant: Tenant
    registry: Registry
    state_dir: Path
    replicas: list[Replica]
    stack: ExitStack
    kafka: KafkaHarness
    keys: Keys

    def start(self) -> Replica:
        settings = self.kafka.settings_for(self.tenant, state_dir=self.state_dir)
        gw = self.keys.gateway(auth_fail_burst=10_000)
        app = create_app(settings, gw)
        replica = Replica(app, self.stack.enter_context(serving(app, gw)))
        self.replicas.append(replica)
        return replica


@pytest.fixture
def world(kafka: KafkaHarness, tmp_path: Path) -> Iterator[World]:
    tenant = kafka.provision(["MX", "GT"], partitions=2)
    keys = Keys.make(("MX", "GT"), tmp_path / "keys")
    operator = tenant.service("operator")
    run(produce(tenant, operator, tenant.topic(TRUST), [keys.trust_bytes], key=TRUST_LIST_KEY))
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    with ExitStack() as stack:
        w = World(
            tenant,
            Registry.load(kafka.settings_for(tenant).schemas_dir),
            state_dir,
            [],
            stack,
            kafka,
            keys,
        )
        w.start()
        w.start()
        yield w


def _files(root: Path) -> list[Path]:
    return [Path(d) / f for d, _, files in os.walk(root) for f in files]


def test_a_token_issued_on_one_replica_works_on_the_other(world: World) -> None:
    a, b = world.replicas
    record, token = issue_token(a.app, a.url, "GT")
    wait_until(lambda: b.knows(record.id), what="the token on the other replica")
    assert b.get(token, "/v1/schemas").status_code == 200


def test_a_revocation_takes_effect_on_every_replica(world: World) -> None:
    a, b = world.replicas
    record, token = issue_token(a.app, a.url, "GT")
    b.sync()  # the token record was acknowledged before: b has it now
    assert b.get(token, "/v1/schemas").status_code == 200
    revoke_token(a.app, a.url, record.id)
    assert a.get(token, "/v1/schemas").status_code == 401  # the writer at once
    # Any replica that confirmed it is current after the revocation refuses the token; one
    # that cannot confirm it within state_max_lag_s refuses every token (unit-tested).
    b.sync()
    r = b.get(token, "/v1/schemas")
    assert r.status_code == 401 and r.json()["reason"] == "AUTH_INVALID"


def test_a_retry_on_the_other_replica_gets_the_first_answer_and_produces_nothing(
    world: World,
) -> None:
    a, b = world.replicas
    record, token = issue_token(a.app, a.url, "MX")
    b.sync()
    body: dict[str, Any] = {"type": "CaseNotice", "notice": notice_json(world.registry, "MX")}
    topic = world.tenant.topic(INGRESS, "MX")
    first = a.post(token, body)
    assert first.status_code == 202, first.text
    after_first = run(end_offsets(world.tenant, topic))
    # At once, no waiting: b makes sure it has read everything acknowledged before the retry.
    retry = b.post(token, body)
    assert retry.status_code == 202
    assert retry.headers["Idempotent-Replay"] == "true"
    assert retry.content == first.content
    other = dict(body, notice=dict(body["notice"], summary="something else"))
    conflict = b.post(token, other)
    assert conflict.status_code == 409 and conflict.json()["reason"] == "NOTICE_ID_REUSED"
    assert run(end_offsets(world.tenant, topic)) == after_first
    # A replica started later knows both the token and the first answer.
    c = world.start()
    late = c.post(token, body)
    assert late.status_code == 202 and late.content == first.content
    assert late.headers["Idempotent-Replay"] == "true"
    assert run(end_offsets(world.tenant, topic)) == after_first
    assert record.id and c.knows(record.id)


def test_replicas_write_nothing_to_local_disk(world: World) -> None:
    a, b = world.replicas
    _, token = issue_token(a.app, a.url, "MX")
    b.sync()
    for replica in (a, b):
        body = {"type": "CaseNotice", "notice": notice_json(world.registry, "MX")}
        assert replica.post(token, body).status_code == 202
        assert replica.get(token, "/v1/deliveries").status_code == 200
    assert _files(world.state_dir) == []  # so a read-only or emptyDir mount is enough
