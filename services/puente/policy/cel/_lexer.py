"""The CEL lexer: the text of a condition as tokens, and the strings its literals denote.

Tokens follow the lexical grammar of the CEL language definition; a character no token starts with
is refused here, with its offset, before the parser sees anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from puente.policy.errors import CelCompileError

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

RESERVED = frozenset(
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


def lex(text: str) -> list[Token]:
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


class BadEscape(ValueError):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def unescape(body: str) -> str:
    """The string a CEL string literal's body denotes; :class:`BadEscape` (with the offset in
    ``body``) for an unknown escape or a code point Unicode does not have."""

    def sub(m: re.Match[str]) -> str:
        simple, x, u, big_u, octal, bad = m.groups()
        if simple is not None:
            return _ESCAPES[simple]
        if bad is not None:
            raise BadEscape(f"unknown escape sequence {m.group()!r}", m.start())
        code = int(octal, 8) if octal is not None else int(x or u or big_u, 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise BadEscape(f"{m.group()!r} is not a Unicode scalar value", m.start())
        return chr(code)

    return _ESCAPE_RE.sub(sub, body)
