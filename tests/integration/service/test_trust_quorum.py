"""On the real broker: the trust list changes by `puente trust propose | sign | publish` with k
of the 20 member states, and a list short of quorum — refused by `publish`, then written to the
trust topic anyway (as whoever holds the operator's Kafka principal could) — is refused by the
subscriber's and the node's trust, which keep the last good list and log why."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from puente.app.commands.trust import sign_cmd
from puente.app.operator import publish_trust_list
from puente.app.runtime import Runtime
from puente.evidence._time import now_ms
from puente.evidence.trust import member_holder
from puente.kafka.trustfeed import TrustTopicReader
from tests.harness import KafkaHarness
from tests.integration.service.support import ALL_MEMBERS, deploy


def refusals(logs: Sequence[MutableMapping[str, Any]]) -> list[object]:
    return [e.get("reason") for e in logs if e.get("event") == "trust_list.refused"]


async def test_propose_sign_k_publish_and_short_lists_are_refused(
    kafka: KafkaHarness, tmp_path: Path
) -> None:
    dep = await deploy(kafka, partitions=1)
    genesis = dep.evidence.open_trust_list()
    assert genesis.quorum == len(ALL_MEMBERS) // 2 + 1 and len(genesis.roots(at=now_ms())) == 20
    rt = Runtime.from_settings(dep.settings)
    # GT's subscriber and MX's node follow the trust list as `puente subscribe` / `serve node`
    sub, sub_topic, sub_sources = rt.trust_tracker(rt.member_credential("GT"))
    node, node_topic = rt.node("MX", instance="quorum")
    followers = [(sub, sub_sources), (node.trust, list(node.trust_sources))]
    async with sub_topic, node_topic:
        for tracker, sources in followers:
            await tracker.refresh(sources)
            assert tracker.current is not None and tracker.current.serial == genesis.serial

        # A change: MX's receipt key rotates; the next list is proposed from the list in force.
        dep.evidence.store.rotate(member_holder("MX"), at=now_ms(), overlap_ms=0)
        proposal = tmp_path / "next.txt"
        done = await dep.puente("trust", "propose", "--out", str(proposal))
        assert done.returncode == 0, done.stderr[-2000:]
        assert "~ key" in done.stdout and "+ key" in done.stdout  # MX's old key ends, new added
        signers = [c for c in ALL_MEMBERS if c != "MX"]
        for code in signers[: genesis.quorum - 1]:
            sign_cmd(code, input_=proposal, directory=dep.settings.keys_dir)

        # One short: publish refuses, says why, writes nothing to the topic.
        done = await dep.puente("trust", "publish", "--in", str(proposal))
        assert done.returncode == 1 and "TRUST_QUORUM_MISSING" in done.stderr, done.stderr
        assert f"{genesis.quorum - 1} of the roots in force" in " ".join(done.stderr.split())
        reader = TrustTopicReader(
            dep.tenant.endpoint, dep.tenant.service("auditor"), dep.tenant.naming, timeout_s=30
        )
        async with reader:
            assert await reader.newest() == dep.evidence.trust_list

            # Written to the topic anyway: every follower refuses it and keeps the last list.
            short = proposal.read_bytes()
            operator = dep.tenant.service("operator")
            await publish_trust_list(dep.tenant.endpoint, operator, dep.tenant.naming, short)
            assert await reader.newest() == short
            for tracker, sources in followers:
                with capture_logs() as logs:
                    assert not await tracker.refresh(sources)
                assert refusals(logs) == ["TRUST_QUORUM_MISSING"]
                assert tracker.verifier().trust_list.serial == genesis.serial

            # The k-th state signs: publish checks it as the followers will, and they take it.
            sign_cmd(signers[genesis.quorum - 1], input_=proposal, directory=dep.settings.keys_dir)
            done = await dep.puente("trust", "publish", "--in", str(proposal))
            assert done.returncode == 0, done.stderr[-2000:]
            assert await reader.newest() == proposal.read_bytes()
    async with sub_topic, node_topic:
        for tracker, sources in followers:
            assert await tracker.refresh(sources)
            current = tracker.verifier().trust_list
            assert current.serial == genesis.serial + 1
            assert len(current.signed_by) == genesis.quorum
    # the key directory's file (the source after the topic) agrees
    assert (dep.settings.keys_dir / "trust-list.note").read_bytes() == proposal.read_bytes()
