"""policies/triggers.yaml: the shipped set, and every refusal with its file, line and code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from puente.app.commands.policy import app as policy_app
from puente.warnings.loader import (
    PLACES_FILE,
    TRIGGERS_FILE,
    TriggerLoadError,
    collect_trigger_problems,
    load_triggers,
)
from puente.warnings.tables import Dimension
from puente.warnings.triggers import Measure, TriggerSet
from tests.unit.warnings.conftest import ROOT

runner = CliRunner()


def test_the_shipped_triggers(shipped: TriggerSet) -> None:
    ids = [t.id for t in shipped.triggers]
    assert ids == [
        "detentions.nationality-surge",
        "deaths.border-area",
        "returns.unaccompanied-children",
        "smuggling.new-route",
    ]
    assert shipped.k == 5 and shipped.version.startswith("sha256:") and shipped.number >= 1
    for t in shipped.triggers:
        assert t.description and "Los Angeles Declaration" in t.legal_basis
        assert set(t.purposes) <= {
            "HUMANITARIAN_ASSISTANCE",
            "CHILD_PROTECTION",
            "VICTIM_PROTECTION",
        }
        assert t.over and t.notify and t.baseline_windows >= 1
    det, deaths, children, routes = shipped.triggers
    assert det.table.events == ("DETENTION",) and det.table.by == (Dimension.NATIONALITY,)
    assert det.threshold.ratio == 3 and det.baseline_windows == 28 and len(det.over) == 7
    assert deaths.table.window_ms == 72 * 3_600_000 and deaths.table.by == (Dimension.PLACE,)
    assert children.table.unaccompanied_minor is True and children.table.window_ms == 7 * 86_400_000
    assert routes.measure is Measure.STATES and routes.new_only
    # An origin counts only what some trigger reads from it.
    assert [t.id for t in shipped.tables_for("JM")] == sorted(
        t.table.id for t in (children, routes)
    )
    assert shipped.gazetteer.admin1("PA", "Lajas Blancas") == "PA/Darién"


def test_no_triggers_file_means_no_triggers(tmp_path: Path) -> None:
    shutil.copy(ROOT / "policies" / "members.yaml", tmp_path / "members.yaml")
    ts, problems = collect_trigger_problems(tmp_path, ROOT / "schemas")
    assert ts is not None and ts.triggers == () and problems == []


GOOD = (ROOT / "policies" / TRIGGERS_FILE).read_text(encoding="utf-8")


def _dir(tmp_path: Path, triggers: str, places: str | None = None) -> Path:
    d = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", d)
    (d / TRIGGERS_FILE).write_text(triggers, encoding="utf-8")
    if places is not None:
        (d / PLACES_FILE).write_text(places, encoding="utf-8")
    return d


def _line(text: str, needle: str) -> int:
    return text.splitlines().index(next(x for x in text.splitlines() if needle in x)) + 1


CASES = [
    # (replace in the shipped file, by, the expected line: (text on it, which occurrence), code)
    (
        "events: [DETENTION]",
        "events: [DETENTIONS]",
        ("events: [DETENTIONS]", 0),
        "TRIGGER_UNKNOWN_EVENT",
    ),
    (
        "by: [route]",
        "by: [route, place, route]",
        ("by: [route, place", 0),
        "TRIGGER_DIMENSION_NOT_OF_TYPE",
    ),
    ("by: [place]", "by: [route]", ("by: [route]", 0), "TRIGGER_DIMENSION_NOT_OF_TYPE"),
    ("baseline: 30d", "baseline: 31d", ("baseline: 31d", 0), "TRIGGER_BASELINE_NOT_MULTIPLE"),
    (
        "over: [northern-route]",
        "over: [northern-rout]",
        ("over: [northern-rout]", 0),
        "TRIGGER_UNKNOWN_GROUP",
    ),
    ("notify: [ALL]", "notify: [XX]", ("notify: [XX]", 0), "TRIGGER_UNKNOWN_STATE"),
    (
        "purposes: [HUMANITARIAN_ASSISTANCE]",
        "purposes: [CRIMINAL_INVESTIGATION]",
        ("purposes: [CRIMINAL", 0),
        "TRIGGER_PURPOSE_NOT_PROTECTION",
    ),
    ("window: 1d", "window: 1w", ("window: 1w", 0), "TRIGGER_SHAPE"),
    (
        "alert: {ratio: 6, min_count: 100}",
        "alert: {ratio: 2, min_count: 100}",
        ("alert: {ratio: 2", 0),
        "TRIGGER_ALERT_BELOW_THRESHOLD",
    ),
    (
        "  - id: deaths.border-area",
        "  - id: detentions.nationality-surge",
        ("- id: detentions.nationality-surge", 1),
        "TRIGGER_DUPLICATE_ID",
    ),
    ("measure: states", "measure: people", ("measure: people", 0), "TRIGGER_UNKNOWN_MEASURE"),
    ("type: CaseNotice", "type: Notice", ("type: Notice", 0), "TRIGGER_UNKNOWN_TYPE"),
    ("k: 5", "k: 5\nk: 6", ("k: 6", 0), "POLICY_YAML_DUPLICATE_KEY"),
]


@pytest.mark.parametrize(
    ("old", "new", "where", "code"), CASES, ids=[c[3] + str(i) for i, c in enumerate(CASES)]
)
def test_a_problem_names_its_file_line_and_code(
    tmp_path: Path, old: str, new: str, where: tuple[str, int], code: str
) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    ts, problems = collect_trigger_problems(_dir(tmp_path, text), ROOT / "schemas")
    errors = [p for p in problems if p.severity == "error"]
    needle, nth = where
    line = [i + 1 for i, x in enumerate(text.splitlines()) if needle in x][nth]
    assert ts is None
    assert (TRIGGERS_FILE, line, code) in {(p.file, p.line, p.code) for p in errors}, errors


def test_windows_of_different_lengths_over_the_same_notices_are_refused(tmp_path: Path) -> None:
    extra = """
  - id: detentions.weekly
    description: weekly detentions
    purposes: [HUMANITARIAN_ASSISTANCE]
    legal_basis: Los Angeles Declaration (2022)
    counts: {type: ConsularNotification, events: [DETENTION, ARREST], by: [nationality]}
    over: [MX]
    window: 7d
    baseline: 28d
    threshold: {ratio: 3, min_count: 40}
    notify: [MX]
