"""A long-running verifier follows the trust list: newer lists in force, older ones refused,
expiry checked at every verification, a revoked key refused once the new list arrives."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from puente.evidence.delivery import DeliverySigner
from puente.evidence.errors import EvidenceError, TrustListError
from puente.evidence.keys import SigningKey
from puente.evidence.trust import TrustList
from puente.evidence.trustsource import TrustTracker, file_fetch, follow, read_anchors

from .conftest import DAY, T0, World


class Clock:
    def __init__(self, t: int) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


def signed(
    world: World, serial: int, *, expires: int = T0 + 30 * DAY, tl: TrustList | None = None
) -> bytes:
    base = tl or world.trust_list
    return replace(base, serial=serial, issued_at=T0 - DAY, expires_at=expires).sign(world.root)


def reason(exc: pytest.ExceptionInfo[EvidenceError]) -> str:
    return exc.value.reason


def test_newer_lists_replace_older_ones_never_the_reverse(world: World) -> None:
    tracker = TrustTracker([world.root.public], world.registry, clock=Clock(T0))
    assert tracker.offer(signed(world, 5))
    assert not tracker.offer(signed(world, 5))  # the same bytes again: no change
    assert tracker.offer(signed(world, 6))
    with pytest.raises(TrustListError) as exc:
        tracker.offer(signed(world, 5))
    assert reason(exc) == "TRUST_LIST_ROLLBACK"
    assert tracker.current is not None and tracker.current.serial == 6


def test_a_second_list_under_the_same_serial_is_refused(world: World) -> None:
    tracker = TrustTracker([world.root.public], world.registry, clock=Clock(T0))
    tracker.offer(signed(world, 7))
    other = replace(world.trust_list, entries=world.trust_list.entries[:1])
    with pytest.raises(TrustListError) as exc:
        tracker.offer(signed(world, 7, tl=other))
    assert reason(exc) == "TRUST_LIST_CONFLICT"


def test_untrusted_and_expired_lists_are_refused(world: World) -> None:
    tracker = TrustTracker([world.root.public], world.registry, clock=Clock(T0))
    rogue = SigningKey.generate("puente.operator/root")
    with pytest.raises(TrustListError) as exc:
        tracker.offer(replace(world.trust_list, serial=9).sign(rogue))
    assert reason(exc) == "TRUST_LIST_UNTRUSTED"
    with pytest.raises(TrustListError) as exc:
        tracker.offer(signed(world, 9, expires=T0 - 1))
    assert reason(exc) == "TRUST_LIST_EXPIRED"
    with pytest.raises(TrustListError) as exc:
        tracker.verifier()
    assert reason(exc) == "TRUST_LIST_MISSING"


def test_expiry_is_checked_at_every_verification(world: World) -> None:
    clock = Clock(T0)
    tracker = TrustTracker([world.root.public], world.registry, clock=clock)
    tracker.offer(signed(world, 3, expires=T0 + DAY))
    tracker.verifier()
    clock.t = T0 + DAY  # the list expires while the process runs
    with pytest.raises(TrustListError) as exc:
        tracker.verifier()
    assert reason(exc) == "TRUST_LIST_EXPIRED"


def test_a_revoked_key_stops_verifying_once_the_new_list_is_in_force(world: World) -> None:
    clock = Clock(T0 + 2 * DAY)
    tracker = TrustTracker([world.root.public], world.registry, clock=clock)
    tracker.offer(signed(world, 3))
    statement = replace(world.statement(world.payload(0)), signed_at=T0 + 2 * DAY)
    delivery = DeliverySigner(world.service, world.registry).sign(statement, world.payload(0))
    tracker.verifier().verify_delivery(delivery, recipient="GT")
    revoked = world.trust_list.revoke(world.service.key_id, since=T0 + DAY)
    tracker.offer(signed(world, 4, tl=revoked))
    with pytest.raises(EvidenceError) as exc:
        tracker.verifier().verify_delivery(delivery, recipient="GT")
    assert reason(exc) == "KEY_REVOKED"


def test_the_highest_serial_survives_a_restart(world: World, tmp_path: Path) -> None:
    serial_file = tmp_path / "GT.trust-serial"
    first = TrustTracker(
        [world.root.public], world.registry, serial_file=serial_file, clock=Clock(T0)
    )
    first.offer(signed(world, 12))
    again = TrustTracker(
        [world.root.public], world.registry, serial_file=serial_file, clock=Clock(T0)
    )
    with pytest.raises(TrustListError) as exc:
        again.offer(signed(world, 11))
    assert reason(exc) == "TRUST_LIST_ROLLBACK"


def test_refresh_takes_the_first_source_that_answers(world: World, tmp_path: Path) -> None:
    tracker = TrustTracker([world.root.public], world.registry, clock=Clock(T0))
    path = tmp_path / "trust-list.note"
    path.write_bytes(signed(world, 2))

    async def broken() -> bytes | None:
        raise OSError("the topic is down")

    async def empty() -> bytes | None:
        return None

    async def scenario() -> None:
        assert await tracker.refresh([broken, empty, file_fetch(path)])
        path.write_bytes(signed(world, 1))  # a rollback in the file: refused, logged, kept
        assert not await tracker.refresh([file_fetch(path)])
        assert tracker.current is not None and tracker.current.serial == 2
        # follow() picks up a newer list within one interval, and stops when asked.
        stop = asyncio.Event()
        task = asyncio.create_task(follow(tracker, [file_fetch(path)], interval_s=0.01, stop=stop))
        path.write_bytes(signed(world, 3))
        while tracker.current.serial != 3:
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(scenario())


def test_anchor_files_and_missing_anchors(world: World, tmp_path: Path) -> None:
    path = tmp_path / "root.vkey"
    path.write_text(f"# the operator's root\n\n{world.root.public.vkey}\n")
    assert [k.key_id for k in read_anchors(path)] == [world.root.public.key_id]
    with pytest.raises(TrustListError) as exc:
        TrustTracker([], world.registry)
    assert reason(exc) == "TRUST_ANCHOR_MISSING"
