"""A tiny source emitter for the generated codec functions: lines, indentation, fresh names,
and constants bound into the generated module's namespace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Emitter:
    """Collects Python source lines and the constants they refer to."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.lines: list[str] = []
        self.namespace = dict(namespace)
        self._counter = 0

    def fresh(self, prefix: str) -> str:
        """A new local or constant name."""
        self._counter += 1
        return f"{prefix}{self._counter}"

    def const(self, value: Any, prefix: str = "K") -> str:
        """Bind ``value`` to a new global name of the generated code; return the name."""
        name = self.fresh("_" + prefix)
        self.namespace[name] = value
        return name

    def line(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)

    def build(self, func_name: str, filename: str) -> Callable[..., Any]:
        """Compile the collected source and return the function ``func_name`` defined in it."""
        source = "\n".join(self.lines) + "\n"
        code = compile(source, filename, "exec")
        # The source is generated from a parsed schema, never from data: exec is safe here.
        exec(code, self.namespace)  # noqa: S102
        fn: Callable[..., Any] = self.namespace[func_name]
        fn.__source__ = source  # type: ignore[attr-defined]  # for debugging and tests
        return fn
