"""The floor's invariant, for any notice and any policy a member could write: for every recipient,
no identifying value of a person the floor protects from that recipient (names, aliases,
document numbers, exact date of birth, the accounts they hold, free text naming them) appears
anywhere in what that recipient would receive; and a protected asylum seeker who stays in a
delivery makes it H2 at least (no onward transfer).

Notices are synthetic notices with every person's protection facts drawn at random (flags, dates
of birth either side of 18, statuses, fears, named and unnamed feared states, residences,
nationalities), their identifying values made unique and written into the free text. Policies
are the shipped set, and the shipped set with an origin's share rules replaced by rules drawn
from the shipped ones with random recipients, purposes and floor exceptions.

The test states who is protected on its own terms (a plain reading of policies/SEMANTICS.md §3),
not by calling the floor's code. The engine may protect more (the 18th birthday itself, 29
February), never less.
"""

from __future__ import annotations

import atexit
import copy
import datetime as dt
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from puente.policy.engine import Decision, PolicySet
from puente.policy.loader import load_policy_set
from puente.policy.transforms import PseudonymKeys
from puente.synth import Generator
from tests.jsonfuzz import strings
from tests.unit.policy.conftest import POLICIES, SCHEMAS

KEYS = PseudonymKeys(b"property-secret-0123456789")
SHIPPED = load_policy_set(POLICIES, SCHEMAS)
MEMBERS = list(SHIPPED.members)
GROUPS = sorted(SHIPPED.groups)
PROTECTIVE = SHIPPED.protection_purposes
_FIELDS = json.loads((SCHEMAS / "CaseNotice" / "v2.avsc").read_text())["fields"]
PURPOSES = next(f for f in _FIELDS if f["name"] == "permitted_purposes")["type"]["items"]["symbols"]
ASYLUM_STATUSES = {"ASYLUM_SEEKER", "REFUGEE"}
STATUSES = ["NONE", "UNKNOWN", "ASYLUM_SEEKER", "REFUGEE", "STATELESS", "COMPLEMENTARY_PROTECTION"]
ORIGINS = ["MX", "US", "PA", "CO"]


def _pool() -> list[tuple[str, dict[str, Any]]]:
    gen = Generator(2026)
    out: list[tuple[str, dict[str, Any]]] = []
    for origin in ORIGINS:
        for _ in range(4):
            out.append(("CaseNotice", gen.case_notice(origin)))
        for event in ("DETENTION", "REMOVAL_OR_RETURN", "DEATH"):
            out.append(("ConsularNotification", gen.consular_notification(origin, event)))
    return out


POOL = _pool()


# ------------------------------------------------------------------------------------- notices


def _on(notice_type: str, notice: dict[str, Any]) -> dt.date:
    when: dt.datetime = (
        notice["event_time"] if notice_type == "ConsularNotification" else notice["created_at"]
    )
    return when.astimezone(dt.UTC).date()


@st.composite
def _person_facts(draw: st.DrawFn, on: dt.date) -> dict[str, Any]:
    # Dates of birth around the 18th birthday more often than not.
    age_days = draw(
        st.one_of(
            st.integers(min_value=17 * 365, max_value=19 * 365),
            st.integers(min_value=200, max_value=60 * 365),
        )
    )
    born = on - dt.timedelta(days=age_days)
    if (born.month, born.day) == (1, 1):  # a year_only of someone else must not land on it
        born += dt.timedelta(days=1)
    return {
        "minor": draw(st.booleans()),
        "date_of_birth": draw(st.sampled_from([born, born, None])),
        "trafficking_victim": draw(st.booleans()),
        "protection_status": draw(st.sampled_from(STATUSES)),
        "fear_of_return_expressed": draw(st.booleans()),
        "feared_states": draw(st.lists(st.sampled_from(MEMBERS), max_size=2, unique=True)),
        "habitual_residence": draw(st.one_of(st.none(), st.sampled_from(MEMBERS))),
        "nationalities": draw(st.lists(st.sampled_from([*MEMBERS, "VE"]), max_size=2, unique=True)),
    }


MARK = re.compile(r"\S*\d+q\d+x")


def _mark(person: dict[str, Any], tag: str) -> None:
    """Make the person's identifying values unique to them (so finding one is a leak); ``tag``
    matches :data:`MARK`."""
    person["given_names"] += f" G{tag}"
    person["family_names"] += f" F{tag}"
    person["aliases"] = [f"A{tag}"]
    for j, doc in enumerate(person["identity_documents"]):
        doc["number"] = f"D{j}{tag}"


