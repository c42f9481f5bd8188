"""The ``puente policy`` commands, through Typer's test runner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from puente.app.commands.policy import app
from tests.unit.policy.conftest import FIXTURES, POLICIES, SCHEMAS
from tests.unit.policy.notices import case_notice, consular, consular_person, person, to_json

runner = CliRunner()
DIRS = ["--policies", str(POLICIES), "--schemas", str(SCHEMAS)]


def _write(tmp_path: Path, name: str, notice: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(to_json(notice)))
    return path


def test_check_ok() -> None:
    result = runner.invoke(app, ["check", *DIRS])
    assert result.exit_code == 0, result.output
    assert "ok: 22 files" in result.output


def test_check_reports_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(FIXTURES / "base", root)
    shutil.copytree(FIXTURES / "broken" / "shadowed-rule", root, dirs_exist_ok=True)
    result = runner.invoke(app, ["check", "--policies", str(root), "--schemas", str(SCHEMAS)])
    assert result.exit_code == 1
    assert "states/MX.yaml:18: error: [POLICY_SHADOWED_RULE]" in result.output


def test_simulate_json_contract(tmp_path: Path) -> None:
    notice = consular(
        origin="US",
        event="ARREST",
        person=consular_person(("BZ",), requested_consular_notification=False),
    )
    path = _write(tmp_path, "n.json", notice)
    result = runner.invoke(app, ["simulate", str(path), "--json", *DIRS])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["contract"] == "puente.policy.simulate/v1"
    assert doc["notice_type"] == "ConsularNotification" and doc["origin"] == "US"
    assert doc["policy_version"].startswith("sha256:")
    by = {d["recipient"]: d for d in doc["decisions"]}
    assert len(by) == 20
    assert by["BZ"]["action"] == "share" and "vccr.36-mandatory" in by["BZ"]["rules"]
    assert by["BZ"]["payload"]["person"]["date_of_birth"] == "1988-02-03"
    assert by["GT"]["action"] == "withhold" and by["GT"]["payload"] is None
    expected_keys = {
        "notice_id", "notice_type", "origin", "recipient", "action", "rules", "legal_bases",
        "purposes", "handling", "handling_conditions", "retention_days", "reasons",
        "removed_persons", "transforms", "errors", "policy_version", "payload",
        "person_reasons",
    }  # fmt: skip
    assert set(by["BZ"]) == expected_keys


def test_simulate_table(tmp_path: Path) -> None:
    path = _write(tmp_path, "n.json", case_notice())
    result = runner.invoke(app, ["simulate", str(path), *DIRS])
    assert result.exit_code == 0, result.output
    assert "ORIGIN_IS_RECIPIENT" in result.output


def test_explain(tmp_path: Path) -> None:
    notice = case_notice(persons=[person("p1"), person("p2", ("HN",), protection_status="REFUGEE")])
    path = _write(tmp_path, "n.json", notice)
    result = runner.invoke(app, ["explain", str(path), "--to", "HN", *DIRS])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "floor: asylum confidentiality: protects p2" in out
    assert "mx.case.rcm-smuggling-trafficking (states/MX.yaml:" in out
    assert "not reached" in out
    assert "decision: share_transformed" in out


def test_diff(tmp_path: Path) -> None:
    new = tmp_path / "new"
    shutil.copytree(POLICIES, new)
    mx = new / "states" / "MX.yaml"
    # Proposed change: MX stops sharing smuggling cases with the RCM.
    mx.write_text(mx.read_text().replace("to: [RCM]", "to: [MIRPS]"))
    notices = tmp_path / "notices.jsonl"
    notices.write_text(
        "\n".join(
            json.dumps({"type": t, "notice": to_json(n)})
            for t, n in [("CaseNotice", case_notice()), ("ConsularNotification", consular())]
        )
    )
    args = ["diff", str(POLICIES), str(new), "--notices", str(notices), "--schemas", str(SCHEMAS)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["contract"] == "puente.policy.diff/v1" and doc["notices"] == 2
    lost = {c["recipient"] for c in doc["changes"] if c["change"] == "loses"}
    assert lost == {"CA", "US"}  # RCM members outside MIRPS
    assert doc["summary"]["loses"] == 2 and doc["summary"]["gains"] == 0
    human = runner.invoke(app, args)
    assert "2 losses" in human.output
