"""deploy/README.md's way to set a SCRAM password in a running cluster: Kafka's ConfigCommand with
the admin's client properties and the new credential both in files, so that no password is on
its command line (every local user can read /proc/<pid>/cmdline)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from puente.config import Settings
from puente.kafka.admin import admin_client
from puente.kafka.local import kafka_coordinates
from puente.maven import classpath, fetch_jars
from puente.secrets import Credential, new_password, write_private
from tests.harness import KafkaHarness

pytestmark = pytest.mark.kafka


def test_config_command_sets_a_password_from_files(kafka: KafkaHarness, tmp_path: Path) -> None:
    if kafka.endpoint.security_protocol != "SASL_PLAINTEXT":
        pytest.skip("the client properties below speak SASL_PLAINTEXT")
    settings = Settings()
    version = settings.kafka.version
    libs = fetch_jars(f"kafka-{version}", kafka_coordinates(version), settings.cache_dir)
    admin = kafka.admin
    client = tmp_path / "admin-client.properties"
    write_private(
        client,
        (
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{admin.username}" password="{admin.password}";\n'
        ).encode(),
    )
    user = Credential(f"rotated-{uuid.uuid4().hex[:8]}", new_password())
    # No brackets in a file: ConfigCommand strips them only from --add-config.
    credential = tmp_path / "credential.properties"
    write_private(credential, f"SCRAM-SHA-512=iterations=8192,password={user.password}\n".encode())
    java_home = os.environ.get("JAVA_HOME")
    argv = [
        str(Path(java_home) / "bin" / "java") if java_home else "java",
        "-cp",
        classpath(libs),
        "kafka.admin.ConfigCommand",
        "--bootstrap-server",
        kafka.endpoint.bootstrap,
        "--command-config",
        str(client),
        "--alter",
        "--entity-type",
        "users",
        "--entity-name",
        user.username,
        "--add-config-file",
        str(credential),
    ]
    assert not any(admin.password in a or user.password in a for a in argv)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with admin_client(kafka.endpoint, user) as as_user:  # the new password logs in
        assert as_user.describe_cluster()["brokers"]
