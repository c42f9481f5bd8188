"""Invented persons: names from faker's locale of the person's nationality, a birth date fit for
the person's age group, documents in the issuing states' formats, protection flags."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from faker import Faker

from puente.synth.countries import PROFILES, locale_of
from puente.synth.documents import national_id_number, passport_number
from puente.synth.text import ALIASES


class People:
    """Makes persons; shares the generator's random source and faker instances."""

    def __init__(self, rng: random.Random, faker: Any) -> None:
        self.rng = rng
        self._faker = faker  # callable: locale -> Faker

    def names(self, nationality: str, sex: str) -> tuple[str, str]:
        """(given names, family names) as a national of ``nationality`` would carry them."""
        locale, language = locale_of(nationality)
        fake: Faker = self._faker(locale)
        first = fake.first_name_female if sex == "FEMALE" else fake.first_name_male
        given = first()
        if language in {"es", "pt"} and self.rng.random() < 0.4:
            given = f"{given} {first()}"
        family = fake.last_name()
        two = PROFILES[nationality].two_surnames if nationality in PROFILES else language == "es"
        if two or language == "pt":
            family = f"{family} {fake.last_name()}"
        return given, family

    def birth_date(self, on: date, minor: bool) -> date:
        """A birth date making the person a minor (6-17) or an adult (18-64) on ``on`` by the
        calendar, a few days clear of the 18th birthday: the protection floor reads ages from
        dates of birth, and a generated flag must never contradict its date."""
        years = self.rng.randint(6, 17) if minor else self.rng.randint(18, 64)
        days = self.rng.randint(0, 360) if minor else self.rng.randint(2, 366)
        try:
            anniversary = on.replace(year=on.year - years)
        except ValueError:  # 29 February
            anniversary = on.replace(year=on.year - years, day=28)
        return anniversary - timedelta(days=days)

    def documents(
        self,
        nationalities: list[str],
        given: str,
        family: str,
        dob: date,
        sex: str,
        on: date,
        *,
        fraud: bool = False,
        host: str | None = None,
        refugee: bool = False,
    ) -> list[dict[str, Any]]:
        """Identity documents: usually a passport, often a national id, sometimes more."""
        rng = self.rng
        docs: list[dict[str, Any]] = []
        for i, state in enumerate(nationalities):
            if rng.random() < (0.85 if i == 0 else 0.5):
                docs.append(self._doc("PASSPORT", passport_number(rng, state), state, on))
            if state in PROFILES and PROFILES[state].national_id and rng.random() < 0.45:
                number = national_id_number(rng, state, given, family, dob, sex)
                docs.append(self._doc("NATIONAL_ID", number, state, on))
        if refugee and host is not None and rng.random() < 0.6:
            number = passport_number(rng, host)
            docs.append(self._doc("REFUGEE_TRAVEL_DOCUMENT", number, host, on))
        if fraud:
            issuer = rng.choice(["US", "CA", "MX", "BR", "CL", "AR"])
            forged = self._doc("PASSPORT", passport_number(rng, issuer), issuer, on)
            forged["suspected_fraudulent"] = True
            docs.append(forged)
        return docs

    def _doc(self, kind: str, number: str, state: str, on: date) -> dict[str, Any]:
        expires = None
        if self.rng.random() < 0.9:
            expires = on + timedelta(days=self.rng.randint(30, 9 * 365))
        return {
            "kind": kind,
            "number": number,
            "issuing_state": state,
            "expires_on": expires,
            "suspected_fraudulent": False,
        }

    def alias(self, nationality: str) -> list[str]:
        """Zero or one nickname, in the person's language."""
        if self.rng.random() >= 0.3:
            return []
        return [self.rng.choice(ALIASES[locale_of(nationality)[1]])]
