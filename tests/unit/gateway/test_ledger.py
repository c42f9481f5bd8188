"""The idempotency ledger and the once-only producer over it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from puente_gateway.errors import Conflict
from puente_gateway.ledger import Entry, Ledger
from puente_gateway.metrics import GatewayMetrics
from puente_gateway.once import Once

T0 = 1_800_000_000_000


def test_entries_survive_reopening_and_expire_after_the_ttl(tmp_path: Path) -> None:
    path = tmp_path / "notices.sqlite3"
    ledger = Ledger(path, ttl_s=60)
    ledger.put("notice:a", Entry("MX", b"d" * 32, b'{"x":1}'), now_ms=T0)
    ledger.close()
    ledger = Ledger(path, ttl_s=60)
    assert ledger.get("notice:a", now_ms=T0 + 59_999) == Entry("MX", b"d" * 32, b'{"x":1}')
    assert ledger.get("notice:a", now_ms=T0 + 60_000) is None
    assert ledger.purge(now_ms=T0 + 60_000) == 1
    assert ledger.purge(now_ms=T0 + 60_000) == 0
    ledger.close()


async def test_once_produces_once_replays_and_refuses_conflicts(tmp_path: Path) -> None:
    once = Once(Ledger(tmp_path / "l.sqlite3", ttl_s=3600), GatewayMetrics())
    produced: list[str] = []

    async def produce() -> bytes:
        await asyncio.sleep(0.05)
        produced.append("x")
        return b"answer"

    def conflict() -> Conflict:
        return Conflict("used", reason="NOTICE_ID_CONFLICT")

    results = await asyncio.gather(
        *(
            once.produce("k", state="MX", digest=b"1", conflict=conflict, produce=produce)
            for _ in range(5)
        )
    )
    assert produced == ["x"]
    assert [r[0] for r in results] == [b"answer"] * 5
    assert sorted(r[1] for r in results) == [False, True, True, True, True]
    with pytest.raises(Conflict):
        await once.produce("k", state="MX", digest=b"2", conflict=conflict, produce=produce)
    with pytest.raises(Conflict):
        await once.produce("k", state="GT", digest=b"1", conflict=conflict, produce=produce)


async def test_a_failed_first_attempt_lets_the_next_one_produce(tmp_path: Path) -> None:
    once = Once(Ledger(tmp_path / "l.sqlite3", ttl_s=3600), GatewayMetrics())
    calls = 0

    async def flaky() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        if calls == 1:
            raise RuntimeError("Kafka down")
        return b"ok"

    def conflict() -> Conflict:
        return Conflict("used")

    first = asyncio.create_task(
        once.produce("k", state="MX", digest=b"1", conflict=conflict, produce=flaky)
    )
    await asyncio.sleep(0)
    second = once.produce("k", state="MX", digest=b"1", conflict=conflict, produce=flaky)
    with pytest.raises(RuntimeError):
        await first
    assert await second == (b"ok", False)
    assert calls == 2


async def test_entries_are_batched_but_visible_at_once_and_flushed_soon(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    ledger = Ledger(path, ttl_s=3600, flush_interval_s=0.05, flush_rows=1000)
    other = Ledger(path, ttl_s=3600)  # another connection: sees only what was written
    ledger.put("notice:a", Entry("MX", b"1", b"{}"), now_ms=T0)
    assert ledger.get("notice:a", now_ms=T0) == Entry("MX", b"1", b"{}")
    assert other.get("notice:a", now_ms=T0) is None
    await asyncio.sleep(0.2)
    assert other.get("notice:a", now_ms=T0) == Entry("MX", b"1", b"{}")
    ledger.close()
    other.close()


async def test_a_full_batch_is_written_immediately_and_close_writes_the_rest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.sqlite3"
    ledger = Ledger(path, ttl_s=3600, flush_interval_s=60, flush_rows=3)
    other = Ledger(path, ttl_s=3600)
    for i in range(4):
        ledger.put(f"notice:{i}", Entry("MX", b"1", b"{}"), now_ms=T0)
    assert [other.get(f"notice:{i}", now_ms=T0) is not None for i in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    ledger.close()
    assert other.get("notice:3", now_ms=T0) is not None
    other.close()
