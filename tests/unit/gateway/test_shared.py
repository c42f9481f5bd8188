"""Each state's shared state is its own (no broker: the wiring is built, nothing connects).

A gateway serving several states follows each state's token and answer topics as that state's
gateway principal, and takes from a state's topics only records of that state; the same id
answered by two states is two answers.
"""

from __future__ import annotations

import pytest

from puente.config import GatewaySettings, Settings
from puente.kafka.connection import KafkaEndpoint
from puente.secrets import Credential
from puente.topics import GATEWAY_ANSWERS, GATEWAY_TOKENS, INGRESS, Naming
from puente_gateway.broker import GatewayKafka
from puente_gateway.clock import now_ms
from puente_gateway.ledger import Entry
from puente_gateway.shared import SharedState
from puente_gateway.tokens import new_token

N = Naming("puente")


def _kafka(*states: str) -> GatewayKafka:
    creds = {s: Credential(N.gateway_principal(s), "secret") for s in states}
    settings = Settings(kafka={"topic_prefix": "puente"})  # type: ignore[arg-type]
    return GatewayKafka(settings, GatewaySettings(), creds, endpoint=KafkaEndpoint("127.0.0.1:1"))


def _shared(*states: str) -> SharedState:
    return SharedState(_kafka(*states), ttl_s=3600, max_lag_s=5, interval_s=1)


def test_each_state_is_reached_as_its_own_gateway_principal() -> None:
    kafka = _kafka("MX", "GT")
    assert {s: k.cred.username for s, k in kafka.states.items()} == {
        "GT": "puente-gateway-gt",
        "MX": "puente-gateway-mx",
    }
    assert kafka.of_topic(N.topic(INGRESS, "GT")).state == "GT"
    assert kafka.of_topic(N.topic(GATEWAY_TOKENS, "MX")).cred.username == "puente-gateway-mx"
    with pytest.raises(RuntimeError):
        kafka.of_topic(N.topic(INGRESS, "US"))  # no credential of US's gateway: never as another


def test_each_state_is_followed_on_its_own_topics_by_its_own_principal() -> None:
    shared = _shared("MX", "GT")
    assert {s: set(f.handlers) for s, f in shared.followers.items()} == {
        s: {N.topic(GATEWAY_TOKENS, s), N.topic(GATEWAY_ANSWERS, s)} for s in ("MX", "GT")
    }
    assert {s: f.kafka.cred.username for s, f in shared.followers.items()} == {
        "GT": "puente-gateway-gt",
        "MX": "puente-gateway-mx",
    }


def test_a_token_is_taken_only_from_its_own_states_topic() -> None:
    shared = _shared("MX", "GT")
    apply_mx = shared.followers["MX"].handlers[N.topic(GATEWAY_TOKENS, "MX")]
    mx, mx_token = new_token(state="MX", agency="Fiscalía")
    gt, gt_token = new_token(state="GT", agency="PNC")
    apply_mx(0, 0, gt.key(), gt.value())  # GT's token on MX's topic: not GT's, not MX's
    assert shared.tokens.lookup(gt_token.encode()) is None
    apply_mx(0, 1, mx.key(), mx.value())
    assert shared.tokens.lookup(mx_token.encode()) == mx


def test_answers_are_per_state_and_taken_only_from_their_states_topic() -> None:
    shared = _shared("MX", "GT")
    now = now_ms()
    key = "notice:5b0e1c1e-0000-4000-8000-000000000001"
    mx = Entry("MX", b"m" * 32, b'{"origin":"MX"}', now)
    gt = Entry("GT", b"g" * 32, b'{"origin":"GT"}', now)
    answers = {s: shared.followers[s].handlers[N.topic(GATEWAY_ANSWERS, s)] for s in ("MX", "GT")}
    answers["MX"](0, 0, key.encode(), gt.value())  # GT's answer on MX's topic: skipped
    assert shared.answer("MX", key) is None and shared.answer("GT", key) is None
    answers["MX"](0, 1, key.encode(), mx.value())
    answers["GT"](0, 0, key.encode(), gt.value())
    assert shared.answer("MX", key) == mx and shared.answer("GT", key) == gt