"""
    text = GOOD + extra
    ts, problems = collect_trigger_problems(_dir(tmp_path, text), ROOT / "schemas")
    found = [p for p in problems if p.code == "TRIGGER_WINDOWS_OVERLAP"]
    assert ts is None and found and found[0].line == _line(text, "id: detentions.weekly")


def test_overlapping_tables_that_do_not_nest_are_reported(tmp_path: Path) -> None:
    extra = """
  - id: detentions.by-place
    description: detentions by place
    purposes: [HUMANITARIAN_ASSISTANCE]
    legal_basis: Los Angeles Declaration (2022)
    counts: {type: ConsularNotification, events: [DETENTION], by: [place]}
    over: [MX]
    window: 1d
    baseline: 28d
    threshold: {ratio: 3, min_count: 40}
    notify: [MX]
"""
    ts, problems = collect_trigger_problems(_dir(tmp_path, GOOD + extra), ROOT / "schemas")
    assert ts is not None  # a warning, not a refusal
    assert [p.code for p in problems] == ["TRIGGER_TABLES_OVERLAP"]
    assert problems[0].severity == "warning"


def test_an_ambiguous_place_is_refused(tmp_path: Path) -> None:
    places = (
        "illustrative: true\nplaces:\n  MX:\n    Chiapas: [Tapachula]\n    Oaxaca: [Tapachula]\n"
    )
    ts, problems = collect_trigger_problems(_dir(tmp_path, GOOD, places), ROOT / "schemas")
    assert ts is None
    assert [(p.file, p.line, p.code) for p in problems] == [
        (PLACES_FILE, 5, "TRIGGER_PLACE_AMBIGUOUS")
    ]
    with pytest.raises(TriggerLoadError) as err:
        load_triggers(_dir(tmp_path / "again", GOOD, places), ROOT / "schemas")
    assert "places.yaml:5" in str(err.value)


def test_policy_check_checks_the_triggers(tmp_path: Path) -> None:
    ok = runner.invoke(policy_app, ["check", "--policies", str(ROOT / "policies")])
    assert ok.exit_code == 0, ok.output
    assert "4 early-warning triggers" in ok.output
    broken = _dir(tmp_path, GOOD.replace("events: [DEATH]", "events: [DEAD]"))
    bad = runner.invoke(policy_app, ["check", "--policies", str(broken)])
    assert bad.exit_code == 1
    line = _line(GOOD, "events: [DEATH]")
    assert f"triggers.yaml:{line}: error: [TRIGGER_UNKNOWN_EVENT]" in bad.output.replace("\n", "")
