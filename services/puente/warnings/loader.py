"""Load and check policies/triggers.yaml (and the gazetteer policies/places.yaml) into a
:class:`~puente.warnings.triggers.TriggerSet`.

Checked like the policy files: every problem is collected with its file, line and a stable
``TRIGGER_*`` code before the set is refused (YAML is read by :mod:`puente.policy.yamlsrc`, so
syntax errors, duplicate keys and alias bombs are refused the same way, as ``POLICY_YAML_*``).
Members come from members.yaml, groups and the protection purposes from regional.yaml, event,
crime-type and purpose symbols from the notice schemas. A policy directory without
triggers.yaml has no triggers (early warning is off); ``puente policy check`` runs this too.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from puente.codec.registry import Registry
from puente.errors import PuenteError
from puente.members import MEMBERS_FILE, load_members
from puente.policy.errors import Problem
from puente.policy.model import ALL, RegionalFile
from puente.policy.yamlsrc import LMap, YamlSourceError, line_of, load_yaml
from puente.resources import data_dir
from puente.warnings.model import Counts, PlacesFile, ThresholdSpec, TriggersFile, TriggerSpec
from puente.warnings.tables import (
    CASE,
    CONSULAR,
    DIMENSIONS,
    NOTICE_TYPES,
    TYPE_DIMENSIONS,
    Dimension,
    Gazetteer,
    Table,
    could_overlap,
    fold_place,
)
from puente.warnings.triggers import Measure, Threshold, Trigger, TriggerSet

TRIGGERS_FILE = "triggers.yaml"
PLACES_FILE = "places.yaml"
REGIONAL_FILE = "regional.yaml"
_UNITS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_AREA_NAME = re.compile(r"^[a-z][a-z0-9-]{2,39}$")
_STATE = re.compile(r"^[A-Z]{2}$")


class TriggerLoadError(PuenteError):
    """policies/triggers.yaml (or places.yaml) could not be loaded; ``problems`` lists each error
    with file and line."""

    reason = "TRIGGERS_INVALID"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        super().__init__(
            f"{len(errors)} error(s) in the triggers:\n" + "\n".join(f"  {p}" for p in errors),
            hint="fix the files and run `puente policy check`",
        )


def duration_ms(text: str) -> int:
    """``72h`` -> milliseconds (units s, m, h, d)."""
    return int(text[:-1]) * _UNITS[text[-1]]


def _symbols(registry: Registry, record: str, enum: str) -> frozenset[str]:
    found: list[frozenset[str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for n in node:
                walk(n)
        elif isinstance(node, dict):
            if node.get("type") == "enum" and node.get("name") == enum:
                found.append(frozenset(node["symbols"]))
            for f in node.get("fields", []):
                walk(f["type"])
            for key in ("items", "values"):
                if key in node:
                    walk(node[key])

    walk(dict(registry.latest(f"puente.{record}").schema))
    return found[0] if found else frozenset()


@dataclass
class _Context:
    members: frozenset[str]
    groups: dict[str, tuple[str, ...]]
    protection: frozenset[str]
    purposes: frozenset[str]
    events: frozenset[str]
    crime_types: frozenset[str]


@dataclass
class _Loader:
    root: Path
    schemas_dir: Path
    problems: list[Problem] = field(default_factory=list)
    raw: list[tuple[str, bytes]] = field(default_factory=list)

    def error(self, file: str, line: int, code: str, message: str) -> None:
        self.problems.append(Problem(file, line, code, message))

    def warn(self, file: str, line: int, code: str, message: str) -> None:
        self.problems.append(Problem(file, line, code, message, "warning"))

    def read(self, name: str, model: type[BaseModel]) -> tuple[Any, BaseModel] | None:
        path = self.root / name
        try:
            data, raw = load_yaml(path, name)
        except YamlSourceError as exc:
            self.problems.append(exc.problem)
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self.error(name, 1, "TRIGGER_FILE_UNREADABLE", str(exc))
            return None
        except Exception as exc:  # e.g. a RecursionError on absurd YAML: refuse, never crash
            self.error(name, 1, "POLICY_YAML_SYNTAX", f"unreadable YAML ({type(exc).__name__})")
            return None
        self.raw.append((name, raw))
        if not isinstance(data, LMap):
            self.error(name, 1, "TRIGGER_SHAPE", "the file must hold a mapping")
            return None
        try:
            return data, model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(err["loc"])
                where = ".".join(str(p) for p in loc) or "(file)"
                self.error(name, line_of(data, loc), "TRIGGER_SHAPE", f"{where}: {err['msg']}")
            return None

    def context(self) -> _Context | None:
        try:
            members = frozenset(load_members(self.root).codes)
        except PuenteError as exc:
            self.error(MEMBERS_FILE, 1, exc.reason, exc.message)
            return None
        groups: dict[str, tuple[str, ...]] = {}
        protection: frozenset[str] = frozenset()
        try:  # regional.yaml's own problems are `puente policy check`'s to report
            data, _ = load_yaml(self.root / REGIONAL_FILE, REGIONAL_FILE)
            regional = RegionalFile.model_validate(data)
            groups = {
                n: tuple(c for c in g.members if c in members) for n, g in regional.groups.items()
            }
            protection = frozenset(regional.purposes.protection)
        except Exception:  # noqa: S110 - an invalid regional file is reported by the policy loader
            pass
        registry = Registry.load(self.schemas_dir)
        return _Context(
            members,
            groups,
            protection,
            _symbols(registry, CASE, "Purpose"),
            _symbols(registry, CONSULAR, "ConsularEvent"),
            _symbols(registry, CASE, "CrimeType"),
        )

    # --- the files -----------------------------------------------------------------------------

    def load(self) -> TriggerSet | None:
        if not (self.root / TRIGGERS_FILE).is_file():
            return TriggerSet("", 0, 5, 0, 1, (), Gazetteer())
        ctx = self.context()
        read = self.read(TRIGGERS_FILE, TriggersFile)
        gazetteer = self.places(ctx)
        if ctx is None or read is None:
            return None
        data, model = read
        assert isinstance(model, TriggersFile)
        areas = self.areas(data, model, ctx)
        lateness = duration_ms(model.lateness)
        triggers: list[Trigger] = []
        seen: dict[str, int] = {}
        for i, spec in enumerate(model.triggers):
            where = ("triggers", i)
            line = line_of(data, where)
            if spec.id in seen:
                self.error(
                    TRIGGERS_FILE,
                    line,
                    "TRIGGER_DUPLICATE_ID",
                    f"trigger id {spec.id} is already used at line {seen[spec.id]}",
                )
            seen.setdefault(spec.id, line)
            trigger = self.trigger(data, where, spec, ctx, areas, model.k)
            if trigger is not None:
                triggers.append(trigger)
        if any(t.table.by and Dimension.PLACE in t.table.by for t in triggers) and not (
            gazetteer.places
        ):
            self.warn(
                PLACES_FILE,
                1,
                "TRIGGER_NO_PLACES",
                "a trigger counts by place but no gazetteer lists places: every place is unknown",
            )
        self.tables(data, model, triggers)
        if any(p.severity == "error" for p in self.problems):
            return None
        digest = hashlib.sha256(b"puente.triggers.v1\n")
        for name, raw in sorted(self.raw):
            digest.update(name.encode() + b"\x00" + str(len(raw)).encode() + b"\x00" + raw)
        return TriggerSet(
            version="sha256:" + digest.hexdigest(),
            number=model.version,
            k=model.k,
            lateness_ms=lateness,
            grace_windows=model.grace,
            triggers=tuple(triggers),
            gazetteer=gazetteer,
            files=tuple(sorted(name for name, _ in self.raw)),
        )

    def places(self, ctx: _Context | None) -> Gazetteer:
        if not (self.root / PLACES_FILE).is_file():
            return Gazetteer()
        read = self.read(PLACES_FILE, PlacesFile)
        if read is None:
            return Gazetteer()
        data, model = read
        assert isinstance(model, PlacesFile)
        for country, divisions in model.places.items():
            line = line_of(data, ("places", country))
            if ctx is not None and country not in ctx.members:
                self.error(
                    PLACES_FILE, line, "TRIGGER_UNKNOWN_STATE", f"{country} is not a member state"
                )
            names: dict[str, str] = {}
            for division, places in divisions.items():
                for place in (division, *places):
                    key = fold_place(place)
                    if key in names and names[key] != division:
                        self.error(
                            PLACES_FILE,
                            line_of(data, ("places", country, division)),
                            "TRIGGER_PLACE_AMBIGUOUS",
                            f"{country}: {place!r} is listed under {names[key]} and {division}",
                        )
                    names[key] = division
        return Gazetteer.build(model.places)

    def areas(self, data: Any, model: TriggersFile, ctx: _Context) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for name, area in model.areas.items():
            line = line_of(data, ("areas", name))
            if not _AREA_NAME.match(name) or name in ctx.groups:
                self.error(
                    TRIGGERS_FILE,
                    line,
                    "TRIGGER_BAD_AREA_NAME",
                    f"area name {name!r} must be 3-40 lowercase letters, digits or '-', and not "
                    "a group of regional.yaml",
                )
            for code in area.members:
                if code not in ctx.members:
                    self.error(
                        TRIGGERS_FILE,
                        line,
                        "TRIGGER_UNKNOWN_STATE",
                        f"area {name}: {code!r} is not a member state",
                    )
            out[name] = tuple(sorted(c for c in area.members if c in ctx.members))
        return out

    def resolve(
        self,
        names: tuple[str, ...],
        line: int,
        ctx: _Context,
        areas: dict[str, tuple[str, ...]],
    ) -> tuple[tuple[str, ...], str | None]:
        states: set[str] = set()
        for name in names:
            if name == ALL:
                states |= ctx.members
            elif _STATE.match(name):
                if name not in ctx.members:
                    self.error(
                        TRIGGERS_FILE, line, "TRIGGER_UNKNOWN_STATE", f"{name} is not a member"
                    )
                states.add(name)
            elif name in areas:
                states |= set(areas[name])
            elif name in ctx.groups:
                states |= set(ctx.groups[name])
            else:
                self.error(
                    TRIGGERS_FILE,
                    line,
                    "TRIGGER_UNKNOWN_GROUP",
                    f"{name!r} is neither a member state, a group of regional.yaml, an area of "
                    "triggers.yaml nor ALL",
                )
        single = names[0] if len(names) == 1 and not _STATE.match(names[0]) else None
        return tuple(sorted(states & ctx.members)), single

    def trigger(
        self,
        data: Any,
        where: tuple[str, int],
        spec: TriggerSpec,
        ctx: _Context,
        areas: dict[str, tuple[str, ...]],
        k: int,
    ) -> Trigger | None:
        def line(key: str) -> int:
            return line_of(data, (*where, key))

        errors_before = sum(1 for p in self.problems if p.severity == "error")
        f = TRIGGERS_FILE
        for p in spec.purposes:
            if p not in ctx.purposes:
                self.error(f, line("purposes"), "TRIGGER_UNKNOWN_PURPOSE", f"unknown purpose {p!r}")
            elif ctx.protection and p not in ctx.protection:
                self.error(
                    f,
                    line("purposes"),
                    "TRIGGER_PURPOSE_NOT_PROTECTION",
                    f"{p} is not a protection purpose of regional.yaml: early warning serves "
                    "humanitarian coordination, never enforcement",
                )
        if not spec.legal_basis.strip():
            self.error(
                f, line("id"), "TRIGGER_NO_LEGAL_BASIS", f"trigger {spec.id} has no legal_basis"
            )
        window = duration_ms(spec.window)
        baseline = duration_ms(spec.baseline)
        if baseline < window or baseline % window:
            self.error(
                f,
                line("baseline"),
                "TRIGGER_BASELINE_NOT_MULTIPLE",
                f"the baseline ({spec.baseline}) must be a whole number of windows ({spec.window})",
            )
        table = self.table(spec.counts, window, (*where, "counts"), data, ctx)
        over, group = self.resolve(spec.over, line("over"), ctx, areas)
        notify, _ = self.resolve(spec.notify, line("notify"), ctx, areas)
        if not over:
            self.error(f, line("over"), "TRIGGER_NO_STATES", "the trigger reads no member's counts")
        try:
            measure = Measure(spec.measure)
        except ValueError:
            self.error(
                f,
                line("measure"),
                "TRIGGER_UNKNOWN_MEASURE",
                f"measure {spec.measure!r} is not one of {', '.join(m.value for m in Measure)}",
            )
            measure = Measure.COUNT
        if measure is Measure.COUNT and spec.threshold.min_count < k:
            self.warn(
                f,
                line("threshold"),
                "TRIGGER_THRESHOLD_BELOW_K",
                f"min_count {spec.threshold.min_count} is below k={k}: cells under k are never "
                "published, so a state contributes at least k",
            )
        if spec.alert is not None and (
            spec.alert.ratio < spec.threshold.ratio
            or spec.alert.min_count < spec.threshold.min_count
        ):
            self.error(
                f,
                line("alert"),
                "TRIGGER_ALERT_BELOW_THRESHOLD",
                "the alert threshold must be at least the threshold (ratio and min_count)",
            )
        if table is None or sum(1 for p in self.problems if p.severity == "error") > errors_before:
            return None
        return Trigger(
            id=spec.id,
            description=" ".join(spec.description.split()),
            purposes=spec.purposes,
            legal_basis=" ".join(spec.legal_basis.split()),
            table=table,
            over=over,
            over_group=group,
            baseline_windows=baseline // window,
            threshold=_threshold(spec.threshold),
            alert=_threshold(spec.alert) if spec.alert else None,
            measure=measure,
            new_only=spec.new_only,
            clear_after=spec.clear_after,
            notify=notify,
        )

    def table(
        self, c: Counts, window: int, where: tuple[Any, ...], data: Any, ctx: _Context
    ) -> Table | None:
        f = TRIGGERS_FILE

        def line(*key: str | int) -> int:
            return line_of(data, (*where, *key))

        if c.type not in NOTICE_TYPES:
            self.error(
                f,
                line("type"),
                "TRIGGER_UNKNOWN_TYPE",
                f"{c.type!r} is not {' or '.join(NOTICE_TYPES)}",
            )
            return None
        ok = True
        for name, values, allowed, owner in (
            ("events", c.events, ctx.events, CONSULAR),
            ("crime_types", c.crime_types, ctx.crime_types, CASE),
        ):
            if values and c.type != owner:
                self.error(
                    f,
                    line(name),
                    "TRIGGER_FILTER_NOT_OF_TYPE",
                    f"{name} filters only {owner} counts",
                )
                ok = False
            for v in values:
                if v not in allowed:
                    code = "TRIGGER_UNKNOWN_EVENT" if name == "events" else "TRIGGER_UNKNOWN_CRIME"
                    self.error(f, line(name), code, f"unknown {name[:-1].replace('_', ' ')} {v!r}")
                    ok = False
        if c.unaccompanied_minor is not None and c.type != CONSULAR:
            self.error(
                f,
                line("unaccompanied_minor"),
                "TRIGGER_FILTER_NOT_OF_TYPE",
                f"unaccompanied_minor filters only {CONSULAR} counts",
            )
            ok = False
        dims: list[Dimension] = []
        for i, name in enumerate(c.by):
            try:
                d = Dimension(name)
            except ValueError:
                self.error(
                    f,
                    line("by", i),
                    "TRIGGER_UNKNOWN_DIMENSION",
                    f"{name!r} is not one of {', '.join(d.value for d in DIMENSIONS)}",
                )
                ok = False
                continue
            if d not in TYPE_DIMENSIONS[c.type] or d in dims:
                self.error(
                    f,
                    line("by", i),
                    "TRIGGER_DIMENSION_NOT_OF_TYPE",
                    f"{c.type} counts cannot be split by {name} (or it is listed twice)",
                )
                ok = False
            dims.append(d)
        if not ok:
            return None
        return Table(
            notice_type=c.type,
            window_ms=window,
            events=tuple(sorted(set(c.events))),
            crime_types=tuple(sorted(set(c.crime_types))),
            minor=c.minor,
            unaccompanied_minor=c.unaccompanied_minor,
            by=tuple(d for d in DIMENSIONS if d in dims),
        )

    def tables(self, data: Any, model: TriggersFile, triggers: list[Trigger]) -> None:
        """Tables that count the same notices must not let one be differenced with another:
        different windows over the same notices are refused, overlapping tables of one window
        that do not nest are reported."""
        first: dict[Table, str] = {}
        for t in triggers:
            first.setdefault(t.table, t.id)
        tables = sorted(first)
        lines = {s.id: line_of(data, ("triggers", i)) for i, s in enumerate(model.triggers)}
        for i, a in enumerate(tables):
            for b in tables[i + 1 :]:
                if not could_overlap(a, b):
                    continue
                where = max(lines.get(first[a], 1), lines.get(first[b], 1))  # the later one
                if a.window_ms != b.window_ms:
                    self.error(
                        TRIGGERS_FILE,
                        where,
                        "TRIGGER_WINDOWS_OVERLAP",
                        f"triggers {first[a]} and {first[b]} count the same notices over windows "
                        "of different lengths: the longer window minus the shorter ones would "
                        "show the cells suppressed in them; use one window length",
                    )
                elif not (_nests(a, b) or _nests(b, a)):
                    self.warn(
                        TRIGGERS_FILE,
                        where,
                        "TRIGGER_TABLES_OVERLAP",
                        f"triggers {first[a]} and {first[b]} count overlapping notices in tables "
                        "that do not nest: together they bound a cross-cell they do not publish "
                        "(docs/early-warning.md, What remains)",
                    )


def _nests(child: Table, parent: Table) -> bool:
    """Whether each cell of ``child`` counts a subset of one cell of ``parent``."""
    if parent.events and not (child.events and set(child.events) <= set(parent.events)):
        return False
    if parent.crime_types and not (
        child.crime_types and set(child.crime_types) <= set(parent.crime_types)
    ):
        return False
    if parent.minor is not None and child.minor != parent.minor:
        return False
    if parent.unaccompanied_minor is not None and child.unaccompanied_minor != (
        parent.unaccompanied_minor
    ):
        return False
    pinned = set(child.by)
    if len(child.events) == 1:
        pinned.add(Dimension.EVENT)
    if len(child.crime_types) == 1:
        pinned.add(Dimension.CRIME_TYPE)
    if child.minor is not None:
        pinned.add(Dimension.MINOR)
    return set(parent.by) <= pinned


def _threshold(spec: ThresholdSpec) -> Threshold:
    return Threshold(spec.ratio, spec.min_count)


def collect_trigger_problems(
    policies_dir: Path, schemas_dir: Path | None = None
) -> tuple[TriggerSet | None, list[Problem]]:
    """Load the triggers of ``policies_dir``; the set (None if refused) and every problem."""
    loader = _Loader(policies_dir.resolve(), schemas_dir or data_dir("schemas"))
    try:
        ts = loader.load()
    except Exception as exc:  # never crash on a policy directory; refuse it
        ts = None
        loader.error(
            TRIGGERS_FILE, 1, "TRIGGER_UNLOADABLE", f"could not be loaded ({type(exc).__name__})"
        )
    return ts, loader.problems


def load_triggers(policies_dir: Path, schemas_dir: Path | None = None) -> TriggerSet:
    """The trigger set of ``policies_dir``; :class:`TriggerLoadError` lists every error."""
    ts, problems = collect_trigger_problems(policies_dir, schemas_dir)
    if ts is None:
        raise TriggerLoadError(problems)
    return ts
