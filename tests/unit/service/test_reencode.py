"""A share without transformations is the notice the policy evaluated, re-encoded: a field the
policy's schema version does not have never reaches a recipient, and the evidence says whether
the recipient got the origin's exact bytes (DELIVERED, delivered_sha256 == original_sha256) or
not (TRANSFORMED)."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from puente.codec.jsonconv import normalise
from puente.codec.registry import Registry
from puente.codec.wire import decode
from puente.config import Settings
from puente.evidence.records import AuditRecord
from puente.policy.store import PolicyStore
from puente.service.processor import (
    REENCODED,
    BatchOutput,
)
from puente.synth.generator import Generator
from tests.unit.service.conftest import NOW, World

MARKER = "AGENCY-MARKER-7f3a"  # a value only the field unknown to the policy carries


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Registry, PolicyStore]:
    """The shipped schemas plus a newest CaseNotice version without ``issuing_agency``: older
    notices still decode (into it, the version the policies are checked and evaluated against)."""
    settings = Settings()
    schemas = tmp_path_factory.mktemp("schemas")
    shutil.copytree(settings.schemas_dir, schemas, dirs_exist_ok=True)
    shipped = Registry.load(schemas).latest("puente.CaseNotice").version
    base = json.loads((schemas / "CaseNotice" / f"v{shipped}.avsc").read_text())
    newest = base | {"fields": [f for f in base["fields"] if f["name"] != "issuing_agency"]}
    (schemas / "CaseNotice" / f"v{shipped + 1}.avsc").write_text(json.dumps(newest))
    policies = PolicyStore(settings.policies_dir, schemas, secret=b"s" * 32)
    assert policies.reload().ok
    return Registry.load(schemas), policies


def _encode_as(registry: Registry, version: int, record: dict[str, Any]) -> bytes:
    sv = registry.get("puente.CaseNotice", version)
    out = bytearray(sv.header)
    sv.writer(normalise(sv, record), out)
    return bytes(out)


ORIGIN = "CO"


def _shared_unchanged(gen: Generator, policies: PolicyStore) -> dict[str, Any]:
    """A CaseNotice that at least one rule shares as it is."""
    for _ in range(100):
        notice = gen.case_notice(origin=ORIGIN)
        if any(d.action == "share" for d in policies.decide_all(notice, "CaseNotice")):
            return notice
    raise AssertionError("no generated notice is shared unchanged")


def _process(world: World, registry: Registry, policies: PolicyStore, value: bytes) -> BatchOutput:
    proc = world.processor(ORIGIN, registry=registry, policies=policies)
    notice_id = str(decode(registry, value)["notice_id"]).encode()
    return proc.process([world.record(value, origin=ORIGIN, key=notice_id)], NOW)


def test_a_field_unknown_to_the_policy_never_reaches_a_recipient(
    world: World, gen: Generator, two_versions: tuple[Registry, PolicyStore]
) -> None:
    registry, policies = two_versions
    notice = _shared_unchanged(gen, policies) | {"issuing_agency": MARKER}
    older = registry.latest("puente.CaseNotice").version - 1  # still has issuing_agency
    published = _encode_as(registry, older, notice)
    assert MARKER.encode() in published
    out = _process(world, registry, policies, published)

    assert out.outcomes.get("REJECTED", 0) == 0 and out.deliveries
    assert out.decisions[("TRANSFORMED", REENCODED)] > 0, (
        out.decisions
    )  # rules sharing it unchanged
    latest = registry.latest("puente.CaseNotice")
    for topic, _, value in out.deliveries:
        v, plain = world.verify(value, topic.rsplit(".", 1)[1])
        assert MARKER.encode() not in plain and MARKER.encode() not in v.payload
        assert plain[2:10] == latest.fingerprint_bytes
        assert "issuing_agency" not in decode(registry, plain)
        assert v.statement.decision.action == "TRANSFORMED"
    sent = [a for a in map(lambda v: AuditRecord.decode(registry, v), out.audit) if a.delivery_id]
    assert sent and {a.decision for a in sent} == {"TRANSFORMED"}
    assert all(a.delivered_sha256 != a.original_sha256 for a in sent)


def test_a_share_of_the_current_version_is_the_published_bytes(
    world: World, gen: Generator, two_versions: tuple[Registry, PolicyStore]
) -> None:
    registry, policies = two_versions
    notice = _shared_unchanged(gen, policies)
    del notice["issuing_agency"]  # written under the newest version, which has no such field
    published = _encode_as(registry, registry.latest("puente.CaseNotice").version, notice)
    out = _process(world, registry, policies, published)
    assert out.decisions[("DELIVERED", "")] > 0 and not out.decisions[("TRANSFORMED", REENCODED)]
    opened = [world.verify(v, topic.rsplit(".", 1)[1]) for topic, _, v in out.deliveries]
    shared = [plain for v, plain in opened if v.statement.decision.action == "DELIVERED"]
    assert shared and all(p == published for p in shared)
    delivered = [AuditRecord.decode(registry, v) for v in out.audit]
    assert all(
        a.delivered_sha256 == a.original_sha256 for a in delivered if a.decision == "DELIVERED"
    )
