"""Cursors: round trip, opacity, and refusal of anything not issued by the endpoint."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from puente_gateway.cursor import MAX_CURSOR, decode_cursor, encode_cursor
from puente_gateway.errors import BadRequest


@given(st.dictionaries(st.integers(0, 9999), st.integers(0, 2**63 - 1), max_size=50))
def test_round_trip(offsets: dict[int, int]) -> None:
    for kind in ("d", "r"):
        assert decode_cursor(kind, encode_cursor(kind, offsets)) == offsets


def test_none_means_from_the_beginning() -> None:
    assert decode_cursor("d", None) == {}


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "d1",
        "x1.MDow",
        "d2.MDow",
        "d1.!!",
        "d1.MDow=",
        "d1." + base64.urlsafe_b64encode(b"0:1,0:2").decode(),  # a partition twice
        "d1." + base64.urlsafe_b64encode(b"0:-1").decode(),
        "d1." + base64.urlsafe_b64encode(b"a:1").decode(),
        "d1." + base64.urlsafe_b64encode(b"0:" + str(2**63).encode()).decode(),
        "d1." + base64.urlsafe_b64encode("0:١".encode()).decode(),  # a non-ASCII digit
        "d1." + "A" * MAX_CURSOR,
        encode_cursor("r", {0: 1}),  # a rejections cursor on the deliveries feed
    ],
)
def test_refused_cursors(cursor: str) -> None:
    with pytest.raises(BadRequest) as info:
        decode_cursor("d", cursor)
    assert info.value.reason == "CURSOR_INVALID"
    assert info.value.status == 400
