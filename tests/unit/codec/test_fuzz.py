"""Random bytes and mutations of valid messages never raise anything but DecodeError, and
whatever decodes is a whole record: it re-encodes, and that canonical encoding reads back to the
same bytes (no half-read record slips through).

Avro lets a writer split an array into several blocks, give a block's byte size (negative
count) or pad a varint; a mutation can produce those, so the decoded record's canonical bytes
may differ from the input. The input's own bytes are what Puente hashes and signs.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from puente.codec.errors import DecodeError
from puente.codec.registry import Registry
from puente.codec.wire import decode, encode
from puente.synth import Generator

from .conftest import SCHEMAS

REG = Registry.load(SCHEMAS)
GEN = Generator(11)
VALID = [
    (name, encode(REG, name, GEN.sample(name, REG.latest(name).parsed)))
    for name in REG.names()
    for _ in range(3)
]
HEADERS = [sv.header for sv in REG]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(data: bytes) -> None:
    try:
        record = decode(REG, data)
    except DecodeError as exc:
        assert exc.reason in {
            "BAD_MAGIC",
            "UNKNOWN_SCHEMA",
            "TRUNCATED",
            "TRAILING_BYTES",
            "INVALID_DATA",
        }
        return
    sv = REG.by_fingerprint(data[2:10])
    assert sv is not None
    canonical = encode(REG, sv.full_name, record)
    assert encode(REG, sv.full_name, decode(REG, canonical)) == canonical


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.sampled_from(HEADERS), st.binary(max_size=400))
def test_random_bodies_behind_a_valid_header(header: bytes, body: bytes) -> None:
    check(header + body)


@FUZZ
@given(
    st.sampled_from(VALID),
    st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_messages(sample: tuple[str, bytes], flips: list[tuple[int, int]]) -> None:
    data = bytearray(sample[1])
    for at, value in flips:
        data[10 + at % (len(data) - 10)] = value
    check(bytes(data))


@FUZZ
@given(st.sampled_from(VALID), st.integers(min_value=0), st.binary(min_size=1, max_size=8))
def test_inserted_and_cut_bytes(sample: tuple[str, bytes], at: int, junk: bytes) -> None:
    data = sample[1]
    cut = 10 + at % (len(data) - 10)
    check(data[:cut] + junk + data[cut:])
    check(data[:cut])
