"""The CEL type checker and code generator, in one pass over the syntax tree.

Each construct's typing rule sits next to the Python it becomes: the generator needs the operand
types to choose the Python (``_nn`` around a nullable operand, ``_i64`` around int arithmetic, a
frozenset for a constant list), and one walk keeps the two from ever disagreeing. A construct
outside the supported subset, or an ill-typed one, is refused with the offset of its node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from puente.policy.cel._ast import (
    Binary,
    Call,
    Cond,
    Ident,
    Index,
    ListLit,
    Lit,
    Node,
    Select,
    Unary,
)
from puente.policy.errors import CelCompileError
from puente.policy.types import (
    BOOL,
    DOUBLE,
    DYN,
    INT,
    NULL,
    STRING,
    CelType,
    Dyn,
    EnumT,
    ListT,
    Opaque,
    OptT,
    Prim,
    RecordT,
    is_stringish,
)


@dataclass(frozen=True, slots=True)
class Generated:
    """The Python of one condition: a function ``_cond`` over the variables, the constants it
    reads by name, and the variables it uses."""

    python: str
    consts: dict[str, Any]
    used: frozenset[str]


def generate(node: Node, text: str, variables: dict[str, CelType]) -> Generated:
    """Type-check the tree of ``text`` over the typed ``variables`` and generate its Python; a
    condition must be a bool. :class:`CelCompileError` with the offset of a refused node."""
    params = {v: f"v_{v}" for v in variables}
    ctx = _Ctx(text=text, variables=variables, params=params)
    code = _Compiler(ctx).gen(node)
    if code.type != BOOL:
        raise CelCompileError(
            f"a condition must be a bool, this one is {code.type}",
            offset=0,
            text=text,
            reason="POLICY_CEL_TYPE",
        )
    args = ", ".join(params.values())
    src = f"def _cond({args}):\n    return {code.src}\n"
    consts = {f"_k{i}": value for i, value in enumerate(ctx.consts)}
    return Generated(src, consts, frozenset(ctx.used))


@dataclass(frozen=True, slots=True)
class _Code:
    src: str
    type: CelType
    raises: bool  # may raise CelEvalError at run time
    const: bool = False  # a literal (folded into a constant)


@dataclass
class _Ctx:
    text: str
    variables: dict[str, CelType]
    params: dict[str, str]
    scopes: list[dict[str, tuple[str, CelType]]] = field(default_factory=list)
    consts: list[Any] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    depth: int = 0

    def fail(self, node: Node, msg: str, reason: str = "POLICY_CEL_TYPE") -> CelCompileError:
        return CelCompileError(msg, offset=node.pos, text=self.text, reason=reason)

    def const(self, value: Any) -> str:
        self.consts.append(value)
        return f"_k{len(self.consts) - 1}"


def _compatible(a: CelType, b: CelType) -> bool:
    """May values of types ``a`` and ``b`` be compared with ``==``?"""
    if isinstance(a, Dyn) or isinstance(b, Dyn):
        return True
    if isinstance(a, OptT):
        return b == NULL or _compatible(a.inner, b)
    if isinstance(b, OptT):
        return a == NULL or _compatible(a, b.inner)
    if is_stringish(a) and is_stringish(b):
        return not (isinstance(a, EnumT) and isinstance(b, EnumT) and a != b)
    if isinstance(a, ListT) and isinstance(b, ListT):
        return _compatible(a.elem, b.elem)
    return a == b and isinstance(a, Prim | RecordT)


def _base(t: CelType) -> CelType:
    return t.inner if isinstance(t, OptT) else t


class _Compiler:
    def __init__(self, ctx: _Ctx) -> None:
        self.c = ctx

    def gen(self, n: Node) -> _Code:
        method = getattr(self, "g_" + type(n).__name__)
        code: _Code = method(n)
        return code

    # literals and names
    def g_Lit(self, n: Lit) -> _Code:
        if isinstance(n.value, float) and not math.isfinite(n.value):
            # repr() would give the bare name inf, which means nothing in the generated code.
            return _Code(self.c.const(n.value), n.type, False, const=True)
        return _Code(repr(n.value), n.type, False, const=True)

    def g_ListLit(self, n: ListLit) -> _Code:
        items = [self.gen(i) for i in n.items]
        elem: CelType = DYN
        for it, node in zip(items, n.items, strict=True):
            if isinstance(elem, Dyn):
                elem = it.type
            elif not _compatible(elem, it.type):
                raise self.c.fail(node, f"list literal mixes {elem} and {it.type}")
        src = "[" + ", ".join(i.src for i in items) + "]"
        return _Code(
            src, ListT(elem), any(i.raises for i in items), const=all(i.const for i in items)
        )

    def g_Ident(self, n: Ident) -> _Code:
        for scope in reversed(self.c.scopes):
            if n.name in scope:
                py, t = scope[n.name]
                return _Code(py, t, False)
        if n.name in self.c.variables:
            self.c.used.add(n.name)
            return _Code(self.c.params[n.name], self.c.variables[n.name], False)
        known = ", ".join(sorted(self.c.variables))
        raise self.c.fail(
            n, f"unknown name {n.name!r} (the environment has: {known})", "POLICY_CEL_UNKNOWN_NAME"
        )

    def g_Select(self, n: Select) -> _Code:
        op = self.gen(n.operand)
        rec = _base(op.type)
        if not isinstance(rec, RecordT):
            raise self.c.fail(n, f"cannot select .{n.field} on a value of type {op.type}")
        if n.field not in rec.fields:
            fields = ", ".join(rec.fields)
            raise self.c.fail(
                n,
                f"{rec.name} has no field {n.field!r} (fields: {fields})",
                "POLICY_CEL_UNKNOWN_FIELD",
            )
        ftype = rec.fields[n.field]
        if isinstance(op.type, OptT):
            return _Code(f"_sel({op.src}, {n.field!r})", ftype, True)
        return _Code(f"{op.src}[{n.field!r}]", ftype, op.raises)

    def g_Index(self, n: Index) -> _Code:
        op = self.gen(n.operand)
        idx = self.gen(n.index)
        if isinstance(op.type, ListT) and idx.type == INT:
            return _Code(f"_idx({op.src}, {idx.src})", op.type.elem, True)
        raise self.c.fail(
            n, f"indexing {op.type} with {idx.type} is not supported", "POLICY_CEL_UNSUPPORTED"
        )

    # operators
    def g_Unary(self, n: Unary) -> _Code:
        x = self.gen(n.operand)
        if n.op == "!":
            if x.type != BOOL:
                raise self.c.fail(n, f"'!' needs a bool, not {x.type}")
            return _Code(f"(not {x.src})", BOOL, x.raises)
        if x.type == INT:
            return _Code(f"_i64(-{x.src})", INT, True)
        if x.type == DOUBLE:
            return _Code(f"(-{x.src})", DOUBLE, x.raises)
        raise self.c.fail(n, f"'-' needs a number, not {x.type}")

    def g_Cond(self, n: Cond) -> _Code:
        test = self.gen(n.test)
        if test.type != BOOL:
            raise self.c.fail(n.test, f"the condition of '?:' must be a bool, not {test.type}")
        a, b = self.gen(n.then), self.gen(n.other)
        if not (_compatible(a.type, b.type) or NULL in (a.type, b.type)):
            raise self.c.fail(
                n, f"the branches of '?:' have different types: {a.type} and {b.type}"
            )
        t: CelType
        if a.type == NULL or b.type == NULL:
            other = b.type if a.type == NULL else a.type
            t = other if other == NULL or isinstance(other, OptT) else OptT(other)
        else:
            t = b.type if isinstance(a.type, Dyn) else a.type
        return _Code(
            f"({a.src} if {test.src} else {b.src})", t, test.raises or a.raises or b.raises
        )

    def g_Binary(self, n: Binary) -> _Code:
        if n.op in ("&&", "||"):
            return self._logical(n)
        a, b = self.gen(n.left), self.gen(n.right)
        raises = a.raises or b.raises
        if n.op in ("==", "!="):
            if not _compatible(a.type, b.type):
                raise self.c.fail(
                    n, f"cannot compare {a.type} with {b.type} (CEL has no such overload)"
                )
            self._check_null_comparison(n, a.type, b.type)
            self._check_enum_literal(n.left, a, n.right, b)
            self._check_enum_literal(n.right, b, n.left, a)
            return _Code(f"({a.src} {n.op} {b.src})", BOOL, raises)
        if n.op in ("<", "<=", ">", ">="):
            ta, tb = _base(a.type), _base(b.type)
            ok = ta == tb and ta in (INT, DOUBLE, STRING, BOOL)
            if not ok and not (is_stringish(ta) and is_stringish(tb)):
                raise self.c.fail(n, f"cannot order {a.type} against {b.type}")
            # A nullable operand is ordered when it holds a value; null is an error, as in CEL.
            sa = f"_nn({a.src})" if isinstance(a.type, OptT) else a.src
            sb = f"_nn({b.src})" if isinstance(b.type, OptT) else b.src
            raises = raises or isinstance(a.type, OptT) or isinstance(b.type, OptT)
            return _Code(f"({sa} {n.op} {sb})", BOOL, raises)
        if n.op == "in":
            return self._in(n, a, b)
        return self._arith(n, a, b)

    def _check_null_comparison(self, n: Node, ta: CelType, tb: CelType) -> None:
        """null takes part in ==/!= only beside strings, enums, bools and dates: cel-python (the
        oracle) has no overload for null against ints, doubles, lists or records."""
        nullish = NULL in (ta, tb) or isinstance(ta, OptT) or isinstance(tb, OptT)
        if not nullish:
            return
        other = _base(tb) if ta == NULL else _base(ta)
        if other in (NULL, BOOL) or is_stringish(other) or isinstance(other, Opaque):
            return
        hint = " (test a record with has(record.field))" if isinstance(other, RecordT) else ""
        raise self.c.fail(
            n,
            f"comparing a nullable {other} with ==/!= is not supported{hint}",
            "POLICY_CEL_UNSUPPORTED",
        )

    def _check_enum_literal(self, node: Node, code: _Code, lit: Node, lit_code: _Code) -> None:
        enum = _base(code.type)
        if (
            isinstance(enum, EnumT)
            and isinstance(lit, Lit)
            and isinstance(lit.value, str)
            and lit.value not in enum.symbols
        ):
            raise self.c.fail(
                lit,
                f"{lit.value!r} is not a symbol of {enum.name} ({', '.join(enum.symbols)})",
                "POLICY_CEL_UNKNOWN_SYMBOL",
            )

    def _in(self, n: Binary, a: _Code, b: _Code) -> _Code:
        if not isinstance(b.type, ListT):
            raise self.c.fail(
                n, f"'in' needs a list on the right, not {b.type}", "POLICY_CEL_UNSUPPORTED"
            )
        if not _compatible(a.type, b.type.elem):
            raise self.c.fail(n, f"cannot look for {a.type} in {b.type}")
        enum = _base(a.type)
        if isinstance(enum, EnumT) and isinstance(n.right, ListLit):
            for item in n.right.items:
                self._check_enum_literal(n.left, a, item, b)
        if (
            b.const
            and isinstance(n.right, ListLit)
            and all(isinstance(i, Lit) for i in n.right.items)
        ):
            values = [i.value for i in n.right.items if isinstance(i, Lit)]
            # A constant list becomes a frozenset: O(1) and built once. Types are checked above,
            # so Python's 1 == True can never meet here. Only for a left side whose values are
            # hashable: a record (a dict) looked up in a set raises TypeError.
            left = _base(a.type)
            hashable = isinstance(left, EnumT) or left in (STRING, INT, NULL)
            if hashable and all(
                isinstance(v, str | int | None) and not isinstance(v, bool) for v in values
            ):
                return _Code(f"({a.src} in {self.c.const(frozenset(values))})", BOOL, a.raises)
        return _Code(f"({a.src} in {b.src})", BOOL, a.raises or b.raises)

    def _arith(self, n: Binary, a: _Code, b: _Code) -> _Code:
        raises = a.raises or b.raises
        if a.type != b.type and not (isinstance(a.type, ListT) and isinstance(b.type, ListT)):
            raise self.c.fail(n, f"'{n.op}' cannot combine {a.type} and {b.type}")
        t = a.type
        if n.op == "+" and (t == STRING or isinstance(t, ListT)):
            if (
                isinstance(t, ListT)
                and isinstance(b.type, ListT)
                and not _compatible(t.elem, b.type.elem)
            ):
                raise self.c.fail(n, f"'+' cannot join {a.type} and {b.type}")
            out_t = b.type if isinstance(t, ListT) and isinstance(t.elem, Dyn) else t
            return _Code(f"({a.src} + {b.src})", out_t, raises)
        if t == INT:
            if n.op == "/":
                return _Code(f"_idiv({a.src}, {b.src})", INT, True)
            if n.op == "%":
                return _Code(f"_imod({a.src}, {b.src})", INT, True)
            return _Code(f"_i64({a.src} {n.op} {b.src})", INT, True)
        if t == DOUBLE:
            if n.op in ("/", "%"):
                # cel-python answers +inf for every x / 0.0 where IEEE 754 (and the CEL spec) say
                # -inf or NaN; refused rather than disagree with the oracle.
                raise self.c.fail(
                    n, f"'{n.op}' on doubles is not supported", "POLICY_CEL_UNSUPPORTED"
                )
            return _Code(f"({a.src} {n.op} {b.src})", DOUBLE, raises)
        raise self.c.fail(n, f"'{n.op}' is not defined on {t}")

    def _logical(self, n: Binary) -> _Code:
        a, b = self.gen(n.left), self.gen(n.right)
        for side, code in ((n.left, a), (n.right, b)):
            if code.type != BOOL:
                raise self.c.fail(side, f"'{n.op}' needs bools, not {code.type}")
        if not (a.raises or b.raises):
            word = "and" if n.op == "&&" else "or"
            return _Code(f"({a.src} {word} {b.src})", BOOL, False)
        fn = "_and" if n.op == "&&" else "_or"
        return _Code(f"{fn}(lambda: {a.src}, lambda: {b.src})", BOOL, True)

    # functions and macros
    def g_Call(self, n: Call) -> _Code:
        if n.function in ("exists", "all", "exists_one", "filter", "map") and n.target is not None:
            return self._macro(n, n.target)
        if n.function == "has" and n.target is None:
            return self._has(n)
        args = [self.gen(a) for a in n.args]
        target = self.gen(n.target) if n.target is not None else None
        if n.function == "size":
            operand = target if target is not None else (args[0] if len(args) == 1 else None)
            if operand is None or (target is not None and args):
                raise self.c.fail(n, "size() takes one argument")
            if not (is_stringish(operand.type) or isinstance(operand.type, ListT)):
                raise self.c.fail(n, f"size() is not defined on {operand.type}")
            return _Code(f"len({operand.src})", INT, operand.raises)
        if n.function in ("contains", "startsWith", "endsWith") and target is not None:
            if (
                len(args) != 1
                or not is_stringish(_base(target.type))
                or not is_stringish(args[0].type)
            ):
                raise self.c.fail(n, f"{n.function}() is defined as string.{n.function}(string)")
            recv = target.src
            raises = target.raises or args[0].raises
            if isinstance(target.type, OptT):
                recv, raises = f"_nn({recv})", True
            if n.function == "contains":
                return _Code(f"({args[0].src} in {recv})", BOOL, raises)
            py = "startswith" if n.function == "startsWith" else "endswith"
            return _Code(f"{recv}.{py}({args[0].src})", BOOL, raises)
        if n.function == "int" and target is None and len(args) == 1:
            a = args[0]
            if a.type == INT:
                return a
            if is_stringish(a.type):
                return _Code(f"_int_of_str({a.src})", INT, True)
            if a.type == DOUBLE:
                return _Code(f"_int_of_double({a.src})", INT, True)
        if n.function == "string" and target is None and len(args) == 1:
            a = args[0]
            if is_stringish(a.type):
                return _Code(a.src, STRING, a.raises)
            if a.type == INT:
                return _Code(f"str({a.src})", STRING, a.raises)
        if n.function == "double" and target is None and len(args) == 1:
            a = args[0]
            if a.type in (INT, DOUBLE):
                return _Code(f"float({a.src})", DOUBLE, a.raises)
        shown = f"{n.function}()" if target is None else f".{n.function}()"
        raise self.c.fail(
            n,
            f"function {shown} with these arguments is not supported by the policy compiler "
            "(see policies/SEMANTICS.md for the supported subset)",
            "POLICY_CEL_UNSUPPORTED",
        )

    def _has(self, n: Call) -> _Code:
        if len(n.args) != 1 or not isinstance(n.args[0], Select):
            raise self.c.fail(n, "has() takes one field selection, e.g. has(notice.field)")
        sel = n.args[0]
        op = self.gen(sel.operand)
        rec = _base(op.type)
        if not isinstance(rec, RecordT):
            raise self.c.fail(n, f"has() needs a record, not {op.type}")
        if sel.field not in rec.fields:
            # CEL would answer false; a field that can never exist is a typo, so refuse it.
            raise self.c.fail(
                sel, f"{rec.name} has no field {sel.field!r}", "POLICY_CEL_UNKNOWN_FIELD"
            )
        if isinstance(op.type, OptT):
            return _Code(f"_has({op.src}, {sel.field!r})", BOOL, op.raises)
        # A decoded Avro record always holds every field of its schema.
        return _Code("True", BOOL, op.raises)

    def _macro(self, n: Call, target_node: Node) -> _Code:
        target = self.gen(target_node)
        if not isinstance(target.type, ListT):
            raise self.c.fail(
                n, f".{n.function}() needs a list, not {target.type}", "POLICY_CEL_UNSUPPORTED"
            )
        # The three-argument map(x, filter, transform) is left out: the oracle (cel-python 0.5)
        # does not implement it, so its compiled form could not be checked.
        if len(n.args) != 2 or not isinstance(n.args[0], Ident):
            raise self.c.fail(n, f".{n.function}() takes a variable name and an expression")
        var = n.args[0].name
        self.c.depth += 1
        py = f"_m{self.c.depth}_{var}"
        self.c.scopes.append({var: (py, target.type.elem)})
        try:
            body = [self.gen(a) for a in n.args[1:]]
        finally:
            self.c.scopes.pop()
            self.c.depth -= 1
        pred = body[0]
        if n.function != "map" and pred.type != BOOL:
            raise self.c.fail(
                n.args[1], f"the predicate of .{n.function}() must be a bool, not {pred.type}"
            )
        src_list = target.src
        raises = target.raises
        if n.function == "exists":
            if pred.raises:
                return _Code(f"_exists({src_list}, lambda {py}: {pred.src})", BOOL, True)
            return _Code(f"any({pred.src} for {py} in {src_list})", BOOL, raises)
        if n.function == "all":
            if pred.raises:
                return _Code(f"_all({src_list}, lambda {py}: {pred.src})", BOOL, True)
            return _Code(f"all({pred.src} for {py} in {src_list})", BOOL, raises)
        if n.function == "exists_one":
            src = f"(sum(1 for {py} in {src_list} if {pred.src}) == 1)"
            return _Code(src, BOOL, raises or pred.raises)
        if n.function == "filter":
            src = f"[{py} for {py} in {src_list} if {pred.src}]"
            return _Code(src, target.type, raises or pred.raises)
        return _Code(
            f"[{pred.src} for {py} in {src_list}]", ListT(pred.type), raises or pred.raises
        )
