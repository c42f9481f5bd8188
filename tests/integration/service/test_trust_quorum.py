"""On the real broker: the trust list changes by `puente trust propose | sign | publish` with k
of the 20 member states, and a list short of quorum — refused by `publish`, then written to the
trust topic anyway (as whoever holds the operator's Kafka principal could) — is refused by the
subscriber's and the node's trust, which keep the last good list and log why."""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from puente.app.commands.trust import sign_cmd
from puente.app.operator import publish_trust_list
from puente.app.runtime import Runtime
from puente.codec.registry import Registry
from puente.evidence._time import now_ms
from puente.evidence.keys import SigningKey
from puente.evidence.note import Note
from puente.evidence.trust import KeyEntry, TrustAnchor, TrustList, Usage, member_holder
from puente.evidence.trustsource import TrustTracker, read_anchor
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


async def test_a_verifier_holding_the_genesis_list_follows_the_chain_the_topic_keeps(
    kafka: KafkaHarness,
) -> None:
    """Lists 1–3 published as the operator does: each also under its serial's key, which
    compaction keeps. List 3 carries no quorum of the genesis roots (three of five roots
    rotated in list 2); a verifier anchored on the genesis list that only now reads the topic
    takes list 3 through list 2, read back from the topic."""
    tenant = kafka.provision(["MX", "GT"], partitions=1)
    registry = Registry.load(kafka.settings_for(tenant).schemas_dir)
    now = now_ms()
    codes = ("AR", "BR", "CL", "MX", "GT")
    old = {c: SigningKey.generate(f"puente.root/{c}") for c in codes}
    new = {c: SigningKey.generate(f"puente.root/{c}") for c in codes[:3]}

    def root(code: str, key: SigningKey, since: int, until: int | None = None) -> KeyEntry:
        holder, usages = member_holder(code), frozenset({Usage.TRUST_LIST})
        return KeyEntry(key.public, holder, usages, since, valid_until=until)

    def signed(tl: TrustList, *keys: SigningKey) -> bytes:
        note = Note.unsigned(tl.text())
        for k in keys:
            note = note.sign(k)
        return note.to_bytes()

    day = 86_400_000
    one = TrustList(
        1,
        now - 3000,
        now + 30 * day,
        tuple(root(c, k, now - day) for c, k in old.items()),
        quorum=3,
    )
    rotated_at = now - 2000
    two = TrustList(
        2,
        rotated_at,
        now + 30 * day,
        (
            *(root(c, old[c], now - day, rotated_at) for c in codes[:3]),
            *(root(c, old[c], now - day) for c in codes[3:]),
            *(root(c, k, rotated_at) for c, k in new.items()),
        ),
        quorum=3,
    )
    three = two.reissued(issued_at=now - 1000, expires_at=now + 30 * day)
    lists = [
        signed(one, *old.values()),
        signed(two, *old.values(), *new.values()),
        signed(three, *new.values()),  # the rotated roots only: none of the genesis roots
    ]
    operator = tenant.service("operator")
    for data in lists:
        await publish_trust_list(tenant.endpoint, operator, tenant.naming, data)

    reader = TrustTopicReader(tenant.endpoint, tenant.member("GT"), tenant.naming, timeout_s=30)
    async with reader:
        assert sorted(await reader.history()) == sorted(lists)
        assert await reader.newest() == lists[2]
        anchor = TrustAnchor.genesis(lists[0])
        alone = TrustTracker(anchor, registry)
        with capture_logs() as logs:
            assert not await alone.refresh([reader.newest])  # no history: it cannot judge 3
        assert refusals(logs) == ["TRUST_LIST_UNTRUSTED"]
        tracker = TrustTracker(anchor, registry, history=reader.history)
        assert await tracker.refresh([reader.newest])
        assert tracker.verifier().trust_list.serial == 3
        # Only the genesis list's digest given: the list itself comes from the topic too.
        pin = read_anchor([f"sha256:{hashlib.sha256(lists[0]).hexdigest()}"])
        pinned = TrustTracker(pin, registry, history=reader.history)
        assert await pinned.refresh([reader.newest])
        assert pinned.verifier().trust_list.serial == 3
