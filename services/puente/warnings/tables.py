"""What an origin counts: tables of notices by a few coded attributes, and the cells a notice
counts in.

A :class:`Table` is one count the triggers read: a notice type, optional filters (events, crime
types, minors, unaccompanied children) and the dimensions it splits by (:class:`Dimension`), over
tumbling windows of one length aligned on the Unix epoch. A notice counts **once** in each cell
whose key it matches; a multi-valued attribute (a dual national's nationalities, the routes a
case names) puts it in several cells of one table, never twice in one cell. The unit is the
notice: a consular notification is about one person; a case notice may name several.

Every key value is a code, never text from the notice: ISO 3166-1 codes, enum symbols, ``true``
or ``false``, a first-level administrative division from the gazetteer (policies/places.yaml,
never the notice's own place text), or ``unknown``. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import product
from typing import Any

CONSULAR = "ConsularNotification"
CASE = "CaseNotice"
NOTICE_TYPES = (CASE, CONSULAR)
UNKNOWN = "unknown"
ROUTE_SEPARATOR = ">"
_COUNTRY = re.compile(r"^[A-Z]{2}$")

Key = tuple[str, ...]
"""A cell key: one value per dimension of its table, in the table's dimension order."""


class Dimension(StrEnum):
    """An attribute a table may split its counts by (declaration order is the canonical order
    of a key's values)."""

    EVENT = "event"  # ConsularNotification.event
    CRIME_TYPE = "crime_type"  # any of CaseNotice.crime_types
    NATIONALITY = "nationality"  # any nationality of the person (of any person in a case)
    PLACE = "place"  # first-level administrative division where it happened
    MINOR = "minor"  # the person is (any person in a case is) a child
    ROUTE = "route"  # a route a case names: its countries in order, joined by ">"


DIMENSIONS = tuple(Dimension)
# Which dimensions each notice type has, and which of them may hold several values per notice.
TYPE_DIMENSIONS: dict[str, frozenset[Dimension]] = {
    CONSULAR: frozenset({Dimension.EVENT, Dimension.NATIONALITY, Dimension.PLACE, Dimension.MINOR}),
    CASE: frozenset(
        {
            Dimension.CRIME_TYPE,
            Dimension.NATIONALITY,
            Dimension.PLACE,
            Dimension.MINOR,
            Dimension.ROUTE,
        }
    ),
}
_MULTI: dict[str, frozenset[str]] = {
    CONSULAR: frozenset({"nationality"}),
    CASE: frozenset({"crime_type", "nationality", "place", "route"}),
}


