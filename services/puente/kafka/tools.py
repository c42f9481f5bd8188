"""Kafka's own command-line tools against Puente's brokers, as any principal.

A third party should not have to trust Puente's clients to read a topic: ``kafka-tools`` is
fetched with the broker's jars (same version), and :func:`tool_command` runs any of its classes
with that classpath. :func:`client_properties` is the client configuration for one principal
(``--consumer.config`` / ``--command-config``); it holds the password, so it is only ever
written to a 0600 file, never passed on a command line.
"""

from __future__ import annotations

import os
from pathlib import Path

from puente.config import Settings
from puente.kafka.connection import KafkaEndpoint
from puente.kafka.local import LocalCluster, kafka_coordinates
from puente.maven import classpath, fetch_jars
from puente.secrets import Credential, write_private

TOOLS = {
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "topics": "org.apache.kafka.tools.TopicCommand",
    "acls": "org.apache.kafka.tools.AclCommand",
    "get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
}
"""Short names (as Kafka's ``bin/kafka-<name>.sh`` scripts) for the tool classes."""

_LOG4J2 = """Configuration:
  Appenders:
    Console:
      name: STDERR
      target: SYSTEM_ERR
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: warn
      AppenderRef:
        - ref: STDERR
"""


def client_properties(endpoint: KafkaEndpoint, cred: Credential) -> str:
    """A Java client configuration for ``cred`` on ``endpoint`` (secret: write it 0600)."""
    lines = [
        f"bootstrap.servers={endpoint.bootstrap}",
        f"security.protocol={endpoint.security_protocol}",
    ]
    if endpoint.security_protocol.startswith("SASL"):
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if endpoint.sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        user = _jaas_quote(cred.username)
        password = _jaas_quote(cred.password)
        lines += [
            f"sasl.mechanism={endpoint.sasl_mechanism}",
            f'sasl.jaas.config={module} required username="{user}" password="{password}";',
        ]
    if endpoint.security_protocol.endswith("SSL") and endpoint.ssl_cafile:
        lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={endpoint.ssl_cafile}"]
    return "\n".join(lines) + "\n"


def write_client_properties(path: Path, endpoint: KafkaEndpoint, cred: Credential) -> Path:
    """Write :func:`client_properties` to ``path`` (mode 0600)."""
    write_private(path, client_properties(endpoint, cred).encode())
    return path


def tool_command(settings: Settings, name: str, args: list[str]) -> list[str]:
    """The java command line running Kafka tool ``name`` (a short name or a class) with
    ``args``, on the jars of the configured Kafka version (fetched on first use)."""
    version = settings.kafka.version
    info = LocalCluster(settings).info()
    if info is not None:
        version = info.version
    libs = fetch_jars(f"kafka-{version}", kafka_coordinates(version), settings.cache_dir)
    config = settings.state_dir / "kafka-tools-log4j2.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(_LOG4J2)
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else "java"
    return [
        java,
        "-Xmx256m",
        f"-Dlog4j2.configurationFile={config.resolve()}",
        "-cp",
        classpath(libs),
        TOOLS.get(name, name),
        *args,
    ]


def _jaas_quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
