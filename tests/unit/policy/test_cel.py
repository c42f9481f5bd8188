"""The CEL compiler: what it accepts, what it refuses (with the offset), and error semantics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from puente.policy.cel import compile_condition
from puente.policy.engine import UnknownOriginError
from puente.policy.errors import (
    CelCompileError,
    CelEvalError,
    UnknownNoticeTypeError,
    UnknownRecipientError,
)
from puente.policy.loader import load_policy_set
from puente.policy.transforms import PseudonymKeys
from puente.policy.types import STRING, ListT, record_type
from tests.unit.policy.conftest import FIXTURES, SCHEMAS
from tests.unit.policy.notices import case_notice, person

CASE = record_type(json.loads((SCHEMAS / "CaseNotice" / "v1.avsc").read_text()))
VARS = {"notice": CASE, "recipient": STRING, "groups": ListT(STRING)}


def run(text: str, notice: dict[str, object] | None = None, recipient: str = "GT") -> object:
    cond = compile_condition(text, VARS)
    try:
        return cond(notice or case_notice(), recipient, ["MIRPS"])
    except CelEvalError:
        return "error"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("notice.origin == 'MX'", True),
        ("notice.persons.exists(p, recipient in p.nationalities)", True),
        ("notice.persons.all(p, p.minor)", False),
        ("'MIRPS' in groups && size(notice.persons) == 1", True),
        ("notice.retention_days / 0 > 1", "error"),
        ("notice.retention_days / 0 > 1 || true", True),
        ("false && notice.persons[9].minor", False),
        ("notice.persons[9].minor && false", False),
        ("notice.persons[9].minor || false", "error"),
        ("-7 / 2 == -3 && -7 % 2 == -1", True),
        ("9223372036854775807 + 1 > 0", "error"),
        ("-9223372036854775808 < 0", True),
        ("notice.handling.conditions == null", True),
        ("notice.handling.conditions.startsWith('x') || true", True),
        ("notice.summary.contains('border') ? 1 == 1 : 1 == 2", True),
        ('r"a\\n" == "a\\\\n" && "\\x41\\u00e9" == "Aé"', True),
        ("notice.persons.map(p, p.person_ref) == ['p1']", True),
        ("notice.persons.filter(p, p.minor).size() == 0", True),
        ("notice.persons.exists_one(p, p.role == 'SUSPECT')", True),
        ("int('42') == 42 && string(42) == '42' && double(2) == 2.0", True),
        ("has(notice.summary) // a comment", True),
    ],
)
def test_evaluates_as_cel(text: str, expected: object) -> None:
    assert run(text) == expected


@pytest.mark.parametrize(
    ("text", "reason", "offset"),
    [
        ("notice.summary.matches('x')", "POLICY_CEL_UNSUPPORTED", 15),
        ("notice.passport == 'x'", "POLICY_CEL_UNKNOWN_FIELD", 7),
        ("notice.crime_types.exists(c, c == 'SMUGGLING')", "POLICY_CEL_UNKNOWN_SYMBOL", 34),
        ("1 == 1.0", "POLICY_CEL_TYPE", 2),
        ("notice.retention_days", "POLICY_CEL_TYPE", 0),
        ("nobody == 'x'", "POLICY_CEL_UNKNOWN_NAME", 0),
        ("notice.origin ==", "POLICY_CEL_SYNTAX", 16),
        ("{'a': 1}.size() > 0", "POLICY_CEL_UNSUPPORTED", 0),
        ("b'x' == b'x'", "POLICY_CEL_UNSUPPORTED", 0),
        ("1u == 1u", "POLICY_CEL_UNSUPPORTED", 0),
        ("notice.persons.map(p, p.minor, p.role) == []", "POLICY_CEL_TYPE", 15),
        ("notice.retention_days == null", "POLICY_CEL_TYPE", 22),
        ("notice.handling.conditions == 1", "POLICY_CEL_TYPE", 27),
        ("notice.created_at > 0", "POLICY_CEL_TYPE", 18),
        ("1.0 / 2.0 > 0.1", "POLICY_CEL_UNSUPPORTED", 4),
        ("if == 1", "POLICY_CEL_SYNTAX", 0),
    ],
)
def test_refused_at_load_with_offset(text: str, reason: str, offset: int) -> None:
    with pytest.raises(CelCompileError) as err:
        compile_condition(text, VARS)
    assert err.value.reason == reason, err.value
    assert err.value.offset == offset, err.value


def test_generated_code_is_kept_for_audit() -> None:
    cond = compile_condition("notice.origin in ['MX', 'GT']", VARS)
    assert "def _cond(" in cond.python and "frozenset" not in cond.source
    assert cond.used == frozenset({"notice"})


def test_condition_error_is_fail_closed(tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(FIXTURES / "base", root)
    mx = root / "states" / "MX.yaml"
    mx.write_text(
        mx.read_text().replace(
            "rules:\n",
            "rules:\n"
            "  - id: mx.withhold-if-first-minor\n"
            "    types: [CaseNotice]\n"
            "    to: [US]\n"
            "    when: notice.persons[0].minor\n"
            "    action: withhold\n"
            "    reason: TEST_FIRST_MINOR\n"
            "    legal_basis: test\n",
        )
    )
    ps = load_policy_set(root, SCHEMAS)
    keys = PseudonymKeys(b"k" * 32)
    empty = case_notice(persons=[])
    us = ps.decide(empty, "CaseNotice", "US", keys)  # persons[0] does not exist
    assert us.action == "withhold" and us.reasons == ("RULE_ERROR",)
    assert us.errors == ("mx.withhold-if-first-minor",)
    gt = ps.decide(empty, "CaseNotice", "GT", keys)  # the withhold rule is not for GT
    assert gt.action != "withhold" and gt.errors == ()
    adult = ps.decide(case_notice(persons=[person()]), "CaseNotice", "US", keys)
    assert adult.action != "withhold"


def test_unknown_inputs_are_refused(ps: object, keys: PseudonymKeys) -> None:
    from puente.policy.engine import PolicySet

    assert isinstance(ps, PolicySet)
    with pytest.raises(UnknownRecipientError):
        ps.decide(case_notice(), "CaseNotice", "XX", keys)
    with pytest.raises(UnknownNoticeTypeError):
        ps.decide(case_notice(), "DeliveryReceipt", "GT", keys)
    with pytest.raises(UnknownOriginError):
        ps.decide_all(case_notice(origin="VE"), "puente.CaseNotice", keys)
