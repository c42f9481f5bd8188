from __future__ import annotations

import orjson
from typer.testing import CliRunner

from puente.app.commands.schemas import app

from .conftest import FIXTURES, SCHEMAS

runner = CliRunner()


def test_list_and_show() -> None:
    out = runner.invoke(app, ["list", "--dir", str(SCHEMAS)])
    assert out.exit_code == 0 and "CaseNotice" in out.output
    out = runner.invoke(app, ["show", "CaseNotice", "--dir", str(SCHEMAS)])
    assert out.exit_code == 0 and orjson.loads(out.output)["name"] == "CaseNotice"
    out = runner.invoke(app, ["show", "CaseNotice", "--canonical", "--dir", str(SCHEMAS)])
    assert out.output.startswith('{"name":"puente.CaseNotice"')


def test_check_passes_and_refuses_a_breaking_change() -> None:
    assert runner.invoke(app, ["check", "--dir", str(SCHEMAS)]).exit_code == 0
    assert runner.invoke(app, ["check", "--dir", str(FIXTURES / "evolution-ok")]).exit_code == 0
    out = runner.invoke(app, ["check", "--dir", str(FIXTURES / "evolution-broken")])
    assert out.exit_code == 1 and "persons[].photo_ref" in out.output
