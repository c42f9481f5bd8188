"""The synthetic-data generator: realistic, invented notices from and about the member states.

Deterministic: the same seed and the same sequence of calls give the same records (for a given
faker version, which constraints.txt pins). Nothing reads the clock: times are drawn from a
fixed year. Values are what :func:`puente.codec.wire.encode` takes: ``datetime.date`` dates,
aware UTC datetimes, UUID strings.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from faker import Faker

from puente.synth.countries import CORRIDORS, NON_MEMBERS, PROFILES, Profile, profile
from puente.synth.documents import plate
from puente.synth.generic import random_record
from puente.synth.notice import CASE_NOTICE, CONSULAR_NOTIFICATION, DELIVERY_RECEIPT, Notice
from puente.synth.people import People
from puente.synth.scenarios import SCENARIOS
from puente.synth.text import (
    CARRIERS,
    FACILITIES,
    FOLLOW_UPS,
    H3_CONDITIONS,
    MODES,
    POST,
    REMARKS,
    SUMMARIES,
)

_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

# Roughly how often each member publishes (larger states and transit states publish more).
_ORIGIN_WEIGHT = {"MX": 8, "US": 8, "CO": 5, "PA": 5, "GT": 4, "BR": 4, "CR": 3, "HN": 3}

_CRIMES = (
    ("MIGRANT_SMUGGLING", 40),
    ("TRAFFICKING_IN_PERSONS", 25),
    ("DOCUMENT_FRAUD", 12),
    ("MONEY_LAUNDERING", 10),
    ("FACILITATION_OF_IRREGULAR_ENTRY", 6),
    ("ORGANISED_CRIME", 5),
    ("CORRUPTION", 2),
)

_EVENTS = (
    ("ARREST", 25),
    ("DETENTION", 30),
    ("REMOVAL_OR_RETURN", 15),
    ("HOSPITALISATION", 8),
    ("SERIOUS_INJURY", 5),
    ("DEATH", 5),
    ("GUARDIANSHIP_OF_MINOR", 5),
    ("RELEASE", 6),
    ("OTHER", 1),
)


class Generator:
    """Invented notices. ``members`` limits origins and most nationalities to those states
    (default: the 20 states with a profile); unknown codes get a generic profile."""

    def __init__(self, seed: int = 0, *, members: Sequence[str] | None = None) -> None:
        self.seed = seed
        # Synthetic data must be reproducible, not secret: a seeded PRNG is the point.
        self.rng = random.Random(seed)  # noqa: S311
        self.members: tuple[str, ...] = tuple(members) if members else tuple(PROFILES)
        self._fakers: dict[str, Faker] = {}
        self.people = People(self.rng, self.faker)

    # -- plumbing ------------------------------------------------------------------------
    def faker(self, locale: str) -> Faker:
        """This generator's faker for ``locale``, seeded from the generator's seed."""
        fake = self._fakers.get(locale)
        if fake is None:
            fake = Faker(locale)
            fake.seed_instance(self.seed ^ zlib.crc32(locale.encode()))
            self._fakers[locale] = fake
        return fake

    def uuid(self) -> str:
        """A random (version 4) UUID string from the generator's random source."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def instant(self, after: dt.datetime | None = None, max_hours: float = 24 * 365) -> dt.datetime:
        """A UTC time with millisecond precision in the generator's year (or after ``after``)."""
        base = after or _START
        ms = self.rng.randint(0, int(max_hours * 3_600_000))
        return base + dt.timedelta(milliseconds=ms)

    def _pick(self, table: Sequence[tuple[str, int]]) -> str:
        return self.rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]

    def origin(self) -> str:
        """A publishing member, weighted by how much each publishes."""
        weights = [_ORIGIN_WEIGHT.get(m, 2) for m in self.members]
        return self.rng.choices(self.members, weights=weights)[0]

    def profile(self, code: str) -> Profile:
        return profile(code)

    def _nationality(self, route: Sequence[str], exclude: str | None = None) -> str:
        """A nationality for someone on ``route``: mostly the route's start, members mostly."""
        candidates = [c for c in route[:-1] if c != exclude] or [
            m for m in self.members if m != exclude
        ]
        pick = candidates[0] if self.rng.random() < 0.5 else self.rng.choice(candidates)
        if pick not in self.members and pick not in NON_MEMBERS:
            pick = self.rng.choice([m for m in self.members if m != exclude] or self.members)
        return pick

    def _second_nationality(self, first: str) -> str:
        pairs = {"MX": "US", "US": "MX", "CA": "US", "CO": "US", "HT": "CA", "JM": "CA"}
        if first in pairs and self.rng.random() < 0.6:
            return pairs[first]
        return self.rng.choice([m for m in self.members if m != first])

    def _corridor(self, through: str) -> tuple[str, ...]:
        options = [c for c in CORRIDORS if through in c] or list(CORRIDORS)
        return self.rng.choice(options)

    # -- persons -------------------------------------------------------------------------
    def person(
        self,
        ref: str,
        role: str,
        *,
        on: dt.date,
        nationalities: Sequence[str],
        minor: bool | None = None,
        protection_status: str | None = None,
        fear_of_return: bool | None = None,
        trafficking_victim: bool = False,
        host: str | None = None,
        fraud: bool = False,
        sex: str | None = None,
        feared_states: Sequence[str] | None = None,
        habitual_residence: str | None = None,
    ) -> dict[str, Any]:
        """A CaseNotice person. Unset flags are drawn with realistic frequencies; a person who
        fears return or sought asylum mostly names the state feared (one of their nationalities),
        otherwise leaves it to the floor's conservative default."""
        rng = self.rng
        if minor is None:
            minor = role in {"VICTIM", "OTHER", "WITNESS"} and rng.random() < 0.18
        if sex is None:
            female = 0.7 if trafficking_victim else (0.25 if role == "SUSPECT" else 0.5)
            sex = "FEMALE" if rng.random() < female else "MALE"
        if protection_status is None:
            protection_status = self._protection(role)
        if fear_of_return is None:
            fear_of_return = protection_status in {"ASYLUM_SEEKER", "REFUGEE"} or (
                role != "SUSPECT" and rng.random() < 0.06
            )
        nats = list(nationalities)
        if feared_states is None:
            feared_states = []
            asylum = fear_of_return or protection_status in {"ASYLUM_SEEKER", "REFUGEE"}
            if asylum and nats and rng.random() < 0.6:
                feared_states = [rng.choice(nats)]
        given, family = self.people.names(nats[0], sex)
        dob = self.people.birth_date(on, minor) if rng.random() < 0.9 or minor else None
        docs = self.people.documents(
            nats,
            given,
            family,
            dob or on,
            sex,
            on,
            fraud=fraud,
            host=host,
            refugee=protection_status == "REFUGEE",
        )
        return {
            "person_ref": ref,
            "role": role,
            "given_names": given,
            "family_names": family,
            "aliases": self.people.alias(nats[0]) if role in {"SUSPECT", "FACILITATOR"} else [],
            "sex": sex,
            "date_of_birth": dob,
            "nationalities": nats,
            "identity_documents": docs,
            "protection_status": protection_status,
            "fear_of_return_expressed": fear_of_return,
            "feared_states": list(feared_states),
            "habitual_residence": habitual_residence,
            "minor": minor,
            "trafficking_victim": trafficking_victim,
        }

    def _protection(self, role: str) -> str:
        r = self.rng.random()
        if role == "SUSPECT" or role == "FACILITATOR":
            return "NONE" if r < 0.85 else "UNKNOWN"
        if r < 0.14:
            return "ASYLUM_SEEKER"
        if r < 0.18:
            return "REFUGEE"
        if r < 0.19:
            return "STATELESS"
        if r < 0.21:
            return "COMPLEMENTARY_PROTECTION"
        return "NONE" if r < 0.8 else "UNKNOWN"

    def _nationalities(self, route: Sequence[str], exclude: str | None = None) -> list[str]:
        first = self._nationality(route, exclude)
        if first in self.members and self.rng.random() < 0.08:
            return [first, self._second_nationality(first)]
        return [first]

    # -- CaseNotice ----------------------------------------------------------------------
    def case_notice(self, origin: str | None = None, **overrides: Any) -> dict[str, Any]:
        """A CaseNotice published by ``origin`` (drawn if None); ``overrides`` replace fields."""
        rng = self.rng
        origin = origin or self.origin()
        prof = self.profile(origin)
        created = self.instant()
        on = created.date()
        route = self._corridor(origin)
        primary = self._pick(_CRIMES)
        crimes = [primary]
        for extra in ("DOCUMENT_FRAUD", "MONEY_LAUNDERING", "ORGANISED_CRIME"):
            if extra != primary and rng.random() < 0.15:
                crimes.append(extra)
        persons = self._case_persons(primary, route, origin, on, fraud="DOCUMENT_FRAUD" in crimes)
        record = {
            "notice_id": self.uuid(),
            "origin": origin,
            "issuing_agency": rng.choice(prof.police),
            "created_at": created,
            "crime_types": crimes,
            "summary": self._summary(prof, primary, route, origin),
            "persons": persons,
            "organisations": self._organisations(primary, route, origin),
            "vehicles": self._vehicles(origin, route),
            "locations": self._locations(origin, route),
            "routes": self._routes(route),
            "financial_identifiers": self._financial(primary, crimes, persons, origin),
            "handling": self._handling(prof),
            "evaluation": {
                "source_reliability": rng.choices("ABCX", weights=(3, 5, 1, 2))[0],
                "information_accuracy": rng.choices(
                    [
                        "KNOWN_TRUE",
                        "KNOWN_PERSONALLY_TO_SOURCE",
                        "CORROBORATED",
                        "CANNOT_BE_JUDGED",
                    ],
                    weights=(2, 4, 4, 1),
                )[0],
            },
            "permitted_purposes": self._purposes(persons),
            "retention_days": rng.choice([180, 365, 730, 1095, 1825]),
            "related_notice_ids": [self.uuid()] if rng.random() < 0.2 else [],
        }
        record.update(overrides)
        return record

    def _case_persons(
        self, primary: str, route: Sequence[str], origin: str, on: dt.date, *, fraud: bool
    ) -> list[dict[str, Any]]:
        rng = self.rng
        roles = [
            "SUSPECT",
            *rng.choices(
                ["SUSPECT", "FACILITATOR", "VICTIM", "WITNESS", "OTHER"],
                weights=(3, 2, 3 if primary == "TRAFFICKING_IN_PERSONS" else 1, 2, 1),
                k=rng.randint(1, 4),
            ),
        ]
        out = []
        for i, role in enumerate(roles, start=1):
            victim = role == "VICTIM" and primary == "TRAFFICKING_IN_PERSONS"
            if role == "SUSPECT" and rng.random() < 0.5:
                nats = [origin] if origin in self.members else self._nationalities(route)
            else:
                nats = self._nationalities(route, exclude=origin if role != "SUSPECT" else None)
            out.append(
                self.person(
                    f"p{i}",
                    role,
                    on=on,
                    nationalities=nats,
                    trafficking_victim=victim,
                    host=origin,
                    fraud=fraud and role == "SUSPECT" and rng.random() < 0.5,
                )
            )
        return out

    def _summary(self, prof: Profile, primary: str, route: Sequence[str], origin: str) -> str:
        rng = self.rng
        lang = prof.language
        key = primary if primary in SUMMARIES[lang] else "OTHER"
        template = rng.choice(SUMMARIES[lang][key])
        here = rng.choice(prof.places).name
        there = route[0] if route[0] != origin else route[-1]
        there_name = profile(there).places[0].name if there in PROFILES else there
        follow_up = rng.choice(FOLLOW_UPS[lang]).format(b=there_name)
        return (
            template.format(
                n=rng.randint(3, 8),
                m=rng.randint(9, 40),
                a=here,
                b=there_name,
                mode=rng.choice(MODES[lang]),
                fee=rng.choice([1500, 2500, 4000, 7000, 12000]),
            )
            + " "
            + follow_up
        )

    def _organisations(
        self, primary: str, route: Sequence[str], origin: str
    ) -> list[dict[str, Any]]:
        rng = self.rng
        out = []
        for i in range(rng.choices([0, 1, 2], weights=(4, 4, 2))[0]):
            state = origin if rng.random() < 0.6 else rng.choice(route)
            prof = profile(state) if state in PROFILES else profile(origin)
            surname = self.faker(prof.locales[0]).last_name()
            kind = rng.choice(
                ["TRANSPORT_OPERATOR", "COMPANY", "CRIMINAL_GROUP", "MONEY_SERVICE_BUSINESS"]
                if primary != "MONEY_LAUNDERING"
                else ["MONEY_SERVICE_BUSINESS", "COMPANY"]
            )
            name = {
                "TRANSPORT_OPERATOR": f"Transportes {surname} {prof.company_suffix}",
                "COMPANY": f"Comercializadora {surname} {prof.company_suffix}",
                "CRIMINAL_GROUP": f"Grupo de {surname}",
                "MONEY_SERVICE_BUSINESS": f"Envíos {surname} {prof.company_suffix}",
            }[kind]
            out.append(
                {
                    "org_ref": f"o{i + 1}",
                    "name": name,
                    "kind": kind,
                    "country": state,
                    "registration_number": None
                    if kind == "CRIMINAL_GROUP"
                    else f"{rng.randint(100000, 999999)}-{rng.randint(1, 9)}",
                }
            )
        return out

    def _vehicles(self, origin: str, route: Sequence[str]) -> list[dict[str, Any]]:
        rng = self.rng
        out = []
        for i in range(rng.choices([0, 1, 2], weights=(5, 4, 1))[0]):
            kind = rng.choice(["TRUCK", "BUS", "CAR", "BOAT", "VESSEL"])
            state = origin if rng.random() < 0.7 else rng.choice(route)
            vessel = kind in {"BOAT", "VESSEL"}
            out.append(
                {
                    "vehicle_ref": f"v{i + 1}",
                    "kind": kind,
                    "registration": None if vessel and rng.random() < 0.5 else plate(rng, state),
                    "registration_state": state,
                    "imo_number": f"IMO {rng.randint(9000000, 9899999)}"
                    if kind == "VESSEL"
                    else None,
                    "description": rng.choice(
                        ["white", "blue", "grey", "red", "green"] if not vessel else ["fibreglass"]
                    ),
                }
            )
        return out

    def _locations(self, origin: str, route: Sequence[str]) -> list[dict[str, Any]]:
        rng = self.rng
        states = [origin] + [s for s in route if s in PROFILES and s != origin]
        out = []
        for i in range(rng.randint(1, 3)):
            state = states[0] if i == 0 else rng.choice(states)
            place = rng.choice(profile(state).places)
            out.append(
                {
                    "location_ref": f"l{i + 1}",
                    "country": state,
                    "place": place.name,
                    "latitude": self._jitter(place.lat),
                    "longitude": self._jitter(place.lon),
                    "description": {
                        "border": "crossing point",
                        "port": "embarkation point",
                        "transit": "transit camp",
                        "airport": "airport",
                    }.get(place.kind, "stash house"),
                }
            )
        return out

    def _jitter(self, degrees: float | None) -> float | None:
        """A point a few kilometres from a known place (never the exact address)."""
        return None if degrees is None else round(degrees + self.rng.uniform(-0.05, 0.05), 5)

    def _routes(self, route: Sequence[str]) -> list[dict[str, Any]]:
        if self.rng.random() < 0.3:
            return []
        start = self.rng.randint(0, max(0, len(route) - 3))
        return [
            {
                "route_ref": "r1",
                "countries": list(route[start:]),
                "transport_modes": self.rng.sample(["bus", "truck", "boat", "on foot", "air"], 2),
                "description": "",
            }
        ]

    def _financial(
        self, primary: str, crimes: Sequence[str], persons: Sequence[dict[str, Any]], origin: str
    ) -> list[dict[str, Any]]:
        rng = self.rng
        count = rng.randint(1, 3) if "MONEY_LAUNDERING" in crimes else rng.choice([0, 0, 1])
        out = []
        for _ in range(count):
            kind = rng.choice(["BANK_ACCOUNT", "MONEY_TRANSFER_CODE", "CRYPTO_WALLET", "IBAN"])
            value = {
                "BANK_ACCOUNT": f"{rng.randint(10**9, 10**10 - 1)}{rng.randint(10, 99)}",
                "MONEY_TRANSFER_CODE": f"MTCN {rng.randint(10**9, 10**10 - 1)}",
                "CRYPTO_WALLET": "T"
                + "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ123456789", k=33)),
                "IBAN": f"BR{rng.randint(10, 99)}{rng.randint(10**20, 10**21 - 1)}C1",
            }[kind]
            out.append(
                {
                    "kind": kind,
                    "value": value,
                    "institution": None if kind == "CRYPTO_WALLET" else "Banco " + origin,
                    "country": None if kind == "CRYPTO_WALLET" else origin,
                    "holder_ref": rng.choice(persons)["person_ref"] if persons else None,
                }
            )
        return out

    def _handling(self, prof: Profile) -> dict[str, Any]:
        code = self.rng.choices(["H0", "H1", "H2", "H3"], weights=(7, 7, 5, 1))[0]
        return {"code": code, "conditions": H3_CONDITIONS[prof.language] if code == "H3" else None}

    def _purposes(self, persons: Sequence[dict[str, Any]]) -> list[str]:
        purposes = ["CRIMINAL_INVESTIGATION"]
        if self.rng.random() < 0.6:
            purposes.append("PROSECUTION")
        if self.rng.random() < 0.3:
            purposes.append("BORDER_MANAGEMENT")
        if any(p["trafficking_victim"] or p["role"] == "VICTIM" for p in persons):
            purposes.append("VICTIM_PROTECTION")
        if any(p["minor"] for p in persons):
            purposes.append("CHILD_PROTECTION")
        return purposes

    # -- ConsularNotification ------------------------------------------------------------
    def consular_notification(
        self,
        origin: str | None = None,
        event: str | None = None,
        *,
        nationalities: Sequence[str] | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """A ConsularNotification by ``origin`` about a foreign national; ``event`` drawn if
        None; ``overrides`` replace top-level fields (``person`` may be a partial dict of
        person fields to replace)."""
        rng = self.rng
        origin = origin or self.origin()
        prof = self.profile(origin)
        event = event or self._pick(_EVENTS)
        created = self.instant()
        event_time = created - dt.timedelta(minutes=rng.randint(20, 60 * 30))
        nats = list(nationalities or self._nationalities(self._corridor(origin), exclude=origin))
        minor = event == "GUARDIANSHIP_OF_MINOR" or rng.random() < 0.1
        status = self._protection("OTHER") if event != "DEATH" else "NONE"
        informed = None
        if event in {"ARREST", "DETENTION"}:
            informed = event_time + dt.timedelta(minutes=rng.randint(5, 240))
        person = self.person(
            "p1",
            "OTHER",
            on=event_time.date(),
            nationalities=nats,
            minor=minor,
            protection_status=status,
            host=origin,
        )
        place = rng.choice(prof.places)
        city = place.name
        facility = FACILITIES.get(event, {}).get(prof.language)
        consular_person = {
            "given_names": person["given_names"],
            "family_names": person["family_names"],
            "sex": person["sex"],
            "date_of_birth": person["date_of_birth"],
            "nationalities": nats,
            "identity_documents": person["identity_documents"],
            "protection_status": status,
            "fear_of_return_expressed": person["fear_of_return_expressed"],
            "feared_states": person["feared_states"],
            "habitual_residence": person["habitual_residence"],
            "minor": minor,
            "requested_consular_notification": rng.random() < 0.6,
            "informed_of_rights_at": informed,
        }
        record = {
            "notice_id": self.uuid(),
            "origin": origin,
            "issuing_agency": prof.migration if event != "ARREST" else rng.choice(prof.police),
            "created_at": created,
            "event": event,
            "event_time": event_time,
            "person": consular_person,
            "place": {
                "country": origin,
                "place": city,
                "facility": f"{facility} {city}" if facility else None,
            },
            "authority": {
                "name": prof.migration if event == "DETENTION" else rng.choice(prof.police),
                "contact": f"{prof.phone_prefix} {rng.randint(200, 999)} {rng.randint(1000, 9999)}"
                f" / guardia@{prof.code.lower()}.consular.example",
                "case_reference": f"{origin}-{created.year}-{rng.randint(10000, 99999)}"
                if rng.random() < 0.8
                else None,
            },
            "consular_contact": self._consular_contact(nats[0], origin, city),
            "return_details": self._return(origin, nats[0], event_time, minor)
            if event == "REMOVAL_OR_RETURN"
            else None,
            "remarks": REMARKS[event][prof.language],
        }
        person_overrides = overrides.pop("person", None)
        record.update(overrides)
        if person_overrides:
            record["person"] = {**consular_person, **person_overrides}
        return record

    def _consular_contact(self, nationality: str, origin: str, city: str) -> dict[str, Any] | None:
        if nationality not in PROFILES or self.rng.random() < 0.3:
            return None
        home = PROFILES[nationality]
        return {
            "post": POST[home.language].format(country=home.name, city=city),
            "contact": f"{profile(origin).phone_prefix} {self.rng.randint(200, 999)} "
            f"{self.rng.randint(1000, 9999)} / consulado@{home.code.lower()}.consular.example",
        }

    def _return(
        self, origin: str, destination: str, after: dt.datetime, minor: bool
    ) -> dict[str, Any]:
        rng = self.rng
        start = profile(origin).airport
        end = profile(destination).airport if destination in PROFILES else destination
        departure = after + dt.timedelta(hours=rng.randint(24, 120))
        legs = [(start, end)]
        if rng.random() < 0.3 and "PTY" not in (start, end):
            legs = [(start, "PTY"), ("PTY", end)]
        itinerary = []
        for i, (a, b) in enumerate(legs):
            carrier = rng.choice(CARRIERS)
            itinerary.append(
                {
                    "from_place": a,
                    "to_place": b,
                    "departure_at": departure + dt.timedelta(hours=5 * i),
                    "carrier": f"{carrier} {rng.randint(100, 9999)}" if carrier != "Bus" else None,
                }
            )
        unaccompanied = minor and rng.random() < 0.6
        return {
            "destination_country": destination,
            "itinerary": itinerary,
            "safeguards": {
                "non_refoulement_assessed": rng.random() < 0.92,
                "unaccompanied_minor": unaccompanied,
                "best_interests_determined": minor and rng.random() < 0.8,
                "safe_reception_confirmed": (not minor) or rng.random() < 0.7,
                "notes": "escort by child-protection officer" if unaccompanied else "",
            },
        }

    # -- DeliveryReceipt -----------------------------------------------------------------
    def delivery_receipt(
        self, notice_id: str | None = None, recipient: str | None = None, **overrides: Any
    ) -> dict[str, Any]:
        """A DeliveryReceipt for a (random, unless given) notice."""
        rng = self.rng
        verified = rng.random() < 0.97
        record = {
            "receipt_id": self.uuid(),
            "notice_id": notice_id or self.uuid(),
            "recipient": recipient or rng.choice(self.members),
            "delivery_digest": rng.randbytes(32).hex(),
            "log_id": "puente.example/audit/" + rng.choice(self.members)
            if rng.random() < 0.8
            else None,
            "log_index": rng.randint(0, 5_000_000) if rng.random() < 0.8 else None,
            "status": "VERIFIED" if verified else "VERIFICATION_FAILED",
            "received_at": self.instant(),
        }
        record.update(overrides)
        return record

    # -- streams -------------------------------------------------------------------------
    def notices(self, n: int, *, consular_share: float = 0.3) -> Iterator[Notice]:
        """``n`` notices, a mix of CaseNotices and ConsularNotifications."""
        for _ in range(n):
            if self.rng.random() < consular_share:
                yield Notice(CONSULAR_NOTIFICATION, self.consular_notification())
            else:
                yield Notice(CASE_NOTICE, self.case_notice())

    def sample(self, full_name: str, parsed: dict[str, Any] | None = None) -> dict[str, Any]:
        """A record of any schema: the hand-made builders for Puente's notices and receipts,
        random valid values (from ``parsed``, the fastavro-parsed schema) for the rest."""
        builders: dict[str, Callable[[], dict[str, Any]]] = {
            CASE_NOTICE: self.case_notice,
            CONSULAR_NOTIFICATION: self.consular_notification,
            DELIVERY_RECEIPT: self.delivery_receipt,
        }
        if full_name in builders:
            return builders[full_name]()
        if parsed is None:
            raise KeyError(f"no builder for {full_name}; pass its parsed schema")
        return random_record(self.rng, parsed)

    def scenario(self, name: str, **kwargs: Any) -> Notice:
        """A named scenario (see :mod:`puente.synth.scenarios`)."""
        try:
            build = SCENARIOS[name].build
        except KeyError:
            raise KeyError(f"no scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}") from None
        return build(self, **kwargs)
