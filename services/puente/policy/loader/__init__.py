"""Load, validate and compile a policy directory into a :class:`~puente.policy.engine.PolicySet`.

Every problem is collected with its file and line before anything is refused, so one run of
``puente policy check`` lists them all. Errors refuse the set; warnings are kept on it. Whatever
the files hold, loading ends in a set or in a :class:`~puente.policy.errors.PolicyLoadError`:
a failure of the loader itself on some input becomes a problem of the file (and rule) being read,
never an exception that could stop the service reloading it.

Layout of a policy directory::

    members.yaml          the member list (read, owned by the exchange's operator)
    regional.yaml         groups, protection-floor citations, regional rules
    states/CC.yaml        one file per member state

Three phases, one module each: ``_read`` (files to YAML with lines and to their models),
``_validate`` (structure, references, the floor, ids, shadowing; conditions and transformations
checked by compiling them) and ``_plan`` (the precomputed plans of the
:class:`~puente.policy.engine.PolicySet`). A set with an error never reaches the plan. This module
is the one import path; the others may change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from puente.policy.engine import PolicySet
from puente.policy.errors import PolicyLoadError, Problem
from puente.policy.loader._plan import plan
from puente.policy.loader._problems import Problems, what
from puente.policy.loader._read import (
    current_version,
    file_digests,
    notice_schemas,
    policy_version,
    read,
    state_files,
)
from puente.policy.loader._validate import CEL_VARIABLES, cel_variables, validate
from puente.resources import data_dir

__all__ = [
    "CEL_VARIABLES",
    "cel_variables",
    "collect_problems",
    "current_version",
    "load_policy_set",
    "notice_schemas",
    "policy_version",
    "state_files",
]


def collect_problems(
    policies_dir: Path, schemas_dir: Path | None = None
) -> tuple[PolicySet | None, list[Problem]]:
    """Load ``policies_dir`` and return the set (None if refused) with every problem found."""
    schemas = notice_schemas(schemas_dir or data_dir("schemas"))
    problems = Problems()
    try:
        ps = _load(policies_dir.resolve(), schemas, problems)
    except Exception as exc:  # never crash on a policy directory; refuse it
        ps = None
        problems.error(".", 1, "POLICY_UNCOMPILABLE", f"the set could not be loaded ({what(exc)})")
    return ps, problems.items


def load_policy_set(policies_dir: Path, schemas_dir: Path | None = None) -> PolicySet:
    """Load, validate and compile a policy directory; :class:`PolicyLoadError` lists every error
    with file and line. Warnings are kept on ``PolicySet.warnings``."""
    ps, problems = collect_problems(policies_dir, schemas_dir)
    if ps is None:
        raise PolicyLoadError(problems, root=policies_dir)
    return ps


def _load(root: Path, schemas: dict[str, dict[str, Any]], problems: Problems) -> PolicySet | None:
    sources = read(root, problems)
    if sources is None:
        return None
    validated = validate(sources, schemas, problems)
    if problems.refused:
        return None
    return plan(
        validated,
        version=policy_version(sources.raw),
        files=tuple(sorted(name for name, _ in sources.raw)),
        warnings=problems.warnings(),
        digests=file_digests(sources),
    )
