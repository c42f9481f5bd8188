"""Admission to Kafka readers: reserves per state and for the gateway, caps per caller and per
state, shared readers for the rest."""

from __future__ import annotations

import pytest

from puente.errors import ConfigError
from puente_gateway.errors import RateLimited, Unavailable
from puente_gateway.pool import Admission, Limits, ReadKind

STATES = ("MX", "GT", "US", "CO")
PAGE, STREAM, INTERNAL = ReadKind.PAGE, ReadKind.STREAM, ReadKind.INTERNAL


def _admission(**overrides: int) -> Admission:
    limits = {
        "total": 10,
        "reserve_per_state": 1,
        "streams_per_caller": 2,
        "streams_per_state": 4,
        "pages_per_caller": 2,
        "pages_per_state": 3,
    } | overrides
    return Admission(Limits(**limits), STATES, retry_after_s=4)


def test_a_caller_and_a_state_hold_at_most_their_streams() -> None:
    adm = _admission()
    held = [adm.admit(STREAM, "mx-1", "MX") for _ in range(2)]
    with pytest.raises(RateLimited) as info:
        adm.admit(STREAM, "mx-1", "MX")
    assert info.value.reason == "TOO_MANY_STREAMS" and info.value.headers["Retry-After"] == "4"
    held += [adm.admit(STREAM, "mx-2", "MX") for _ in range(2)]
    with pytest.raises(RateLimited):
        adm.admit(STREAM, "mx-3", "MX")  # the state's four are taken
    adm.release(held.pop())
    held.append(adm.admit(STREAM, "mx-3", "MX"))
    assert all(not t.reserved for t in held)


def test_streams_never_take_the_reserves_so_every_state_can_read_a_page() -> None:
    adm = _admission(streams_per_state=10, streams_per_caller=10)
    assert adm.shared == 10 - 1 - 4
    streams = [adm.admit(STREAM, "mx-1", "MX") for _ in range(adm.shared)]
    with pytest.raises(Unavailable) as info:
        adm.admit(STREAM, "gt-1", "GT")
    assert info.value.reason == "BUSY" and info.value.status == 503
    for state in STATES:  # every state still reads, from its reserve
        ticket = adm.admit(PAGE, f"{state}-reader", state)
        assert ticket.reserved
        adm.release(ticket)
    internal = adm.admit(INTERNAL, "gateway", "")  # and so does the gateway
    assert internal.reserved
    adm.release(internal)
    for t in streams:
        adm.release(t)
    assert adm.in_use == 0


def test_pages_take_the_reserve_first_then_shared_readers_up_to_the_caps() -> None:
    adm = _admission()
    first = adm.admit(PAGE, "mx-1", "MX")
    second = adm.admit(PAGE, "mx-1", "MX")
    assert first.reserved and not second.reserved
    with pytest.raises(RateLimited) as info:
        adm.admit(PAGE, "mx-1", "MX")
    assert info.value.reason == "TOO_MANY_READS"
    third = adm.admit(PAGE, "mx-2", "MX")
    with pytest.raises(RateLimited):
        adm.admit(PAGE, "mx-3", "MX")  # the state's three
    for t in (first, second, third):
        adm.release(t)
    assert adm.in_use == 0 and adm.shared_in_use == 0


def test_a_second_internal_reader_uses_a_shared_one() -> None:
    adm = _admission()
    a, b = adm.admit(INTERNAL, "gateway", ""), adm.admit(INTERNAL, "gateway", "")
    assert a.reserved and not b.reserved and adm.shared_in_use == 1
    adm.release(b)
    adm.release(a)
    assert adm.in_use == 0


def test_a_pool_too_small_for_its_reserves_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        _admission(total=5)  # 1 + 4 reserved, nothing shared
