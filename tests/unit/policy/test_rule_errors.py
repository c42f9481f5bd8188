"""A rule whose condition fails at run time fails closed for that recipient only: withheld with
RULE_ERROR and the rule's id, never a broader later rule in its place, never the whole notice."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from puente.policy.engine import RULE_ERROR, PolicySet
from puente.policy.loader import load_policy_set
from puente.policy.transforms import PseudonymKeys
from tests.unit.policy.conftest import FIXTURES, SCHEMAS
from tests.unit.policy.notices import case_notice, person

KEYS = PseudonymKeys(b"k" * 32)
CN = "CaseNotice"


def _with_rule(tmp_path: Path, action: str, when: str) -> PolicySet:
    """The fixture set with one more MX rule for US before MX's share-with-everyone rule."""
    root = tmp_path / "p"
    shutil.copytree(FIXTURES / "base", root)
    share = (
        "    purposes: [CRIMINAL_INVESTIGATION, PROSECUTION]\n"
        "    handling: H0\n"
        "    retention_days: 30\n"
        if action == "share"
        else "    reason: TEST_REASON\n"
    )
    rule = (
        "  - id: mx.test.fragile\n"
        "    types: [CaseNotice]\n"
        "    to: [US]\n"
        f"    when: {when!r}\n"
        f"    action: {action}\n"
        f"{share}"
        "    legal_basis: fragile basis\n"
    )
    mx = root / "states" / "MX.yaml"
    mx.write_text(mx.read_text().replace("rules:\n", "rules:\n" + rule, 1))
    return load_policy_set(root, SCHEMAS)


@pytest.mark.parametrize("action", ["share", "withhold"])
def test_a_failing_rule_withholds_from_that_recipient_only(tmp_path: Path, action: str) -> None:
    ps = _with_rule(tmp_path, action, "notice.persons[0].minor")
    empty = case_notice(persons=[])  # persons[0] does not exist: a CEL error
    by = {d.recipient: d for d in ps.decide_all(empty, CN, KEYS)}
    us = by["US"]
    assert us.action == "withhold" and us.reasons == (RULE_ERROR,)
    assert us.errors == ("mx.test.fragile",) and us.rules == ("mx.test.fragile",)
    assert us.legal_bases == ()  # the rule did not apply: its basis is not cited
    # MX's broader share rule follows in US's plan; it must not decide in the failing rule's
    # place. GT is not covered by the failing rule and is decided as usual.
    assert by["GT"].shared and by["GT"].rules[0] == "mx.case.smuggling"
    assert by["GT"].errors == ()
    # On a notice where the condition can be evaluated, the rule simply applies.
    ok = ps.decide(case_notice(persons=[person(minor=True)]), CN, "US", KEYS)
    assert ok.errors == () and ok.rules[0] == "mx.test.fragile"


def test_any_exception_is_a_rule_error_not_a_crash(tmp_path: Path) -> None:
    """Not only CEL's own errors: a Python error inside a condition (here a record missing from
    a hand-made notice) is that rule's error too."""
    ps = _with_rule(tmp_path, "share", "notice.evaluation.source_reliability == 'A'")
    odd = case_notice(evaluation=None)
    decisions = {d.recipient: d for d in ps.decide_all(odd, CN, KEYS)}
    assert decisions["US"].reasons == (RULE_ERROR,)
    assert decisions["GT"].shared
