"""Topic and principal names, and topic configurations: the one place they are defined.

Every name carries a prefix (``settings.kafka.topic_prefix``, default ``puente``) so that tests
and several deployments can share one cluster. Per-member topics end in the member's
ISO 3166-1 alpha-2 code: ``puente.ingress.MX``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

DAY_MS = 24 * 60 * 60 * 1000
FOREVER = -1


class Scope(Enum):
    MEMBER = "member"  # one topic per member state
    GLOBAL = "global"  # one topic for the whole exchange


@dataclass(frozen=True)
class TopicKind:
    """A family of topics: its name stem, scope and Kafka topic configs."""

    stem: str
    scope: Scope
    retention_ms: int
    compacted: bool = False
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    partitions: int | None = None  # a fixed partition count; None: the deployment's

    def configs(self, *, min_insync_replicas: int | None = None) -> dict[str, str]:
        cfg = {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": "compact" if self.compacted else "delete",
            # Notices are small; 1 MiB is ample and bounds what one poison record can cost.
            "max.message.bytes": "1048576",
            **self.extra,
        }
        if self.retention_ms == FOREVER:
            cfg["retention.bytes"] = "-1"
        if min_insync_replicas is not None:
            cfg["min.insync.replicas"] = str(min_insync_replicas)
        return cfg


INGRESS = TopicKind("ingress", Scope.MEMBER, 7 * DAY_MS, description="notices a member publishes")
DELIVER = TopicKind(
    "deliver", Scope.MEMBER, 180 * DAY_MS, description="signed deliveries to a member"
)
REJECTED = TopicKind(
    "rejected", Scope.MEMBER, 30 * DAY_MS, description="a member's refused notices, with reasons"
)
RECEIPTS = TopicKind(
    "receipts",
    Scope.MEMBER,
    3 * 365 * DAY_MS,
    description="a member's signed delivery receipts and acknowledgments",
    # The broker stamps each receipt's arrival: the receipt tracker judges deadlines by that
    # time, which the recipient cannot set (docs/receipts.md).
    extra={"message.timestamp.type": "LogAppendTime"},
)
AUDIT = TopicKind(
    "audit",
    Scope.MEMBER,
    FOREVER,
    description="Merkle-log records of every decision on a member's notices (no personal data)",
)
STATE = TopicKind(
    "state",
    Scope.MEMBER,
    FOREVER,
    compacted=True,
    description="the policy service's changelog per ingress partition (dedupe, log state)",
    # Compaction cleans closed segments only: roll them hourly (or at 64 MiB) so that a take-over
    # reads the live keys and about an hour of writes, not a week of superseded log states.
    extra={"segment.ms": str(60 * 60 * 1000), "segment.bytes": str(64 * 1024 * 1024)},
)
# The receipt tracker's tracks: compacted (the newest state of each delivery wins) and deleted
# after TRACK_RETENTION_MS, so that a restart reads a bounded topic (docs/receipts.md).
TRACK_RETENTION_MS = 400 * DAY_MS
_TRACKS = {
    "cleanup.policy": "compact,delete",
    "segment.ms": str(60 * 60 * 1000),
    "segment.bytes": str(64 * 1024 * 1024),
}
TRACKER = TopicKind(
    "tracker",
    Scope.MEMBER,
    TRACK_RETENTION_MS,
    compacted=True,
    description="the receipt tracker's state of the deliveries a member's node sent "
    "(ids, types, states, times)",
    extra=_TRACKS,
)
DUE = TopicKind(
    "due",
    Scope.MEMBER,
    TRACK_RETENTION_MS,
    compacted=True,
    description="the deliveries a member received and what is due from it, as their origins' "
    "receipt trackers track them",
    extra=_TRACKS,
)
OVERDUE = TopicKind(
    "overdue",
    Scope.MEMBER,
    3 * 365 * DAY_MS,
    description="signed overdue reports: escalations to a member as origin, reminders to it as "
    "recipient",
)
CHECKPOINTS = TopicKind(
    "checkpoints", Scope.GLOBAL, FOREVER, description="signed C2SP checkpoints of every audit log"
)
TRUST = TopicKind(
    "trust",
    Scope.GLOBAL,
    FOREVER,
    compacted=True,
    description="the signed trust list",
    partitions=1,
)
# Witnesses (docs/evidence.md §5.3): each state's witness cosigns the other states' checkpoints.
# Every cosignature is a record of its own (the log-signed checkpoint with one cosignature line,
# keyed by log id) that every member and witness reads: finality counts them, and a witness
# shown another root than the others catches the fork from theirs (gossip).
COSIGNATURES = TopicKind(
    "cosignatures",
    Scope.GLOBAL,
    FOREVER,
    description="checkpoints cosigned by the member states' witnesses (C2SP cosignature/v1)",
)
EQUIVOCATIONS = TopicKind(
    "equivocations",
    Scope.GLOBAL,
    FOREVER,
    description="signed equivocation reports: two checkpoints of one log that contradict",
    partitions=1,
)
WITNESS = TopicKind(
    "witness",
    Scope.MEMBER,
    FOREVER,
    compacted=True,
    description="a state's witness's state: per log, the checkpoint it cosigned last",
    extra={"segment.ms": str(60 * 60 * 1000), "segment.bytes": str(64 * 1024 * 1024)},
)
# Each state's gateway keeps its own: one state's gateway can neither read nor write another's.
GATEWAY_TOKENS = TopicKind(
    "gateway-tokens",
    Scope.MEMBER,
    FOREVER,
    compacted=True,
    description="a state's gateway's agency tokens (SHA-256 digests only) and their revocations",
)
GATEWAY_ANSWERS = TopicKind(
    "gateway-answers",
    Scope.MEMBER,
    7 * DAY_MS,
    description="a state's gateway's first answer to each notice and receipt id, for retries",
)
# Early warning (docs/early-warning.md). One partition each: the evaluator reads the aggregates
# in one total order, which is what makes its output the same for every member who recomputes it.
# Every state's node writes the one aggregates topic, keyed by its origin; an aggregate counts only
# under its origin's node key (puente.warnings.signing), which no other node holds.
AGGREGATES = TopicKind(
    "aggregates",
    Scope.GLOBAL,
    FOREVER,
    description="signed, windowed counts of each origin's notices, small cells suppressed",
    partitions=1,
)
WARNINGS = TopicKind(
    "warnings",
    Scope.GLOBAL,
    FOREVER,
    description="signed early warnings, and when each ended",
    partitions=1,
)
# A node of several ingress partitions sums its shards' counts before suppressing them
# (puente.warnings.combine): each partition hands its closed windows on here, sealed to the node
# itself, in its batch's transaction; one combiner per node reads them in one order.
PARTIALS = TopicKind(
    "partials",
    Scope.MEMBER,
    7 * DAY_MS,
    description="a node's closed windows of raw counts per ingress partition, sealed to the "
    "node itself, to be summed before suppression",
    partitions=1,
)

# Record headers (the only metadata outside a record's value; a receipt's signature travels so).
RECEIPT_KEY_ID_HEADER = "puente.receipt.key-id"
RECEIPT_SIGNATURE_HEADER = "puente.receipt.signature"
# An aggregate's or an early warning's signature (puente.warnings.signing): key id, signing time
# (Unix ms, decimal) and the Ed25519 signature; the record's value stays a pure function of its
# inputs, so two evaluators write the same bytes.
SIGNATURE_KEY_ID_HEADER = "puente.signature.key-id"
SIGNATURE_SIGNED_AT_HEADER = "puente.signature.signed-at"
SIGNATURE_HEADER = "puente.signature"

ALL_KINDS: tuple[TopicKind, ...] = (
    INGRESS,
    DELIVER,
    REJECTED,
    RECEIPTS,
    AUDIT,
    STATE,
    TRACKER,
    DUE,
    OVERDUE,
    CHECKPOINTS,
    COSIGNATURES,
    EQUIVOCATIONS,
    WITNESS,
    TRUST,
    GATEWAY_TOKENS,
    GATEWAY_ANSWERS,
    AGGREGATES,
    WARNINGS,
    PARTIALS,
)


@dataclass(frozen=True)
class Naming:
    """Names of topics, principals, consumer groups and transactional ids under one prefix."""

    prefix: str = "puente"

    def topic(self, kind: TopicKind, member: str | None = None) -> str:
        if kind.scope is Scope.MEMBER:
            if member is None:
                raise ValueError(f"{kind.stem} topics are per member; give a member code")
            return f"{self.prefix}.{kind.stem}.{member}"
        return f"{self.prefix}.{kind.stem}"

    def topic_stem_prefix(self, kind: TopicKind) -> str:
        """The common prefix of every member's topic of this kind (for PREFIXED ACLs)."""
        return f"{self.prefix}.{kind.stem}."

    def member_of(self, topic: str, kind: TopicKind) -> str:
        """The member code of a per-member topic name; ValueError if it is not one."""
        stem = self.topic_stem_prefix(kind)
        if not topic.startswith(stem) or len(topic) != len(stem) + 2:
            raise ValueError(f"{topic!r} is not a {kind.stem} topic")
        return topic[len(stem) :]

    def member_principal(self, member: str) -> str:
        return f"{self.prefix}-{member.lower()}"

    def service_principal(self, service: str) -> str:
        return f"{self.prefix}-svc-{service}"

    def member_group_prefix(self, member: str) -> str:
        return f"{self.prefix}.{member}."

    def service_group(self, service: str) -> str:
        return f"{self.prefix}.svc.{service}"

    def transactional_id_prefix(self, service: str) -> str:
        return f"{self.prefix}.svc.{service}."

    # --- each member state's node (the federation) -------------------------------------------

    def node_principal(self, member: str) -> str:
        """The Kafka principal of member ``member``'s node: ``<prefix>-node-cc``."""
        return f"{self.prefix}-node-{member.lower()}"

    def node_group(self, member: str) -> str:
        """The consumer group of ``member``'s node instances: ``<prefix>.node.CC``."""
        return f"{self.prefix}.node.{member}"

    def node_transactional_id_prefix(self, member: str) -> str:
        """The prefix of ``member``'s node's transactional ids (one per ingress partition)."""
        return f"{self.prefix}.node.{member}."

    # --- each member state's receipt tracker ---------------------------------------------------

    def tracker_principal(self, member: str) -> str:
        """The Kafka principal of ``member``'s receipt tracker: ``<prefix>-tracker-cc``."""
        return f"{self.prefix}-tracker-{member.lower()}"

    def tracker_group(self, member: str) -> str:
        """The consumer group (its committed positions) of ``member``'s receipt tracker, and
        its transactional id: ``<prefix>.tracker.CC``."""
        return f"{self.prefix}.tracker.{member}"

    # --- each member state's witness ---------------------------------------------------------

    def witness_principal(self, member: str) -> str:
        """The Kafka principal of ``member``'s witness: ``<prefix>-witness-cc``."""
        return f"{self.prefix}-witness-{member.lower()}"

    def witness_group(self, member: str) -> str:
        """The consumer group (its committed positions) of ``member``'s witness, and its
        transactional id: ``<prefix>.witness.CC``."""
        return f"{self.prefix}.witness.{member}"

    # --- each member state's gateway (its edge) ----------------------------------------------

    def gateway_principal(self, member: str) -> str:
        """The Kafka principal of member ``member``'s gateway: ``<prefix>-gateway-cc``."""
        return f"{self.prefix}-gateway-{member.lower()}"
