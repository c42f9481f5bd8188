"""The provisioning plan is least privilege (pure: no broker)."""

from __future__ import annotations

from puente.kafka.plan import Acl, Operation, Pattern, Resource, build_plan, member_acls
from puente.topics import (
    AUDIT,
    CHECKPOINTS,
    DELIVER,
    GATEWAY_ANSWERS,
    GATEWAY_TOKENS,
    INGRESS,
    PARTIALS,
    TRUST,
    Naming,
)

N = Naming("puente")
MEMBERS = ["AR", "MX", "US"]
STEMS = (
    "ingress",
    "deliver",
    "rejected",
    "receipts",
    "audit",
    "state",
    "tracker",
    "due",
    "overdue",
    "gateway-tokens",
    "gateway-answers",
    "partials",
    "witness",
)


def _grants(acls: list[Acl] | tuple[Acl, ...], principal: str) -> set[tuple[str, str, str]]:
    return {
        (
            a.operation.value,
            a.resource.value,
            a.name + ("*" if a.pattern is Pattern.PREFIXED else ""),
        )
        for a in acls
        if a.principal == principal
    }


# What a member state and its gateway both do with MX's topics: publish, acknowledge, read.
MX_EDGE = {
    ("WRITE", "TOPIC", "puente.ingress.MX"),
    ("DESCRIBE", "TOPIC", "puente.ingress.MX"),
    ("WRITE", "TOPIC", "puente.receipts.MX"),
    ("DESCRIBE", "TOPIC", "puente.receipts.MX"),
    ("READ", "TOPIC", "puente.deliver.MX"),
    ("DESCRIBE", "TOPIC", "puente.deliver.MX"),
    ("READ", "TOPIC", "puente.rejected.MX"),
    ("DESCRIBE", "TOPIC", "puente.rejected.MX"),
}


def test_member_acls_are_exactly_its_own_topics_and_group() -> None:
    assert _grants(member_acls(N, "MX"), "puente-mx") == MX_EDGE | {
        ("READ", "TOPIC", "puente.tracker.MX"),  # the deliveries MX sent, as its tracker sees
        ("DESCRIBE", "TOPIC", "puente.tracker.MX"),
        ("READ", "TOPIC", "puente.due.MX"),  # the ones MX received
        ("DESCRIBE", "TOPIC", "puente.due.MX"),
        ("READ", "TOPIC", "puente.overdue.MX"),  # escalations and reminders for MX
        ("DESCRIBE", "TOPIC", "puente.overdue.MX"),
        ("READ", "TOPIC", "puente.checkpoints"),
        ("DESCRIBE", "TOPIC", "puente.checkpoints"),
        ("READ", "TOPIC", "puente.cosignatures"),  # finality of what it receives
        ("DESCRIBE", "TOPIC", "puente.cosignatures"),
        ("READ", "TOPIC", "puente.equivocations"),  # forks the witnesses proved
        ("DESCRIBE", "TOPIC", "puente.equivocations"),
        ("READ", "TOPIC", "puente.trust"),
        ("DESCRIBE", "TOPIC", "puente.trust"),
        ("READ", "TOPIC", "puente.aggregates"),
        ("DESCRIBE", "TOPIC", "puente.aggregates"),
        ("READ", "TOPIC", "puente.warnings"),
        ("DESCRIBE", "TOPIC", "puente.warnings"),
        ("READ", "GROUP", "puente.MX.*"),
    }


def test_no_member_grant_touches_another_member_or_uses_a_prefix_on_topics() -> None:
    plan = build_plan(N, MEMBERS, partitions=4, brokers=1)
    for m in MEMBERS:
        for a in plan.acls:
            if a.principal != N.member_principal(m) or a.resource is not Resource.TOPIC:
                continue
            assert a.pattern is Pattern.LITERAL
            others = [o for o in MEMBERS if o != m]
            assert not any(a.name.endswith("." + o) for o in others)
            assert not a.name.startswith(N.topic_stem_prefix(INGRESS)) or a.operation in (
                Operation.WRITE,
                Operation.DESCRIBE,
            )


