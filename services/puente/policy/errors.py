"""Errors of the policy engine, each with a stable ``reason`` code.

Load-time problems carry the file and line they were found at, so ``puente policy check`` and a
refused reload can point an editor at the exact place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from puente.errors import PuenteError


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found while loading a policy set: where, what, and its stable code."""

    file: str
    line: int
    code: str
    message: str
    severity: str = "error"  # "error" refuses the set; "warning" is reported and kept

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: [{self.code}] {self.message}"


class PolicyError(PuenteError):
    """Base of the policy engine's errors."""

    reason = "POLICY_ERROR"


class PolicyLoadError(PolicyError):
    """A policy set could not be loaded; ``problems`` lists every error with file and line."""

    reason = "POLICY_INVALID"

    def __init__(self, problems: list[Problem], *, root: Path | None = None) -> None:
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        head = f"{len(errors)} error(s) in the policy set" + (f" at {root}" if root else "")
        super().__init__(
            head + ":\n" + "\n".join(f"  {p}" for p in errors),
            hint="fix the files and run `puente policy check`",
        )


class UnknownRecipientError(PolicyError):
    """A decision was asked for a recipient that is not a member state."""

    reason = "POLICY_UNKNOWN_RECIPIENT"


class UnknownNoticeTypeError(PolicyError):
    """A decision was asked for a notice type the policy set does not know."""

    reason = "POLICY_UNKNOWN_NOTICE_TYPE"


class CelCompileError(PolicyError):
    """A CEL condition is malformed, ill-typed or uses a construct the compiler refuses.

    ``offset`` is the character offset inside the expression, ``line_offset`` how many lines into
    the expression the problem is (the loader adds the YAML line of the expression).
    """

    reason = "POLICY_CEL_UNSUPPORTED"

    def __init__(self, message: str, *, offset: int = 0, text: str = "", reason: str | None = None):
        self.offset = offset
        self.line_offset = text.count("\n", 0, offset)
        super().__init__(message, reason=reason)


class CelEvalError(PolicyError):
    """A compiled CEL condition hit a CEL runtime error (null selection, index out of range,
    division by zero, overflow). The engine handles it fail-closed."""

    reason = "POLICY_CEL_EVAL_ERROR"
