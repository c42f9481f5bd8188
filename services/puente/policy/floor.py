"""The regional protection floor: what no national rule can override.

Its semantics are code (this module), its citations are data (policies/regional.yaml, section
``floor``). It speaks about persons, so it first reads, once per notice, the facts it needs about
each person (:class:`PersonFacts`); then, per recipient, it answers two questions:

1. before any rule, for a notice about one person (:func:`asylum_blocks`): does this recipient
   belong to the states that person fears? Such a notice never reaches it;
2. once the deciding share rule and the final purposes are known (:func:`person_verdicts`): which
   protections keep each protected person from this recipient, and which of them did the rule's
   explicit, cited exceptions set aside?

Every protection is checked on its own: a child who is a trafficking victim and seeks asylum is
protected three times over, and an exception lifts only the protection it names.

A notice about one subject (a ConsularNotification) is withheld when its subject is protected;
in a notice about several persons (a CaseNotice) the protected persons are removed from that
recipient's delivery (see :func:`remove_persons`) and the rest is shared.

Who is protected does not rest on the publisher's flags alone: a date of birth under 18 at the
event makes a minor whatever ``minor`` says, an unaccompanied child in a return is a minor, and a
named feared state is an indication of fear. A flag that contradicts the date of birth never
weakens protection; it becomes a :class:`FloorWarning` for the origin.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from collections.abc import Container, Mapping
from typing import Any, NamedTuple

from puente.policy.model import FloorProtection

ASYLUM_STATUSES = frozenset({"ASYLUM_SEEKER", "REFUGEE"})
ADULT_AGE = 18

# Reason codes the origin reads in the decision (stable: rejections, metrics and tests use them).
REASON_ASYLUM = "FLOOR_ASYLUM_CONFIDENTIALITY"
REASON_ASYLUM_ONWARD = "FLOOR_ASYLUM_ONWARD_RESTRICTED"
REASON_MINOR = "FLOOR_MINOR_PROTECTION"
REASON_TRAFFICKING = "FLOOR_TRAFFICKING_VICTIM"
REASON_SUMMARY = "FLOOR_FREE_TEXT_DROPPED"

# The warning the origin gets when its minor flags and dates of birth disagree (not a refusal).
WARNING_MINOR_FLAG = "MINOR_FLAG_CONTRADICTED"

REASON_OF = {
    FloorProtection.ASYLUM: REASON_ASYLUM,
    FloorProtection.MINORS: REASON_MINOR,
    FloorProtection.TRAFFICKING_VICTIMS: REASON_TRAFFICKING,
}
# The order protections are checked and reported in.
ORDER = (FloorProtection.ASYLUM, FloorProtection.MINORS, FloorProtection.TRAFFICKING_VICTIMS)


class FloorWarning(NamedTuple):
    """Something the origin should correct in a notice that was still decided: ``fields`` are
    field paths, ``message`` names fields, never values (it goes to the origin's topic)."""

    code: str
    fields: tuple[str, ...]
    message: str


class PersonFacts(NamedTuple):
    """What the floor needs to know about one protected person of a notice."""

    position: int  # position in the notice's persons (0 for a ConsularNotification's subject)
    ref: str  # person_ref in a CaseNotice; "person" for the subject of a ConsularNotification
    nationalities: frozenset[str]
    asylum: bool  # asylum seeker, refugee, fear of return expressed, or a feared state named
    asylum_states: frozenset[str]  # the states the asylum floor keeps the person from
    asylum_everywhere: bool  # asylum indicated and no state known at all: every recipient
    minor: bool  # flagged, or under 18 by the date of birth, or an unaccompanied child
    trafficking_victim: bool

    def feared_by(self, recipient: str) -> bool:
        """Does the asylum floor keep this person from ``recipient``?"""
        return self.asylum and (self.asylum_everywhere or recipient in self.asylum_states)


class NoticeFacts(NamedTuple):
    """The floor's view of a notice, computed once and shared by every recipient's decision.

    ``persons`` holds only the persons some protection applies to: the others never change a
    decision, and most notices have none, which keeps this pass cheap on the hot path.
    """

    persons: tuple[PersonFacts, ...]
    single_subject: bool  # the notice is about one person: protecting them withholds it all
    asylum_states: frozenset[str]  # recipients the asylum floor keeps some person from
    asylum_everywhere: bool  # some person is to be kept from every recipient
    any_minor: bool
    any_victim: bool
    any_asylum: bool
    warnings: tuple[FloorWarning, ...] = ()


class Verdict(NamedTuple):
    """The protections that keep one person from one recipient (``applied``: the person is
    removed or the notice withheld) and those the deciding rule's exceptions set aside
    (``lifted``), each in :data:`ORDER`."""

    person: PersonFacts
    applied: tuple[FloorProtection, ...]
    lifted: tuple[FloorProtection, ...]


_NO_FACTS_CASE = NoticeFacts((), False, frozenset(), False, False, False, False)
_NO_FACTS_SINGLE = _NO_FACTS_CASE._replace(single_subject=True)


def notice_facts(notice_type: str, notice: Mapping[str, Any]) -> NoticeFacts:
    """Read the floor's facts from a notice of ``notice_type`` (a short type name)."""
    single = notice_type == "ConsularNotification"
    unaccompanied = False
    if single:
        raw: Any = (notice["person"],)
        when = notice.get("event_time") or notice.get("created_at")
        details = notice.get("return_details")
        if details is not None:
            unaccompanied = (details.get("safeguards") or {}).get("unaccompanied_minor") is True
    else:
        raw = notice.get("persons") or ()
        when = notice.get("created_at")
    protected: list[PersonFacts] = []
    warnings: list[FloorWarning] = []
    cutoff: dt.date | None = None  # born after it: under 18 on the notice's day
    cutoff_known = False  # None is also an answer: nobody representable is 18 yet
    for i, p in enumerate(raw):
        flag = p.get("minor") is True
        born = p.get("date_of_birth")
        by_age: bool | None = None
        if born is not None and when is not None:
            if not cutoff_known:
                cutoff, cutoff_known = adult_cutoff(_utc_day(when)), True
            by_age = cutoff is None or born > cutoff
            contradiction = by_age != flag or (unaccompanied and not by_age)
        else:
            contradiction = unaccompanied and not flag
        if contradiction:
            warnings.append(_age_warning(single, i, flag, by_age, unaccompanied))
        minor = flag or unaccompanied or by_age is True
        victim = p.get("trafficking_victim") is True
        named = p.get("feared_states") or ()
        asylum = (
            p.get("fear_of_return_expressed") is True
            or p.get("protection_status") in ASYLUM_STATUSES
            or bool(named)
        )
        if asylum or minor or victim:
            ref = "person" if single else str(p.get("person_ref", i))
            nats = frozenset(p.get("nationalities") or ())
            states: frozenset[str] = frozenset()
            everywhere = False
            if asylum:
                if named:
                    states = frozenset(named)
                else:
                    # No state named: protect against every state the person may fear, the
                    # reading that cannot endanger them; knowing none, against every recipient.
                    residence = p.get("habitual_residence")
                    states = nats | {residence} if residence else nats
                    everywhere = not states
            protected.append(PersonFacts(i, ref, nats, asylum, states, everywhere, minor, victim))
    if not protected:
        base = _NO_FACTS_SINGLE if single else _NO_FACTS_CASE
        return base._replace(warnings=tuple(warnings)) if warnings else base
    return NoticeFacts(
        persons=tuple(protected),
        single_subject=single,
        asylum_states=frozenset().union(*(p.asylum_states for p in protected)),
        asylum_everywhere=any(p.asylum_everywhere for p in protected),
        any_minor=any(p.minor for p in protected),
        any_victim=any(p.trafficking_victim for p in protected),
        any_asylum=any(p.asylum for p in protected),
        warnings=tuple(warnings),
    )


def _utc_day(when: dt.date) -> dt.date:
    """The UTC calendar day of a timestamp (decoded timestamps are UTC already)."""
    if isinstance(when, dt.datetime):
        if when.tzinfo is not None and when.tzinfo is not dt.UTC:
            when = when.astimezone(dt.UTC)
        return when.date()
    return when


@functools.lru_cache(maxsize=256)
def adult_cutoff(day: dt.date) -> dt.date | None:
    """The latest date of birth that makes a person an adult on ``day``: anyone born after it is
    under 18 that day (the 18th birthday itself included). One date comparison per person;
    cached, since a stream of notices spans few days. None when no representable date of birth
    (year 1 on) makes anyone 18 on ``day``: everyone is a minor, the protective answer."""
    key = day.year * 10000 + day.month * 100 + day.day
    try:
        try:
            born = day.replace(year=day.year - ADULT_AGE)
        except ValueError:  # 29 February, ADULT_AGE years back in a common year
            born = day.replace(year=day.year - ADULT_AGE, day=28)
        one = dt.timedelta(days=1)
        while _adult_key(born) >= key:
            born -= one
        while _adult_key(born + one) < key:
            born += one
    except (ValueError, OverflowError):  # the cutoff would be before 0001-01-01
        return None
    return born


def _adult_key(born: dt.date) -> int:
    """The 18th birthday as yyyymmdd; someone born on 29 February comes of age on 1 March of a
    common year (the later reading: protection lasts until it is certain)."""
    year = born.year + ADULT_AGE
    if born.month == 2 and born.day == 29 and not calendar.isleap(year):
        return year * 10000 + 301
    return year * 10000 + born.month * 100 + born.day


def _age_warning(
    single: bool, i: int, flag: bool, by_age: bool | None, unaccompanied: bool
) -> FloorWarning:
    base = "person" if single else f"persons[{i}]"
    when = "event_time (created_at if absent)" if single else "created_at"
    dob = f"{base}.date_of_birth"
    flag_path = f"{base}.minor"
    lone = "return_details.safeguards.unaccompanied_minor"
    if by_age is None:  # no date of birth: the two flags disagree
        fields: tuple[str, ...] = (flag_path, lone)
        what = f"{lone} is true but {flag_path} is false"
    elif by_age:
        fields = (flag_path, dob)
        what = f"{flag_path} is false but {dob} shows the person under 18 at {when}"
    else:
        flagged = [f for f, on in ((flag_path, flag), (lone, unaccompanied)) if on]
        fields = (*flagged, dob)
        what = f"{' and '.join(flagged)} say a minor but {dob} shows 18 or older at {when}"
    return FloorWarning(
        WARNING_MINOR_FLAG,
        fields,
        f"{what}; the person was protected as a minor (a flag never weakens the protection "
        "floor); the notice was decided and delivered as usual: correct the record at source "
        "and in later notices",
    )


def asylum_blocks(facts: NoticeFacts, recipient: str) -> bool:
    """Is some person of the notice to be kept from ``recipient`` by the asylum floor?"""
    return facts.asylum_everywhere or recipient in facts.asylum_states


def person_verdicts(
    facts: NoticeFacts,
    recipient: str,
    purposes: tuple[str, ...],
    protection_purposes: frozenset[str],
    exceptions: Container[FloorProtection],
) -> list[Verdict]:
    """For each protected person, what keeps them from ``recipient`` for ``purposes``.

    Each protection is checked on its own, never one instead of another:

    - asylum: the recipient is a state the person fears (named, or by default every nationality
      state and the state of habitual residence); no exception exists;
    - minors: identifying data goes only to the child's nationality states and only when every
      purpose is a protection purpose;
    - trafficking victims: identity and status go only when every purpose is a protection
      purpose.

    An exception of the deciding rule (``floor_exceptions``, with its own legal basis) lifts only
    the protection it names. Persons nothing applies to are left out.
    """
    protective = all(p in protection_purposes for p in purposes)
    out: list[Verdict] = []
    minors, victims = FloorProtection.MINORS, FloorProtection.TRAFFICKING_VICTIMS
    for p in facts.persons:
        applied: list[FloorProtection] = []
        lifted: list[FloorProtection] = []
        if p.asylum and (p.asylum_everywhere or recipient in p.asylum_states):
            applied.append(FloorProtection.ASYLUM)
        if p.minor and not (protective and recipient in p.nationalities):
            (lifted if minors in exceptions else applied).append(minors)
        if p.trafficking_victim and not protective:
            (lifted if victims in exceptions else applied).append(victims)
        if applied or lifted:
            out.append(Verdict(p, tuple(applied), tuple(lifted)))
    return out


# The free text of a CaseNotice besides its summary: lists of records with a description.
FREE_TEXT_LISTS = ("locations", "vehicles", "routes")


def remove_persons(notice: Mapping[str, Any], indexes: frozenset[int]) -> dict[str, Any]:
    """A CaseNotice without the persons at ``indexes`` and without what would still identify them.

    Removed with a person: the financial identifiers they hold (an account identifies its holder)
    and the free text (the summary, and the descriptions of locations, vehicles and routes),
    which may name anyone and cannot be redacted mechanically: it is emptied rather than risk
    it naming the protected person.
    """
    persons = notice["persons"]
    refs = {persons[i].get("person_ref") for i in indexes}
    # A holder_ref shared with a person who stays is kept: it cannot single out the removed one.
    refs -= {p.get("person_ref") for i, p in enumerate(persons) if i not in indexes}
    out = dict(notice)
    out["persons"] = [p for i, p in enumerate(persons) if i not in indexes]
    fin = notice.get("financial_identifiers") or []
    if any(f.get("holder_ref") in refs for f in fin):
        out["financial_identifiers"] = [f for f in fin if f.get("holder_ref") not in refs]
    out["summary"] = ""
    for key in FREE_TEXT_LISTS:
        items = notice.get(key) or []
        if any(item.get("description") for item in items):
            out[key] = [{**item, "description": ""} for item in items]
    return out