def fold_place(text: str) -> str:
    """A place name as compared: no accents, case-folded, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.casefold().split())


@dataclass(frozen=True)
class Gazetteer:
    """Place names (as agencies write them) to first-level administrative divisions.

    ``admin1`` maps ``(country, folded place name)`` to the division's name. A place is looked
    up whole, then by each comma-separated part (``"Tapachula, Chiapas"``); a part naming a
    division itself also counts. What is not found is ``<CC>/unknown``: the notice's own text
    never becomes a key.
    """

    places: Mapping[tuple[str, str], str] = field(default_factory=dict)
    divisions: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def build(cls, entries: Mapping[str, Mapping[str, Iterable[str]]]) -> Gazetteer:
        """From ``{country: {division: [place, ...]}}`` (the shape of policies/places.yaml)."""
        places: dict[tuple[str, str], str] = {}
        divisions: dict[tuple[str, str], str] = {}
        for country, by_division in entries.items():
            for division, names in by_division.items():
                divisions[(country, fold_place(division))] = division
                for name in names:
                    places[(country, fold_place(name))] = division
        return cls(places, divisions)

    def admin1(self, country: str, place: str) -> str:
        """``<CC>/<division>`` for a place in ``country``; ``<CC>/unknown`` when not found."""
        cc = country if _COUNTRY.match(country or "") else UNKNOWN
        whole = fold_place(place or "")
        found = self.places.get((cc, whole)) or self.divisions.get((cc, whole))
        if found is None:
            for part in whole.split(","):
                part = part.strip()
                found = self.places.get((cc, part)) or self.divisions.get((cc, part))
                if found is not None:
                    break
        return f"{cc}/{found or UNKNOWN}"


@dataclass(frozen=True)
class Features:
    """The coded attributes of one notice that any table may read."""

    notice_type: str
    time_ms: int  # event time (consular) or creation time (case): what places it in a window
    events: frozenset[str] = frozenset()
    crime_types: frozenset[str] = frozenset()
    nationalities: frozenset[str] = frozenset()
    places: frozenset[str] = frozenset()
    minor: bool = False
    unaccompanied_minor: bool = False
    routes: frozenset[str] = frozenset()

    def values(self, dim: Dimension) -> frozenset[str]:
        if dim is Dimension.EVENT:
            return self.events
        if dim is Dimension.CRIME_TYPE:
            return self.crime_types
        if dim is Dimension.NATIONALITY:
            return self.nationalities or frozenset({UNKNOWN})
        if dim is Dimension.PLACE:
            return self.places or frozenset({UNKNOWN})
        if dim is Dimension.MINOR:
            return frozenset({_bool(self.minor)})
        return self.routes  # a case naming no route counts in no route cell


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def _under_18(born: dt.date | None, at: dt.datetime) -> bool:
    if born is None:
        return False
    day = at.date()
    try:
        eighteenth = born.replace(year=born.year + 18)
    except ValueError:  # 29 February
        eighteenth = dt.date(born.year + 18, 3, 1)
    return day < eighteenth


def _codes(values: Iterable[Any]) -> frozenset[str]:
    return frozenset(v for v in values if isinstance(v, str) and _COUNTRY.match(v))


def features(notice: Mapping[str, Any], notice_type: str, gazetteer: Gazetteer) -> Features:
    """The attributes a table reads from a decoded notice (``notice_type`` short or full)."""
    t = notice_type.removeprefix("puente.")
    if t == CONSULAR:
        person = notice["person"]
        when: dt.datetime = notice["event_time"]
        ret = notice.get("return_details")
        unaccompanied = bool(ret and ret["safeguards"].get("unaccompanied_minor"))
        place = notice["place"]
        return Features(
            CONSULAR,
            _ms(when),
            events=frozenset({str(notice["event"])}),
            nationalities=_codes(person["nationalities"]),
            places=frozenset({gazetteer.admin1(place["country"], place["place"])}),
            minor=bool(person.get("minor"))
            or unaccompanied
            or _under_18(person.get("date_of_birth"), when),
            unaccompanied_minor=unaccompanied,
        )
    if t == CASE:
        created: dt.datetime = notice["created_at"]
        persons = notice["persons"]
        routes = set()
        for route in notice["routes"]:
            countries = route["countries"]
            if len(countries) >= 2 and all(_COUNTRY.match(c) for c in countries):
                routes.add(ROUTE_SEPARATOR.join(countries))
        return Features(
            CASE,
            _ms(created),
            crime_types=frozenset(str(c) for c in notice["crime_types"]),
            nationalities=_codes(n for p in persons for n in p["nationalities"]),
            places=frozenset(
                gazetteer.admin1(x["country"], x["place"]) for x in notice["locations"]
            ),
            minor=any(
                p.get("minor") or _under_18(p.get("date_of_birth"), created) for p in persons
            ),
            routes=frozenset(routes),
        )
    raise ValueError(f"not a notice type: {notice_type!r}")


Atoms = Mapping[str, tuple[frozenset[str], ...]]
"""A cell's predicate: per attribute, the sets its value must meet (see :func:`implies`)."""


