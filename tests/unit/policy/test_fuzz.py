"""Whatever a policy file holds, loading it ends in a policy set or in the typed policy error, and
a compiled condition fails only with CEL's own error: random and grammar-built conditions, and
mutated YAML, through the compiler, the loader and the store."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from puente.policy.cel import compile_condition
from puente.policy.errors import CelCompileError, CelEvalError, PolicyLoadError
from puente.policy.loader import CEL_VARIABLES, load_policy_set, notice_schemas
from puente.policy.store import PolicyStore
from puente.policy.types import STRING, CelType, ListT, record_type
from puente.synth import Generator
from tests.unit.policy.conftest import FIXTURES, SCHEMAS

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCHEMA = notice_schemas(SCHEMAS)


def _variables(t: str) -> dict[str, CelType]:
    return {
        "notice": record_type(SCHEMA[t]),
        "type": STRING,
        "origin": STRING,
        "recipient": STRING,
        "recipient_groups": ListT(STRING),
        "mandatory_notification": ListT(STRING),
    }


VARS = {t: _variables(t) for t in SCHEMA}
assert all(tuple(v) == CEL_VARIABLES for v in VARS.values())
_GEN = Generator(17)
NOTICES: dict[str, list[dict[str, Any]]] = {
    "CaseNotice": [_GEN.case_notice() for _ in range(6)] + [_GEN.case_notice(persons=[])],
    "ConsularNotification": [_GEN.consular_notification() for _ in range(6)]
    + [_GEN.scenario("unaccompanied-minor-return").record],
}

# The pieces of conditions: names and paths of both notice types, literals at and past the
# edges (the ones that used to crash or misbehave among them), and bound macro variables.
ATOMS = [
    "notice", "notice.origin", "notice.summary", "notice.retention_days", "notice.crime_types",
    "notice.persons", "notice.persons[0]", "notice.persons[0].minor", "notice.persons[1].aliases",
    "notice.persons[0].date_of_birth", "notice.persons[0].nationalities", "notice.handling",
    "notice.handling.code", "notice.handling.conditions", "notice.evaluation",
    "notice.financial_identifiers", "notice.permitted_purposes", "notice.locations[0].latitude",
    "notice.person", "notice.person.nationalities", "notice.person.feared_states",
    "notice.return_details", "notice.return_details.safeguards", "notice.consular_contact",
    "notice.event", "notice.event_time", "notice.remarks", "recipient", "origin", "type",
    "recipient_groups", "mandatory_notification", "x", "x.minor", "x.nationalities", "y",
    "0", "1", "-1", "7", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
    "0x7f", "0123", "1u", "1.5", "0.0", "1e999", "-1e999", ".5", "'MX'", "'GT'", "''",
    "'ASYLUM_SEEKER'", "'H3'", '"\\u00e9"', '"\\UFFFFFFFF"', "'\\q'", "r'\\d'", "'''x'''",
    "b'x'", "true", "false", "null", "[]", "[null]", "['MX', 'GT']", "[1, 2]", "[[1]]", "{}",
]  # fmt: skip
BINARY = ["==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "&&", "||", "in"]
METHODS = ["size", "contains", "startsWith", "endsWith", "matches"]
MACROS = ["exists", "all", "exists_one", "filter", "map"]
FUNCTIONS = ["size", "int", "string", "double", "has", "matches", "uint"]
FIELDS = ["minor", "nationalities", "code", "role", "person_ref", "kind", "value", "nope"]


def _grow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    two = st.tuples(children, children)
    return st.one_of(
        st.builds(lambda ab, op: f"{ab[0]} {op} {ab[1]}", two, st.sampled_from(BINARY)),
        st.builds(lambda a, op: f"{op}{a}", children, st.sampled_from(["!", "-", "!!", "--"])),
        st.builds(lambda a: f"({a})", children),
        st.builds(lambda a, b, c: f"{a} ? {b} : {c}", children, children, children),
        st.builds(lambda a, f: f"{a}.{f}", children, st.sampled_from(FIELDS)),
        st.builds(lambda ab: f"{ab[0]}[{ab[1]}]", two),
        st.builds(lambda ab: f"[{ab[0]}, {ab[1]}]", two),
        st.builds(lambda a, f: f"{f}({a})", children, st.sampled_from(FUNCTIONS)),
        st.builds(lambda ab, m: f"{ab[0]}.{m}({ab[1]})", two, st.sampled_from(METHODS)),
        st.builds(
            lambda ab, m, v: f"{ab[0]}.{m}({v}, {ab[1]})",
            two,
            st.sampled_from(MACROS),
            st.sampled_from(["x", "y"]),
        ),
    )


CONDITIONS = st.recursive(st.sampled_from(ATOMS), _grow, max_leaves=10)


def _compiles_or_is_refused(text: str, t: str) -> Callable[..., Any] | None:
    try:
        return compile_condition(text, VARS[t]).fn
    except CelCompileError as exc:
        assert exc.reason.startswith("POLICY_CEL_"), exc
        return None


@FUZZ
@given(st.text(max_size=200))
def test_random_text_compiles_or_is_refused(text: str) -> None:
    for t in VARS:
        _compiles_or_is_refused(text, t)


@FUZZ
@given(CONDITIONS, st.sampled_from(sorted(VARS)), st.sampled_from(["GT", "MX", "US"]))
def test_a_compiled_condition_fails_only_with_cel_errors(text: str, t: str, to: str) -> None:
    fn = _compiles_or_is_refused(text, t)
    if fn is None:
        return
    for notice in NOTICES[t]:
        try:
            result = fn(notice, t, notice["origin"], to, ["RCM"], ["JM"])
        except CelEvalError:
            continue
        assert result is True or result is False, (text, result)


# ------------------------------------------------------------------------ the loader and the store

MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["replace", "insert", "delete", "duplicate", "indent", "chars"]),
        st.integers(min_value=0),
        st.one_of(
            st.text(max_size=40),
            CONDITIONS.map(lambda c: f"    when: {c!r}"),
            st.sampled_from(
                [
                    "  - id: x\n    types: [CaseNotice]\n    to: [ALL]\n    action: share",
                    "    when: 3",
                    "    to: []",
                    "    floor_exceptions: [{floor: asylum}]",
                    "    transform: [{field: 'persons[].minor', op: mask}]",
                    "&a [*a]",
                    "!!python/object:os.system",
                    "\t",
                    "rules: " + "[" * 200,
                ]
            ),
        ),
    ),
    min_size=1,
    max_size=4,
)
BASE_MX = (FIXTURES / "base" / "states" / "MX.yaml").read_text()
WORKDIR = Path(tempfile.mkdtemp(prefix="puente-policy-fuzz-"))
atexit.register(shutil.rmtree, WORKDIR, ignore_errors=True)
shutil.copytree(FIXTURES / "base", WORKDIR / "p")


def _mutate(text: str, mutations: list[tuple[str, int, str]]) -> str:
    lines = text.split("\n")
    for kind, at, payload in mutations:
        i = at % (len(lines) or 1)
        if kind == "replace" and lines:
            lines[i] = payload
        elif kind == "insert":
            lines.insert(i, payload)
        elif kind == "delete" and lines:
            del lines[i]
        elif kind == "duplicate" and lines:
            lines.insert(i, lines[i])
        elif kind == "indent" and lines:
            lines[i] = " " * (at % 5) + lines[i].lstrip()
        elif kind == "chars":
            flat = "\n".join(lines)
            j = at % (len(flat) + 1)
            lines = (flat[:j] + payload + flat[j:]).split("\n")
    return "\n".join(lines)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MUTATIONS)
def test_mutated_policy_files_load_or_are_refused_with_file_and_line(
    mutations: list[tuple[str, int, str]],
) -> None:
    root = WORKDIR / "p"
    (root / "states" / "MX.yaml").write_text(_mutate(BASE_MX, mutations))
    try:
        load_policy_set(root, SCHEMAS)
    except PolicyLoadError as exc:
        errors = [p for p in exc.problems if p.severity == "error"]
        assert errors
        for p in errors:
            assert p.file and p.line >= 1 and p.code.startswith("POLICY_"), p


CRASHERS = [
    "cel-escape-out-of-range",
    "cel-leading-zero",
    "cel-too-deep",
    "cel-long-chain",
    "yaml-too-deep",
    "yaml-alias-bomb",
    "ambiguous-state-file",
]


@pytest.mark.parametrize("case", [*CRASHERS, "not-utf-8"])
def test_a_broken_reload_keeps_the_running_set(case: str, tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(FIXTURES / "base", root)
    store = PolicyStore(root, SCHEMAS, secret=b"k" * 32)
    assert store.reload().ok
    running = store.current.version
    if case == "not-utf-8":
        (root / "states" / "MX.yaml").write_bytes(b"state: MX\nillustrative: \xff\xfe\n")
    else:
        shutil.copytree(FIXTURES / "broken" / case, root, dirs_exist_ok=True)
    result = store.reload()
    assert not result.ok and not result.changed
    assert result.error is not None and "states/MX.y" in str(result.error)
    assert store.current.version == running
