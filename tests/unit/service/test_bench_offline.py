"""The pipeline benchmark's offline phases run against the processor as it is now.

``tests/bench`` is not collected by pytest, and its CPU-per-stage phase wraps processor
internals by name: a rename must fail here, not in a benchmark run nobody watches (it did once).
No Kafka: the fan-out and the stage breakdown only run the pure processor.
"""

from __future__ import annotations

import datetime as dt

from puente.codec.registry import Registry
from puente.config import Settings
from puente.members import load_members
from puente.policy.store import PolicyStore
from tests.bench import pipeline


def test_fanout_and_stage_breakdown_run_on_the_current_processor() -> None:
    settings = Settings()
    registry = Registry.load(settings.schemas_dir)
    policies = PolicyStore(
        settings.policies_dir, settings.schemas_dir, secret=pipeline.PSEUDONYM_SECRET
    )
    policies.reload()
    created = pipeline.now_utc() - dt.timedelta(minutes=1)
    notices = pipeline.make_notices(registry, ["MX", "GT"], 12, seed=7, created=created)

    fan = pipeline.compute_fanout(
        registry, policies, notices, partitions=2, batch=4, checkpoint_every=1000
    )
    assert fan.notices == 12
    members = load_members(settings.policies_dir)
    assert fan.per_input("audit") == len(members.codes) - 1  # one decision per candidate recipient
    assert sum(fan.outcomes.values()) == 12

    work = pipeline._batches(notices, 2, 4, 12)
    stages = pipeline.stage_breakdown(registry, policies, work)
    for stage in ("decode + validate", "policy decide_all", "transform: payload encode"):
        assert stages.get(stage, 0) > 0, (stage, stages)
