"""What the origin is told when the floor protects more than the publisher flagged (a warning,
not a refusal) and when a rule fails at run time (one recipient withheld, RULE_ERROR)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from puente.codec.wire import decode
from puente.config import Settings
from puente.evidence.records import AuditRecord
from puente.policy.store import PolicyStore
from puente.service.processor import BatchOutput
from puente.synth.generator import Generator
from puente.synth.notice import CASE_NOTICE
from tests.unit.service.conftest import NOW, World


def _reports(world: World, out: BatchOutput) -> list[dict[str, Any]]:
    return [decode(world.registry, v) for _, v in out.rejections]


def _audit(world: World, out: BatchOutput) -> list[AuditRecord]:
    return [AuditRecord.decode(world.registry, leaf) for leaf in out.audit]


def test_a_minor_flag_the_date_of_birth_contradicts_is_a_warning(
    world: World, gen: Generator
) -> None:
    notice = gen.scenario("plain-smuggling-case", origin="MX").record
    child = notice["persons"][1]
    child["minor"] = False
    child["date_of_birth"] = notice["created_at"].date() - dt.timedelta(days=12 * 365)
    out = world.processor("MX").process([world.record(world.encode(CASE_NOTICE, notice))], NOW)
    assert out.outcomes == {"DELIVERED": 1}  # decided and delivered as usual
    [warning] = [r for r in _reports(world, out) if r["severity"] == "WARNING"]
    assert (warning["scope"], warning["recipient"]) == ("NOTICE", None)
    assert warning["reason_code"] == "MINOR_FLAG_CONTRADICTED"
    assert warning["field_paths"] == ["persons[1].minor", "persons[1].date_of_birth"]
    assert child["family_names"] not in warning["message"]
    # The child was protected as a minor: removed from every enforcement delivery.
    for a in _audit(world, out):
        if a.decision == "TRANSFORMED":
            assert "FLOOR_MINOR_PROTECTION" in (a.reason_code or "")


def test_a_failing_rule_withholds_one_recipient_and_the_origin_is_told(
    world: World, gen: Generator, tmp_path: Path
) -> None:
    settings = Settings()
    root = tmp_path / "policies"
    shutil.copytree(settings.policies_dir, root)
    mx = root / "states" / "MX.yaml"
    mx.write_text(
        mx.read_text().replace(
            "rules:\n",
            "rules:\n"
            "  - id: mx.test.first-person\n"
            "    types: [CaseNotice]\n"
            "    to: [GT]\n"
            "    when: notice.persons[0].minor\n"
            "    action: share\n"
            "    purposes: [CRIMINAL_INVESTIGATION]\n"
            "    handling: H2\n"
            "    retention_days: 30\n"
            "    legal_basis: test basis\n",
            1,
        )
    )
    store = PolicyStore(root, settings.schemas_dir, secret=b"s" * 32)
    assert store.reload().ok
    proc = world.processor("MX", policies=store)
    notice = gen.scenario("plain-smuggling-case", origin="MX").record
    notice["persons"] = []  # persons[0] does not exist: the condition fails
    out = proc.process([world.record(world.encode(CASE_NOTICE, notice))], NOW)
    assert out.outcomes == {"DELIVERED": 1}  # not REJECTED: the other recipients were decided
    by = {a.recipient: a for a in _audit(world, out)}
    assert by["GT"].decision == "WITHHELD" and by["GT"].reason_code == "RULE_ERROR"
    assert by["GT"].rule_ids == ("mx.test.first-person",)
    assert any(a.decision != "WITHHELD" for a in by.values())
    [report] = [r for r in _reports(world, out) if r["reason_code"] == "RULE_ERROR"]
    assert (report["scope"], report["recipient"], report["severity"]) == (
        "RECIPIENT",
        "GT",
        "REFUSED",
    )
    assert "mx.test.first-person" in report["message"] and "re-send" in report["message"]


def test_a_feared_state_must_be_a_code(world: World, gen: Generator) -> None:
    """A misspelt feared state would protect the person from no state at all: refused."""
    notice = gen.case_notice(origin="MX")
    notice["persons"][0].update(feared_states=["HN", "Honduras"], habitual_residence="hn")
    out = world.processor("MX").process([world.record(world.encode(CASE_NOTICE, notice))], NOW)
    assert out.outcomes == {"REJECTED": 1} and not out.deliveries
    [r] = _reports(world, out)
    assert r["reason_code"] == "INVALID_FIELD"
    assert r["field_paths"] == ["persons[0].feared_states[1]", "persons[0].habitual_residence"]
    assert "Honduras" not in r["message"]
