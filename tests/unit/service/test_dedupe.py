"""The accepted notice ids: bounded by age, never forgotten while a copy could still be accepted,
undone per batch, and read back from their changelog records (chunks, tombstones, the records of
one id each that came before chunks)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from puente.codec.wire import decode
from puente.evidence.records import AuditDecision
from puente.service.dedupe import (
    CHUNK_IDS,
    CHUNK_PREFIX,
    LEGACY_PREFIX,
    SeenIds,
    StateError,
    decode_chunk,
    encode_chunk,
)
from puente.service.validate import DUPLICATE_NOTICE, TOO_OLD, Limits
from puente.synth.generator import Generator
from puente.synth.notice import CASE_NOTICE
from tests.unit.service.conftest import NOW, World

LIMITS = Limits()
HORIZON = LIMITS.dedupe_horizon_ms
SKEW_MS = int(LIMITS.max_clock_skew_s * 1000)
AGE_MS = LIMITS.max_age_days * 86_400_000
T0 = 1_800_000_000_000


def _id(n: int) -> str:
    return str(uuid.UUID(int=n + 1, version=4))


def _digest(n: int) -> bytes:
    return hashlib.sha256(str(n).encode()).digest()


def _replay(records: list[tuple[bytes, bytes | None]], at_ms: int = T0) -> SeenIds:
    again = SeenIds(HORIZON)
    assert all(again.restore(k, v, at_ms) for k, v in records)
    return again


def test_the_horizon_is_the_accepted_age_plus_the_clock_skew() -> None:
    assert HORIZON == AGE_MS + SKEW_MS


def test_ids_are_kept_until_their_newest_notice_is_past_the_horizon() -> None:
    seen = SeenIds(HORIZON)
    seen.begin()
    seen.add(_id(1), _digest(1), T0 - 10, offset=7)
    seen.add(_id(2), _digest(2), T0, offset=8)
    (chunk,) = seen.end(T0)
    assert chunk[0] == CHUNK_PREFIX + b"7"
    seen.begin()
    assert seen.end(T0 + HORIZON) == []  # the newest is exactly at the horizon: kept
    assert seen.get(_id(1)) == _digest(1)
    seen.begin()
    assert seen.end(T0 + HORIZON + 1) == [(CHUNK_PREFIX + b"7", None)]  # a tombstone
    assert len(seen) == 0 and seen.chunks == 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3 * AGE_MS),  # batch time after T0
            st.lists(st.integers(min_value=-AGE_MS, max_value=SKEW_MS), max_size=5),  # created
        ),
        min_size=1,
        max_size=30,
    )
)
def test_no_id_is_forgotten_while_a_copy_could_still_be_accepted(
    batches: list[tuple[int, list[int]]],
) -> None:
    """Whatever the order and age of what arrives: after each batch, every id whose notice is
    not yet too old (created at or after now - horizon) is remembered, and no chunk past the
    horizon is kept."""
    seen = SeenIds(HORIZON)
    created: dict[str, int] = {}
    accepted: dict[str, int] = {}
    offset, now = 0, T0
    for advance, ages in sorted(batches):
        now = max(now, T0 + advance)
        seen.begin()
        for age in ages:
            created[_id(offset)], accepted[_id(offset)] = now + age, now
            seen.add(_id(offset), _digest(offset), now + age, offset)
            offset += 1
        seen.end(now)
        for notice_id, at in created.items():
            if at >= now - HORIZON:
                assert notice_id in seen
        # Bounded: what is kept was accepted at most horizon + skew ago.
        assert all(accepted[i] + HORIZON + SKEW_MS >= now for i, _ in seen.items())


def test_rollback_undoes_adds_chunks_and_prunes() -> None:
    seen = SeenIds(HORIZON)
    seen.begin()
    seen.add(_id(1), _digest(1), T0, offset=1)
    seen.end(T0)
    before = dict(seen.items())
    seen.begin()
    seen.add(_id(2), _digest(2), T0 + HORIZON, offset=2)
    records = seen.end(T0 + HORIZON + 1)  # prunes the first chunk, makes a second
    assert [v is None for _, v in records] == [True, False]
    seen.rollback()
    assert dict(seen.items()) == before and seen.chunks == 1
    seen.begin()  # the rolled-back chunk is not pruned later, the restored one is
    assert seen.end(T0 + HORIZON + 1) == [(CHUNK_PREFIX + b"1", None)]


def test_ids_of_a_batch_that_never_ended_are_forgotten() -> None:
    seen = SeenIds(HORIZON)
    seen.begin()
    seen.add(_id(1), _digest(1), T0, offset=1)
    seen.begin()  # the batch failed before end(): nothing was written for it
    assert _id(1) not in seen


def test_the_changelog_restores_what_was_remembered() -> None:
    seen = SeenIds(HORIZON)
    log: list[tuple[bytes, bytes | None]] = []
    for batch in range(3):
        seen.begin()
        for i in range(batch * 10, batch * 10 + 10):
            seen.add(_id(i), _digest(i), T0 + batch * AGE_MS, offset=i)
        log += seen.end(T0 + batch * AGE_MS)
    assert [v is None for _, v in log] == [False, False, True, False]  # batch 0 expired
    again = _replay(log)
    assert dict(again.items()) == dict(seen.items()) and len(again) == 20
    assert again.chunks == seen.chunks == 2


def test_a_large_batch_is_split_into_chunks_under_the_record_limit() -> None:
    seen = SeenIds(HORIZON)
    seen.begin()
    for i in range(2 * CHUNK_IDS + 1):
        seen.add(_id(i), _digest(i), T0, offset=100 + i)
    records = seen.end(T0)
    assert [k for k, _ in records] == [
        CHUNK_PREFIX + str(100 + n * CHUNK_IDS).encode() for n in range(3)
    ]
    assert max(len(v or b"") for _, v in records) < 1024 * 1024 // 4
    assert len(_replay(records)) == 2 * CHUNK_IDS + 1


def test_records_of_one_id_each_are_read_and_expire_conservatively() -> None:
    """Changelogs written before chunks: ``n/<id>`` → digest, no created_at."""
    legacy: list[tuple[bytes, bytes | None]] = [
        (LEGACY_PREFIX + _id(i).encode(), _digest(i)) for i in range(3)
    ]
    legacy.append((LEGACY_PREFIX + _id(2).encode(), None))  # tombstoned already
    seen = _replay(legacy, at_ms=T0)
    assert dict(seen.items()) == {_id(0): _digest(0), _id(1): _digest(1)}
    seen.begin()
    assert seen.end(T0 + 2 * HORIZON) == []  # written at T0: created before T0 + skew
    seen.begin()
    pruned = sorted(k for k, _ in seen.end(T0 + 2 * HORIZON + 1))
    assert pruned == sorted(k for k, _ in legacy[:2]) and len(seen) == 0
    seen.rollback()  # the batch was aborted: remembered again, pruned again next time
    assert dict(seen.items()) == {_id(0): _digest(0), _id(1): _digest(1)}
    seen.begin()
    assert sorted(k for k, _ in seen.end(T0 + 2 * HORIZON + 1)) == pruned


@pytest.mark.parametrize("ids", [[_id(1), _id(2)], ["not-a-uuid", "ü" * 40, ""]])
def test_chunk_encoding_round_trips(ids: list[str]) -> None:
    entries = [(i, _digest(n), T0 - n) for n, i in enumerate(ids)]
    assert decode_chunk(encode_chunk(entries)) == entries


@pytest.mark.parametrize("value", [b"", b"\x01" + b"x" * 75, b"\x02\x00\x05ab", b"\x09"])
def test_a_malformed_chunk_is_a_typed_error(value: bytes) -> None:
    with pytest.raises(StateError) as err:
        decode_chunk(value)
    assert err.value.reason == "STATE_MALFORMED"


def test_a_resent_notice_is_refused_before_and_after_its_id_is_pruned(
    world: World, gen: Generator
) -> None:
    """The processor: a copy is a DUPLICATE_NOTICE while the id is remembered, TOO_OLD once it
    is pruned (and the prune is written as a tombstone) — never accepted again."""
    notice = gen.case_notice(origin="MX")
    value = world.encode(CASE_NOTICE, notice)
    created = decode(world.registry, value)["created_at"]
    proc = world.processor("MX")
    first = proc.process([world.record(value, offset=0)], NOW)
    assert (
        first.outcomes[AuditDecision.DELIVERED.value] + first.outcomes[AuditDecision.WITHHELD.value]
        == 1
    )

    def resend(at: dt.datetime, offset: int) -> str:
        out = proc.process([world.record(value, offset=offset)], at)
        (_, rejection) = out.rejections[0]
        return str(decode(world.registry, rejection)["reason_code"])

    near = created + dt.timedelta(days=LIMITS.max_age_days - 1)
    assert resend(near, 1) == DUPLICATE_NOTICE
    past = created + dt.timedelta(milliseconds=HORIZON + 1)
    other = world.encode(CASE_NOTICE, gen.case_notice(origin="MX") | {"created_at": past})
    pruned = proc.process([world.record(other, offset=2)], past)
    assert (CHUNK_PREFIX + b"0", None) in pruned.state
    assert notice["notice_id"] not in proc.seen
    assert resend(past, 3) == TOO_OLD
