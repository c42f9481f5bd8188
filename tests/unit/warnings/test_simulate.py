"""Simulate before you trust it: the mass movement sets off every shipped trigger on the
movement, the background alone sets off none of the movement triggers, and the output is the
same bytes for the same seed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from puente.app.commands.warnings import app

runner = CliRunner()


def _run(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["simulate", *args, "--json"])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.output)
    assert doc["contract"] == "puente.warnings.simulate/v1"
    return doc


@pytest.fixture(scope="module")
def movement() -> dict[str, Any]:
    return _run("--scenario", "mass-movement", "--days", "60")


def test_the_mass_movement_fires_every_trigger_on_it(movement: dict[str, Any]) -> None:
    m = movement["movement"]
    assert m["nationality"] == "VE" and m["detentions_in"] == ["PA", "CR", "MX"]
    by_id = {t["id"]: t for t in movement["triggers"]}
    assert set(by_id) == {
        "detentions.nationality-surge",
        "deaths.border-area",
        "returns.unaccompanied-children",
        "smuggling.new-route",
    }
    for t in by_id.values():
        assert t["fired_on_movement"], t["id"]
        # Never before the movement began, and within the movement plus one window.
        assert 0 < t["detection_delay_days"] <= (m["last_day"] - m["first_day"]), t
        hits = [e for e in t["episodes"] if e["movement"]]
        assert all(e["ended_at_day"] is not None for e in hits), t  # each one ended
    surge = [e for e in by_id["detentions.nationality-surge"]["episodes"] if e["movement"]]
    assert surge[0]["subject"] == {"nationality": "VE"}
    assert by_id["detentions.nationality-surge"]["detection_delay_days"] <= 5
    # It ends after the movement: not while detentions are still at their peak.
    plateau_end = m["first_day"] + 16
    assert surge[-1]["ended_at_day"] >= plateau_end
    assert by_id["deaths.border-area"]["episodes"][0]["subject"] == {"place": "PA/Darién"}
    statuses = {w["status"] for w in movement["warnings"]}
    assert statuses >= {"STARTED", "ENDED"}


def test_the_background_alone_sets_off_no_movement_trigger() -> None:
    doc = _run("--scenario", "background", "--days", "60", "--seed", "3")
    assert doc["movement"] is None
    by_id = {t["id"]: t for t in doc["triggers"]}
    for trigger in ("detentions.nationality-surge", "returns.unaccompanied-children"):
        assert by_id[trigger]["episodes"] == [], by_id[trigger]
    assert all(not t["fired_on_movement"] for t in doc["triggers"])
    assert all(t["false_alarms"] == len(t["episodes"]) for t in doc["triggers"])


def test_deterministic_by_seed() -> None:
    a = runner.invoke(
        app, ["simulate", "--scenario", "background", "--days", "3", "--seed", "5", "--json"]
    )
    b = runner.invoke(
        app, ["simulate", "--scenario", "background", "--days", "3", "--seed", "5", "--json"]
    )
    assert a.exit_code == 0 and a.output == b.output
    c = runner.invoke(app, ["simulate", "--scenario", "nothing", "--days", "3"])
    assert c.exit_code == 2 and "unknown scenario" in c.output
