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
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from puente.policy.errors import CelCompileError, CelEvalError
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

# The limits of an expression. CEL implementations must accept at least 32 terms in a row of
# ``||`` and 12 levels of nesting; these leave room above that and stay well inside what the
# compiler's recursion and Python's parser accept for the generated code.
MAX_DEPTH = 64  # height of the syntax tree (a chain of n ``||`` terms is n levels)
MAX_LENGTH = 100_000  # characters
LIMIT = "POLICY_CEL_LIMIT"

# ----------------------------------------------------------------------------------------------
# Lexer

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[\t\n\f\r ]+|//[^\n]*)
  | (?P<float>\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<int>0[xX][0-9a-fA-F]+[uU]?|\d+[uU]?)
  | (?P<string>[rRbB]{0,2}(?:\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''
                           |"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))
  | (?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|[<>!+\-*/%?:.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)

_RESERVED = frozenset(
    [
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ]
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # int, float, string, ident, op, eof
    text: str
    pos: int


def _lex(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise CelCompileError(
                f"unexpected character {text[pos]!r}",
                offset=pos,
                text=text,
                reason="POLICY_CEL_SYNTAX",
            )
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(Token(kind, m.group(), pos))
        pos = m.end()
    out.append(Token("eof", "", len(text)))
    return out


_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "`": "`",
    "?": "?",
}
_ESCAPE_RE = re.compile(
    r"\\(?:([abfnrtv\\'\"`?])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-3][0-7]{2})"
    r"|(.?))",
    re.DOTALL,
)


class _BadEscape(ValueError):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def _unescape(body: str) -> str:
    """The string a CEL string literal's body denotes; :class:`_BadEscape` (with the offset in
    ``body``) for an unknown escape or a code point Unicode does not have."""

    def sub(m: re.Match[str]) -> str:
        simple, x, u, big_u, octal, bad = m.groups()
        if simple is not None:
            return _ESCAPES[simple]
        if bad is not None:
            raise _BadEscape(f"unknown escape sequence {m.group()!r}", m.start())
        code = int(octal, 8) if octal is not None else int(x or u or big_u, 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise _BadEscape(f"{m.group()!r} is not a Unicode scalar value", m.start())
        return chr(code)

    return _ESCAPE_RE.sub(sub, body)


# ----------------------------------------------------------------------------------------------
# AST


@dataclass(frozen=True, slots=True)
class Node:
    pos: int


@dataclass(frozen=True, slots=True)
class Lit(Node):
    value: Any
    type: CelType


@dataclass(frozen=True, slots=True)
class Ident(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Select(Node):
    operand: Node
    field: str


@dataclass(frozen=True, slots=True)
class Index(Node):
    operand: Node
    index: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    function: str
    target: Node | None
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Cond(Node):
    test: Node
    then: Node
    other: Node


@dataclass(frozen=True, slots=True)
class ListLit(Node):
    items: tuple[Node, ...]


# ----------------------------------------------------------------------------------------------
# Parser: recursive descent over the grammar of the CEL language definition.


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _lex(text)
        self.i = 0
        self.depth = 0  # nesting of the recursive rules (parentheses, calls, lists, !, -, ?:)

    def nest(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nested more than {MAX_DEPTH} levels deep", pos, LIMIT)

    def fail(
        self, msg: str, pos: int | None = None, reason: str = "POLICY_CEL_SYNTAX"
    ) -> CelCompileError:
        p = self.peek().pos if pos is None else pos
        return CelCompileError(msg, offset=p, text=self.text, reason=reason)

    def peek(self) -> Token:
        return self.toks[self.i]

    def next(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def accept(self, text: str) -> Token | None:
        t = self.peek()
        if t.kind in ("op", "ident") and t.text == text:
            self.i += 1
            return t
        return None

    def expect(self, text: str) -> Token:
        t = self.accept(text)
        if t is None:
            got = self.peek().text or "end of expression"
            raise self.fail(f"expected {text!r}, found {got!r}")
        return t

    def parse(self) -> Node:
        node = self.expr()
        if self.peek().kind != "eof":
            raise self.fail(f"unexpected {self.peek().text!r}")
        return node

    def expr(self) -> Node:
        self.nest(self.peek().pos)
        test = self.or_()
        q = self.accept("?")
        if q is None:
            self.depth -= 1
            return test
        then = self.or_()
        self.expect(":")
        other = self.expr()
        self.depth -= 1
        return Cond(q.pos, test, then, other)

    def or_(self) -> Node:
        left = self.and_()
        while (t := self.accept("||")) is not None:
            left = Binary(t.pos, "||", left, self.and_())
        return left

    def and_(self) -> Node:
        left = self.rel()
        while (t := self.accept("&&")) is not None:
            left = Binary(t.pos, "&&", left, self.rel())
        return left

    def rel(self) -> Node:
        left = self.add()
        while True:
            t = self.peek()
            if (t.kind == "op" and t.text in ("<", "<=", ">", ">=", "==", "!=")) or (
                t.kind == "ident" and t.text == "in"
            ):
                self.i += 1
                left = Binary(t.pos, t.text, left, self.add())
            else:
                return left

    def add(self) -> Node:
        left = self.mul()
        while (t := self.peek()).kind == "op" and t.text in ("+", "-"):
            self.i += 1
            left = Binary(t.pos, t.text, left, self.mul())
        return left

    def mul(self) -> Node:
        left = self.unary()
        while (t := self.peek()).kind == "op" and t.text in ("*", "/", "%"):
            self.i += 1
            left = Binary(t.pos, t.text, left, self.unary())
        return left

    def unary(self) -> Node:
        t = self.peek()
        if t.kind == "op" and t.text in ("!", "-"):
            self.i += 1
            nxt = self.peek()
            # Fold a negative literal so that -9223372036854775808 stays in range, as in CEL.
            if t.text == "-" and nxt.kind in ("int", "float") and nxt.pos == t.pos + 1:
                lit = self.primary(negative=True)
                assert isinstance(lit, Lit)
                return self._check_int(Lit(t.pos, -lit.value, lit.type))
            self.nest(t.pos)
            operand = self.unary()
            self.depth -= 1
            return Unary(t.pos, t.text, operand)
        return self.member()

    def _check_int(self, lit: Lit) -> Lit:
        if lit.type == INT and not -(2**63) <= lit.value < 2**63:
            raise self.fail("int literal out of range", lit.pos)
        return lit

    def member(self) -> Node:
        node = self.primary()
        while True:
            t = self.peek()
            if t.kind == "op" and t.text == ".":
                self.i += 1
                name = self.next()
                if name.kind != "ident":
                    raise self.fail("expected a field or method name", name.pos)
                if self.accept("("):
                    node = Call(name.pos, name.text, node, self.args(")"))
                else:
                    node = Select(name.pos, node, name.text)
            elif t.kind == "op" and t.text == "[":
                self.i += 1
                idx = self.expr()
                self.expect("]")
                node = Index(t.pos, node, idx)
            elif t.kind == "op" and t.text == "{":
                raise self.fail(
                    "message construction is not supported", t.pos, "POLICY_CEL_UNSUPPORTED"
                )
            else:
                return node

    def args(self, close: str) -> tuple[Node, ...]:
        items: list[Node] = []
        if self.accept(close):
            return ()
        while True:
            items.append(self.expr())
            if self.accept(close):
                return tuple(items)
            self.expect(",")

    def primary(self, *, negative: bool = False) -> Node:
        t = self.next()
        if t.kind == "int":
            if t.text[-1] in "uU":
                raise self.fail(
                    "unsigned int literals are not supported", t.pos, "POLICY_CEL_UNSUPPORTED"
                )
            if len(t.text) > 1 and t.text[0] == "0" and t.text[1] not in "xX":
                # Octal in some CEL implementations, decimal in others: refused, never guessed.
                raise self.fail(
                    f"int literal {t.text} has a leading zero; write it without (or in hex, 0x...)",
                    t.pos,
                )
            if len(t.text) > 40:
                raise self.fail("int literal out of range", t.pos)
            lit = Lit(t.pos, int(t.text, 0), INT)
            # The caller checks the range of a negated literal (-2**63 is an int, 2**63 is not).
            return lit if negative else self._check_int(lit)
        if t.kind == "float":
            return Lit(t.pos, float(t.text), DOUBLE)
        if t.kind == "string":
            return Lit(t.pos, self._string(t), STRING)
        if t.kind == "ident":
            if t.text in ("true", "false"):
                return Lit(t.pos, t.text == "true", BOOL)
            if t.text == "null":
                return Lit(t.pos, None, NULL)
            if t.text in _RESERVED or t.text == "in":
                raise self.fail(f"{t.text!r} is a reserved word", t.pos)
            if self.accept("("):
                return Call(t.pos, t.text, None, self.args(")"))
            return Ident(t.pos, t.text)
        if t.kind == "op":
            if t.text == "(":
                inner = self.expr()
                self.expect(")")
                return inner
            if t.text == "[":
                return ListLit(t.pos, self.args("]"))
            if t.text == "{":
                raise self.fail("map literals are not supported", t.pos, "POLICY_CEL_UNSUPPORTED")
            if t.text == ".":
                raise self.fail(
                    "leading-dot names are not supported", t.pos, "POLICY_CEL_UNSUPPORTED"
                )
        raise self.fail(f"unexpected {t.text or 'end of expression'!r}", t.pos)

    def _string(self, t: Token) -> str:
        text = t.text
        prefix = ""
        while text[0] in "rRbB":
            prefix += text[0].lower()
            text = text[1:]
        if "b" in prefix:
            raise self.fail("bytes literals are not supported", t.pos, "POLICY_CEL_UNSUPPORTED")
        q = 3 if text[:3] in ('"""', "'''") else 1
        body = text[q:-q]
        if "r" in prefix:
            return body
        try:
            return _unescape(body)
        except _BadEscape as exc:
            raise self.fail(str(exc), t.pos + len(prefix) + q + exc.offset) from None


def parse(text: str) -> Node:
    """Parse a CEL expression; :class:`CelCompileError` with the offset on a syntax error or an
    expression beyond the limits (:data:`MAX_LENGTH`, :data:`MAX_DEPTH`)."""
    if len(text) > MAX_LENGTH:
        raise CelCompileError(
            f"the expression is {len(text)} characters long, over the limit of {MAX_LENGTH}",
            text="",
            reason=LIMIT,
        )
    node = _Parser(text).parse()
    deepest, at = _height(node)
    if deepest > MAX_DEPTH:
        raise CelCompileError(
            f"the expression is {deepest} levels deep, over the limit of {MAX_DEPTH} "
            "(a long chain of || or && counts one level per term: use 'in' with a list, or "
            "split the rule)",
            offset=at,
            text=text,
            reason=LIMIT,
        )
    return node


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, Select | Unary):
        yield node.operand
    elif isinstance(node, Index):
        yield node.operand
        yield node.index
    elif isinstance(node, Call):
        if node.target is not None:
            yield node.target
        yield from node.args
    elif isinstance(node, Binary):
        yield node.left
        yield node.right
    elif isinstance(node, Cond):
        yield node.test
        yield node.then
        yield node.other
    elif isinstance(node, ListLit):
        yield from node.items


def _height(root: Node) -> tuple[int, int]:
    """The height of a syntax tree and the offset of its deepest node, without recursion (the
    tree is checked before anything recursive walks it)."""
    best, at = 0, root.pos
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > best:
            best, at = depth, node.pos
        stack.extend((child, depth + 1) for child in _children(node))
    return best, at


# ----------------------------------------------------------------------------------------------
# Runtime helpers the generated code calls. They raise CelEvalError exactly where CEL errors.

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


_HELPERS: dict[str, Any] = {
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

# ----------------------------------------------------------------------------------------------
# Type checker and code generator, in one pass.


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


# ----------------------------------------------------------------------------------------------
# Public API


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
    node = parse(text)
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
    namespace: dict[str, Any] = dict(_HELPERS)
    for i, value in enumerate(ctx.consts):
        namespace[f"_k{i}"] = value
    exec(compile(src, name, "exec"), namespace)  # noqa: S102 - source generated from a checked AST
    return Condition(text, namespace["_cond"], tuple(variables), frozenset(ctx.used), src)
