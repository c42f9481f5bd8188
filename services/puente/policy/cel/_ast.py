"""The syntax tree of a CEL condition: what the parser builds and the code generator walks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from puente.policy.types import CelType


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


def children(node: Node) -> Iterator[Node]:
    """The direct children of ``node``, in source order."""
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


def height(root: Node) -> tuple[int, int]:
    """The height of a syntax tree and the offset of its deepest node, without recursion (the
    tree is checked before anything recursive walks it)."""
    best, at = 0, root.pos
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > best:
            best, at = depth, node.pos
        stack.extend((child, depth + 1) for child in children(node))
    return best, at
