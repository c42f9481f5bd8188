"""README's main command, `puente demo`, runs end to end and ends with a verified audit (its
deliveries witnessed by a quorum of the states' witnesses, no fork proven); and
nothing identifying is on Kafka in clear: every record of every topic, read as the cluster's
administrator (aborted transactions too), holds none of the persons' names, document numbers
or dates of birth — which only the keys of the states concerned reveal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.harness import KafkaHarness

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[1].parent


def test_demo_runs_the_whole_mission(kafka: KafkaHarness, tmp_path: Path) -> None:
    prefix = f"d{uuid.uuid4().hex[:8]}"
    env = dict(
        os.environ,
        PUENTE_STATE_DIR=str(tmp_path / "state"),
        PUENTE_KAFKA_BOOTSTRAP=kafka.endpoint.bootstrap,
        PUENTE_KAFKA_USERNAME=kafka.admin.username,
        PUENTE_KAFKA_PASSWORD=kafka.admin.password,
        PUENTE_KAFKA_TOPIC_PREFIX=prefix,
        PUENTE_LOCAL__PARTITIONS="1",
        PUENTE_POLICY__METRICS_PORT="0",
    )
    out = subprocess.run(
        [sys.executable, "-m", "puente", "demo", "--notices", "20", "--seed", "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "Puente audit report — VERIFIED" in text
    assert "FLOOR_ASYLUM_CONFIDENTIALITY" in text  # the asylum seeker never reached JM
    assert "ORIGIN_MISMATCH" in text and "DUPLICATE_NOTICE" in text
    assert "✓ verified" in text
    # Step 6: one consular notification acknowledged in time, one overdue and escalated.
    assert "│ ACKNOWLEDGED " in text and "│ OVERDUE" in text
    assert "ESCALATION to US, signed by US's node key (verified)" in text
    assert "REMINDER to HN" in text
    # The twenty witnesses cosign every log: each delivery of the run becomes final (witnessed
    # by a quorum of the other states' witnesses), and no witness proved a fork.
    flat = " ".join(text.split())  # the console wraps long lines
    found = re.search(
        r"(\d+) verified deliveries of this run: (\d+) witnessed when their partner read them, "
        r"(\d+) signed only; (\d+) witnessed [\d.]+ s later, (\d+) signed only",
        flat,
    )
    assert found, text[-3000:]
    n, when_read, signed_only, witnessed, left = map(int, found.groups())
    assert n > 0 and when_read + signed_only == n
    assert witnessed == n and left == 0
    assert re.search(
        r"checkpoint → quorum: p50 [\d.]+ s, p99 [\d.]+ s, max [\d.]+ s over \d+", flat
    )
    assert "equivocation reports: 0" in flat
    reports = tmp_path / "state" / "reports"
    assert (reports / "audit.json").is_file() and (reports / "audit.txt").is_file()

    records = _every_record(kafka, prefix)
    secrets = _identifying_values(records, tmp_path / "state" / "keys")
    assert len(secrets) > 50, "the demo's persons were not found by opening the envelopes"
    leaks = {value for value in secrets for data in records.raw if value.encode("utf-8") in data}
    assert not leaks, f"in clear on Kafka: {sorted(leaks)[:10]}"


class Records:
    """Every record under a prefix: (topic, key, value, header values) and their raw bytes."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes | None, bytes | None]] = []
        self.raw: list[bytes] = []


def _every_record(kafka: KafkaHarness, prefix: str) -> Records:
    """Read every partition of every topic of ``prefix`` from its start, read_uncommitted (so
    records of aborted transactions too), as the administrator."""
    from kafka import KafkaConsumer, TopicPartition

    out = Records()
    c = KafkaConsumer(
        **kafka.endpoint.kafka_python_kwargs(kafka.admin),
        isolation_level="read_uncommitted",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        topics = sorted(t for t in c.topics() if t.startswith(prefix + "."))
        assert topics
        for topic in topics:
            tps = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic) or ()]
            c.assign(tps)
            c.seek_to_beginning(*tps)
            ends = c.end_offsets(tps)
            while any(c.position(tp) < ends[tp] for tp in tps):
                for batch in c.poll(timeout_ms=1000).values():
                    for r in batch:
                        out.items.append((topic, r.key, r.value))
                        out.raw += [r.key or b"", r.value or b""]
                        out.raw += [v for _, v in r.headers or () if v]
    finally:
        c.close()
    return out


def _identifying_values(records: Records, keys_dir: Path) -> set[str]:
    """Names, document numbers and dates of birth of every person in the demo's notices, found
    by opening, with the states' own keys, the notices sealed on the ingress topics."""
    from puente.codec.registry import Registry
    from puente.codec.wire import decode
    from puente.config import Settings
    from puente.evidence.keystore import KeyStore
    from puente.evidence.seal import is_sealed, open_notice
    from puente.evidence.trust import node_holder

    registry = Registry.load(Settings().schemas_dir)
    store = KeyStore(keys_dir)
    found: set[str] = set()
    for topic, _, value in records.items:
        if ".ingress." not in topic or not value or not is_sealed(value):
            continue
        origin = topic.rsplit(".", 1)[1]
        notice = decode(
            registry,
            open_notice(value, keys=store.keyring(node_holder(origin)), origin=origin).plaintext,
        )
        people = notice.get("persons") or [notice.get("person") or {}]
        for p in people:
            full = f"{p.get('given_names', '')} {p.get('family_names', '')}".strip()
            found |= {v for v in (full, p.get("family_names") or "") if len(v) >= 8}
            if p.get("date_of_birth"):
                found.add(str(p["date_of_birth"]))
            found |= {
                d["number"] for d in p.get("identity_documents") or () if len(d["number"]) >= 6
            }
    return found
