"""Aggregates and warnings are signed like Puente's other evidence, and a forged one is refused
with a reason code."""

from __future__ import annotations

import dataclasses

import pytest

from puente.codec.registry import Registry
from puente.evidence.errors import EvidenceError
from puente.warnings.aggregate import AggregateRefused
from puente.warnings.signing import (
    AGGREGATE_CONTEXT,
    WARNING_CONTEXT,
    Signature,
    SignedAggregate,
    open_aggregate,
    sign,
    verify,
)
from puente.warnings.tables import CONSULAR, Dimension, Table
from tests.unit.warnings.conftest import DAY, Keys

DET = Table(CONSULAR, DAY, events=("DETENTION",), by=(Dimension.NATIONALITY,))
KEYS = Keys(["MX", "US"])


def _refusal(registry: Registry, body: bytes, headers: object) -> str:
    with pytest.raises(EvidenceError) as err:
        open_aggregate(KEYS.trust, registry, body, headers, min_k=5)  # type: ignore[arg-type]
    return err.value.reason


def test_an_aggregate_verifies_and_forgeries_are_refused(registry: Registry) -> None:
    sa = KEYS.signed("MX", DET, 20 * DAY, {("VE",): 9})
    headers = sa.signature.headers()
    assert open_aggregate(KEYS.trust, registry, sa.body, headers, min_k=5) == sa
    # Altered counts under the origin's signature: it no longer matches.
    forged = dataclasses.replace(sa.aggregate, cells=((("VE",), 90),)).encode(registry)
    assert _refusal(registry, forged, headers) == "SIGNATURE_INVALID"
    # Signed by another state's key: an origin signs only its own counts.
    us = sign(KEYS.members["US"], AGGREGATE_CONTEXT, sa.body, signed_at=sa.signature.signed_at)
    assert _refusal(registry, sa.body, us.headers()) == "KEY_WRONG_HOLDER"
    # A key not meant for early warning.
    receipt = sign(KEYS.receipt, AGGREGATE_CONTEXT, sa.body, signed_at=sa.signature.signed_at)
    assert _refusal(registry, sa.body, receipt.headers()) == "KEY_WRONG_USAGE"
    # A warning's signature is not an aggregate's (contexts differ).
    other = sign(KEYS.members["MX"], WARNING_CONTEXT, sa.body, signed_at=sa.signature.signed_at)
    assert _refusal(registry, sa.body, other.headers()) == "SIGNATURE_INVALID"
    # The signing time is signed too.
    moved = Signature(sa.signature.key_id, sa.signature.signed_at + 1, sa.signature.signature)
    assert _refusal(registry, sa.body, moved.headers()) == "SIGNATURE_INVALID"
    # Signed before the window ended: it cannot hold the whole window.
    early = sign(
        KEYS.members["MX"], AGGREGATE_CONTEXT, sa.body, signed_at=sa.aggregate.window_end - 1
    )
    assert _refusal(registry, sa.body, early.headers()) == "AGGREGATE_SIGNED_EARLY"
    assert _refusal(registry, sa.body, headers[:2]) == "SIGNATURE_MISSING"
    assert _refusal(registry, b"\xc3\x01garbage", headers) == "AGGREGATE_MALFORMED"


def test_only_the_origins_node_signs_its_aggregates(registry: Registry) -> None:
    """Every node may write the aggregates topic: the signature's holder is what ties an
    aggregate to its origin. The origin's own member key is not its node."""
    sa = KEYS.signed("MX", DET, 20 * DAY, {("VE",): 9})
    entry = verify(KEYS.trust, AGGREGATE_CONTEXT, sa.body, sa.signature, holders=None)
    assert entry.holder == "node:MX"
    by_member = sign(KEYS.member_own, AGGREGATE_CONTEXT, sa.body, signed_at=sa.signature.signed_at)
    assert _refusal(registry, sa.body, by_member.headers()) == "KEY_WRONG_HOLDER"
    # An aggregate claiming an origin that is not a state code is refused, not fatal.
    odd = dataclasses.replace(sa.aggregate, origin="mx").encode(registry)
    by_mx = sign(KEYS.members["MX"], AGGREGATE_CONTEXT, odd, signed_at=sa.signature.signed_at)
    with pytest.raises(EvidenceError):
        open_aggregate(KEYS.trust, registry, odd, by_mx.headers(), min_k=5)


def test_a_small_cell_is_refused_even_when_signed(registry: Registry) -> None:
    sa = KEYS.signed("MX", DET, 20 * DAY, {("VE",): 3}, k=3)
    assert _refusal_any(registry, sa) == "AGGREGATE_K_TOO_SMALL"


def _refusal_any(registry: Registry, sa: SignedAggregate) -> str:
    with pytest.raises(AggregateRefused) as err:
        open_aggregate(KEYS.trust, registry, sa.body, sa.signature.headers(), min_k=5)
    return err.value.reason
