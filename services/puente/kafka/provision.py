"""Apply the provisioning plan to a cluster, idempotently.

``read_state`` asks the cluster what exists; ``diff`` (pure) compares it with the plan;
``apply`` makes only the missing changes. Running twice changes nothing; adding a member to
policies/members.yaml and re-running adds exactly that member's principal, topics and ACLs.
Nothing is ever deleted: ACLs of a removed member are reported as ``extra`` for an operator.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    NewPartitions,
    NewTopic,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from kafka.errors import NoError
from kafka.protocol.admin import DescribeAclsRequest

from puente.errors import PuenteError
from puente.kafka.plan import Acl, Operation, Pattern, Plan, Resource
from puente.secrets import SecretStore

SCRAM_ITERATIONS = 8192


class ProvisionError(PuenteError):
    reason = "PROVISION_FAILED"


class Action(Enum):
    CREATE = "create"
    UPDATE = "update"
    EXISTS = "exists"
    EXTRA = "extra"  # present in the cluster, not in the plan: reported, never deleted


@dataclass(frozen=True)
class Change:
    what: str  # principal | topic | partitions | config | acl
    target: str
    action: Action
    detail: str = ""
    acl: Acl | None = None


@dataclass
class ClusterState:
    scram_users: set[str] = field(default_factory=set)
    topics: dict[str, int] = field(default_factory=dict)  # name -> partitions
    topic_configs: dict[str, dict[str, str]] = field(default_factory=dict)
    acls: set[Acl] = field(default_factory=set)


def diff(plan: Plan, state: ClusterState, *, missing_secrets: Iterable[str] = ()) -> list[Change]:
    """What applying ``plan`` to a cluster in ``state`` would do (pure)."""
    changes: list[Change] = []
    no_secret = set(missing_secrets)
    for p in plan.principals:
        if p.name in state.scram_users and p.name not in no_secret:
            changes.append(Change("principal", p.name, Action.EXISTS, p.role))
        elif p.name in state.scram_users:
            changes.append(Change("principal", p.name, Action.UPDATE, "new password (lost)"))
        else:
            changes.append(Change("principal", p.name, Action.CREATE, p.role))
    for t in plan.topics:
        if t.name not in state.topics:
            changes.append(
                Change("topic", t.name, Action.CREATE, f"{t.partitions}p rf{t.replication}")
            )
            continue
        changes.append(Change("topic", t.name, Action.EXISTS, f"{state.topics[t.name]}p"))
        if state.topics[t.name] < t.partitions:
            changes.append(
                Change(
                    "partitions",
                    t.name,
                    Action.UPDATE,
                    f"{state.topics[t.name]} -> {t.partitions}",
                )
            )
        current = state.topic_configs.get(t.name, {})
        drift = {k: v for k, v in t.configs.items() if current.get(k) != v}
        if drift:
            detail = ", ".join(f"{k}={v}" for k, v in sorted(drift.items()))
            changes.append(Change("config", t.name, Action.UPDATE, detail))
    planned = set(plan.acls)
    for a in sorted(planned):
        action = Action.EXISTS if a in state.acls else Action.CREATE
        changes.append(Change("acl", a.principal, action, _acl_text(a), a))
    ours = {p.name for p in plan.principals}
    for a in sorted(state.acls - planned):
        if a.principal in ours:
            changes.append(Change("acl", a.principal, Action.EXTRA, _acl_text(a), a))
    return changes


def _acl_text(a: Acl) -> str:
    star = "*" if a.pattern is Pattern.PREFIXED else ""
    return f"{a.operation.value} {a.resource.value} {a.name}{star}"


# --- talking to the cluster ------------------------------------------------------------------

_RESOURCE = {
    Resource.TOPIC: ResourceType.TOPIC,
    Resource.GROUP: ResourceType.GROUP,
    Resource.TRANSACTIONAL_ID: ResourceType.TRANSACTIONAL_ID,
}
_PATTERN = {
    Pattern.LITERAL: ACLResourcePatternType.LITERAL,
    Pattern.PREFIXED: ACLResourcePatternType.PREFIXED,
}
_OPERATION = {op: getattr(ACLOperation, op.value) for op in Operation}


def _to_kafka(a: Acl) -> ACL:
    return ACL(
        f"User:{a.principal}",
        "*",
        _OPERATION[a.operation],
        ACLPermissionType.ALLOW,
        ResourcePattern(_RESOURCE[a.resource], a.name, _PATTERN[a.pattern]),
    )


def _from_kafka(acl: Any) -> Acl | None:
    if acl.permission_type != ACLPermissionType.ALLOW or acl.host != "*":
        return None
    if not str(acl.principal).startswith("User:"):
        return None
    try:
        resource = next(r for r, k in _RESOURCE.items() if k == acl.resource_pattern.resource_type)
        pattern = next(p for p, k in _PATTERN.items() if k == acl.resource_pattern.pattern_type)
        op = next(o for o, k in _OPERATION.items() if k == acl.operation)
    except StopIteration:
        return None
    return Acl(
        acl.principal[len("User:") :], resource, acl.resource_pattern.resource_name, pattern, op
    )


def read_state(admin: KafkaAdminClient, plan: Plan) -> ClusterState:
    """What of ``plan`` already exists in the cluster."""
    state = ClusterState()
    users = admin.describe_user_scram_credentials([p.name for p in plan.principals])
    for name, entry in users.items():
        infos = entry.get("credential_infos") or []
        if any(i["mechanism"] == ScramMechanism.SCRAM_SHA_512 for i in infos):
            state.scram_users.add(name)
    existing = set(admin.list_topics())
    wanted = [t.name for t in plan.topics if t.name in existing]
    if wanted:
        for t in admin.describe_topics(wanted):
            state.topics[t["name"]] = len(t["partitions"])
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in wanted]
        described = admin.describe_configs(resources)
        for name, configs in described.get("topic", {}).items():
            state.topic_configs[name] = {k: v["value"] for k, v in configs.items()}
    state.acls = _read_acls(admin)
    return state


def _read_acls(admin: KafkaAdminClient, node_id: int | None = None) -> set[Acl]:
    """Every ALLOW ACL, as the brokers report them (``node_id``: as that broker reports them)."""
    everything = ACLFilter(
        principal=None,
        host="*",
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    if node_id is None:
        acls, error = admin.describe_acls(everything)
    else:
        acls, error = _describe_acls_on(admin, everything, node_id)
    if error is not None and error is not NoError:
        raise ProvisionError(f"describe ACLs failed: {error}")
    return {a for a in (_from_kafka(x) for x in acls) if a is not None}


def apply(admin: KafkaAdminClient, plan: Plan, changes: list[Change], secrets: SecretStore) -> None:
    """Make the ``create``/``update`` changes of ``diff`` happen; credentials are generated into
    ``secrets`` (owner-only files) and never printed."""
    topics = {t.name: t for t in plan.topics}
    upserts = []
    for c in changes:
        if c.what == "principal" and c.action in (Action.CREATE, Action.UPDATE):
            cred, _ = secrets.get_or_create(c.target)
            upserts.append(
                UserScramCredentialUpsertion(
                    cred.username, ScramMechanism.SCRAM_SHA_512, cred.password, SCRAM_ITERATIONS
                )
            )
    if upserts:
        result = admin.alter_user_scram_credentials(upserts)
        failed = {u: e for u, e in result.items() if e}
        if failed:
            raise ProvisionError(f"creating SCRAM credentials failed: {failed}")

    new_topics = [
        NewTopic(t.name, t.partitions, t.replication, topic_configs=t.configs)
        for t in (
            topics[c.target] for c in changes if c.what == "topic" and c.action is Action.CREATE
        )
    ]
    if new_topics:
        admin.create_topics(new_topics)
    grow = {
        c.target: NewPartitions(topics[c.target].partitions)
        for c in changes
        if c.what == "partitions"
    }
    if grow:
        admin.create_partitions(grow)
    configs = [
        ConfigResource(ConfigResourceType.TOPIC, c.target, topics[c.target].configs)
        for c in changes
        if c.what == "config"
    ]
    if configs:
        admin.alter_configs(configs)

    missing = [c.acl for c in changes if c.acl is not None and c.action is Action.CREATE]
    if missing:
        result = admin.create_acls([_to_kafka(a) for a in missing])
        if result.get("failed"):
            raise ProvisionError(f"creating ACLs failed: {result['failed'][:3]}")
    _wait_effective(admin, plan)


def _wait_effective(admin: KafkaAdminClient, plan: Plan, timeout_s: float = 60.0) -> None:
    """Block until every broker reports every planned ACL, so a principal can be used at once.

    CreateAcls returns when the controller has committed; each broker learns of it from the
    metadata log a moment later, and authorizes with what it knows.
    """
    deadline = time.monotonic() + timeout_s
    planned = set(plan.acls)
    nodes = [b["broker_id"] for b in admin.describe_cluster()["brokers"]]
    while True:
        missing: set[Acl] = set()
        for node in nodes:
            missing |= planned - _read_acls(admin, node)
        if not missing:
            return
        if time.monotonic() > deadline:
            raise ProvisionError(
                f"{len(missing)} ACL(s) not effective after {timeout_s:.0f} s",
                hint="re-run `puente kafka provision`; check the controller's log",
            )
        time.sleep(0.25)


def _describe_acls_on(admin: KafkaAdminClient, acl_filter: ACLFilter, node_id: int) -> Any:
    """``describe_acls`` sent to one broker. kafka-python's public call asks whichever broker is
    least loaded; this uses its request plumbing to ask a given one."""
    manager = getattr(admin, "_manager", None)
    convert = getattr(admin, "_convert_describe_acls_response_to_acls", None)
    if manager is None or convert is None:
        return admin.describe_acls(acl_filter)  # another kafka-python: any broker will do
    request = DescribeAclsRequest(
        resource_type_filter=acl_filter.resource_pattern.resource_type,
        resource_name_filter=acl_filter.resource_pattern.resource_name,
        pattern_type_filter=acl_filter.resource_pattern.pattern_type,
        principal_filter=acl_filter.principal,
        host_filter=acl_filter.host,
        operation=acl_filter.operation,
        permission_type=acl_filter.permission_type,
    )
    return convert(manager.run(manager.send, request, node_id))
