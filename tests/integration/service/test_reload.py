"""Policy reload without a restart: a new valid set takes effect at a batch boundary and its
version appears in later decisions; an invalid one is refused while the old one keeps working."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from puente.evidence.records import AuditRecord
from puente.synth.generator import Generator
from puente.topics import AUDIT
from tests.harness import KafkaHarness
from tests.integration.service.support import (
    ALL_MEMBERS,
    Deployment,
    deploy,
    encoded,
    publish,
    read_topic,
    running,
)

pytestmark = pytest.mark.kafka


async def _decide(dep: Deployment, seen: int) -> list[AuditRecord]:
    """Publish one MX smuggling case and return its audit records."""
    notice = Generator(seen).scenario("plain-smuggling-case", origin="MX")
    await publish(dep, "MX", [encoded(dep, notice)])
    want = (seen + 1) * (len(ALL_MEMBERS) - 1)
    records = await read_topic(dep, dep.tenant.topic(AUDIT, "MX"), expect=want, timeout_s=60)
    decoded = [AuditRecord.decode(dep.registry, v) for _, v in records]
    return [r for r in decoded if r.notice_id == notice.record["notice_id"]]


async def test_reload_takes_effect_and_a_broken_set_is_refused(
    kafka: KafkaHarness, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(Path(__file__).resolve().parents[3] / "policies", policies)
    dep = await deploy(kafka, partitions=1, policies_dir=policies)
    mx = policies / "states" / "MX.yaml"
    service = dep.nodes("MX", reload_interval_s=0.2)
    async with running(service):
        first = await _decide(dep, 0)
        v1 = {r.policy_set_version for r in first}
        assert len(v1) == 1

        mx.write_text(mx.read_text().replace("retention_days: 1825", "retention_days: 900", 1))
        deadline = time.monotonic() + 60
        while service.policies.current.version in v1:  # the node picks the new set up
            assert time.monotonic() < deadline, "the new policy set was never taken"
            await asyncio.sleep(0.2)
        second = await _decide(dep, 1)
        v2 = {r.policy_set_version for r in second}
        assert len(v2) == 1 and v2 != v1
        assert service.policies.current.version in v2

        mx.write_text(mx.read_text().replace("to: [RCM]", "to: [NO_SUCH_GROUP]", 1))
        deadline = time.monotonic() + 10
        while service.policies.last_error is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        error = service.policies.last_error
        assert error is not None and "MX.yaml" in str(error)
        third = await _decide(dep, 2)
        assert {r.policy_set_version for r in third} == v2  # the last good set keeps working
        assert any(r.delivery_id for r in third)


async def test_a_policy_file_that_crashed_the_loader_leaves_the_old_set_running(
    kafka: KafkaHarness, tmp_path: Path
) -> None:
    """Files that once made the loader raise (a 3,000-term condition: RecursionError) or were
    silently overridden (CR.yml beside CR.yaml) are refused with file and reason; the running
    service keeps deciding under the last good set."""
    policies = tmp_path / "policies"
    shutil.copytree(Path(__file__).resolve().parents[3] / "policies", policies)
    dep = await deploy(kafka, partitions=1, policies_dir=policies)
    service = dep.nodes("MX", reload_interval_s=0.2)
    async with running(service):
        good = {r.policy_set_version for r in await _decide(dep, 0)}
        assert len(good) == 1

        chain = " || ".join(["notice.summary == 'x'"] * 3000)
        mx = policies / "states" / "MX.yaml"
        mx.write_text(
            mx.read_text().replace(
                "rules:\n",
                "rules:\n  - id: mx.long-chain\n    types: [CaseNotice]\n    to: [US]\n"
                f'    when: "{chain}"\n    action: withhold\n    legal_basis: test\n',
                1,
            )
        )
        shutil.copy(policies / "states" / "CR.yaml", policies / "states" / "CR.yml")
        deadline = time.monotonic() + 30
        while service.policies.last_error is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        error = str(service.policies.last_error)
        assert "states/MX.yaml" in error and "POLICY_CEL_LIMIT" in error
        assert "states/CR.yml" in error and "POLICY_AMBIGUOUS_FILE" in error

        after = await _decide(dep, 1)  # the service is alive and decides under the old set
        assert {r.policy_set_version for r in after} == good
        assert any(r.delivery_id for r in after)


async def test_a_regional_floor_the_trust_list_does_not_pin_is_refused(
    kafka: KafkaHarness, tmp_path: Path
) -> None:
    """The federation agreed on one floor (its digest in the trust list): a node never decides
    under another, whatever its files say; it keeps deciding under the pinned one."""
    policies = tmp_path / "policies"
    shutil.copytree(Path(__file__).resolve().parents[3] / "policies", policies)
    dep = await deploy(kafka, partitions=1, policies_dir=policies)
    service = dep.nodes("MX", reload_interval_s=0.2)
    async with running(service):
        good = {r.policy_set_version for r in await _decide(dep, 0)}
        regional = policies / "regional.yaml"
        regional.write_text(regional.read_text() + "\n# an unagreed change to the floor\n")
        deadline = time.monotonic() + 30
        while service.policies.last_error is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        error = service.policies.last_error
        assert error is not None and error.reason == "FLOOR_MISMATCH", error
        after = await _decide(dep, 1)
        assert {r.policy_set_version for r in after} == good
        pinned = dep.evidence.open_trust_list().floor_digest
        assert {r.floor_digest for r in after} == {pinned}
