"""The runtime of compiled conditions: the helpers the generated code calls.

They raise :class:`~puente.policy.errors.CelEvalError` exactly where CEL evaluation errors, and
``_and``, ``_or``, ``_exists`` and ``_all`` absorb errors the way CEL's logical operators and
macros do. :data:`HELPERS` is the namespace every generated function is executed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from puente.policy.errors import CelEvalError

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1


def _i64(x: int) -> int:
    if _I64_MIN <= x <= _I64_MAX:
        return x
    raise CelEvalError("int overflow")


def _idiv(a: int, b: int) -> int:
    if b == 0:
        raise CelEvalError("divide by zero")
    q = abs(a) // abs(b)
    return _i64(q if (a >= 0) == (b >= 0) else -q)


def _imod(a: int, b: int) -> int:
    if b == 0:
        raise CelEvalError("modulus by zero")
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def _sel(m: Any, name: str) -> Any:
    if m is None:
        raise CelEvalError(f"null does not support field selection (.{name})")
    return m[name]


def _has(m: Any, name: str) -> bool:
    # cel-python answers false, not an error, for has() through a null; follow the oracle.
    return m is not None and name in m


def _nn(x: Any) -> Any:
    if x is None:
        raise CelEvalError("null where a value is needed")
    return x


def _idx(seq: Sequence[Any], i: int) -> Any:
    if 0 <= i < len(seq):
        return seq[i]
    raise CelEvalError(f"index {i} out of range")


def _and(a: Callable[[], bool], b: Callable[[], bool]) -> bool:
    try:
        left = a()
    except CelEvalError:
        if b() is False:
            return False
        raise
    if left is False:
        return False
    return b()


def _or(a: Callable[[], bool], b: Callable[[], bool]) -> bool:
    try:
        left = a()
    except CelEvalError:
        if b() is True:
            return True
        raise
    if left is True:
        return True
    return b()


def _exists(items: Iterable[Any], pred: Callable[[Any], bool]) -> bool:
    err: CelEvalError | None = None
    for x in items:
        try:
            if pred(x):
                return True
        except CelEvalError as e:
            err = e
    if err is not None:
        raise err
    return False


def _all(items: Iterable[Any], pred: Callable[[Any], bool]) -> bool:
    err: CelEvalError | None = None
    for x in items:
        try:
            if not pred(x):
                return False
        except CelEvalError as e:
            err = e
    if err is not None:
        raise err
    return True


def _int_of_str(s: str) -> int:
    try:
        return _i64(int(s, 10))
    except ValueError:
        raise CelEvalError(f"cannot convert {s!r} to int") from None


def _int_of_double(x: float) -> int:
    if x != x or x in (float("inf"), float("-inf")):
        raise CelEvalError("cannot convert a non-finite double to int")
    return _i64(int(x))


HELPERS: dict[str, Any] = {
    "_i64": _i64,
    "_idiv": _idiv,
    "_imod": _imod,
    "_sel": _sel,
    "_has": _has,
    "_nn": _nn,
    "_idx": _idx,
    "_and": _and,
    "_or": _or,
    "_exists": _exists,
    "_all": _all,
    "_int_of_str": _int_of_str,
    "_int_of_double": _int_of_double,
}
