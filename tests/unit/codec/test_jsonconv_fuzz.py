"""Fuzzing the JSON -> Avro path the gateway takes for every notice and receipt: whatever JSON
comes in, ``from_json`` either refuses it with EncodeError and field paths, or returns a record
that encodes and decodes back to itself. Nothing else may escape (the gateway would answer 500).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from puente.codec.errors import EncodeError
from puente.codec.jsonconv import from_json, to_json
from puente.codec.registry import Registry
from puente.codec.wire import decode, encode
from puente.synth import Generator
from tests.jsonfuzz import JSON_VALUES, mutations

from .conftest import SCHEMAS

# In a whole-suite run the session's gateway server (another thread) draws from the global
# `random` (aiokafka) while Hypothesis generates; that is not these strategies' doing.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
REG = Registry.load(SCHEMAS)
GEN = Generator(12)
NAMES = ("puente.CaseNotice", "puente.ConsularNotification", "puente.DeliveryReceipt")
VALID = [(n, to_json(REG, n, GEN.sample(n, REG.latest(n).parsed))) for n in NAMES for _ in range(3)]
FUZZ = settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(name: str, doc: Any) -> None:
    try:
        record = from_json(REG, name, doc)
    except EncodeError as exc:
        assert exc.problems, "a refusal names the fields at fault"
        return
    assert decode(REG, encode(REG, name, record), name) == record


@FUZZ
@given(st.sampled_from(VALID).flatmap(lambda v: st.tuples(st.just(v[0]), mutations(v[1]))))
def test_mutated_documents(case: tuple[str, Any]) -> None:
    check(*case)


@FUZZ
@given(st.sampled_from(NAMES), JSON_VALUES)
def test_any_json_value(name: str, doc: Any) -> None:
    check(name, doc)
