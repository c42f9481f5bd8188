"""Which cells of one window an origin may publish, so that no published cell singles a person
out; and the check that says so.

The guarantee, for the cells one origin publishes for one window (every table of that window
length, taken together), with ``k`` the minimum cell size (policies/triggers.yaml):

1. **Minimum size.** Every published count is at least ``k``.
2. **No small difference.** For any two published cells where one *refines* the other (every
   notice counted in the finer is counted in the coarser: :func:`~puente.warnings.tables.implies`),
   their difference is 0 or at least ``k``.
3. **No small remainder.** For any published cell P and any other table, P minus the sum of
   that table's published cells refining P is not between 1 and ``k - 1``: subtracting what is
   published never leaves a group of fewer than ``k``.

Cells under ``k`` are suppressed first (primary suppression); then, until nothing changes, the
finer cell of a pair violating (2) is suppressed, and for a remainder violating (3) the smallest
published refining cell (complementary suppression). Suppression only removes cells, so it ends.

What this does not cover is in docs/early-warning.md ("What remains"): cells that overlap
without one refining the other (the loader warns about such tables), windows of different
lengths over the same notices (the loader refuses them), and what a reader already knows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from puente.warnings.tables import Atoms, Key, Table, implies, refines


@dataclass(eq=False)
class _Cell:
    table: Table
    key: Key
    count: int
    atoms: Atoms
    published: bool = True


def _relations(
    cells: Mapping[Table, Mapping[Key, _Cell]],
) -> tuple[list[tuple[_Cell, _Cell]], dict[tuple[int, Table], list[_Cell]]]:
    """Every (child, parent) pair where the child strictly refines the parent, and the children
    of each parent grouped by the child's table."""
    pairs: list[tuple[_Cell, _Cell]] = []
    groups: dict[tuple[int, Table], list[_Cell]] = defaultdict(list)
    for child_table, children in cells.items():
        for parent_table, parents in cells.items():
            if not refines(child_table, parent_table):
                continue
            for child in children.values():
                pinned = child_table.pinned(child.key)
                if not all(d in pinned for d in parent_table.by):
                    continue  # the child spans several values of a parent dimension
                parent = parents.get(tuple(pinned[d] for d in parent_table.by))
                if parent is None or not implies(child.atoms, parent.atoms):
                    continue
                if implies(parent.atoms, child.atoms):
                    continue  # the same notices: equal counts, nothing to difference
                pairs.append((child, parent))
                groups[(id(parent), child_table)].append(child)
    return pairs, groups


def suppress(counts: Mapping[Table, Mapping[Key, int]], k: int) -> dict[Table, dict[Key, int]]:
    """The cells that may be published, per table, from one window's raw counts."""
    if k < 1:
        raise ValueError("k must be at least 1")
    cells = {
        t: {key: _Cell(t, key, n, t.atoms(key), n >= k) for key, n in sorted(cs.items()) if n > 0}
        for t, cs in sorted(counts.items())
    }
    pairs, groups = _relations(cells)
    by_id = {id(c): c for cs in cells.values() for c in cs.values()}
    changed = True
    while changed:
        changed = False
        for child, parent in pairs:
            if child.published and parent.published and 0 < parent.count - child.count < k:
                child.published = False
                changed = True
        for (parent_id, _), children in groups.items():
            parent = by_id[parent_id]
            if not parent.published:
                continue
            shown = [c for c in children if c.published]
            if shown and 0 < parent.count - sum(c.count for c in shown) < k:
                smallest = min(shown, key=lambda c: (c.count, c.key))
                smallest.published = False
                changed = True
    return {t: {key: c.count for key, c in cs.items() if c.published} for t, cs in cells.items()}


def disclosure_problems(published: Mapping[Table, Mapping[Key, int]], k: int) -> list[str]:
    """Every way the cells of one window break the guarantee (empty: none). What a reader sees
    is all it uses: the published cells and their tables."""
    problems: list[str] = []
    cells = {
        t: {key: _Cell(t, key, n, t.atoms(key)) for key, n in cs.items()}
        for t, cs in published.items()
    }
    for t, cs in cells.items():
        for c in cs.values():
            if c.count < k:
                problems.append(f"{t.id} {c.key}: count {c.count} < k={k}")
    pairs, groups = _relations(cells)
    for child, parent in pairs:
        diff = parent.count - child.count
        if 0 < diff < k:
            problems.append(
                f"{parent.table.id} {parent.key} - {child.table.id} {child.key} = {diff} < k={k}"
            )
    by_id = {id(c): c for cs in cells.values() for c in cs.values()}
    for (parent_id, table), children in groups.items():
        parent = by_id[parent_id]
        rest = parent.count - sum(c.count for c in children)
        if 0 < rest < k:
            problems.append(
                f"{parent.table.id} {parent.key} minus its cells in {table.id} = {rest} < k={k}"
            )
    return problems
