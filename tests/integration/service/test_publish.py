"""``puente publish --as CC``: an agency publishes notices from JSON Lines, each sealed to its own
state's node; the node opens and decides them; a bad line is reported and nothing of it sent."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from puente.codec.jsonconv import to_json
from puente.evidence.records import AuditRecord
from puente.evidence.seal import is_sealed
from puente.synth.generator import Generator
from puente.synth.notice import CASE_NOTICE, Notice
from puente.topics import AUDIT, INGRESS
from tests.harness import KafkaHarness
from tests.integration.service.support import (
    ALL_MEMBERS,
    Deployment,
    deploy,
    now_stamped,
    read_topic,
    running,
)

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
async def dep(kafka: KafkaHarness) -> Deployment:
    return await deploy(kafka, partitions=1)


async def test_publish_seals_each_notice_to_the_states_node(
    dep: Deployment, tmp_path: Path
) -> None:
    gen = Generator(17)
    records = [now_stamped(Notice(CASE_NOTICE, gen.case_notice(origin="MX"))) for _ in range(3)]
    lines = [orjson.dumps(to_json(dep.registry, CASE_NOTICE, r)).decode() for r in records]
    lines.insert(1, '{"notice_id": "not a notice"}')
    path = tmp_path / "notices.jsonl"
    path.write_text("\n".join(lines) + "\n")
    async with running(dep.nodes("MX")):
        done = await dep.puente("publish", "--as", "MX", "--file", str(path))
        out = [orjson.loads(line) for line in done.stdout.splitlines()]
        assert done.returncode == 1, done.stderr[-2000:]  # one line was refused
        errors = [(o["line"], o["error"]) for o in out if "error" in o]
        assert [line for line, _ in errors] == [2] and errors[0][1].isupper(), out
        sent = {o["notice_id"] for o in out if "notice_id" in o}
        assert sent == {str(r["notice_id"]) for r in records}
        want = len(records) * (len(ALL_MEMBERS) - 1)
        audit = await read_topic(dep, dep.tenant.topic(AUDIT, "MX"), expect=want, timeout_s=120)
    decided = {AuditRecord.decode(dep.registry, v).notice_id for _, v in audit}
    assert decided == sent  # the node opened and decided every published notice
    ingress = await read_topic(dep, dep.tenant.topic(INGRESS, "MX"), idle_s=2, as_node="MX")
    assert len(ingress) == len(records) and all(is_sealed(v) for _, v in ingress)
