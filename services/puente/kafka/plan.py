"""The provisioning plan: every principal, topic and ACL Puente needs, as plain data.

This is the one source of truth for least privilege. ``puente kafka provision`` applies it to a
cluster; deploy/k8s renders the same plan as Strimzi KafkaTopic and KafkaUser resources.

Member state CC (principal ``<prefix>-cc``) may:
- write its own ingress and receipts topics;
- read its own deliver and rejected topics, with consumer groups under ``<prefix>.CC.``;
- read what the receipt trackers say about its pairs: ``tracker.CC`` (what it sent), ``due.CC``
  (what it received) and ``overdue.CC`` (escalations and reminders addressed to it);
- read the checkpoints and trust topics (public evidence without personal data, needed to verify);
- read the early-warning topics: every state's aggregates (counts without identity, so that it
  can recompute any warning) and the warnings (docs/early-warning.md).
CC's node (principal ``<prefix>-node-cc``) may read only ``ingress.CC``; write every state's
deliver topic, its own ``rejected.CC``, ``audit.CC`` and ``state.CC`` (reading back the last
two on take-over), the checkpoints topic and the aggregates topic; read the trust topic; with
consumer groups under ``<prefix>.node.CC`` and transactional ids under ``<prefix>.node.CC.``
(see ``node_acls``). The aggregates topic is one partition (one order for every evaluator), so
every node writes the same topic: Kafka cannot limit a writer to its own keys, and an aggregate
of CC counts only when signed by a key of ``node:CC`` in the trust list
(``puente.warnings.signing``); another node's write is refused as ``KEY_WRONG_HOLDER``.
CC's receipt tracker is a third principal, ``<prefix>-tracker-cc`` (see ``tracker_acls``): it
reads ``audit.CC`` and every state's receipts topic, keeps its state in ``tracker.CC``, writes
the recipients' ``due`` and everyone's ``overdue`` topics, under the group and transactional id
``<prefix>.tracker.CC``.
CC's witness (principal ``<prefix>-witness-cc``, see ``witness_acls``) reads the checkpoints
and cosignatures topics, writes cosignatures and equivocation reports (reading the reports back
when it starts, not to report a fork twice), keeps its state in
``witness.CC``, under the group and transactional id ``<prefix>.witness.CC``. Members read the
cosignatures and equivocations (finality, alerts); each state's gateway reads the cosignatures.
CC's gateway (principal ``<prefix>-gateway-cc``, its edge) may write ``ingress.CC`` and
``receipts.CC``, read ``deliver.CC`` and ``rejected.CC``, read what the receipt trackers say
about CC's pairs (``tracker.CC`` and ``due.CC``, for ``GET /v1/receipts/status``), read and
write its own ``gateway-tokens.CC`` and ``gateway-answers.CC``, and read the trust and warnings
topics; it uses no consumer group and no transactional id (see ``gateway_acls``).
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
    COSIGNATURES,
    DELIVER,
    DUE,
    EQUIVOCATIONS,
    GATEWAY_ANSWERS,
    GATEWAY_TOKENS,
    INGRESS,
    OVERDUE,
    PARTIALS,
    RECEIPTS,
    REJECTED,
    STATE,
    TRACKER,
    TRUST,
    WARNINGS,
    WITNESS,
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
    # Auditors replay the log; they never see payloads.
    "auditor": (
        (AUDIT, _R),
        (CHECKPOINTS, _R),
        (COSIGNATURES, _R),
        (EQUIVOCATIONS, _R),
        (TRUST, _R),
    ),
    # The operator publishes the signed trust list (and nothing else).
    "operator": ((TRUST, _RW),),
    # The early-warning evaluator reads the aggregates and publishes warnings (nothing else).
    "warnings": ((AGGREGATES, _R), (WARNINGS, _RW), (TRUST, _R)),
}


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
    for kind, ops in (
        (INGRESS, _W),
        (RECEIPTS, _W),
        (DELIVER, _R),
        (REJECTED, _R),
        (TRACKER, _R),
        (DUE, _R),
        (OVERDUE, _R),
    ):
        topic = naming.topic(kind, member)
        acls += [Acl(p, Resource.TOPIC, topic, Pattern.LITERAL, op) for op in ops]
    for kind in (CHECKPOINTS, COSIGNATURES, EQUIVOCATIONS, TRUST, AGGREGATES, WARNINGS):
        acls += _topic_grants(p, naming, kind, _R)
    acls.append(
        Acl(p, Resource.GROUP, naming.member_group_prefix(member), Pattern.PREFIXED, Operation.READ)
    )
    return acls


def node_acls(naming: Naming, member: str) -> list[Acl]:
    """The least-privilege ACLs of member ``member``'s node principal."""
    p = naming.node_principal(member)
    acls = []
    for kind, ops in (
        (INGRESS, _R),
        (REJECTED, _W),
        (AUDIT, _RW),
        (STATE, _RW),
        (PARTIALS, _RW),  # its shards' sealed counts, summed by its combiner
    ):
        topic = naming.topic(kind, member)
        acls += [Acl(p, Resource.TOPIC, topic, Pattern.LITERAL, op) for op in ops]
    acls += _topic_grants(p, naming, DELIVER, _W)  # to every recipient, present and future
    acls += _topic_grants(p, naming, CHECKPOINTS, _RW)
    acls += _topic_grants(p, naming, TRUST, _R)
    # Its signed aggregates, in its batches' transactions (write only: it never reads others').
    acls += _topic_grants(p, naming, AGGREGATES, _W)
    acls.append(Acl(p, Resource.GROUP, naming.node_group(member), Pattern.PREFIXED, Operation.READ))
    tx = naming.node_transactional_id_prefix(member)
    acls += [
        Acl(p, Resource.TRANSACTIONAL_ID, tx, Pattern.PREFIXED, op)
        for op in (Operation.WRITE, Operation.DESCRIBE)
    ]
    return acls