@st.composite
def notices(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    notice_type, base = draw(st.sampled_from(POOL))
    notice = copy.deepcopy(base)
    on = _on(notice_type, notice)
    if notice_type == "CaseNotice":
        persons = notice["persons"]
        used: set[dt.date] = set()
        for i, p in enumerate(persons):
            facts = draw(_person_facts(on))
            born = facts["date_of_birth"]
            while born is not None and born in used:  # exact dates of birth unique too
                born -= dt.timedelta(days=3)
            facts["date_of_birth"] = born
            used.add(born)
            p.update(facts)
            _mark(p, f"{i}q{len(persons)}x")
        notice["financial_identifiers"] = [
            {
                "kind": "IBAN",
                "value": f"ACCT{i}q{len(persons)}x",
                "institution": None,
                "country": None,
                "holder_ref": p["person_ref"],
            }
            for i, p in enumerate(persons)
        ]
        names = " ".join(
            f"{p['given_names']} {p['family_names']} ({p['aliases'][0]})" for p in persons
        )
        notice["summary"] = f"Case about {names}."
        for key in ("locations", "vehicles", "routes"):
            for item in notice[key]:
                who = persons[draw(st.integers(0, len(persons) - 1))] if persons else None
                item["description"] = f"seen with {who['aliases'][0]}" if who else ""
    else:
        subject = notice["person"]
        facts = draw(_person_facts(on))
        facts.pop("trafficking_victim")
        if not facts["nationalities"]:
            facts["nationalities"] = [draw(st.sampled_from(MEMBERS))]
        subject.update(facts)
        _mark(subject, "0q1x")
        notice["remarks"] = f"{subject['given_names']} asked for a lawyer."
        details = notice["return_details"]
        if details is not None:
            details["safeguards"]["unaccompanied_minor"] = draw(st.booleans())
            details["destination_country"] = draw(st.sampled_from(subject["nationalities"]))
    return notice_type, notice


# ------------------------------------------------------------------ who is protected, and leaks


def _protected_from(
    notice_type: str, notice: dict[str, Any], d: Decision, ps: PolicySet
) -> Iterator[dict[str, Any]]:
    """The persons of ``notice`` the floor protects from ``d.recipient``, by SEMANTICS.md §3."""
    on = _on(notice_type, notice)
    rule = {r.id: r for r in ps.rules}[d.rules[0]]  # a shared decision starts with its rule
    lifted = {p.value for p in rule.exceptions}
    protective = all(p in PROTECTIVE for p in d.purposes)
    if notice_type == "CaseNotice":
        persons, lone = notice["persons"], False
    else:
        details = notice["return_details"]
        persons = [notice["person"]]
        lone = details is not None and details["safeguards"]["unaccompanied_minor"]
    for p in persons:
        nats = set(p["nationalities"])
        named = set(p["feared_states"])
        asylum = p["fear_of_return_expressed"] or p["protection_status"] in ASYLUM_STATUSES
        if asylum or named:
            feared = named or nats | ({p["habitual_residence"]} - {None})
            if not feared or d.recipient in feared:
                yield p
                continue
        born = p["date_of_birth"]
        under_18 = born is not None and (
            on.year - born.year - ((on.month, on.day) < (born.month, born.day)) < 18
        )
        minor = p["minor"] or lone or under_18
        if minor and "minors" not in lifted and not (protective and d.recipient in nats):
            yield p
            continue
        victim = p.get("trafficking_victim", False)
        if victim and "trafficking_victims" not in lifted and not protective:
            yield p


def _dates(value: Any) -> Iterator[dt.date]:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _dates(v)
    elif isinstance(value, list):
        for v in value:
            yield from _dates(v)


def _identifying(notice: dict[str, Any], p: dict[str, Any]) -> list[str]:
    values = [p["given_names"], p["family_names"], *p["aliases"]]
    values += [doc["number"] for doc in p["identity_documents"]]
    if "person_ref" in p:
        values += [
            f["value"]
            for f in notice["financial_identifiers"]
            if f["holder_ref"] == p["person_ref"]
        ]
    # The marked parts alone too: "Ana G0q3x" must not leak as "G0q3x" either.
    return values + [m for v in values for m in MARK.findall(v)]


def check_floor(ps: PolicySet, notice_type: str, notice: dict[str, Any]) -> None:
    snapshot = copy.deepcopy(notice)
    for d in ps.decide_all(notice, notice_type, KEYS):
        if not d.shared:
            continue
        assert d.payload is not None
        texts = list(strings(d.payload))
        dates = set(_dates(d.payload))
        for p in _protected_from(notice_type, notice, d, ps):
            for value in _identifying(notice, p):
                leaked = [s for s in texts if value in s]
                assert not leaked, (d.recipient, d.rules, value, leaked)
            born = p["date_of_birth"]
            if born is not None:
                assert born not in dates and born.isoformat() not in " ".join(texts), (
                    d.recipient,
                    d.rules,
                )
        # Who stays, with the facts as published (a transformation may drop them from the payload).
        if notice_type == "CaseNotice":
            refs = {p["person_ref"] for p in d.payload["persons"]}
            staying = [p for p in notice["persons"] if p["person_ref"] in refs]
        else:
            staying = [notice["person"]]
        if any(
            p["fear_of_return_expressed"]
            or p["protection_status"] in ASYLUM_STATUSES
            or p["feared_states"]
            for p in staying
        ):
            assert d.handling in ("H2", "H3"), (d.recipient, d.rules, d.handling)
    assert notice == snapshot  # the engine never edits the notice it decides on


PROPERTY = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(notices())
def test_the_floor_holds_under_the_shipped_policies(notice: tuple[str, dict[str, Any]]) -> None:
    check_floor(SHIPPED, *notice)


# --------------------------------------------------------------------------- generated policies


def _share_rules() -> list[dict[str, Any]]:
    """Every share rule of the shipped set (states' and regional), as written."""
    out: list[dict[str, Any]] = []
    for path in [POLICIES / "regional.yaml", *sorted((POLICIES / "states").glob("*.yaml"))]:
        for rule in yaml.safe_load(path.read_text()).get("rules", []):
            if rule["action"] != "withhold":
                out.append(rule)
    return out


SHARE_RULES = _share_rules()
WORKDIR = Path(tempfile.mkdtemp(prefix="puente-floor-property-"))
atexit.register(shutil.rmtree, WORKDIR, ignore_errors=True)
shutil.copytree(POLICIES, WORKDIR / "policies")


@st.composite
def generated_rules(draw: st.DrawFn, origin: str) -> list[dict[str, Any]]:
    rules = []
    for k in range(draw(st.integers(min_value=1, max_value=6))):
        rule = copy.deepcopy(draw(st.sampled_from(SHARE_RULES)))
        rule["id"] = f"{origin.lower()}.generated.{k}"
        rule["to"] = draw(
            st.one_of(
                st.just(["ALL"]),
                st.lists(st.sampled_from(MEMBERS + GROUPS), min_size=1, max_size=5, unique=True),
            )
        )
        rule["purposes"] = draw(
            st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=4, unique=True)
        )
        exceptions = draw(
            st.lists(st.sampled_from(["minors", "trafficking_victims"]), max_size=2, unique=True)
        )
        rule["floor_exceptions"] = [
            {"floor": e, "legal_basis": f"generated exception to {e}"} for e in exceptions
        ]
        if draw(st.booleans()):
            rule.pop("transform", None)
            rule["action"] = "share"
        # A condition of its own, so that no generated rule shadows another (refused at load).
        when = rule.get("when")
        rule["when"] = f"({when}) && origin != 'Z{k}'" if when else f"origin != 'Z{k}'"
        rules.append(rule)
    return rules


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_the_floor_holds_for_any_share_rules_a_member_could_write(data: st.DataObject) -> None:
    origin = data.draw(st.sampled_from(ORIGINS))
    path = WORKDIR / "policies" / "states" / f"{origin}.yaml"
    shipped = (POLICIES / "states" / f"{origin}.yaml").read_text()
    state = yaml.safe_load(shipped)
    state["rules"] = data.draw(generated_rules(origin)) + state.get("rules", [])
    path.write_text(yaml.safe_dump(state, sort_keys=False, allow_unicode=True))
    try:
        ps = load_policy_set(WORKDIR / "policies", SCHEMAS)
    finally:
        path.write_text(shipped)
    for _ in range(6):
        notice_type, notice = data.draw(notices())
        notice["origin"] = origin
        check_floor(ps, notice_type, notice)
