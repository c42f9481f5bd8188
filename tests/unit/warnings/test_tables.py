"""What an origin counts: the attributes of a notice, its cells, and when one cell refines
another (the relation the privacy guarantee rests on, checked against its definition)."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from puente.synth.generator import Generator
from puente.warnings.tables import (
    CASE,
    CONSULAR,
    Dimension,
    Features,
    Gazetteer,
    Table,
    features,
    implies,
)

GAZ = Gazetteer.build({"MX": {"Chiapas": ["Tapachula", "Ciudad Hidalgo"]}, "PA": {"Darién": []}})
DAY = 86_400_000


def test_gazetteer_finds_a_division_never_the_notice_text() -> None:
    assert GAZ.admin1("MX", "Tapachula") == "MX/Chiapas"
    assert GAZ.admin1("MX", "  TAPACHULA ") == "MX/Chiapas"
    assert GAZ.admin1("MX", "Estación Migratoria, Ciudad Hidalgo") == "MX/Chiapas"
    assert GAZ.admin1("MX", "calle 5, chiapas") == "MX/Chiapas"  # a part naming the division
    assert GAZ.admin1("PA", "Darien") == "PA/Darién"  # accents ignored
    assert GAZ.admin1("MX", "Av. Reforma 100, casa de Juan") == "MX/unknown"
    assert GAZ.admin1("GT", "Tapachula") == "GT/unknown"  # places belong to one country
    assert GAZ.admin1("mexico", "Tapachula") == "unknown/unknown"


def test_consular_features() -> None:
    gen = Generator(3)
    record = gen.consular_notification("MX", "REMOVAL_OR_RETURN", nationalities=["VE", "CO"])
    record["place"] = {"country": "MX", "place": "Tapachula", "facility": None}
    record["person"]["minor"] = False
    record["person"]["date_of_birth"] = None
    record["return_details"]["safeguards"]["unaccompanied_minor"] = True
    f = features(record, "puente.ConsularNotification", GAZ)
    assert f.notice_type == CONSULAR
    assert f.time_ms == int(record["event_time"].timestamp() * 1000)
    assert f.events == {"REMOVAL_OR_RETURN"}
    assert f.nationalities == {"VE", "CO"}
    assert f.places == {"MX/Chiapas"}
    assert f.minor and f.unaccompanied_minor  # an unaccompanied child is a child
    record["return_details"] = None
    record["event"] = "DETENTION"
    born = record["event_time"].date().replace(year=record["event_time"].year - 17)
    record["person"]["date_of_birth"] = born
    assert features(record, "ConsularNotification", GAZ).minor  # 17 by the date of birth


def test_case_features_and_routes() -> None:
    gen = Generator(4)
    record = gen.case_notice("GT", crime_types=["MIGRANT_SMUGGLING", "DOCUMENT_FRAUD"])
    record["routes"] = [
        {
            "route_ref": "r1",
            "countries": ["VE", "NI", "GT"],
            "transport_modes": [],
            "description": "",
        },
        {
            "route_ref": "r2",
            "countries": ["Honduras", "GT"],
            "transport_modes": [],
            "description": "",
        },
    ]
    f = features(record, "puente.CaseNotice", GAZ)
    assert f.crime_types == {"MIGRANT_SMUGGLING", "DOCUMENT_FRAUD"}
    assert f.routes == {"VE>NI>GT"}  # a route naming a country in words is no key
    assert f.time_ms == int(record["created_at"].timestamp() * 1000)


def test_a_notice_counts_once_per_cell_in_every_cell_it_matches() -> None:
    t = Table(CONSULAR, DAY, events=("DETENTION",), by=(Dimension.NATIONALITY, Dimension.MINOR))
    f = Features(
        CONSULAR, 0, events=frozenset({"DETENTION"}), nationalities=frozenset({"VE", "CO"})
    )
    assert t.keys(f) == [("CO", "false"), ("VE", "false")]
    assert t.keys(Features(CONSULAR, 0, events=frozenset({"DEATH"}))) == []
    unknown = Features(CONSULAR, 0, events=frozenset({"DETENTION"}))
    assert t.keys(unknown) == [("unknown", "false")]
    routes = Table(CASE, DAY, by=(Dimension.ROUTE,))
    assert routes.keys(Features(CASE, 0)) == []  # a case naming no route is in no route cell


def test_tables_are_canonical() -> None:
    with pytest.raises(ValueError):
        Table(CONSULAR, DAY, by=(Dimension.MINOR, Dimension.NATIONALITY))
    with pytest.raises(ValueError):
        Table(CONSULAR, DAY, by=(Dimension.ROUTE,))
    with pytest.raises(ValueError):
        Table(CONSULAR, DAY, events=("DEATH", "ARREST"))
    t = Table(CONSULAR, 3 * DAY, events=("DEATH",), by=(Dimension.PLACE,))
    assert t.id == "ConsularNotification/event=DEATH/by=place/window=259200000ms"
    assert t.window_of(3 * DAY + 5) == 3 * DAY


# --- refinement, exactly ------------------------------------------------------------------------

EVENTS = ("ARREST", "DETENTION", "DEATH")
NATS = ("CO", "HT", "VE")
PLACES = ("MX/Chiapas", "MX/unknown")
UNIVERSE = [
    Features(
        CONSULAR,
        0,
        events=frozenset({e}),
        nationalities=frozenset(n),
        places=frozenset({p}),
        minor=m,
        unaccompanied_minor=u,
    )
    for e in EVENTS
    for r in (1, 2)
    for n in itertools.combinations(NATS, r)
    for p in PLACES
    for m in (False, True)
    for u in (False, True)
]


def _tables(rng: random.Random) -> Table:
    dims = [
        d
        for d in (Dimension.EVENT, Dimension.NATIONALITY, Dimension.PLACE, Dimension.MINOR)
        if rng.random() < 0.4
    ]
    events = tuple(sorted(rng.sample(EVENTS, rng.randint(0, 2))))
    return Table(
        CONSULAR,
        DAY,
        events=events,
        minor=rng.choice([None, None, True, False]),
        unaccompanied_minor=rng.choice([None, None, None, True]),
        by=tuple(dims),
    )


def _members(t: Table, key: tuple[str, ...]) -> set[int]:
    return {i for i, f in enumerate(UNIVERSE) if key in t.keys(f)}


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_implies_is_exactly_inclusion_of_the_notices_counted(seed: int) -> None:
    """For random tables and cells, implies(child, parent) holds exactly when every possible
    notice counted in the child is counted in the parent (checked over every combination of
    events, nationality sets, places and flags)."""
    rng = random.Random(seed)
    a, b = _tables(rng), _tables(rng)
    keys_a = sorted({k for f in UNIVERSE for k in a.keys(f)})
    keys_b = sorted({k for f in UNIVERSE for k in b.keys(f)})
    for ka in rng.sample(keys_a, min(4, len(keys_a))):
        for kb in rng.sample(keys_b, min(4, len(keys_b))):
            child, parent = _members(b, kb), _members(a, ka)
            assert implies(b.atoms(kb), a.atoms(ka)) == (child <= parent), (b.id, kb, a.id, ka)


def test_features_read_decoded_notices_of_every_generated_kind() -> None:
    gen = Generator(9)
    for name, record in gen.notices(200):
        f = features(record, name, GAZ)
        assert f.notice_type in (CASE, CONSULAR)
        when = record.get("event_time") or record["created_at"]
        assert f.time_ms == int(when.timestamp() * 1000)
        assert all(v == "unknown" or len(v) == 2 for v in f.nationalities)
        assert isinstance(when, dt.datetime)
