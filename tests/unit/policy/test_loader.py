"""Load-time validation: every broken fixture is refused with the right file, line and code."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from puente.policy.errors import PolicyLoadError
from puente.policy.loader import _validate, collect_problems, load_policy_set
from puente.policy.model import Transform
from puente.policy.transforms import CheckedTransform, check_transform
from tests.unit.policy.conftest import FIXTURES, POLICIES, SCHEMAS

BROKEN = sorted(p.name for p in (FIXTURES / "broken").iterdir() if p.is_dir())
MARK = re.compile(r"(?:#|//) <- expected (POLICY_[A-Z_]+)")


def overlay(case: str, tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    shutil.copytree(FIXTURES / "base", root)
    shutil.copytree(FIXTURES / "broken" / case, root, dirs_exist_ok=True)
    return root


def expectations(case: str) -> list[tuple[str, int, str]]:
    """(file, line, code) from the ``<- expected CODE`` marks in the case's files."""
    out = []
    case_dir = FIXTURES / "broken" / case
    for path in sorted(case_dir.rglob("*.yaml")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = MARK.search(line)
            if m:
                out.append((path.relative_to(case_dir).as_posix(), n, m.group(1)))
    return out


def test_shipped_policies_load_clean() -> None:
    ps, problems = collect_problems(POLICIES, SCHEMAS)
    assert ps is not None, [str(p) for p in problems]
    assert [p for p in problems if p.severity == "error"] == []
    assert len(ps.members) == 20
    assert ps.version.startswith("sha256:") and len(ps.version) == 7 + 64


def test_base_fixture_is_valid() -> None:
    ps = load_policy_set(FIXTURES / "base", SCHEMAS)
    assert ps.members == ("GT", "MX", "US")


def test_every_broken_case_has_an_expectation() -> None:
    assert len(BROKEN) >= 20
    for case in BROKEN:
        assert expectations(case), f"{case} has no '<- expected CODE' mark"


@pytest.mark.parametrize("case", BROKEN)
def test_broken_set_is_refused_with_file_and_line(case: str, tmp_path: Path) -> None:
    root = overlay(case, tmp_path)
    ps, problems = collect_problems(root, SCHEMAS)
    assert ps is None
    found = {(p.file, p.line, p.code) for p in problems if p.severity == "error"}
    for expected in expectations(case):
        assert expected in found, f"{case}: expected {expected}, got {sorted(found)}"
    with pytest.raises(PolicyLoadError) as err:
        load_policy_set(root, SCHEMAS)
    assert err.value.reason == "POLICY_INVALID"
    file, line, _ = expectations(case)[0]
    assert f"{file}:{line}:" in str(err.value)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    root = overlay("duplicate-rule-id", tmp_path)
    shutil.copytree(FIXTURES / "broken" / "floor-incomplete", root, dirs_exist_ok=True)
    _, problems = collect_problems(root, SCHEMAS)
    codes = {p.code for p in problems}
    assert {"POLICY_DUPLICATE_ID", "POLICY_FLOOR_INCOMPLETE"} <= codes


def test_version_is_a_content_hash(tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(FIXTURES / "base", root)
    v1 = load_policy_set(root, SCHEMAS).version
    assert load_policy_set(root, SCHEMAS).version == v1
    (root / "states" / "GT.yaml").write_text(
        (root / "states" / "GT.yaml").read_text() + "# a comment changes the bytes\n"
    )
    assert load_policy_set(root, SCHEMAS).version != v1


def test_missing_state_file_is_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(FIXTURES / "base", root)
    (root / "states" / "GT.yaml").unlink()
    ps = load_policy_set(root, SCHEMAS)
    assert any("POLICY_STATE_WITHOUT_FILE" in w for w in ps.warnings)


def test_each_transformation_is_checked_once_per_notice_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rules repeat transformations (the shipped set lists a dozen distinct ones in forty rules):
    each is checked against a schema once, and rules listing the same ones share one applier."""
    calls: Counter[tuple[str, Transform]] = Counter()
    real = check_transform

    def counting(schema: dict[str, Any], tr: Transform) -> CheckedTransform:
        calls[(schema["name"], tr)] += 1
        return real(schema, tr)

    monkeypatch.setattr(_validate, "check_transform", counting)
    ps = load_policy_set(POLICIES, SCHEMAS)
    assert calls and set(calls.values()) == {1}
    listed = sum(len(r.transform_labels) for r in ps.rules for _ in r.transforms)
    assert listed > 2 * len(calls)
    appliers = [a for r in ps.rules for a in r.transforms.values()]
    assert len({id(a) for a in appliers}) < len(appliers)


def test_a_repeated_bad_transformation_is_reported_for_every_rule(tmp_path: Path) -> None:
    root = overlay("transform-unknown-field", tmp_path)
    mx = root / "states" / "MX.yaml"
    text = mx.read_text()
    rule = text[text.index("  - id: mx.a\n") :]
    mx.write_text(text + rule.replace("mx.a", "mx.b").replace("[ALL]", "[GT]"))
    _, problems = collect_problems(root, SCHEMAS)
    bad = [(p.line, p.message) for p in problems if p.code == "POLICY_BAD_TRANSFORM"]
    assert [line for line, _ in bad] == [15, 26]
    assert bad[0][1].startswith("rule mx.a (CaseNotice): persons[].passport_number: ")
    assert bad[1][1] == bad[0][1].replace("mx.a", "mx.b")


def test_too_deep_yaml_reads_the_same_from_any_caller(tmp_path: Path) -> None:
    """Python words a RecursionError by where the stack ran out; the problem must not vary with
    the depth of whoever loads the set (the service's reload, the CLI, a test)."""
    root = overlay("yaml-too-deep", tmp_path)

    def at_depth(n: int) -> list[str]:
        if n:
            return at_depth(n - 1)
        return [str(p) for p in collect_problems(root, SCHEMAS)[1]]

    seen = {tuple(at_depth(n)) for n in range(4)}
    assert seen == {
        (
            "states/MX.yaml:1: error: [POLICY_YAML_SYNTAX] unreadable YAML "
            "(RecursionError: maximum recursion depth exceeded)",
        )
    }
