"""The compiled trigger set: what policies/triggers.yaml says, checked and resolved (groups and
areas to member codes, durations to milliseconds). Built by :mod:`puente.warnings.loader`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from puente.warnings.tables import Gazetteer, Table


class Measure(StrEnum):
    """What a trigger compares with its baseline, per cell key."""

    COUNT = "count"  # the sum of the published counts over the states it reads
    STATES = "states"  # how many of those states published the cell


class Level(StrEnum):
    """How serious a warning is: the threshold met (WARNING) or the alert threshold (ALERT)."""

    WARNING = "WARNING"
    ALERT = "ALERT"


@dataclass(frozen=True)
class Threshold:
    """Met when the value is at least ``min_count`` and at least ``ratio`` x the baseline."""

    ratio: float
    min_count: int

    def met(self, value: int, baseline: float) -> bool:
        return value >= self.min_count and value >= self.ratio * baseline


@dataclass(frozen=True)
class Trigger:
    """One trigger: a table read over some states, a window, a baseline and thresholds."""

    id: str
    description: str
    purposes: tuple[str, ...]
    legal_basis: str
    table: Table
    over: tuple[str, ...]  # member codes whose counts it reads, sorted
    over_group: str | None  # the group or area named, when ``over`` is exactly one
    baseline_windows: int
    threshold: Threshold
    alert: Threshold | None
    measure: Measure
    new_only: bool
    clear_after: int
    notify: tuple[str, ...]  # member codes told, sorted

    @property
    def window_ms(self) -> int:
        return self.table.window_ms

    def level(self, value: int, baseline: float, *, seen_before: bool) -> Level | None:
        """The level met by ``value`` against ``baseline`` (None: no level). ``seen_before``:
        the key already reached the threshold's minimum in a baseline window (a ``new_only``
        trigger does not start then)."""
        if self.new_only and seen_before:
            return None
        if self.alert is not None and self.alert.met(value, baseline):
            return Level.ALERT
        if self.threshold.met(value, baseline):
            return Level.WARNING
        return None


@dataclass(frozen=True)
class TriggerSet:
    """Every trigger, and what an origin must count for them."""

    version: str  # sha256 over triggers.yaml and places.yaml (what a warning cites)
    number: int  # the ``version`` the file declares
    k: int
    lateness_ms: int
    grace_windows: int
    triggers: tuple[Trigger, ...]
    gazetteer: Gazetteer
    files: tuple[str, ...] = ()

    def tables_for(self, origin: str) -> tuple[Table, ...]:
        """The tables ``origin`` counts: those of triggers that read its counts (and no other:
        an origin counts nothing no trigger reads)."""
        return tuple(sorted({t.table for t in self.triggers if origin in t.over}))

    def trigger(self, trigger_id: str) -> Trigger:
        for t in self.triggers:
            if t.id == trigger_id:
                return t
        raise KeyError(trigger_id)

    @property
    def tables(self) -> tuple[Table, ...]:
        return tuple(sorted({t.table for t in self.triggers}))
