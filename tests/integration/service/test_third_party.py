"""A recipient hands a third party the exact bytes of its deliveries, and anyone can read the
topics with Kafka's own tools: Puente's evidence does not depend on Puente's clients."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from puente.kafka.tools import write_client_properties
from puente.synth.generator import Generator
from puente.topics import DELIVER
from tests.harness import KafkaHarness
from tests.integration.service.support import (
    REPO,
    Deployment,
    deploy,
    encoded,
    publish,
    read_topic,
    running,
)

pytestmark = pytest.mark.kafka
RECIPIENT = "GT"


@pytest.fixture(scope="module")
async def dep(kafka: KafkaHarness) -> Deployment:
    return await deploy(kafka, partitions=1)


def puente(dep: Deployment, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "puente", *args],
        env=dep.env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def test_raw_deliveries_verify_outside_puente_and_kafka_tools_read_them(
    dep: Deployment, tmp_path: Path
) -> None:
    gen = Generator(8)
    notices = [
        gen.scenario("dual-national-arrest", origin="MX", nationalities=(RECIPIENT, "HN"))
        for _ in range(3)
    ]
    async with running(dep.nodes("MX")):
        await publish(dep, "MX", [encoded(dep, n) for n in notices])
        topic = dep.tenant.topic(DELIVER, RECIPIENT)
        on_kafka = await read_topic(dep, topic, RECIPIENT, expect=3, timeout_s=120)
    assert len(on_kafka) == 3

    # 1. The recipient's own command writes each delivery's exact bytes.
    raw = tmp_path / "raw"
    done = puente(dep, "subscribe", "--as", RECIPIENT, "--raw", str(raw), "--idle", "5")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 3 and all(line["verified"] for line in lines)
    files = sorted(raw.glob("*.delivery"))
    assert [Path(line["raw"]).name for line in lines] == [f.name for f in files]
    assert sorted(f.read_bytes() for f in files) == sorted(v for _, v in on_kafka)

    # 2. A third party verifies one with the trust list and the anchor (the genesis list) alone.
    keys = dep.settings.state_dir / "keys"
    anchor = keys / "trust-genesis.note"
    check = puente(
        dep,
        "audit",
        "delivery",
        str(files[0]),
        "--trust-list",
        str(keys / "trust-list.note"),
        "--anchor",
        str(anchor),
        "--recipient",
        RECIPIENT,
    )
    assert check.returncode == 0 and "VERIFIED" in check.stdout, check.stdout + check.stderr
    wrong = puente(
        dep,
        "audit",
        "delivery",
        str(files[0]),
        "--trust-list",
        str(keys / "trust-list.note"),
        "--anchor",
        str(anchor),
        "--recipient",
        "HN",
    )
    assert wrong.returncode != 0 and "RECIPIENT_MISMATCH" in wrong.stdout + wrong.stderr

    # 3. Kafka's own console consumer reads the same records as the recipient's principal, in
    #    a consumer group under the recipient's prefix (the only groups its ACLs allow).
    config = write_client_properties(
        tmp_path / "gt.properties", dep.tenant.endpoint, dep.tenant.member(RECIPIENT)
    )
    group = dep.tenant.naming.member_group_prefix(RECIPIENT) + "console"
    tool = puente(
        dep,
        "kafka",
        "tool",
        "console-consumer",
        "--bootstrap-server",
        dep.tenant.endpoint.bootstrap,
        "--topic",
        topic,
        "--consumer.config",
        str(config),
        "--group",
        group,
        "--from-beginning",
        "--max-messages",
        "3",
        "--timeout-ms",
        "60000",
        "--property",
        "print.value=false",
        "--property",
        "print.partition=true",
        "--property",
        "print.offset=true",
    )
    assert tool.returncode == 0, tool.stderr[-2000:]
    seen = sorted(
        f"{p.split(':')[1]}-{o.split(':')[1]}.delivery"
        for p, o in (line.split()[:2] for line in tool.stdout.splitlines() if line.strip())
    )
    assert seen == [f.name for f in files]

    # 4. A librdkafka client (confluent-kafka, librdkafka >= 2.6.1 logs in to Kafka 4 with
    #    SCRAM) returns the same bytes as the --raw files.
    assert await asyncio.to_thread(_librdkafka_values, dep, topic) == sorted(
        f.read_bytes() for f in files
    )


def _librdkafka_values(dep: Deployment, topic: str) -> list[bytes]:
    from confluent_kafka import Consumer

    cred = dep.tenant.member(RECIPIENT)
    c = Consumer(
        {
            "bootstrap.servers": dep.tenant.endpoint.bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": cred.username,
            "sasl.password": cred.password,
            "group.id": dep.tenant.naming.member_group_prefix(RECIPIENT) + "librdkafka",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    try:
        c.subscribe([topic])
        values: list[bytes] = []
        deadline = time.monotonic() + 60
        while len(values) < 3 and time.monotonic() < deadline:
            msg = c.poll(1.0)
            if msg is not None and msg.error() is None:
                value = msg.value()
                assert value is not None, "a delivery without a value"
                values.append(value)
        return sorted(values)
    finally:
        c.close()
