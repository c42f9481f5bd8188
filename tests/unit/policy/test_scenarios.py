"""The scenario table: each floor rule, each consular case, handling codes and purposes, under the
shipped (illustrative) policies. Each row says what one recipient must get and why."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from puente.policy.engine import Decision, PolicySet
from puente.policy.transforms import PseudonymKeys
from tests.unit.policy.notices import case_notice, consular, consular_person, person

CN = "CaseNotice"
CONS = "ConsularNotification"


@dataclass(frozen=True)
class Scenario:
    name: str
    notice_type: str
    notice: dict[str, Any]
    recipient: str
    action: str
    reasons: tuple[str, ...] = ()  # exactly these, in any order
    rules: tuple[str, ...] = ()  # at least these fired
    check: Callable[[Decision], None] | None = field(default=None, compare=False)


def _persons(d: Decision) -> list[str]:
    assert d.payload is not None
    return [p["person_ref"] for p in d.payload["persons"]]


def _exact_case(**kw: Any) -> dict[str, Any]:
    """A smuggling case whose purposes, handling and retention equal MX's RCM rule's."""
    return case_notice(
        permitted_purposes=["CRIMINAL_INVESTIGATION", "PROSECUTION", "VICTIM_PROTECTION"],
        handling={"code": "H1", "conditions": None},
        retention_days=1825,
        **kw,
    )


def _check_asylum_removed_for_nationality_state(d: Decision) -> None:
    assert _persons(d) == ["p1"]
    assert d.payload is not None and d.payload["summary"] == ""
    assert d.removed_persons == ("p2",)


def _check_asylum_onward(d: Decision) -> None:
    assert _persons(d) == ["p1", "p2"]
    assert d.handling == "H2"
    assert d.payload is not None and d.payload["handling"]["code"] == "H2"


def _check_exact(d: Decision) -> None:
    assert d.payload is not None
    assert d.purposes == ("CRIMINAL_INVESTIGATION", "PROSECUTION", "VICTIM_PROTECTION")
    assert (d.handling, d.retention_days) == ("H1", 1825)


def _check_handling_h3(d: Decision) -> None:
    assert d.handling == "H3"
    assert d.handling_conditions == "only for case 77/2025"
    assert d.retention_days == 90
    assert d.payload is not None
    assert d.payload["handling"] == {"code": "H3", "conditions": "only for case 77/2025"}
    assert d.payload["retention_days"] == 90
    assert d.payload["permitted_purposes"] == ["CRIMINAL_INVESTIGATION", "PROSECUTION"]


def _check_uy_purposes(d: Decision) -> None:
    # CO's rule allows CRIMINAL_INVESTIGATION and BORDER_MANAGEMENT; UY accepts no border use.
    assert d.purposes == ("CRIMINAL_INVESTIGATION",)
    assert d.handling == "H2" and d.retention_days == 730
    assert d.payload is not None
    doc = d.payload["persons"][0]["identity_documents"][0]["number"]
    assert doc.startswith("psn:") and doc != "DOC-p1"
    assert d.payload["persons"][0]["date_of_birth"] == dt.date(1990, 1, 1)


def _check_us_status_dropped(d: Decision) -> None:
    assert d.payload is not None
    p = d.payload["persons"][0]
    assert (p["protection_status"], p["fear_of_return_expressed"]) == ("UNKNOWN", False)


def _check_return(d: Decision) -> None:
    assert d.payload is not None and d.payload["remarks"] == ""
    assert d.payload["return_details"]["destination_country"] == "GT"


def _check_minor_victim_kept(d: Decision) -> None:
    assert _persons(d) == ["p1", "p2"]
    assert d.purposes == ("VICTIM_PROTECTION", "FAMILY_TRACING", "CHILD_PROTECTION")


def _check_exception(d: Decision) -> None:
    assert _persons(d) == ["p1", "p2"]
    assert "CRIMINAL_INVESTIGATION" in d.purposes
    assert any("Decreto 9-2009, art. 11" in b for b in d.legal_bases)


ASYLUM_CASE: dict[str, Any] = {
    "persons": [
        person("p1", ("GT",)),
        person("p2", ("HN",), protection_status="ASYLUM_SEEKER"),
    ]
}
MINOR_CASE: dict[str, Any] = {
    "persons": [person("p1", ("GT",)), person("p2", ("GT",), minor=True, role="VICTIM")]
}
VICTIM_CASE: dict[str, Any] = {
    "persons": [
        person("p1", ("GT",)),
        person("p2", ("CO",), trafficking_victim=True, role="VICTIM"),
    ],
    "crime_types": ("TRAFFICKING_IN_PERSONS",),
}

SCENARIOS = [
    # --- consular notification (VCCR) -------------------------------------------------------
    Scenario(
        "detention, person asked: nationality state notified",
        CONS,
        consular(origin="MX", event="DETENTION"),
        "GT",
        "share",
        rules=("vccr.36-requested", "gt.accepts.consular"),
    ),
    Scenario(
        "detention, person did not ask: not notified",
        CONS,
        consular(origin="MX", person=consular_person(requested_consular_notification=False)),
        "GT",
        "withhold",
        reasons=("CONSULAR_NOT_REQUESTED",),
        rules=("vccr.36-not-requested",),
    ),
    Scenario(
        "arrest, not asked, mandatory-notification nationality: notified regardless",
        CONS,
        consular(
            origin="US",
            event="ARREST",
            person=consular_person(("BZ",), requested_consular_notification=False),
        ),
        "BZ",
        "share",
        rules=("vccr.36-mandatory", "bz.accepts.consular"),
    ),
    Scenario(
        "mandatory list is the detaining state's: MX lists none",
        CONS,
        consular(
            origin="MX",
            event="ARREST",
            person=consular_person(("BZ",), requested_consular_notification=False),
        ),
        "BZ",
        "withhold",
        reasons=("CONSULAR_NOT_REQUESTED",),
    ),
    Scenario(
        "death: always notified (Art. 37), even without a request",
        CONS,
        consular(
            origin="MX",
            event="DEATH",
            person=consular_person(requested_consular_notification=False),
        ),
        "GT",
        "share",
        rules=("vccr.37-death",),
    ),
    Scenario(
        "dual national: first nationality state notified",
        CONS,
        consular(origin="MX", person=consular_person(("GT", "HN"))),
        "GT",
        "share",
        rules=("vccr.36-requested",),
    ),
    Scenario(
        "dual national: second nationality state notified",
        CONS,
        consular(origin="MX", person=consular_person(("GT", "HN"))),
        "HN",
        "share",
        rules=("vccr.36-requested",),
    ),
    Scenario(
        "consular notification never goes to a non-nationality state",
        CONS,
        consular(origin="MX", person=consular_person(("GT", "HN"))),
        "US",
        "withhold",
        reasons=("CONSULAR_NOT_NATIONALITY_STATE",),
    ),
    Scenario(
        "asylum seeker, recipient is the nationality state, mandatory notification: withheld",
        CONS,
        consular(
            origin="US",
            person=consular_person(
                ("BZ",), requested_consular_notification=False, protection_status="ASYLUM_SEEKER"
            ),
        ),
        "BZ",
        "withhold",
        reasons=("FLOOR_ASYLUM_CONFIDENTIALITY",),
        rules=("floor.asylum-confidentiality",),
    ),
    Scenario(
        "refugee who asked for consular notification: still withheld from the nationality state",
        CONS,
        consular(origin="MX", person=consular_person(protection_status="REFUGEE")),
        "GT",
        "withhold",
        reasons=("FLOOR_ASYLUM_CONFIDENTIALITY",),
    ),
    Scenario(
        "fear of return expressed counts as an asylum claim",
        CONS,
        consular(origin="MX", event="DEATH", person=consular_person(fear_of_return_expressed=True)),
        "GT",
        "withhold",
        reasons=("FLOOR_ASYLUM_CONFIDENTIALITY",),
    ),
    Scenario(
        "dual national asylum seeker: every nationality state is protected against",
        CONS,
        consular(
            origin="MX", person=consular_person(("GT", "HN"), protection_status="ASYLUM_SEEKER")
        ),
        "HN",
        "withhold",
        reasons=("FLOOR_ASYLUM_CONFIDENTIALITY",),
    ),
    Scenario(
        "minor: guardianship goes to the child's nationality state for protection",
        CONS,
        consular(origin="MX", event="GUARDIANSHIP_OF_MINOR", person=consular_person(minor=True)),
        "GT",
        "share",
        rules=("vccr.37-guardianship",),
        check=lambda d: _assert_eq(d.purposes, ("CONSULAR_ASSISTANCE", "CHILD_PROTECTION")),
    ),
    Scenario(
        "minor detained, asked: consular assistance is a protection purpose",
        CONS,
        consular(origin="MX", person=consular_person(minor=True)),
        "GT",
        "share",
    ),
    Scenario(
        "removal: the destination nationality state gets the itinerary without remarks",
        CONS,
        consular(
            origin="MX",
            event="REMOVAL_OR_RETURN",
            return_details={
                "destination_country": "GT",
                "itinerary": [
                    {
                        "from_place": "Tapachula",
                        "to_place": "Guatemala City",
                        "departure_at": dt.datetime(2025, 3, 2, tzinfo=dt.UTC),
                        "carrier": None,
                    }
                ],
                "safeguards": {
                    "non_refoulement_assessed": True,
                    "unaccompanied_minor": False,
                    "best_interests_determined": False,
                    "safe_reception_confirmed": True,
                    "notes": "",
                },
            },
        ),
        "GT",
        "share_transformed",
        rules=("region.return-to-nationality-state",),
        check=_check_return,
    ),
    Scenario(
        "HT accepts consular notifications",
        CONS,
        consular(origin="US", event="DEATH", person=consular_person(("HT",))),
        "HT",
        "share",
    ),
    Scenario(
        "the origin never receives its own notice",
        CONS,
        consular(origin="MX", person=consular_person(("MX",))),
        "MX",
        "withhold",
        reasons=("ORIGIN_IS_RECIPIENT",),
    ),
    # --- case notices: the floor -------------------------------------------------------------
    Scenario(
        "asylum seeker in a case: removed for the nationality state, the rest shared",
        CN,
        case_notice(**ASYLUM_CASE),
        "HN",
        "share_transformed",
        reasons=("FLOOR_ASYLUM_CONFIDENTIALITY", "FLOOR_FREE_TEXT_DROPPED"),
        rules=("mx.case.rcm-smuggling-trafficking", "floor.asylum-confidentiality"),
        check=_check_asylum_removed_for_nationality_state,
    ),
    Scenario(
        "asylum seeker in a case: a third state gets them, restricted from onward transfer",
        CN,
        case_notice(**ASYLUM_CASE),
        "US",
        "share_transformed",
        reasons=("FLOOR_ASYLUM_ONWARD_RESTRICTED",),
        check=_check_asylum_onward,
    ),
    Scenario(
        "minor in an enforcement case: removed even for the nationality state",
        CN,
        case_notice(**MINOR_CASE),
        "GT",
        "share_transformed",
        reasons=("FLOOR_MINOR_PROTECTION", "FLOOR_FREE_TEXT_DROPPED"),
        rules=("floor.minors",),
        check=lambda d: _assert_eq(_persons(d), ["p1"]),
    ),
    Scenario(
        "minor in an enforcement case: removed for other states",
        CN,
        case_notice(**MINOR_CASE),
        "US",
        "share_transformed",
        reasons=("FLOOR_MINOR_PROTECTION", "FLOOR_FREE_TEXT_DROPPED"),
    ),
    Scenario(
        "minor victim: kept for the nationality state when all purposes protect",
        CN,
        case_notice(
            persons=[person("p1", ("GT",)), person("p2", ("CO",), minor=True, role="VICTIM")]
        ),
        "CO",
        "share_transformed",
        rules=("mx.case.victims-nationality-state",),
        check=_check_minor_victim_kept,
    ),
    Scenario(
        "explicit exception: GT's repatriation rule shares child victims for investigation too",
        CN,
        case_notice(
            origin="GT",
            persons=[
                person("p1", ("GT",)),
                person("p2", ("HN",), minor=True, trafficking_victim=True, role="VICTIM"),
            ],
            crime_types=("TRAFFICKING_IN_PERSONS",),
        ),
        "HN",
        "share_transformed",
        rules=(
            "gt.case.minor-victims-repatriation",
            "gt.case.minor-victims-repatriation#exception:minors",
        ),
        check=_check_exception,
    ),
    Scenario(
        "trafficking victim: not shared for enforcement",
        CN,
        case_notice(**VICTIM_CASE),
        "US",
        "share_transformed",
        reasons=("FLOOR_TRAFFICKING_VICTIM", "FLOOR_FREE_TEXT_DROPPED"),
        rules=("floor.trafficking-victims",),
        check=lambda d: _assert_eq(_persons(d), ["p1"]),
    ),
    Scenario(
        "trafficking victim: shared with their state for protection",
        CN,
        case_notice(**VICTIM_CASE),
        "CO",
        "share_transformed",
        rules=("mx.case.victims-nationality-state",),
        check=lambda d: _assert_eq(_persons(d), ["p1", "p2"]),
    ),
    # --- case notices: rules, purposes, handling, acceptance -------------------------------
    Scenario(
        "a notice matching the rule exactly is shared as published",
        CN,
        _exact_case(),
        "US",
        "share",
        rules=("mx.case.rcm-smuggling-trafficking", "us.accepts.case-notice"),
        check=_check_exact,
    ),
    Scenario(
        "no rule of the origin covers the recipient: default withhold",
        CN,
        case_notice(),
        "AR",
        "withhold",
        reasons=("NO_MATCHING_RULE",),
    ),
    Scenario(
        "recipient without a legal basis to receive case notices",
        CN,
        case_notice(crime_types=("MONEY_LAUNDERING",)),
        "HT",
        "withhold",
        reasons=("RECIPIENT_DOES_NOT_ACCEPT",),
        rules=("mx.case.money-laundering",),
    ),
    Scenario(
        "the origin's purposes leave nothing for the rule",
        CN,
        case_notice(permitted_purposes=["BORDER_MANAGEMENT"]),
        "US",
        "withhold",
        reasons=("PURPOSE_NOT_PERMITTED",),
    ),
    Scenario(
        "the recipient's acceptance narrows the purposes; pseudonyms and birth year",
        CN,
        case_notice(
            origin="CO",
            crime_types=("DOCUMENT_FRAUD",),
            permitted_purposes=["CRIMINAL_INVESTIGATION", "BORDER_MANAGEMENT"],
        ),
        "UY",
        "share_transformed",
        rules=("co.case.quito-documents", "uy.accepts.case-notice"),
        check=_check_uy_purposes,
    ),
    Scenario(
        "origin withhold rule: unreliable, unjudgeable information",
        CN,
        case_notice(
            evaluation={"source_reliability": "C", "information_accuracy": "CANNOT_BE_JUDGED"}
        ),
        "US",
        "withhold",
        reasons=("ORIGIN_UNRELIABLE_INFORMATION",),
        rules=("mx.case.withhold-unassessed",),
    ),
    Scenario(
        "origin withhold rule: sealed case",
        CN,
        case_notice(handling={"code": "H3", "conditions": "RESERVADO por orden judicial"}),
        "US",
        "withhold",
        reasons=("ORIGIN_SEALED_CASE",),
    ),
    Scenario(
        "handling: the stricter of the notice's and the rule's; retention the shorter",
        CN,
        case_notice(
            handling={"code": "H3", "conditions": "only for case 77/2025"},
            retention_days=90,
            permitted_purposes=["CRIMINAL_INVESTIGATION", "PROSECUTION"],
        ),
        "US",
        "share",  # nothing to narrow: the notice is already stricter than the rule
        check=_check_handling_h3,
    ),
    Scenario(
        "US drops protection status for RCM partners (8 CFR 208.6)",
        CN,
        case_notice(
            origin="US",
            persons=[
                person(
                    "p1", ("CO",), protection_status="ASYLUM_SEEKER", fear_of_return_expressed=True
                )
            ],
        ),
        "MX",
        "share_transformed",
        rules=("us.case.rcm-no-protection-status",),
        check=_check_us_status_dropped,
    ),
]


def _assert_eq(a: Any, b: Any) -> None:
    assert a == b, f"{a!r} != {b!r}"


@pytest.mark.parametrize("s", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(s: Scenario, ps: PolicySet, keys: PseudonymKeys) -> None:
    before = copy.deepcopy(s.notice)
    d = ps.decide(s.notice, s.notice_type, s.recipient, keys)
    assert d.action == s.action, d.summary()
    if s.reasons or d.action == "withhold":
        assert sorted(d.reasons) == sorted(s.reasons), d.summary()
    for rule in s.rules:
        assert rule in d.rules, d.summary()
    assert d.policy_version == ps.version
    assert (d.payload is None) == (d.action == "withhold")
    if d.action == "share":
        assert d.payload is s.notice
    if d.action != "withhold":
        assert d.legal_bases and d.purposes and d.handling and d.retention_days
    if s.check is not None:
        s.check(d)
    assert s.notice == before, "the engine must never mutate the notice"
    # The fan-out gives the same decision for this recipient.
    fan = {x.recipient: x for x in ps.decide_all(s.notice, s.notice_type, keys)}
    assert fan[s.recipient].summary() == d.summary()
    assert fan[s.recipient].payload == d.payload