def test_services_hold_least_privilege() -> None:
    plan = build_plan(N, MEMBERS, partitions=4, brokers=1)
    auditor = _grants(plan.acls, "puente-svc-auditor")
    assert not any(op == "WRITE" for op, _, _ in auditor)
    assert ("READ", "TOPIC", "puente.audit.*") in auditor
    assert not any("deliver" in name or "ingress" in name for _, _, name in auditor)
    assert not _grants(plan.acls, "puente-svc-gateway")  # a gateway per state
    assert not _grants(plan.acls, "puente-svc-policy")  # no hub: a node per state
    mx = _grants(plan.acls, "puente-node-mx")
    assert ("READ", "TOPIC", "puente.ingress.MX") in mx
    assert not any("ingress" in name for op, _, name in mx if name != "puente.ingress.MX")
    assert not any(op == "WRITE" and "ingress" in name for op, _, name in mx)
    assert ("WRITE", "TOPIC", "puente.deliver.*") in mx
    assert ("WRITE", "TOPIC", "puente.audit.MX") in mx and (
        "WRITE",
        "TOPIC",
        "puente.audit.*",
    ) not in mx
    assert ("WRITE", "TOPIC", "puente.trust") not in mx
    assert ("WRITE", "TRANSACTIONAL_ID", "puente.node.MX.*") in mx
    assert ("READ", "GROUP", "puente.node.MX*") in mx
    assert not _grants(plan.acls, "puente-svc-receipts")  # a tracker per state instead
    operator = _grants(plan.acls, "puente-svc-operator")
    assert ("WRITE", "TOPIC", "puente.trust") in operator
    assert len([g for g in operator if g[0] == "WRITE"]) == 1


def test_a_state_s_tracker_reads_its_own_audit_log_and_writes_as_that_state_only() -> None:
    plan = build_plan(N, MEMBERS, partitions=4, brokers=1)
    assert _grants(plan.acls, "puente-tracker-mx") == {
        ("READ", "TOPIC", "puente.audit.MX"),  # MX's deliveries and their deadlines
        ("DESCRIBE", "TOPIC", "puente.audit.MX"),
        ("READ", "TOPIC", "puente.receipts.*"),  # receipts name no origin to pick a topic by
        ("DESCRIBE", "TOPIC", "puente.receipts.*"),
        ("READ", "TOPIC", "puente.tracker.MX"),  # its own state, read back on restart
        ("WRITE", "TOPIC", "puente.tracker.MX"),
        ("DESCRIBE", "TOPIC", "puente.tracker.MX"),
        ("WRITE", "TOPIC", "puente.due.*"),  # each recipient's view of its deliveries
        ("DESCRIBE", "TOPIC", "puente.due.*"),
        ("WRITE", "TOPIC", "puente.overdue.*"),  # escalations to MX, reminders to recipients
        ("DESCRIBE", "TOPIC", "puente.overdue.*"),
        ("READ", "TOPIC", "puente.trust"),
        ("DESCRIBE", "TOPIC", "puente.trust"),
        ("READ", "GROUP", "puente.tracker.MX"),
        ("WRITE", "TRANSACTIONAL_ID", "puente.tracker.MX"),
        ("DESCRIBE", "TRANSACTIONAL_ID", "puente.tracker.MX"),
    }
    # Nobody else writes a state's tracker topic (its state is read back from it).
    writers = {
        a.principal
        for a in plan.acls
        if a.operation is Operation.WRITE and a.name in ("puente.tracker.MX", "puente.tracker.")
    }
    assert writers == {"puente-tracker-mx"}


def test_receipts_are_stamped_by_the_broker() -> None:
    plan = build_plan(N, MEMBERS, partitions=4, brokers=1)
    names = {t.name: t for t in plan.topics}
    assert names["puente.receipts.MX"].configs["message.timestamp.type"] == "LogAppendTime"
    assert names["puente.tracker.MX"].configs["cleanup.policy"] == "compact,delete"


