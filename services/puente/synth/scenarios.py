"""Named scenarios: the cases the demo and the policy tests need, each a builder
``(generator, **kwargs) -> Notice`` with the protection-relevant facts fixed and the rest drawn.

``SCENARIOS[name].build(gen)`` or ``gen.scenario(name)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from puente.synth.notice import CASE_NOTICE, CONSULAR_NOTIFICATION, Notice

if TYPE_CHECKING:  # the generator calls the scenarios; they only take it as an argument
    from puente.synth.generator import Generator


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    build: Callable[..., Notice]


def _consular(
    gen: Generator,
    origin: str,
    event: str,
    nationalities: tuple[str, ...],
    person: dict[str, Any],
    **overrides: Any,
) -> Notice:
    record = gen.consular_notification(
        origin, event, nationalities=list(nationalities), person=person, **overrides
    )
    return Notice(CONSULAR_NOTIFICATION, record)


def _adult(requested: bool | None = None, **facts: Any) -> dict[str, Any]:
    """Person facts of an adult with no protection claim, unless ``facts`` say otherwise."""
    person: dict[str, Any] = {
        "protection_status": "NONE",
        "fear_of_return_expressed": False,
        "feared_states": [],  # no fear named either: the person's facts agree with each other
        "minor": False,
        **facts,
    }
    if requested is not None:
        person["requested_consular_notification"] = requested
    return person


def asylum_seeker_detention(
    gen: Generator, origin: str = "MX", nationality: str = "HN", requested: bool = False
) -> Notice:
    """Detention of an asylum seeker: nothing identifying may reach the nationality state."""
    return _consular(
        gen,
        origin,
        "DETENTION",
        (nationality,),
        _adult(requested, protection_status="ASYLUM_SEEKER", fear_of_return_expressed=True),
    )


def fear_of_return_arrest(gen: Generator, origin: str = "US", nationality: str = "GT") -> Notice:
    """Arrest of a person who expressed fear of return but has not applied for asylum."""
    return _consular(
        gen,
        origin,
        "ARREST",
        (nationality,),
        _adult(True, fear_of_return_expressed=True),
    )


def mandatory_notification_detention(
    gen: Generator, origin: str = "US", nationality: str = "JM"
) -> Notice:
    """Detention of a national of a mandatory-notification state who did not ask for it."""
    return _consular(
        gen,
        origin,
        "DETENTION",
        (nationality,),
        _adult(False),
    )


def requested_arrest(gen: Generator, origin: str = "MX", nationality: str = "CO") -> Notice:
    """Arrest of a foreign national who asked for consular notification (VCCR Art. 36(1)(b))."""
    return _consular(
        gen,
        origin,
        "ARREST",
        (nationality,),
        _adult(True),
    )


def dual_national_arrest(
    gen: Generator, origin: str = "US", nationalities: tuple[str, ...] = ("MX", "CA")
) -> Notice:
    """Arrest of a dual national who asked for notification: each nationality state is a
    candidate recipient."""
    return _consular(
        gen,
        origin,
        "ARREST",
        nationalities,
        _adult(True),
    )


def dual_national_fear_of_one(
    gen: Generator,
    origin: str = "MX",
    nationalities: tuple[str, ...] = ("HN", "CR"),
    feared: tuple[str, ...] = ("HN",),
) -> Notice:
    """Detention of a dual national who seeks asylum from one nationality state only and asked
    for consular help: the feared state learns nothing, the other is notified."""
    return _consular(
        gen,
        origin,
        "DETENTION",
        nationalities,
        _adult(
            True,
            protection_status="ASYLUM_SEEKER",
            fear_of_return_expressed=True,
            feared_states=list(feared),
        ),
    )


def death(gen: Generator, origin: str = "US", nationality: str = "GT") -> Notice:
    """Death of a foreign national: the consulate is always told (VCCR Art. 37)."""
    return _consular(
        gen,
        origin,
        "DEATH",
        (nationality,),
        _adult(),
        remarks="Death in custody; autopsy ordered.",
    )


def minor_guardianship(gen: Generator, origin: str = "US", nationality: str = "GT") -> Notice:
    """Guardianship of an unaccompanied minor (VCCR Art. 37(b))."""
    return _consular(
        gen,
        origin,
        "GUARDIANSHIP_OF_MINOR",
        (nationality,),
        _adult(minor=True),
    )


def unaccompanied_minor_return(
    gen: Generator, origin: str = "MX", nationality: str = "HN"
) -> Notice:
    """Return of an unaccompanied child, with safeguards (only to safe conditions)."""
    notice = _consular(
        gen,
        origin,
        "REMOVAL_OR_RETURN",
        (nationality,),
        _adult(minor=True),
    )
    safeguards = notice.record["return_details"]["safeguards"]
    safeguards.update(
        unaccompanied_minor=True,
        best_interests_determined=True,
        safe_reception_confirmed=True,
        non_refoulement_assessed=True,
        notes="escort by child-protection officer; reception by the national child-welfare agency",
    )
    return notice


def trafficking_victims(
    gen: Generator, origin: str = "MX", victim_nationality: str = "GT"
) -> Notice:
    """A trafficking case with a suspect and two victims, one of them a minor."""
    record = gen.case_notice(origin, crime_types=["TRAFFICKING_IN_PERSONS"])
    on = record["created_at"].date()
    record["persons"] = [
        gen.person("p1", "SUSPECT", on=on, nationalities=[origin], protection_status="NONE"),
        gen.person(
            "p2",
            "VICTIM",
            on=on,
            nationalities=[victim_nationality],
            minor=False,
            trafficking_victim=True,
            protection_status="NONE",
            fear_of_return=False,
        ),
        gen.person(
            "p3",
            "VICTIM",
            on=on,
            nationalities=[victim_nationality],
            minor=True,
            trafficking_victim=True,
            protection_status="NONE",
            fear_of_return=False,
        ),
    ]
    record["permitted_purposes"] = [
        "CRIMINAL_INVESTIGATION",
        "VICTIM_PROTECTION",
        "CHILD_PROTECTION",
    ]
    return Notice(CASE_NOTICE, record)


def smuggling_with_asylum_seeker(
    gen: Generator, origin: str = "PA", migrant_nationality: str = "CO"
) -> Notice:
    """A smuggling case naming a smuggled migrant who applied for asylum in the origin."""
    record = gen.case_notice(origin, crime_types=["MIGRANT_SMUGGLING"])
    on = record["created_at"].date()
    record["persons"] = [
        gen.person("p1", "SUSPECT", on=on, nationalities=[origin], protection_status="NONE"),
        gen.person(
            "p2",
            "WITNESS",
            on=on,
            nationalities=[migrant_nationality],
            minor=False,
            protection_status="ASYLUM_SEEKER",
            fear_of_return=True,
            host=origin,
        ),
    ]
    return Notice(CASE_NOTICE, record)


def plain_smuggling_case(
    gen: Generator, origin: str = "GT", suspect_nationality: str = "MX"
) -> Notice:
    """A smuggling case with adult suspects only: no protection floor applies."""
    record = gen.case_notice(origin, crime_types=["MIGRANT_SMUGGLING"])
    on = record["created_at"].date()
    record["persons"] = [
        gen.person(
            f"p{i}",
            "SUSPECT",
            on=on,
            nationalities=[suspect_nationality],
            minor=False,
            protection_status="NONE",
            fear_of_return=False,
        )
        for i in (1, 2)
    ]
    record["permitted_purposes"] = ["CRIMINAL_INVESTIGATION", "PROSECUTION"]
    return Notice(CASE_NOTICE, record)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(fn.__name__.replace("_", "-"), (fn.__doc__ or "").strip(), fn)
        for fn in (
            asylum_seeker_detention,
            fear_of_return_arrest,
            mandatory_notification_detention,
            requested_arrest,
            dual_national_arrest,
            dual_national_fear_of_one,
            death,
            minor_guardianship,
            unaccompanied_minor_return,
            trafficking_victims,
            smuggling_with_asylum_seeker,
            plain_smuggling_case,
        )
    )
}
