"""Kafka broker configuration for Puente: security on from the first day.

Three listeners per node:
- ``CLIENT`` (SASL_PLAINTEXT, SCRAM-SHA-512): every member state, service and the admin;
- ``INTERNAL`` (SASL_PLAINTEXT, PLAIN): broker-to-broker traffic, including transaction markers;
- ``CONTROLLER`` (SASL_PLAINTEXT, PLAIN): the KRaft quorum.
The broker principal of the last two (``User:broker``) and the admin are the only super users; the
StandardAuthorizer denies everything else unless an ACL allows it. On loopback plaintext SASL is
acceptable; a deployment across machines uses SASL_SSL (see deploy/).
"""

from __future__ import annotations

from dataclasses import dataclass

from puente.secrets import Credential

ADMIN_USER = "admin"
BROKER_USER = "broker"


@dataclass(frozen=True)
class NodePorts:
    """The three loopback ports of one node."""

    node_id: int
    client: int
    internal: int
    controller: int


def node_ports(base_port: int, count: int) -> list[NodePorts]:
    """Ports for ``count`` nodes: node i (from 1) uses base + 10·(i-1) + {0, 1, 2}."""
    return [
        NodePorts(
            i, base_port + 10 * (i - 1), base_port + 10 * (i - 1) + 1, base_port + 10 * (i - 1) + 2
        )
        for i in range(1, count + 1)
    ]


def _plain_jaas(broker: Credential) -> str:
    return (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{broker.username}" password="{broker.password}" '
        f'user_{broker.username}="{broker.password}";'
    )


def server_properties(
    node: NodePorts,
    voters: list[NodePorts],
    *,
    host: str,
    log_dir: str,
    broker: Credential,
    admin_user: str = ADMIN_USER,
) -> dict[str, str]:
    """The complete ``server.properties`` of one combined broker+controller node."""
    n = len(voters)
    replication = str(min(3, n))
    min_isr = "2" if n >= 3 else "1"
    jaas = _plain_jaas(broker)
    return {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": ",".join(f"{v.node_id}@{host}:{v.controller}" for v in voters),
        "listeners": (
            f"CLIENT://{host}:{node.client},INTERNAL://{host}:{node.internal},"
            f"CONTROLLER://{host}:{node.controller}"
        ),
        "advertised.listeners": f"CLIENT://{host}:{node.client},INTERNAL://{host}:{node.internal}",
        "listener.security.protocol.map": (
            "CLIENT:SASL_PLAINTEXT,INTERNAL:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
        ),
        "inter.broker.listener.name": "INTERNAL",
        "controller.listener.names": "CONTROLLER",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.client.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.internal.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.internal.plain.sasl.jaas.config": jaas,
        "listener.name.controller.plain.sasl.jaas.config": jaas,
        "listener.name.client.scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{broker.username};User:{admin_user}",
        "allow.everyone.if.no.acl.found": "false",
        "log.dirs": log_dir,
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": "8",
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        # Small machines: 2 cores. Kafka's defaults assume a server.
        "num.network.threads": "2",
        "num.io.threads": "4",
        "background.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "log.cleaner.threads": "1",
        "log.cleaner.dedupe.buffer.size": "2097152",
        "log.segment.bytes": str(64 * 1024 * 1024),
        # Fail transactions of a crashed producer quickly (a fenced instance's partitions move on).
        "transaction.max.timeout.ms": "900000",
        "transactional.id.expiration.ms": str(7 * 24 * 3600 * 1000),
        "unclean.leader.election.enable": "false",
    }


def render_properties(props: dict[str, str]) -> str:
    """``key=value`` lines as Kafka reads them (no escaping needed for our values)."""
    return "".join(f"{k}={v}\n" for k, v in props.items())


LOG4J2_YAML = """\
Configuration:
  Appenders:
    RollingFile:
      name: FILE
      fileName: "${sys:puente.logdir}/broker.log"
      filePattern: "${sys:puente.logdir}/broker.log.%i"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
      Policies:
        SizeBasedTriggeringPolicy:
          size: 20MB
      DefaultRolloverStrategy:
        max: 3
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: FILE
    Logger:
      - name: org.apache.kafka.controller
        level: WARN
      - name: kafka.log.LogCleaner
        level: WARN
"""
