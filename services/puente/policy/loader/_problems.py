"""The problems of one load, in the order they are found: every phase adds to the same list, so
one run of ``puente policy check`` lists them all, file by file and rule by rule."""

from __future__ import annotations

from puente.policy.errors import Problem


class Problems:
    """The problems found so far; errors refuse the set, warnings are kept on it."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, problem: Problem) -> None:
        self.items.append(problem)

    def error(self, file: str, line: int, code: str, message: str) -> None:
        self.items.append(Problem(file, line, code, message))

    def warn(self, file: str, line: int, code: str, message: str) -> None:
        self.items.append(Problem(file, line, code, message, "warning"))

    def about(self, files: set[str]) -> bool:
        """Whether any problem is about one of ``files``."""
        return any(p.file in files for p in self.items)

    @property
    def refused(self) -> bool:
        """Whether an error was found: the set is then refused."""
        return any(p.severity == "error" for p in self.items)

    def warnings(self) -> tuple[str, ...]:
        return tuple(str(p) for p in self.items if p.severity == "warning")


def what(exc: BaseException) -> str:
    """An unexpected exception as a problem's message shows it: its type and its first words."""
    return f"{type(exc).__name__}: {str(exc)[:200]}"
