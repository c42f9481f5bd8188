"""``puente schemas sample`` and ``puente schemas scenario``, as the command root mounts them."""

from __future__ import annotations

import orjson
from typer.testing import CliRunner

from puente.app.commands.schemas import app
from puente.codec.jsonconv import from_json
from puente.codec.registry import Registry
from puente.codec.wire import decode
from tests.unit.codec.conftest import SCHEMAS

runner = CliRunner()


def test_sample_is_deterministic_valid_json_and_hex() -> None:
    reg = Registry.load(SCHEMAS)
    args = ["sample", "CaseNotice", "--seed", "1", "--json", "--dir", str(SCHEMAS)]
    first, second = runner.invoke(app, args), runner.invoke(app, args)
    assert first.exit_code == 0 and first.output == second.output
    record = from_json(reg, "puente.CaseNotice", orjson.loads(first.output))
    out = runner.invoke(
        app, ["sample", "CaseNotice", "--seed", "1", "--hex", "--dir", str(SCHEMAS)]
    )
    assert decode(reg, bytes.fromhex(out.output.strip())) == record


def test_scenarios() -> None:
    out = runner.invoke(app, ["scenario"])
    assert "asylum-seeker-detention" in out.output
    out = runner.invoke(app, ["scenario", "death", "--dir", str(SCHEMAS)])
    assert out.exit_code == 0 and orjson.loads(out.output)["event"] == "DEATH"
