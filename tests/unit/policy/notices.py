"""Small, explicit notice builders for the policy tests: decoded Avro records as fastavro returns
them (uuid as str, timestamp-millis as aware datetime, date as datetime.date)."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from typing import Any

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def document(number: str = "P1234567", state: str = "GT", **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "kind": "PASSPORT",
        "number": number,
        "issuing_state": state,
        "expires_on": dt.date(2030, 1, 1),
        "suspected_fraudulent": False,
    }
    d.update(kw)
    return d


def person(ref: str = "p1", nationalities: tuple[str, ...] = ("GT",), **kw: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "person_ref": ref,
        "role": "SUSPECT",
        "given_names": f"Given {ref}",
        "family_names": f"Family {ref}",
        "aliases": [],
        "sex": "UNKNOWN",
        "date_of_birth": dt.date(1990, 5, 17),
        "nationalities": list(nationalities),
        "identity_documents": [document(f"DOC-{ref}", nationalities[0] if nationalities else "XX")],
        "protection_status": "NONE",
        "fear_of_return_expressed": False,
        "feared_states": [],
        "habitual_residence": None,
        "minor": False,
        "trafficking_victim": False,
    }
    p.update(kw)
    return p


def case_notice(
    origin: str = "MX",
    persons: list[dict[str, Any]] | None = None,
    crime_types: tuple[str, ...] = ("MIGRANT_SMUGGLING",),
    **kw: Any,
) -> dict[str, Any]:
    n: dict[str, Any] = {
        "notice_id": str(uuid.uuid4()),
        "origin": origin,
        "issuing_agency": "Fiscalía Especializada",
        "created_at": NOW,
        "crime_types": list(crime_types),
        "summary": "Smuggling network moving people across the southern border.",
        "persons": [person()] if persons is None else persons,
        "organisations": [],
        "vehicles": [],
        "locations": [],
        "routes": [],
        "financial_identifiers": [],
        "handling": {"code": "H0", "conditions": None},
        "evaluation": {"source_reliability": "B", "information_accuracy": "CORROBORATED"},
        "permitted_purposes": [
            "CRIMINAL_INVESTIGATION",
            "PROSECUTION",
            "VICTIM_PROTECTION",
            "CHILD_PROTECTION",
            "FAMILY_TRACING",
        ],
        "retention_days": 3650,
        "related_notice_ids": [],
    }
    n.update(kw)
    return n


def consular_person(nationalities: tuple[str, ...] = ("GT",), **kw: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "given_names": "Ana",
        "family_names": "López",
        "sex": "FEMALE",
        "date_of_birth": dt.date(1988, 2, 3),
        "nationalities": list(nationalities),
        "identity_documents": [document("G0001", nationalities[0] if nationalities else "XX")],
        "protection_status": "NONE",
        "fear_of_return_expressed": False,
        "feared_states": [],
        "habitual_residence": None,
        "minor": False,
        "requested_consular_notification": True,
        "informed_of_rights_at": NOW,
    }
    p.update(kw)
    return p


def consular(
    origin: str = "MX", event: str = "DETENTION", person: dict[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    n: dict[str, Any] = {
        "notice_id": str(uuid.uuid4()),
        "origin": origin,
        "issuing_agency": "Instituto Nacional de Migración",
        "created_at": NOW,
        "event": event,
        "event_time": NOW,
        "person": consular_person() if person is None else person,
        "place": {"country": origin, "place": "Tapachula", "facility": "Estación Migratoria"},
        "authority": {"name": "INM", "contact": "+52 000 000", "case_reference": "INM-1"},
        "consular_contact": None,
        "return_details": None,
        "remarks": "Detained at a checkpoint.",
    }
    n.update(kw)
    return n


@functools.cache
def registry() -> Any:
    from puente.codec.registry import Registry
    from tests.unit.policy.conftest import SCHEMAS

    return Registry.load(SCHEMAS)


def to_json(notice: dict[str, Any]) -> dict[str, Any]:
    """The natural JSON form of a notice (as the codec's jsonconv reads it)."""
    from puente.codec.jsonconv import to_json as codec_to_json

    name = "puente.ConsularNotification" if "event" in notice else "puente.CaseNotice"
    return codec_to_json(registry(), name, notice)
