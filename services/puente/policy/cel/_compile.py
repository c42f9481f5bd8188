"""From text to a Python function: parse, type-check and generate, then compile the generated
source once into a function that runs in the namespace of the runtime helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from puente.policy.cel._codegen import generate
from puente.policy.cel._parser import parse
from puente.policy.cel._runtime import HELPERS
from puente.policy.errors import CelCompileError
from puente.policy.types import CelType


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled condition: call it with the activation's values in ``variables`` order."""

    source: str
    fn: Callable[..., bool]
    variables: tuple[str, ...]
    used: frozenset[str]
    python: str  # the generated Python source, for `puente policy explain --verbose` and audits

    def __call__(self, *args: Any) -> bool:
        return self.fn(*args)


def compile_condition(
    text: str, variables: dict[str, CelType], *, name: str = "<cel>"
) -> Condition:
    """Parse, type-check and compile ``text`` over the typed ``variables`` into a Python function.

    The function takes the variables positionally in the order of ``variables`` and returns a
    bool, or raises :class:`CelEvalError` where CEL evaluation errors. Refusals raise
    :class:`CelCompileError` with the offset of the offending construct.
    """
    try:
        return _compile(text, variables, name)
    except CelCompileError:
        raise
    except Exception as exc:  # a bug or a limit of the compiler: refuse, never crash
        raise CelCompileError(
            f"the policy compiler could not compile this condition ({type(exc).__name__}: "
            f"{str(exc)[:200]}); simplify it",
            text=text,
        ) from exc


def _compile(text: str, variables: dict[str, CelType], name: str) -> Condition:
    generated = generate(parse(text), text, variables)
    namespace: dict[str, Any] = dict(HELPERS)
    namespace.update(generated.consts)
    exec(compile(generated.python, name, "exec"), namespace)  # noqa: S102 - source generated from a checked AST
    return Condition(text, namespace["_cond"], tuple(variables), generated.used, generated.python)
