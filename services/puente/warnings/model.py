"""The shape of policies/triggers.yaml and policies/places.yaml, as pydantic models (validated
at load). docs/early-warning.md explains each field; :mod:`puente.warnings.loader` checks what a
shape cannot (codes, groups, windows, overlaps) and compiles them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from puente.policy.model import RULE_ID

DURATION = r"^[1-9][0-9]{0,6}(s|m|h|d)$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Counts(_Strict):
    """The counts a trigger reads: one notice type, filters, and the dimensions."""

    type: str = Field(description="CaseNotice or ConsularNotification")
    events: tuple[str, ...] = Field(default=(), description="ConsularEvent symbols; none: any")
    crime_types: tuple[str, ...] = Field(default=(), description="CrimeType symbols; none: any")
    minor: bool | None = None
    unaccompanied_minor: bool | None = None
    by: tuple[str, ...] = Field(default=(), description="dimensions the counts are split by")


class ThresholdSpec(_Strict):
    ratio: float = Field(ge=1.0, le=1000.0, description="times the baseline (per window)")
    min_count: int = Field(ge=1, description="and at least this value")


class TriggerSpec(_Strict):
    id: str = Field(pattern=RULE_ID)
    description: str = Field(min_length=1)
    purposes: tuple[str, ...] = Field(min_length=1)
    legal_basis: str = ""
    counts: Counts
    over: tuple[str, ...] = Field(min_length=1, description="states, groups, areas or ALL")
    window: str = Field(pattern=DURATION)
    baseline: str = Field(pattern=DURATION)
    threshold: ThresholdSpec
    alert: ThresholdSpec | None = None
    measure: str = "count"
    new_only: bool = False
    clear_after: int = Field(default=1, ge=1, le=100)
    notify: tuple[str, ...] = Field(min_length=1, description="states, groups, areas or ALL")


class Area(_Strict):
    """A named set of member states used only by triggers (e.g. the border states of a route)."""

    name: str
    members: tuple[str, ...] = Field(min_length=1)


class TriggersFile(_Strict):
    """policies/triggers.yaml."""

    version: int = Field(ge=1)
    illustrative: bool
    k: int = Field(default=5, ge=2, le=1000, description="minimum published cell size")
    lateness: str = Field(default="6h", pattern=DURATION)
    grace: int = Field(default=1, ge=1, le=100)
    areas: dict[str, Area] = Field(default_factory=dict)
    triggers: tuple[TriggerSpec, ...] = ()


class PlacesFile(_Strict):
    """policies/places.yaml: per member state, its first-level divisions and the place names
    (as agencies write them) in each."""

    illustrative: bool
    places: dict[str, dict[str, tuple[str, ...]]]