def _exactly_once(principal: str, group: str) -> list[Acl]:
    """A keyed service's group (its committed positions) and its transactional id, both
    ``group``: one instance at a time, the next fencing the last."""
    return [
        Acl(principal, Resource.GROUP, group, Pattern.LITERAL, Operation.READ),
        *(
            Acl(principal, Resource.TRANSACTIONAL_ID, group, Pattern.LITERAL, op)
            for op in (Operation.WRITE, Operation.DESCRIBE)
        ),
    ]


def tracker_acls(naming: Naming, member: str) -> list[Acl]:
    """The least-privilege ACLs of member ``member``'s receipt tracker principal.

    Per state, like its node (one principal per state rather than one ``svc-receipts`` for
    all): it reads only its own state's audit log, and what it writes as that state — its
    tracks, the reports it signs with that state's node key — no other state's tracker can.
    Receipts name no origin a topic could be chosen by, so it reads every state's receipts
    topic (ids, digests and times; no personal data) and keeps only those of its deliveries."""
    p = naming.tracker_principal(member)
    acls = []
    for kind, ops in ((AUDIT, _R), (TRACKER, _RW)):
        topic = naming.topic(kind, member)
        acls += [Acl(p, Resource.TOPIC, topic, Pattern.LITERAL, op) for op in ops]
    acls += _topic_grants(p, naming, RECEIPTS, _R)  # every recipient's, present and future
    acls += _topic_grants(p, naming, DUE, _W)  # its deliveries' state, for their recipients
    acls += _topic_grants(p, naming, OVERDUE, _W)  # escalations and reminders
    acls += _topic_grants(p, naming, TRUST, _R)
    return acls + _exactly_once(p, naming.tracker_group(member))


def witness_acls(naming: Naming, member: str) -> list[Acl]:
    """The least-privilege ACLs of member ``member``'s witness principal: it reads every log's
    checkpoints and every witness's cosignatures (gossip), writes its cosignatures and
    equivocation reports (and reads the reports back when it starts: a fork it reported is not
    reported again; they are public evidence every member reads), and keeps its own state
    (``witness.CC``) in its transactions."""
    p = naming.witness_principal(member)
    acls = [
        Acl(p, Resource.TOPIC, naming.topic(WITNESS, member), Pattern.LITERAL, op) for op in _RW
    ]
    acls += _topic_grants(p, naming, CHECKPOINTS, _R)
    acls += _topic_grants(p, naming, COSIGNATURES, _RW)
    acls += _topic_grants(p, naming, EQUIVOCATIONS, _RW)
    acls += _topic_grants(p, naming, TRUST, _R)
    return acls + _exactly_once(p, naming.witness_group(member))


# What a state's gateway does with its own state's topics: it publishes for the agencies that
# authenticated to it and reads their deliveries and rejections (read_committed, assign(), no
# group) and what the receipt trackers say about its pairs (GET /v1/receipts/status); its
# replicas share their tokens and first answers through the state's own two topics.
GATEWAY_GRANTS: tuple[tuple[TopicKind, tuple[Operation, ...]], ...] = (
    (INGRESS, _W),
    (RECEIPTS, _W),
    (DELIVER, _R),
    (REJECTED, _R),
    (TRACKER, _R),
    (DUE, _R),
    (GATEWAY_TOKENS, _RW),
    (GATEWAY_ANSWERS, _RW),
)


def gateway_acls(naming: Naming, member: str) -> list[Acl]:
    """The least-privilege ACLs of member ``member``'s gateway principal: its own state's
    topics only, and the trust list it seals and verifies with."""
    p = naming.gateway_principal(member)
    acls = []
    for kind, ops in GATEWAY_GRANTS:
        topic = naming.topic(kind, member)
        acls += [Acl(p, Resource.TOPIC, topic, Pattern.LITERAL, op) for op in ops]
    acls += _topic_grants(p, naming, TRUST, _R)
    acls += _topic_grants(p, naming, WARNINGS, _R)  # GET /v1/warnings: every member reads them
    acls += _topic_grants(p, naming, COSIGNATURES, _R)  # each delivery's finality
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
    principals += [Principal(naming.node_principal(m), "node", m) for m in members]
    principals += [Principal(naming.tracker_principal(m), "tracker", m) for m in members]
    principals += [Principal(naming.gateway_principal(m), "gateway", m) for m in members]
    principals += [Principal(naming.witness_principal(m), "witness", m) for m in members]
    principals += [Principal(naming.service_principal(s), s) for s in SERVICE_GRANTS]
    topics = []
    for kind in ALL_KINDS:
        if kind.scope is Scope.MEMBER:
            for m in members:
                topics.append(
                    Topic(
                        naming.topic(kind, m),
                        kind,
                        kind.partitions or partitions,
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
                    kind.partitions or partitions,
                    replication,
                    kind.configs(min_insync_replicas=min_isr),
                )
            )
    acls = [a for m in members for a in member_acls(naming, m)]
    acls += [a for m in members for a in node_acls(naming, m)]
    acls += [a for m in members for a in tracker_acls(naming, m)]
    acls += [a for m in members for a in gateway_acls(naming, m)]
    acls += [a for m in members for a in witness_acls(naming, m)]
    acls += [a for s in SERVICE_GRANTS for a in service_acls(naming, s)]
    return Plan(tuple(principals), tuple(topics), tuple(sorted(set(acls))))
