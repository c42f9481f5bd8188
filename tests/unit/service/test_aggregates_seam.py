"""The seam into today's service (service/aggregates.py): the processor counts what it accepts,
publishes closed windows with the batch, and forgets a batch whose transaction aborted."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from puente.evidence.keys import SigningKey
from puente.evidence.trust import KeyEntry, TrustList, Usage, service_holder
from puente.service.aggregates import STATE_KEY, Aggregation
from puente.synth.generator import CONSULAR_NOTIFICATION, Generator
from puente.warnings.loader import load_triggers
from puente.warnings.signing import open_aggregate
from tests.unit.service.conftest import NOW, NOW_MS, World
from tests.unit.warnings.conftest import ROOT

HOUR = 3_600_000
TRIGGERS = load_triggers(ROOT / "policies", ROOT / "schemas")
KEY = SigningKey.generate("puente.svc/policy")
TRUST = TrustList(
    1, 0, 1 << 50, (KeyEntry(KEY.public, service_holder(), frozenset({Usage.EARLY_WARNING}), 0),)
)


def _detentions(world: World, gen: Generator, n: int, at: dt.datetime) -> list[bytes]:
    out = []
    for _ in range(n):
        record = gen.consular_notification("MX", "DETENTION", nationalities=["VE"])
        record["event_time"] = at
        record["created_at"] = at
        record["person"]["informed_of_rights_at"] = at
        out.append(world.encode(CONSULAR_NOTIFICATION, record))
    return out


def test_accepted_notices_are_counted_and_windows_published_with_the_batch(
    world: World, gen: Generator
) -> None:
    aggregation = Aggregation(TRIGGERS, KEY, world.registry)
    proc = world.processor("MX", aggregates=aggregation.feed_for("MX", 0, 1))
    day = NOW - dt.timedelta(hours=1)
    values = _detentions(world, gen, 7, day)
    records = [world.record(v, offset=i) for i, v in enumerate(values)]
    records.append(world.record(values[0], offset=7))  # a re-sent notice: refused, not counted
    out = proc.process(records, NOW)
    assert out.outcomes["REJECTED"] == 1
    assert out.aggregates == []  # the day is not over
    assert [k for k, _ in out.state if k == STATE_KEY] == [STATE_KEY]
    later = NOW + dt.timedelta(days=1, hours=7)
    assert proc.windows_due(int(later.timestamp() * 1000))
    closed = proc.process([], later)
    published = [
        open_aggregate(TRUST, world.registry, value, headers, min_k=TRIGGERS.k)
        for _, value, headers in closed.aggregates
    ]
    det = [sa.aggregate for sa in published if sa.aggregate.table.events == ("DETENTION",)]
    hour_before = NOW_MS - HOUR
    assert [a.cells for a in det if a.window_start <= hour_before < a.window_end] == [
        ((("VE",), 7),)
    ]
    assert all(a.origin == "MX" and (a.shard, a.shards) == (0, 1) for a in det)


def test_an_aborted_batch_is_not_counted(world: World, gen: Generator) -> None:
    aggregation = Aggregation(TRIGGERS, KEY, world.registry)
    proc = world.processor("MX", aggregates=aggregation.feed_for("MX", 0, 1))
    at = NOW - dt.timedelta(hours=1)
    proc.process(
        [world.record(v, offset=i) for i, v in enumerate(_detentions(world, gen, 5, at))], NOW
    )
    proc.process(
        [world.record(v, offset=10 + i) for i, v in enumerate(_detentions(world, gen, 9, at))], NOW
    )
    proc.rollback()  # the second batch's transaction aborted
    state = proc.aggregates.aggregator.state() if proc.aggregates else b""
    # Restored from that state (a take-over), the partition publishes 5, not 14.
    assert aggregation.restored("MX", 0, STATE_KEY, state)
    again = world.processor("MX", aggregates=aggregation.feed_for("MX", 0, 1))
    closed = again.process([], NOW + dt.timedelta(days=2))
    cells = [
        a.cells
        for a in (
            open_aggregate(TRUST, world.registry, v, h, min_k=5).aggregate
            for _, v, h in closed.aggregates
        )
        if a.table.events == ("DETENTION",) and a.window_start <= NOW_MS - HOUR < a.window_end
    ]
    assert cells == [((("VE",), 5),)]


def test_early_warning_never_keeps_the_service_from_starting(tmp_path: Path) -> None:
    """Broken triggers, or no aggregate key: aggregation is off (logged), the service runs."""
    from puente.codec.registry import Registry
    from puente.config import Settings

    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    registry = Registry.load(ROOT / "schemas")
    no_keys = Settings(policies_dir=policies, state_dir=tmp_path / "state")
    assert Aggregation.from_settings(no_keys, registry) is None  # no key in the store
    (policies / "triggers.yaml").write_text("version: 1\nillustrative: true\ntriggers: [1]\n")
    assert Aggregation.from_settings(no_keys, registry) is None  # triggers do not load
