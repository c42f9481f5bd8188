"""Days of notices for early warning: a normal background, and a mass movement on top of it.

:class:`DayStream` yields, day by day, what every member publishes: consular notifications and
case notices drawn as the generator draws them (events, nationalities along the region's
corridors, places of the origin), at daily rates that follow how much each member publishes.
The scenario ``mass-movement`` adds a :class:`Movement`: one nationality's detentions rising
across three border states over days, holding, then falling; with it, deaths in one border
area, returns of unaccompanied children of that nationality, and smuggling cases naming a route
the background never names. ``background`` is the background alone (what false alarms are
measured on). Deterministic by seed; every record is a full, valid notice.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from puente.synth.generator import (
    _ORIGIN_WEIGHT,
    Generator,
)
from puente.synth.notice import CASE_NOTICE, CONSULAR_NOTIFICATION, Notice

SCENARIOS = ("mass-movement", "background")
DAY = dt.timedelta(days=1)

# Background notices per day per unit of a member's publishing weight (the generator's weights).
CONSULAR_PER_WEIGHT = 3.0
CASES_PER_WEIGHT = 0.6


@dataclass(frozen=True)
class Movement:
    """A mass movement of one nationality northwards (days count from the first simulated day).

    Extra detentions per state per day ramp up linearly over ``ramp_days`` to ``peak``, hold for
    ``plateau_days`` and ramp down over ``ramp_days``. Deaths in ``deaths_at`` (a place the
    gazetteer knows), returns of unaccompanied children and smuggling cases naming ``route``
    follow the same curve, scaled.
    """

    nationality: str = "VE"
    states: tuple[str, ...] = ("PA", "CR", "MX")
    start_day: int = 20
    ramp_days: int = 6
    plateau_days: int = 10
    peak: int = 30  # extra detentions per state per day
    deaths_at: tuple[str, str] = ("PA", "Lajas Blancas")
    deaths_peak: float = 4.0  # per day
    returns_from: tuple[str, ...] = ("MX", "US")
    children_peak: float = 3.0  # unaccompanied children returned per day per state
    route: tuple[str, ...] = ("VE", "NI", "HN", "GT", "MX", "US")
    route_states: tuple[str, ...] = ("HN", "GT", "MX", "US")
    route_peak: float = 1.5  # smuggling cases naming the route per day per state

    @property
    def end_day(self) -> int:
        """The first day without the movement."""
        return self.start_day + 2 * self.ramp_days + self.plateau_days

    def intensity(self, day: int) -> float:
        """0 before and after; rising to 1 over the ramp, 1 on the plateau, then falling."""
        t = day - self.start_day
        if t < 0 or day >= self.end_day:
            return 0.0
        if t < self.ramp_days:
            return (t + 1) / self.ramp_days
        if t < self.ramp_days + self.plateau_days:
            return 1.0
        return (self.end_day - day) / (self.ramp_days + 1)


@dataclass
class DayStream:
    """The notices of each simulated day, every member publishing (see the module docstring)."""

    seed: int
    start: dt.datetime
    members: Sequence[str]
    movement: Movement | None = None
    gen: Generator = field(init=False)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.gen = Generator(self.seed, members=self.members)
        self.rng = random.Random(self.seed ^ 0x5EED)  # noqa: S311 - synthetic data, seeded

    def _poisson(self, mean: float) -> int:
        # Knuth's method: exact for the small means used here, and deterministic by seed.
        if mean <= 0:
            return 0
        limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def _at(self, day: int) -> dt.datetime:
        ms = self.rng.randrange(86_400_000)
        return self.start + day * DAY + dt.timedelta(milliseconds=ms)

    def _consular(self, origin: str, day: int, event: str | None = None, **kw: object) -> Notice:
        when = self._at(day)
        record = self.gen.consular_notification(origin, event, **kw)  # type: ignore[arg-type]
        record["event_time"] = when
        record["created_at"] = when + dt.timedelta(minutes=self.rng.randint(10, 600))
        if record["person"]["informed_of_rights_at"] is not None:
            record["person"]["informed_of_rights_at"] = when + dt.timedelta(minutes=30)
        if record["return_details"] is not None:
            for i, leg in enumerate(record["return_details"]["itinerary"]):
                leg["departure_at"] = when + dt.timedelta(hours=24 + 5 * i)
        return Notice(CONSULAR_NOTIFICATION, record)

    def _case(self, origin: str, day: int, **overrides: object) -> Notice:
        record = self.gen.case_notice(origin, **overrides)
        record["created_at"] = self._at(day)
        return Notice(CASE_NOTICE, record)

    def day(self, day: int) -> Iterator[Notice]:
        """Every notice of day ``day`` (0 = ``start``), background first."""
        for origin in self.members:
            weight = _ORIGIN_WEIGHT.get(origin, 2)
            for _ in range(self._poisson(CONSULAR_PER_WEIGHT * weight)):
                yield self._consular(origin, day)
            for _ in range(self._poisson(CASES_PER_WEIGHT * weight)):
                yield self._case(origin, day)
        m = self.movement
        if m is None or m.intensity(day) == 0:
            return
        level = m.intensity(day)
        nat = [m.nationality]
        for state in m.states:
            for _ in range(self._poisson(m.peak * level)):
                yield self._consular(state, day, "DETENTION", nationalities=nat)
        country, place = m.deaths_at
        for _ in range(self._poisson(m.deaths_peak * level)):
            yield self._consular(
                country,
                day,
                "DEATH",
                nationalities=nat,
                place={"country": country, "place": place, "facility": None},
            )
        for state in m.returns_from:
            for _ in range(self._poisson(m.children_peak * level)):
                notice = self._consular(state, day, "REMOVAL_OR_RETURN", nationalities=nat)
                notice.record["person"]["minor"] = True
                notice.record["return_details"]["safeguards"]["unaccompanied_minor"] = True
                yield notice
        for state in m.route_states:
            for _ in range(self._poisson(m.route_peak * level)):
                route = {
                    "route_ref": "r1",
                    "countries": list(m.route),
                    "transport_modes": ["air", "bus"],
                    "description": "",
                }
                yield self._case(state, day, crime_types=["MIGRANT_SMUGGLING"], routes=[route])
