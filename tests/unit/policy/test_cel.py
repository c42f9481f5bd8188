"""The CEL compiler: what it accepts, what it refuses (with the offset), and error semantics."""

from __future__ import annotations

import json
from typing import Any

import pytest

from puente.policy.cel import MAX_DEPTH, MAX_LENGTH, compile_condition
from puente.policy.engine import UnknownOriginError
from puente.policy.errors import (
    CelCompileError,
    CelEvalError,
    UnknownNoticeTypeError,
    UnknownRecipientError,
)
from puente.policy.transforms import PseudonymKeys
from puente.policy.types import STRING, CelType, ListT, record_type
from tests.unit.policy.conftest import SCHEMAS
from tests.unit.policy.notices import case_notice, consular

CASE = record_type(json.loads((SCHEMAS / "CaseNotice" / "v1.avsc").read_text()))
VARS: dict[str, CelType] = {"notice": CASE, "recipient": STRING, "groups": ListT(STRING)}


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
        # Each of these crashed the loader before it was refused as it is now.
        ("'\\UFFFFFFFF' == notice.summary", "POLICY_CEL_SYNTAX", 1),
        ("'\\uD800' == notice.summary", "POLICY_CEL_SYNTAX", 1),
        ("notice.summary == 'a\\q'", "POLICY_CEL_SYNTAX", 20),
        ("notice.retention_days == 0123", "POLICY_CEL_SYNTAX", 25),
        ("notice.retention_days == " + "9" * 5000, "POLICY_CEL_SYNTAX", 25),
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


def test_unknown_inputs_are_refused(ps: object, keys: PseudonymKeys) -> None:
    from puente.policy.engine import PolicySet

    assert isinstance(ps, PolicySet)
    with pytest.raises(UnknownRecipientError):
        ps.decide(case_notice(), "CaseNotice", "XX", keys)
    with pytest.raises(UnknownNoticeTypeError):
        ps.decide(case_notice(), "DeliveryReceipt", "GT", keys)
    with pytest.raises(UnknownOriginError):
        ps.decide_all(case_notice(origin="VE"), "puente.CaseNotice", keys)


@pytest.mark.parametrize(
    "build",
    [
        lambda n: "(" * n + "true" + ")" * n,
        lambda n: "!" * n + "true",
        lambda n: " || ".join(["notice.persons[0].minor"] * n),
        lambda n: " && ".join(["notice.summary == 'x'"] * n),
        lambda n: "+".join(["notice.retention_days"] * n) + " > 0",
        lambda n: "true ? false : " * n + "true",
        lambda n: "".join(f"notice.persons.exists(p{i}, " for i in range(n)) + "true" + ")" * n,
        lambda n: "size(" + "[" * n + "1" + "]" * n + ") == 1",
    ],
)
def test_nesting_is_limited_below_what_python_can_compile(build: Any) -> None:
    """Close to the limit, the deepest forms compile (and so does the Python generated for them);
    past it, and for a 3,000-term chain, a refusal with its reason, never a RecursionError."""
    compile_condition(build(MAX_DEPTH - 8), VARS)
    for n in (MAX_DEPTH + 1, 3000):
        with pytest.raises(CelCompileError) as err:
            compile_condition(build(n), VARS)
        assert err.value.reason == "POLICY_CEL_LIMIT", err.value


def test_an_overlong_expression_is_refused() -> None:
    with pytest.raises(CelCompileError) as err:
        compile_condition("notice.summary == '" + "x" * MAX_LENGTH + "'", VARS)
    assert err.value.reason == "POLICY_CEL_LIMIT"


def test_non_finite_literals_and_null_lookups_evaluate() -> None:
    """Two conditions that compiled but failed on every notice with a Python error (a bare
    ``inf`` in the generated code; a record looked up in a set)."""
    assert run("1e999 > 0.0") is True and run("-1e999 < 0.0") is True
    cons = record_type(json.loads((SCHEMAS / "ConsularNotification" / "v2.avsc").read_text()))
    cond = compile_condition("notice.consular_contact in [null]", {"notice": cons})
    assert cond(consular(consular_contact=None)) is True
    assert cond(consular(consular_contact={"post": "p", "contact": "c"})) is False
