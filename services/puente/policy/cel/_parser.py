"""The CEL parser: recursive descent over the grammar of the CEL language definition.

It enforces the limits of an expression (:data:`MAX_LENGTH`, :data:`MAX_DEPTH`) as it goes, so
that no condition, however it is written, reaches Python's own recursion limit in the parser or in
the passes that walk the tree after it.
"""

from __future__ import annotations

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
    height,
)
from puente.policy.cel._lexer import RESERVED, BadEscape, Token, lex, unescape
from puente.policy.errors import CelCompileError
from puente.policy.types import BOOL, DOUBLE, INT, NULL, STRING

# The limits of an expression. CEL implementations must accept at least 32 terms in a row of
# ``||`` and 12 levels of nesting; these leave room above that and stay well inside what the
# compiler's recursion and Python's parser accept for the generated code.
MAX_DEPTH = 64  # height of the syntax tree (a chain of n ``||`` terms is n levels)
MAX_LENGTH = 100_000  # characters
LIMIT = "POLICY_CEL_LIMIT"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = lex(text)
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
            if t.text in RESERVED or t.text == "in":
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
            return unescape(body)
        except BadEscape as exc:
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
    deepest, at = height(node)
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
