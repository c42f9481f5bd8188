"""The provisioning plan: every principal, topic and ACL Puente needs, as plain data.

This is the one source of truth for least privilege. ``puente kafka provision`` applies it to a
cluster; deploy/k8s renders the same plan as Strimzi KafkaTopic and KafkaUser resources.

Member state CC (principal ``<prefix>-cc``) may:
- write its own ingress and receipts topics;
- read its own deliver and rejected topics, with consumer groups under ``<prefix>.CC.``;
- read the checkpoints and trust topics (public evidence without personal data, needed to verify);
- read the early-warning topics: every member's aggregates (counts without identity, so that it
  can recompute any warning) and the warnings (docs/early-warning.md).
Services get what their role needs and nothing more (see ``SERVICE_GRANTS``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from puente.topics import (
    AGGREGATES,
    ALL_KINDS,
    AUDIT,
    CHECKPOINTS,
    DELIVER,
    INGRESS,
    RECEIPTS,
    REJECTED,
    STATE,
    TRUST,
    WARNINGS,
    Naming,
    Scope,
    TopicKind,
)


class Resource(Enum):
    TOPIC = "TOPIC"
    GROUP = "GROUP"
    TRANSACTIONAL_ID = "TRANSACTIONAL_ID"


class Pattern(Enum):
    LITERAL = "LITERAL"
    PREFIXED = "PREFIXED"


class Operation(Enum):
    READ = "READ"
    WRITE = "WRITE"
    DESCRIBE = "DESCRIBE"


@dataclass(frozen=True)
class Acl:
    """One ALLOW binding: principal may do operation on a resource (from any host)."""

    principal: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation

    def __lt__(self, other: object) -> bool:  # stable order for tables and diffs
        if not isinstance(other, Acl):
            return NotImplemented
        return self._key() < other._key()

    def _key(self) -> tuple[str, str, str, str, str]:
        return (
            self.principal,
            self.resource.value,
            self.name,
            self.pattern.value,
            self.operation.value,
        )


@dataclass(frozen=True)
class Topic:
    name: str
    kind: TopicKind
    partitions: int
    replication: int
    configs: dict[str, str]


@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # "member" or a service name
    member: str | None = None


@dataclass(frozen=True)
class Plan:
    principals: tuple[Principal, ...]
    topics: tuple[Topic, ...]
    acls: tuple[Acl, ...]


# What each service may do, per topic kind: (kind, pattern-over-members?, operations).
# A PREFIXED grant on a per-member kind covers every member's topic, present and future.
_R = (Operation.READ, Operation.DESCRIBE)
_W = (Operation.WRITE, Operation.DESCRIBE)
_RW = (Operation.READ, Operation.WRITE, Operation.DESCRIBE)

SERVICE_GRANTS: dict[str, tuple[tuple[TopicKind, tuple[Operation, ...]], ...]] = {
    # The policy service consumes every ingress topic and writes deliveries, rejections, the
    # audit log, its changelog and checkpoints, in transactions.
    "policy": (
        (INGRESS, _R),
        (DELIVER, _W),
        (REJECTED, _W),
        (AUDIT, _RW),
        (STATE, _RW),
        (CHECKPOINTS, _RW),
        (TRUST, _R),
        (AGGREGATES, _W),  # each origin's signed aggregates (tomorrow: the origin's node)
    ),
    # The gateway publishes for agencies that authenticated to it and reads their deliveries.
    "gateway": (
        (INGRESS, _W),
        (RECEIPTS, _W),
        (DELIVER, _R),
        (REJECTED, _R),
        (CHECKPOINTS, _R),
        (TRUST, _R),
    ),
    # Auditors replay the log; they never see payloads.
    "auditor": ((AUDIT, _R), (CHECKPOINTS, _R), (TRUST, _R)),
    # The receipt tracker matches receipts against the decisions in the audit log.
    "receipts": ((RECEIPTS, _R), (AUDIT, _R), (TRUST, _R)),
    # The operator publishes the signed trust list (and nothing else).
    "operator": ((TRUST, _RW),),
    # The early-warning evaluator reads the aggregates and publishes warnings (nothing else).
    "warnings": ((AGGREGATES, _R), (WARNINGS, _RW), (TRUST, _R)),
}
SERVICES_WITH_TRANSACTIONS = frozenset({"policy"})


def _topic_grants(
    principal: str, naming: Naming, kind: TopicKind, ops: Iterable[Operation]
) -> list[Acl]:
    if kind.scope is Scope.MEMBER:
        name, pattern = naming.topic_stem_prefix(kind), Pattern.PREFIXED
    else:
        name, pattern = naming.topic(kind), Pattern.LITERAL
    return [Acl(principal, Resource.TOPIC, name, pattern, op) for op in ops]


def member_acls(naming: Naming, member: str) -> list[Acl]:
    """The least-privilege ACLs of one member state's principal."""
    p = naming.member_principal(member)
    acls = []
    for kind, ops in ((INGRESS, _W), (RECEIPTS, _W), (DELIVER, _R), (REJECTED, _R)):
        topic = naming.topic(kind, member)
        acls += [Acl(p, Resource.TOPIC, topic, Pattern.LITERAL, op) for op in ops]
    for kind in (CHECKPOINTS, TRUST, AGGREGATES, WARNINGS):
        acls += _topic_grants(p, naming, kind, _R)
    acls.append(
        Acl(p, Resource.GROUP, naming.member_group_prefix(member), Pattern.PREFIXED, Operation.READ)
    )
    return acls


def service_acls(naming: Naming, service: str) -> list[Acl]:
    """The least-privilege ACLs of one service principal."""
    p = naming.service_principal(service)
    acls = []
    for kind, ops in SERVICE_GRANTS[service]:
        acls += _topic_grants(p, naming, kind, ops)
    acls.append(
        Acl(p, Resource.GROUP, naming.service_group(service), Pattern.PREFIXED, Operation.READ)
    )
    if service in SERVICES_WITH_TRANSACTIONS:
        tx = naming.transactional_id_prefix(service)
        acls += [
            Acl(p, Resource.TRANSACTIONAL_ID, tx, Pattern.PREFIXED, op)
            for op in (Operation.WRITE, Operation.DESCRIBE)
        ]
    return acls


def build_plan(
    naming: Naming,
    members: Sequence[str],
    *,
    partitions: int,
    brokers: int,
) -> Plan:
    """Everything a cluster of ``brokers`` nodes needs for these members."""
    replication = min(3, brokers)
    min_isr = 2 if brokers >= 3 else None
    principals = [Principal(naming.member_principal(m), "member", m) for m in members]
    principals += [Principal(naming.service_principal(s), s) for s in SERVICE_GRANTS]
    topics = []
    for kind in ALL_KINDS:
        if kind.scope is Scope.MEMBER:
            for m in members:
                topics.append(
                    Topic(
                        naming.topic(kind, m),
                        kind,
                        partitions,
                        replication,
                        kind.configs(min_insync_replicas=min_isr),
                    )
                )
        else:
            # Global topics are written by many partitions' writers; keyed records spread out.
            topics.append(
                Topic(
                    naming.topic(kind),
                    kind,
                    1 if kind in (TRUST, AGGREGATES, WARNINGS) else partitions,
                    replication,
                    kind.configs(min_insync_replicas=min_isr),
                )
            )
    acls = [a for m in members for a in member_acls(naming, m)]
    acls += [a for s in SERVICE_GRANTS for a in service_acls(naming, s)]
    return Plan(tuple(principals), tuple(topics), tuple(sorted(set(acls))))
