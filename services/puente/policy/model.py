"""The shape of the policy files, as pydantic models (validated at load, never on the hot path).

policies/regional.yaml holds the groups, the protection floor's citations and the regional rules
(the Vienna Convention duties); policies/states/CC.yaml holds one member state's rules, what it
accepts and its mandatory consular-notification partners. policies/SEMANTICS.md explains them.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

RULE_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"
REASON = r"^[A-Z][A-Z0-9_]{2,63}$"
STATE = r"^[A-Z]{2}$"
DURATION = r"^[1-9][0-9]{0,4}[mhd]$"  # minutes, hours or days: 90m, 72h, 7d
ALL = "ALL"


class Action(StrEnum):
    """What a rule does with a notice for a recipient."""

    SHARE = "share"
    SHARE_TRANSFORMED = "share_transformed"
    WITHHOLD = "withhold"


class Op(StrEnum):
    """A field transformation."""

    DROP = "drop"  # the field's Avro default (or null, [] or "")
    MASK = "mask"  # "***" followed by the last ``keep_last`` characters
    YEAR_ONLY = "year_only"  # a date becomes 1 January of its year
    PSEUDONYMISE = "pseudonymise"  # HMAC-SHA256 under the recipient's key


class FloorProtection(StrEnum):
    """The protections of the regional floor; their semantics are fixed in code (floor.py)."""

    ASYLUM = "asylum"
    MINORS = "minors"
    TRAFFICKING_VICTIMS = "trafficking_victims"


# Only these two may be set aside by a rule, and only with a legal basis of their own.
EXCEPTABLE = frozenset({FloorProtection.MINORS, FloorProtection.TRAFFICKING_VICTIMS})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Transform(_Strict):
    """One field transformation; ``field`` is a path such as ``persons[].date_of_birth``."""

    field: str = Field(min_length=1)
    op: Op
    keep_last: int = Field(default=0, ge=0, le=8, description="mask: characters kept at the end")
    scope: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_.-]*$",
        description="pseudonymise: the linking scope (default: the field's own name), so that "
        "a passport number gets the same pseudonym in every notice type",
    )


class FloorException(_Strict):
    """A rule's explicit, cited exception to the minors or trafficking-victims floor."""

    floor: FloorProtection
    legal_basis: str = ""


class Rule(_Strict):
    """A rule of a state (or of the region): which notices, to whom, on what basis, in what form."""

    id: str = Field(pattern=RULE_ID)
    description: str = ""
    types: tuple[str, ...] = Field(min_length=1)
    to: tuple[str, ...] = Field(min_length=1, description="state codes, group names or ALL")
    when: str | None = Field(default=None, description="a CEL condition; absent means always")
    action: Action
    purposes: tuple[str, ...] = ()
    handling: str | None = None
    handling_conditions: str | None = None
    retention_days: int | None = Field(default=None, ge=1, le=36500)
    transform: tuple[Transform, ...] = ()
    floor_exceptions: tuple[FloorException, ...] = ()
    reason: str | None = Field(default=None, pattern=REASON, description="withhold: reason code")
    legal_basis: str = ""


class Acceptance(_Strict):
    """What a state accepts to receive: notice types and the purposes its law allows."""

    id: str = Field(pattern=RULE_ID)
    types: tuple[str, ...] = Field(min_length=1)
    purposes: tuple[str, ...] = Field(min_length=1)
    legal_basis: str = ""


class DeadlineAnchor(StrEnum):
    """A time in the notice that caps a deadline."""

    DEPARTURE = "departure"  # a return's first scheduled departure (return_details.itinerary)


class StateDeadline(_Strict):
    """A state's own deadline: it shortens the regional one for the notices the state sends."""

    id: str = Field(pattern=RULE_ID)
    description: str = ""
    type: str
    events: tuple[str, ...] = Field(
        default=(), description="the notice type's events it covers; none: every event"
    )
    receive: str | None = Field(
        default=None, pattern=DURATION, description="time to receive (a signed machine receipt)"
    )
    acknowledge: str | None = Field(
        default=None, pattern=DURATION, description="time to acknowledge (a consular officer)"
    )
    legal_basis: str = ""


class Deadline(StateDeadline):
    """A regional deadline: how long the recipient has to receive and to acknowledge a notice
    of this type and event, counted from the decision, and the time in the notice that caps
    both (``before``), if any."""

    before: DeadlineAnchor | None = None


class StateFile(_Strict):
    """policies/states/CC.yaml."""

    state: str = Field(pattern=STATE)
    illustrative: bool
    legal_framework: str = ""
    mandatory_consular_notification: tuple[str, ...] = ()
    accepts: tuple[Acceptance, ...] = ()
    rules: tuple[Rule, ...] = ()
    deadlines: tuple[StateDeadline, ...] = ()


class Group(_Strict):
    """A regional body or any named set of member states."""

    name: str
    members: tuple[str, ...]


class FloorEntry(_Strict):
    id: str = Field(pattern=RULE_ID)
    protects: FloorProtection
    description: str = ""
    legal_basis: str = ""


class Purposes(_Strict):
    protection: tuple[str, ...] = Field(min_length=1)


class RegionalFile(_Strict):
    """policies/regional.yaml."""

    illustrative: bool
    groups: dict[str, Group] = Field(default_factory=dict)
    purposes: Purposes
    floor: tuple[FloorEntry, ...]
    rules: tuple[Rule, ...] = ()
    deadlines: tuple[Deadline, ...] = ()
