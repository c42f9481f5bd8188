"""``diff`` decides what provisioning changes (pure)."""

from __future__ import annotations

from puente.kafka.plan import build_plan
from puente.kafka.provision import Action, ClusterState, diff
from puente.topics import INGRESS, Naming

N = Naming("puente")
US_PRINCIPALS = (
    "puente-us",
    "puente-node-us",
    "puente-gateway-us",
    "puente-tracker-us",
    "puente-witness-us",
)


def _applied(members: list[str]) -> ClusterState:
    plan = build_plan(N, members, partitions=2, brokers=1)
    return ClusterState(
        scram_users={p.name for p in plan.principals},
        topics={t.name: t.partitions for t in plan.topics},
        topic_configs={t.name: dict(t.configs) for t in plan.topics},
        acls=set(plan.acls),
    )


def test_nothing_to_do_when_everything_exists() -> None:
    plan = build_plan(N, ["AR", "MX"], partitions=2, brokers=1)
    changes = diff(plan, _applied(["AR", "MX"]))
    assert {c.action for c in changes} == {Action.EXISTS}


def test_new_member_is_the_only_change() -> None:
    plan = build_plan(N, ["AR", "MX", "US"], partitions=2, brokers=1)
    todo = [c for c in diff(plan, _applied(["AR", "MX"])) if c.action is not Action.EXISTS]
    assert todo
    for c in todo:
        assert c.action is Action.CREATE
        assert c.target.endswith(".US") or c.target in US_PRINCIPALS


def test_config_drift_and_more_partitions_are_updates() -> None:
    state = _applied(["MX"])
    topic = N.topic(INGRESS, "MX")
    state.topic_configs[topic]["retention.ms"] = "1"
    state.topics[topic] = 1
    plan = build_plan(N, ["MX"], partitions=2, brokers=1)
    updates = [c for c in diff(plan, state) if c.action is Action.UPDATE]
    assert {(c.what, c.target) for c in updates} == {("config", topic), ("partitions", topic)}


def test_acls_of_removed_member_are_reported_not_deleted() -> None:
    plan = build_plan(N, ["MX"], partitions=2, brokers=1)
    state = _applied(["MX", "US"])
    # Only principals in the plan are ours to report; US is no longer planned.
    assert not [c for c in diff(plan, state) if c.action is Action.EXTRA]
    state.acls |= {
        a.__class__(N.member_principal("MX"), a.resource, a.name, a.pattern, a.operation)
        for a in build_plan(N, ["US"], partitions=2, brokers=1).acls
        if a.principal == "puente-us"
    }
    extra = [c for c in diff(plan, state) if c.action is Action.EXTRA]
    assert extra and all(c.target == "puente-mx" for c in extra)


def test_lost_password_means_a_new_one() -> None:
    plan = build_plan(N, ["MX"], partitions=2, brokers=1)
    changes = diff(plan, _applied(["MX"]), missing_secrets=["puente-mx"])
    assert [c.action for c in changes if c.target == "puente-mx" and c.what == "principal"] == [
        Action.UPDATE
    ]
