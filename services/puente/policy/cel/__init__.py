"""CEL conditions compiled once, at load, to native Python callables.

The policy hot path cannot afford an interpreter (cel-python takes about 1 ms per evaluation), so
each condition is parsed here, type-checked against the Avro schema of the notice type it is
written for, and turned into Python source that :func:`compile` makes into one function. The
subset of CEL accepted is documented in policies/SEMANTICS.md; anything outside it is refused
with a :class:`~puente.policy.errors.CelCompileError` carrying the offset, which the loader turns
into a file and line. cel-python stays the oracle in the tests, never a runtime dependency.

Semantics kept from the CEL specification:
- strict typing: no implicit int/double conversion, no comparison of unrelated types (refused at
  load, where cel-python would fail at run time with "no matching overload");
- ``&&``, ``||``, ``exists`` and ``all`` absorb errors the way CEL does (``error || true`` is
  true), the other operators propagate them;
- int arithmetic is 64-bit signed and raises on overflow; ``/`` and ``%`` truncate toward zero.
A runtime error surfaces as :class:`~puente.policy.errors.CelEvalError`.

Whatever text it is given, :func:`compile_condition` either returns a condition or raises
:class:`~puente.policy.errors.CelCompileError`: expressions nested deeper than :data:`MAX_DEPTH`
or longer than :data:`MAX_LENGTH` are refused before Python's own recursion limits are reached,
and any other failure of the compiler is turned into a refusal too (a policy file must never
crash the service that loads it).

The rooms, in the order a condition goes through them: ``_lexer`` (tokens, string escapes),
``_parser`` (the syntax tree of ``_ast``, within the limits), ``_codegen`` (the type checker and
the Python generator, one pass), ``_compile`` (the generated source made into a function) and
``_runtime`` (the helpers that function calls). This module is the one import path; the others
may change.
"""

from puente.policy.cel._compile import Condition, compile_condition
from puente.policy.cel._parser import MAX_DEPTH, MAX_LENGTH

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "Condition", "compile_condition"]