@dataclass(frozen=True)
class Table:
    """One count an origin publishes per window (see the module docstring)."""

    notice_type: str
    window_ms: int
    events: tuple[str, ...] = ()  # sorted; empty: any event
    crime_types: tuple[str, ...] = ()  # sorted; empty: any crime type
    minor: bool | None = None  # None: minors and adults
    unaccompanied_minor: bool | None = None  # None: either
    by: tuple[Dimension, ...] = ()  # canonical order (DIMENSIONS)
    _id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.notice_type not in NOTICE_TYPES:
            raise ValueError(f"unknown notice type {self.notice_type!r}")
        if self.window_ms <= 0:
            raise ValueError("a window must be positive")
        if tuple(sorted(set(self.events))) != self.events:
            raise ValueError("events must be sorted and unique")
        if tuple(sorted(set(self.crime_types))) != self.crime_types:
            raise ValueError("crime types must be sorted and unique")
        if tuple(d for d in DIMENSIONS if d in self.by) != self.by:
            raise ValueError("dimensions must be unique and in canonical order")
        if not set(self.by) <= TYPE_DIMENSIONS[self.notice_type]:
            raise ValueError(f"{self.notice_type} has no dimension among {self.by}")
        object.__setattr__(self, "_id", self._identity())

    def __lt__(self, other: Table) -> bool:  # tables sort by identity, for stable output
        return self._id < other._id

    @property
    def id(self) -> str:
        """A stable, readable identity: what the table counts, split by what, over what."""
        return self._id

    def _identity(self) -> str:
        parts = [self.notice_type]
        if self.events:
            parts.append("event=" + ",".join(self.events))
        if self.crime_types:
            parts.append("crime_type=" + ",".join(self.crime_types))
        if self.minor is not None:
            parts.append(f"minor={_bool(self.minor)}")
        if self.unaccompanied_minor is not None:
            parts.append(f"unaccompanied_minor={_bool(self.unaccompanied_minor)}")
        parts.append("by=" + ",".join(d.value for d in self.by))
        parts.append(f"window={self.window_ms}ms")
        return "/".join(parts)

    def window_of(self, time_ms: int) -> int:
        """The start of the window holding ``time_ms`` (windows are aligned on the epoch)."""
        return time_ms - time_ms % self.window_ms

    def matches(self, f: Features) -> bool:
        """Whether the table's filters admit the notice."""
        if f.notice_type != self.notice_type:
            return False
        if self.events and not f.events & set(self.events):
            return False
        if self.crime_types and not f.crime_types & set(self.crime_types):
            return False
        if self.minor is not None and f.minor != self.minor:
            return False
        return self.unaccompanied_minor is None or f.unaccompanied_minor == (
            self.unaccompanied_minor
        )

    def keys(self, f: Features) -> list[Key]:
        """The cells the notice counts in (none if a filter refuses it), each once."""
        if not self.matches(f):
            return []
        return sorted(product(*(sorted(f.values(d)) for d in self.by)))

    # --- refinement: which cells of one table count a subset of another's ---------------------

    def _filter_atoms(self) -> dict[str, list[frozenset[str]]]:
        atoms: dict[str, list[frozenset[str]]] = {"type": [frozenset({self.notice_type})]}
        if self.events:
            atoms["event"] = [frozenset(self.events)]
        if self.crime_types:
            atoms["crime_type"] = [frozenset(self.crime_types)]
        if self.minor is not None:
            atoms["minor"] = [frozenset({_bool(self.minor)})]
        if self.unaccompanied_minor is not None:
            atoms["unaccompanied_minor"] = [frozenset({_bool(self.unaccompanied_minor)})]
        return atoms

    def atoms(self, key: Key) -> Atoms:
        """The predicate of cell ``key``: a notice counts in it exactly when, for every
        attribute, its value meets each set listed (a single-valued attribute: is in the set's
        intersection; a multi-valued one: has an element in each set)."""
        atoms = self._filter_atoms()
        for dim, value in zip(self.by, key, strict=True):
            atoms.setdefault(dim.value, []).append(frozenset({value}))
        multi = _MULTI[self.notice_type]
        out: dict[str, tuple[frozenset[str], ...]] = {}
        for kind, sets in atoms.items():
            if kind in multi:
                out[kind] = tuple(sets)
            else:
                out[kind] = (frozenset.intersection(*sets),)
        return out

    def pinned(self, key: Key) -> dict[Dimension, str]:
        """The single value a cell fixes for each dimension it fixes (by key or by filter)."""
        out = dict(zip(self.by, key, strict=True))
        if len(self.events) == 1:
            out.setdefault(Dimension.EVENT, self.events[0])
        if len(self.crime_types) == 1:
            out.setdefault(Dimension.CRIME_TYPE, self.crime_types[0])
        if self.minor is not None:
            out.setdefault(Dimension.MINOR, _bool(self.minor))
        return out


def implies(child: Atoms, parent: Atoms) -> bool:
    """True when every notice that counts in ``child`` counts in ``parent``.

    Exact for the predicates :meth:`Table.atoms` builds: a single-valued attribute has one set
    per cell (``child`` implies ``parent`` when its set is a subset); a multi-valued one has
    "holds one of" sets, and ``child`` implies a parent's set exactly when one of its own sets is
    a subset (otherwise a notice holding one value outside the parent's set from each of the
    child's sets meets the child and not the parent).
    """
    for kind, parent_sets in parent.items():
        child_sets = child.get(kind)
        if child_sets is None:
            return False
        for p in parent_sets:
            if not any(c <= p for c in child_sets):
                return False
    return True


def could_overlap(a: Table, b: Table) -> bool:
    """Whether one notice could count in both tables (same type, filters not disjoint)."""
    if a.notice_type != b.notice_type:
        return False
    if a.events and b.events and not set(a.events) & set(b.events):
        return False
    if a.minor is not None and b.minor is not None and a.minor != b.minor:
        return False
    return not (
        a.unaccompanied_minor is not None
        and b.unaccompanied_minor is not None
        and a.unaccompanied_minor != b.unaccompanied_minor
    )


def refines(child: Table, parent: Table) -> bool:
    """Whether cells of ``child`` may each count a subset of one cell of ``parent`` (checked
    cell by cell in :mod:`puente.warnings.privacy`)."""
    return (
        child != parent
        and child.notice_type == parent.notice_type
        and child.window_ms == parent.window_ms
        and could_overlap(child, parent)
    )
