"""The pipeline benchmark's offline phases run against a node's processor as it is now.

``tests/bench`` is not collected by pytest, and its CPU-per-stage phase wraps processor
internals by name: a rename must fail here, not in a benchmark run nobody watches (it did once).
No Kafka: the fan-out and the stage breakdown only run the pure processor, in both of the
benchmark's modes (sealed: ingress opened, deliveries sealed; clear: neither).
"""

from __future__ import annotations

import datetime as dt

import pytest

from puente.codec.registry import Registry
from puente.codec.wire import decode
from puente.config import Settings
from puente.evidence.seal import is_sealed
from puente.members import load_members
from puente.policy.store import PolicyStore
from tests.bench import pipeline
from tests.unit.service.conftest import World


@pytest.mark.parametrize("mode", pipeline.MODES)
def test_fanout_and_stage_breakdown_run_on_the_current_processor(world: World, mode: str) -> None:
    sealed = pipeline.is_sealed(mode)
    settings = Settings()
    registry = Registry.load(settings.schemas_dir)
    policies = PolicyStore(
        settings.policies_dir, settings.schemas_dir, secret=pipeline.PSEUDONYM_SECRET
    )
    policies.reload()
    created = pipeline.now_utc() - dt.timedelta(minutes=1)
    notices = pipeline.make_notices(registry, ["MX", "GT"], 12, seed=7, created=created)

    fan = pipeline.compute_fanout(
        registry,
        policies,
        notices,
        world,
        sealed=sealed,
        partitions=2,
        batch=4,
        checkpoint_every=1000,
    )
    assert fan.notices == 12
    members = load_members(settings.policies_dir)
    assert fan.per_input("audit") == len(members.codes) - 1  # one decision per candidate recipient
    assert fan.outcomes == {"DELIVERED": 12}  # opened (when sealed), decided, delivered
    # What the pass-through replays is what a node sends: each delivery verifies for its
    # recipient, carries the notice sealed (or in clear), and opens to the notice.
    deliveries = [
        (key, rec)
        for key, recs in fan.per_notice.items()
        for rec in recs
        if rec.kind == "deliveries"
    ]
    assert deliveries
    for key, rec in deliveries:
        verified, notice = world.verify(rec.value, rec.topic.rsplit(".", 1)[1])
        assert is_sealed(verified.payload) == sealed == verified.statement.sealed
        assert decode(registry, notice)["notice_id"] == key.decode()

    work = pipeline.offline_work(notices, world, sealed=sealed, partitions=2, batch=4, limit=12)
    stages = pipeline.stage_breakdown(registry, policies, world, work, sealed=sealed)
    for stage in ("decode + validate", "policy decide_all", "transform: payload encode"):
        assert stages.get(stage, 0) > 0, (stage, stages)
    for stage in pipeline.SEAL_STAGES:
        assert (stages.get(stage, 0) > 0) == sealed, (stage, stages)
    assert stages["total"] >= sum(v for k, v in stages.items() if k != "total") * 0.9
