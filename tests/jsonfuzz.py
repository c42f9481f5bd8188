"""Hypothesis strategies for fuzzing JSON documents: values of every JSON type with the edge
cases Puente's JSON form meets (extreme timestamps, invalid dates, wrong codes), and mutations of
a valid document (a node replaced, removed, or given an unknown field); and every string of a
document (what a test looks for where it must not be)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

# Valid RFC 3339 text whose instant is outside what a UTC datetime can hold, and near-misses.
EXTREME_TIMES = [
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00-00:01",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999+00:00",
    "0001-01-01T00:00:00Z",
    "1970-01-01T00:00:00+23:59",
]

JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-14:00",
            "0000-00-00",
            "2025-02-30",
            "1970-01-01T00:00:00Z",
            "00000000-0000-0000-0000-000000000000",
            "MX",
            "GT",
            "",
        ]
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def strings(doc: Any) -> Iterator[str]:
    """Every string value in a JSON document (lists and tuples, dict values; not keys)."""
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for v in doc.values():
            yield from strings(v)
    elif isinstance(doc, list | tuple):
        for v in doc:
            yield from strings(v)


def _mutate(doc: Any, path: list[Any], value: Any, action: str) -> Any:
    """``doc`` with the node at ``path`` replaced, removed, or given an extra field."""
    if not path:
        return value if action == "replace" else doc
    head, *rest = path
    if isinstance(doc, dict) and head in doc:
        out = dict(doc)
        if not rest and action == "remove":
            del out[head]
        elif not rest and action == "extra" and isinstance(out[head], dict):
            out[head] = dict(out[head], unexpected=value)
        else:
            out[head] = _mutate(doc[head], rest, value, action)
        return out
    if isinstance(doc, list) and isinstance(head, int) and head < len(doc):
        out_list = list(doc)
        out_list[head] = _mutate(doc[head], rest, value, action)
        return out_list
    return doc


def _paths(doc: Any, prefix: list[Any]) -> Iterator[list[Any]]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, [*prefix, k])
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, [*prefix, i])


def _timestamps(doc: Any) -> list[list[Any]]:
    return [
        p
        for p in _paths(doc, [])
        if isinstance(v := _at(doc, p), str) and len(v) > 18 and v[10:11] == "T"
    ]


def _at(doc: Any, path: list[Any]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


@st.composite
def mutations(draw: st.DrawFn, doc: Any, *, most: int = 3) -> Any:
    """``doc`` with one to ``most`` nodes replaced, removed or given an unknown field, or one
    of its timestamps moved to the edge of what a UTC datetime holds."""
    for _ in range(draw(st.integers(1, most))):
        action = draw(st.sampled_from(["replace", "remove", "extra", "time"]))
        times = _timestamps(doc) if action == "time" else []
        if times:
            target = draw(st.sampled_from(times))
            doc = _mutate(doc, target, draw(st.sampled_from(EXTREME_TIMES)), "replace")
            continue
        target = draw(st.sampled_from(list(_paths(doc, []))))
        doc = _mutate(doc, target, draw(JSON_VALUES), "replace" if action == "time" else action)
    return doc