def test_early_warning_grants() -> None:
    """Aggregates are written by every state's node (one topic, one partition: one order for
    every evaluator; an aggregate's origin is its signature's, docs/early-warning.md §4) and
    read by the evaluator and every member; warnings are written by the evaluator and read by
    every member and the gateway. A node reads neither."""
    plan = build_plan(N, MEMBERS, partitions=4, brokers=1)
    writers = {
        (a.principal, a.name)
        for a in plan.acls
        if a.operation is Operation.WRITE and a.name in ("puente.aggregates", "puente.warnings")
    }
    assert writers == {(N.node_principal(m), "puente.aggregates") for m in MEMBERS} | {
        ("puente-svc-warnings", "puente.warnings")
    }
    warnings = _grants(plan.acls, "puente-svc-warnings")
    assert {(op, name) for op, rt, name in warnings if rt == "TOPIC" and op != "DESCRIBE"} == {
        ("READ", "puente.aggregates"),
        ("READ", "puente.warnings"),
        ("WRITE", "puente.warnings"),
        ("READ", "puente.trust"),
    }
    readers = {
        a.principal
        for a in plan.acls
        if a.operation is Operation.READ and a.name == "puente.warnings"
    }
    assert readers == {N.member_principal(m) for m in MEMBERS} | {
        N.gateway_principal(m) for m in MEMBERS
    } | {"puente-svc-warnings"}
    for m in MEMBERS:
        assert ("READ", "TOPIC", "puente.aggregates") in _grants(plan.acls, N.member_principal(m))
        node = _grants(plan.acls, N.node_principal(m))
        assert ("READ", "TOPIC", "puente.aggregates") not in node
        assert ("READ", "TOPIC", "puente.warnings") not in node
    names = {t.name: t for t in plan.topics}
    assert names["puente.aggregates"].partitions == names["puente.warnings"].partitions == 1
    assert names["puente.aggregates"].configs["retention.ms"] == "-1"


def test_a_nodes_partials_are_its_own_one_partition_topic() -> None:
    """Its shards' sealed counts, summed by its combiner in one order: only its node reads or
    writes them (no member, gateway, tracker or service, no other node)."""
    plan = build_plan(N, MEMBERS, partitions=4, brokers=1)
    names = {t.name: t for t in plan.topics}
    topic = N.topic(PARTIALS, "MX")
    assert names[topic].partitions == 1 and names[N.topic(INGRESS, "MX")].partitions == 4
    covering = {
        a.principal
        for a in plan.acls
        if a.resource is Resource.TOPIC
        and (a.name == topic or (a.pattern is Pattern.PREFIXED and topic.startswith(a.name)))
    }
    assert covering == {N.node_principal("MX")}
    assert {("READ", "TOPIC", topic), ("WRITE", "TOPIC", topic)} <= _grants(
        plan.acls, N.node_principal("MX")
    )


def test_topics_per_member_and_global_with_retention() -> None:
    plan = build_plan(N, MEMBERS, partitions=4, brokers=1)
    names = {t.name: t for t in plan.topics}
    for m in MEMBERS:
        for stem in STEMS:
            assert f"puente.{stem}.{m}" in names
    assert names[N.topic(AUDIT, "MX")].configs["retention.ms"] == "-1"
    assert names[N.topic(CHECKPOINTS)].configs["retention.ms"] == "-1"
    assert names[N.topic(TRUST)].configs["cleanup.policy"] == "compact"
    assert names[N.topic(DELIVER, "MX")].partitions == 4
    assert all(t.replication == 1 for t in plan.topics)
    assert "min.insync.replicas" not in names[N.topic(INGRESS, "MX")].configs


def test_a_states_gateway_holds_exactly_its_own_states_edge() -> None:
    plan = build_plan(N, MEMBERS, partitions=4, brokers=1)
    assert {p.name: (p.role, p.member) for p in plan.principals if p.role == "gateway"} == {
        f"puente-gateway-{m.lower()}": ("gateway", m) for m in MEMBERS
    }
    # No consumer group (it reads with assign()), no transactional id, no other state's topic.
    assert _grants(plan.acls, "puente-gateway-mx") == MX_EDGE | {
        ("READ", "TOPIC", "puente.tracker.MX"),  # GET /v1/receipts/status: what MX sent
        ("DESCRIBE", "TOPIC", "puente.tracker.MX"),
        ("READ", "TOPIC", "puente.due.MX"),  # and what MX received
        ("DESCRIBE", "TOPIC", "puente.due.MX"),
        ("READ", "TOPIC", "puente.gateway-tokens.MX"),
        ("WRITE", "TOPIC", "puente.gateway-tokens.MX"),
        ("DESCRIBE", "TOPIC", "puente.gateway-tokens.MX"),
        ("READ", "TOPIC", "puente.gateway-answers.MX"),
        ("WRITE", "TOPIC", "puente.gateway-answers.MX"),
        ("DESCRIBE", "TOPIC", "puente.gateway-answers.MX"),
        ("READ", "TOPIC", "puente.trust"),
        ("DESCRIBE", "TOPIC", "puente.trust"),
        ("READ", "TOPIC", "puente.warnings"),  # GET /v1/warnings: every member reads them
        ("DESCRIBE", "TOPIC", "puente.warnings"),
        ("READ", "TOPIC", "puente.cosignatures"),  # each delivery's finality
        ("DESCRIBE", "TOPIC", "puente.cosignatures"),
    }


