"""A state's node end to end on the real broker: sealed notices in, sealed and verified
deliveries out, every refusal with its reason."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from puente.codec.wire import decode, encode
from puente.evidence.records import AuditRecord
from puente.evidence.verify import open_verified
from puente.synth.generator import Generator
from puente.synth.notice import CASE_NOTICE, Notice
from puente.topics import AUDIT, CHECKPOINTS, DELIVER, REJECTED
from tests.harness import KafkaHarness
from tests.integration.service.support import (
    ALL_MEMBERS,
    Deployment,
    deploy,
    encoded,
    now_stamped,
    publish,
    read_topic,
    run_auditor,
    running,
)

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
async def dep(kafka: KafkaHarness) -> Deployment:
    return await deploy(kafka, partitions=2)


async def test_notices_become_verified_deliveries_rejections_and_audit(dep: Deployment) -> None:
    gen = Generator(11)
    notices = [gen.scenario("asylum-seeker-detention", origin="MX", nationality="HN")]
    notices += [gen.scenario("plain-smuggling-case", origin="MX") for _ in range(5)]
    notices += [n for n in gen.notices(30) if n.record["origin"] == "MX"]
    values = [encoded(dep, n) for n in notices]
    good = len(values)
    # Every way a record can be refused, each through the real broker.
    refused = _refusals(dep, gen, values[1])

    # A record an agency forgot to seal: refused too, and never read.
    unsealed = [encoded(dep, Notice(CASE_NOTICE, gen.case_notice(origin="MX")))]
    refused.append(((b"unsealed", b""), "NOT_SEALED"))
    async with running(dep.nodes("MX")):
        positions = await publish(dep, "MX", [*values, *(v for v, _ in refused[:-1])])
        positions += await publish(dep, "MX", unsealed, sealed=False)
        expected = good * (len(ALL_MEMBERS) - 1) + len(refused)
        audit = await read_topic(dep, dep.tenant.topic(AUDIT, "MX"), expect=expected, timeout_s=90)
    records = [AuditRecord.decode(dep.registry, v) for _, v in audit]
    per_input = Counter((r.ingress_partition, r.ingress_offset) for r in records)
    assert set(per_input) == set(positions)  # every input has its outcome in the log
    rejected = {
        (r.ingress_partition, r.ingress_offset): r.reason_code
        for r in records
        if r.decision == "REJECTED"
    }
    assert rejected == {positions[good + i]: reason for i, (_, reason) in enumerate(refused)}
    for position in positions[:good]:  # one record per candidate recipient
        assert per_input[position] == len(ALL_MEMBERS) - 1

    # Deliveries verify as the recipient and match the audit records.
    verifier = dep.verifier()
    delivered = {(r.notice_id, r.recipient): r for r in records if r.delivery_id}
    seen = 0
    for recipient in {r for _, r in delivered}:
        assert recipient is not None  # every delivery has its recipient on record
        count = sum(1 for _, r in delivered if r == recipient)
        topic = dep.tenant.topic(DELIVER, recipient)
        for _, value in await read_topic(dep, topic, recipient, expect=count):
            v = verifier.verify_delivery(value, recipient=recipient)
            assert delivered[(v.statement.notice_id, recipient)].delivery_digest == v.digest
            plain = open_verified(v, dep.member_keys(recipient))
            assert v.sealed and decode(dep.registry, plain)["origin"] == "MX"
            seen += 1
    assert seen == len(delivered)

    # The asylum seeker's detention never reached Honduras; MX was told why.
    asylum_id = notices[0].record["notice_id"]
    assert (asylum_id, "HN") not in delivered
    reports = [
        decode(dep.registry, v)
        for _, v in await read_topic(dep, dep.tenant.topic(REJECTED, "MX"), "MX", idle_s=1)
    ]
    assert {(r["scope"], r["reason_code"]) for r in reports} >= {
        ("NOTICE", reason) for _, reason in refused
    } | {("RECIPIENT", "FLOOR_ASYLUM_CONFIDENTIALITY")}
    assert all(r["message"] for r in reports)
    assert any(r["notice_id"] == asylum_id and r["recipient"] == "HN" for r in reports)

    # Every decision names the pinned floor and MX's own policy.
    pinned = dep.evidence.open_trust_list().floor_digest
    assert pinned and {r.floor_digest for r in records if r.decision != "REJECTED"} == {pinned}

    # The node checkpointed the log on shutdown; checkpoints verify.
    cps = await read_topic(dep, dep.tenant.topic(CHECKPOINTS), idle_s=1)
    assert cps

    # The auditor replays the log from Kafka and finds it complete and untampered.
    report = run_auditor(dep)
    assert report.ok, report.to_text()
    assert report.records >= len(records)


def _refusals(
    dep: Deployment, gen: Generator, published: tuple[bytes, bytes]
) -> list[tuple[tuple[bytes, bytes | None], str]]:
    """(key, value) records that must each be refused, with the reason code expected."""
    now = dt.datetime.now(dt.UTC)

    def case(**overrides: object) -> tuple[bytes, bytes]:
        record = now_stamped(Notice(CASE_NOTICE, gen.case_notice(origin="MX")))
        record.update(overrides)
        return str(record["notice_id"]).encode(), encode(dep.registry, CASE_NOTICE, record)

    key, good = case()
    nationality = now_stamped(Notice(CASE_NOTICE, gen.case_notice(origin="MX")))
    nationality["persons"][0]["nationalities"] = ["Honduras"]
    receipt = encode(dep.registry, "puente.DeliveryReceipt", gen.delivery_receipt())
    published_key, published_value = published
    changed = decode(dep.registry, published_value)
    changed["summary"] += " (a different notice under the same id)"
    return [
        (case(origin="GT"), "ORIGIN_MISMATCH"),
        ((b"poison", b"garbage, not Avro"), "BAD_MAGIC"),
        (published, "DUPLICATE_NOTICE"),
        ((published_key, encode(dep.registry, CASE_NOTICE, changed)), "NOTICE_ID_REUSED"),
        ((b"tombstone", None), "EMPTY_RECORD"),
        ((b"big", b"\xc3\x01" + b"\x00" * 300_000), "TOO_LARGE"),
        ((key, b"\xc3\x01" + b"\x00" * 8 + good[10:]), "UNKNOWN_SCHEMA"),
        ((key, good[:-5]), "TRUNCATED"),
        ((key, good + b"\x00"), "TRAILING_BYTES"),
        ((b"receipt", receipt), "NOT_A_NOTICE"),
        ((b"not-the-id", good), "KEY_NOT_NOTICE_ID"),
        (case(created_at=now + dt.timedelta(hours=1)), "CREATED_IN_FUTURE"),
        (case(created_at=now - dt.timedelta(days=1000)), "TOO_OLD"),
        (case(retention_days=0), "INVALID_FIELD"),
        (
            (
                str(nationality["notice_id"]).encode(),
                encode(dep.registry, CASE_NOTICE, nationality),
            ),
            "INVALID_FIELD",
        ),
    ]
