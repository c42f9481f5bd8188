"""YAML that remembers where each value came from, so load errors can name a file and line.

PyYAML's composer keeps a mark on every node; this module turns the node tree into plain dicts,
lists and scalars wrapped just enough to keep those marks (:class:`LMap`, :class:`LList`), and
refuses duplicate keys, which PyYAML would otherwise silently collapse. A file is at most
:data:`MAX_NODES` values once its aliases are expanded and :data:`MAX_DEPTH` levels deep, so that
no file (say, an alias bomb) can stall the service that reloads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from puente.policy.errors import Problem

MAX_NODES = 200_000
MAX_DEPTH = 64


class LMap(dict[str, Any]):
    """A mapping with the 1-based line of itself and of each key."""

    line: int
    key_lines: dict[str, int]
    value_lines: dict[str, int]


class LList(list[Any]):
    """A sequence with the 1-based line of itself and of each item."""

    line: int
    item_lines: list[int]


class YamlSourceError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _scalar_line(node: yaml.Node) -> int:
    # A block scalar (| or >) starts on the line after its indicator.
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        line += 1
    return line


def load_yaml(path: Path, display: str) -> tuple[Any, bytes]:
    """Read ``path`` and return (data with line marks, the raw bytes that were parsed).

    ``display`` is the name used in problems (a path relative to the policy root).
    """
    raw = path.read_bytes()
    loader = yaml.SafeLoader(raw.decode("utf-8"))
    try:
        node = loader.get_single_node()
        if node is None:
            return None, raw
        return _Converter(loader, display).convert(node, 0), raw
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSourceError(
            Problem(display, line, "POLICY_YAML_SYNTAX", str(exc.problem))
        ) from exc
    finally:
        loader.dispose()


class _Converter:
    def __init__(self, loader: yaml.SafeLoader, display: str) -> None:
        self.loader = loader
        self.display = display
        self.nodes = 0

    def limit(self, node: yaml.Node, message: str) -> YamlSourceError:
        line = node.start_mark.line + 1
        return YamlSourceError(Problem(self.display, line, "POLICY_YAML_SYNTAX", message))

    def convert(self, node: yaml.Node, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.limit(node, f"more than {MAX_NODES} values (aliases included)")
        if depth > MAX_DEPTH:
            raise self.limit(node, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.MappingNode):
            out = LMap()
            out.line = node.start_mark.line + 1
            out.key_lines = {}
            out.value_lines = {}
            for key_node, value_node in node.value:
                key = self.convert(key_node, depth + 1)
                if not isinstance(key, str):
                    key = str(key)
                kline = key_node.start_mark.line + 1
                if key in out:
                    raise YamlSourceError(
                        Problem(
                            self.display,
                            kline,
                            "POLICY_YAML_DUPLICATE_KEY",
                            f"duplicate key {key!r}",
                        )
                    )
                out[key] = self.convert(value_node, depth + 1)
                out.key_lines[key] = kline
                # A nested block starts on the line after its key; point at the key instead.
                is_scalar = isinstance(value_node, yaml.ScalarNode)
                out.value_lines[key] = _scalar_line(value_node) if is_scalar else kline
            return out
        if isinstance(node, yaml.SequenceNode):
            seq = LList()
            seq.line = node.start_mark.line + 1
            seq.item_lines = []
            for item in node.value:
                seq.append(self.convert(item, depth + 1))
                seq.item_lines.append(_scalar_line(item))
            return seq
        return self.loader.construct_object(node, deep=True)


def line_of(data: Any, loc: tuple[int | str, ...], default: int = 1) -> int:
    """The line of the deepest value along ``loc`` (a pydantic error location) in ``data``."""
    line = getattr(data, "line", default)
    cur = data
    for part in loc:
        if isinstance(cur, LMap) and isinstance(part, str) and part in cur:
            line = cur.value_lines.get(part, cur.key_lines.get(part, line))
            cur = cur[part]
        elif isinstance(cur, LList) and isinstance(part, int) and 0 <= part < len(cur):
            line = cur.item_lines[part]
            cur = cur[part]
        else:
            break
    return line


def key_line(data: Any, key: str, default: int = 1) -> int:
    """The line of ``key``'s value in the mapping ``data`` (of the key if the value has none, of
    the mapping if the key is absent); ``default`` if ``data`` is not a mapping."""
    if isinstance(data, LMap):
        return data.value_lines.get(key, data.key_lines.get(key, data.line))
    return default


def item_line(data: Any, key: str, i: int) -> int:
    """The line of item ``i`` of the sequence under ``key`` in ``data`` (:func:`key_line` if there
    is no such item)."""
    seq = data.get(key) if isinstance(data, LMap) else None
    if isinstance(seq, LList) and i < len(seq.item_lines):
        return seq.item_lines[i]
    return key_line(data, key)