def test_only_a_states_gateway_reaches_its_shared_state() -> None:
    plan = build_plan(N, MEMBERS, partitions=4, brokers=1)
    names = {t.name: t for t in plan.topics}
    for m in MEMBERS:
        assert names[N.topic(GATEWAY_TOKENS, m)].configs["cleanup.policy"] == "compact"
        assert names[N.topic(GATEWAY_TOKENS, m)].configs["retention.ms"] == "-1"
        assert names[N.topic(GATEWAY_ANSWERS, m)].configs["retention.ms"] == str(7 * 86_400_000)
        for kind in (GATEWAY_TOKENS, GATEWAY_ANSWERS):
            topic = N.topic(kind, m)
            covering = [
                a
                for a in plan.acls
                if a.resource is Resource.TOPIC
                and (
                    a.name == topic or (a.pattern is Pattern.PREFIXED and topic.startswith(a.name))
                )
            ]
            assert {a.principal for a in covering} == {N.gateway_principal(m)}
            assert {a.operation for a in covering} == {
                Operation.READ,
                Operation.WRITE,
                Operation.DESCRIBE,
            }


def test_three_brokers_mean_replication_three_and_min_isr_two() -> None:
    plan = build_plan(N, MEMBERS, partitions=4, brokers=3)
    assert all(t.replication == 3 for t in plan.topics)
    assert all(t.configs["min.insync.replicas"] == "2" for t in plan.topics)


def test_adding_a_member_adds_only_its_own_items() -> None:
    before = build_plan(N, ["AR", "MX"], partitions=2, brokers=1)
    after = build_plan(N, ["AR", "MX", "US"], partitions=2, brokers=1)
    new_acls = set(after.acls) - set(before.acls)
    new_principals = {
        "puente-us",
        "puente-node-us",
        "puente-gateway-us",
        "puente-tracker-us",
        "puente-witness-us",
    }
    assert new_acls and {a.principal for a in new_acls} == new_principals
    new_topics = {t.name for t in after.topics} - {t.name for t in before.topics}
    assert new_topics == {f"puente.{s}.US" for s in STEMS}
    assert {p.name for p in after.principals} - {p.name for p in before.principals} == (
        new_principals
    )


def test_a_states_witness_holds_exactly_what_it_witnesses_with() -> None:
    plan = build_plan(N, MEMBERS, partitions=4, brokers=1)
    assert _grants(plan.acls, "puente-witness-mx") == {
        ("READ", "TOPIC", "puente.witness.MX"),  # its own state: per log, what it cosigned
        ("WRITE", "TOPIC", "puente.witness.MX"),
        ("DESCRIBE", "TOPIC", "puente.witness.MX"),
        ("READ", "TOPIC", "puente.checkpoints"),  # every log's checkpoints
        ("DESCRIBE", "TOPIC", "puente.checkpoints"),
        ("READ", "TOPIC", "puente.cosignatures"),  # the other witnesses' (gossip)
        ("WRITE", "TOPIC", "puente.cosignatures"),
        ("DESCRIBE", "TOPIC", "puente.cosignatures"),
        ("READ", "TOPIC", "puente.equivocations"),  # its reports, read back when it starts
        ("WRITE", "TOPIC", "puente.equivocations"),
        ("DESCRIBE", "TOPIC", "puente.equivocations"),
        ("READ", "TOPIC", "puente.trust"),
        ("DESCRIBE", "TOPIC", "puente.trust"),
        ("READ", "GROUP", "puente.witness.MX"),
        ("WRITE", "TRANSACTIONAL_ID", "puente.witness.MX"),
        ("DESCRIBE", "TRANSACTIONAL_ID", "puente.witness.MX"),
    }


def test_acls_sort_stably() -> None:
    a = Acl("a", Resource.TOPIC, "x", Pattern.LITERAL, Operation.READ)
    b = Acl("b", Resource.TOPIC, "x", Pattern.LITERAL, Operation.READ)
    assert sorted([b, a]) == [a, b]


def test_cluster_ids_never_start_with_a_dash() -> None:
    from puente.kafka.local import _random_cluster_id

    ids = [_random_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
