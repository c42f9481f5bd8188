"""The regional protection floor: what no national rule can override.

Its semantics are code (this module), its citations are data (policies/regional.yaml, section
``floor``). It speaks about persons, so it first reads, once per notice, the facts it needs about
each person (:class:`PersonFacts`); then, per recipient, it answers two questions:

1. before any rule (:func:`blocked_by_asylum`): does this recipient hold a nationality of a
   person who sought asylum, is a refugee or fears return? Such a person's data never reaches it;
2. once the deciding share rule and the final purposes are known (:func:`person_verdicts`): may
   each minor and each trafficking victim go to this recipient for these purposes, unless the
   rule carries an explicit, cited exception?

A notice about one subject (a ConsularNotification) is withheld when its subject is protected;
in a notice about several persons (a CaseNotice) the protected persons are removed from that
recipient's delivery (see :func:`remove_persons`) and the rest is shared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from puente.policy.model import FloorProtection

ASYLUM_STATUSES = frozenset({"ASYLUM_SEEKER", "REFUGEE"})

# Reason codes the origin reads in the decision (stable: rejections, metrics and tests use them).
REASON_ASYLUM = "FLOOR_ASYLUM_CONFIDENTIALITY"
REASON_ASYLUM_ONWARD = "FLOOR_ASYLUM_ONWARD_RESTRICTED"
REASON_MINOR = "FLOOR_MINOR_PROTECTION"
REASON_TRAFFICKING = "FLOOR_TRAFFICKING_VICTIM"
REASON_SUMMARY = "FLOOR_FREE_TEXT_DROPPED"

REASON_OF = {
    FloorProtection.ASYLUM: REASON_ASYLUM,
    FloorProtection.MINORS: REASON_MINOR,
    FloorProtection.TRAFFICKING_VICTIMS: REASON_TRAFFICKING,
}


class PersonFacts(NamedTuple):
    """What the floor needs to know about one protected person of a notice."""

    position: int  # position in the notice's persons (0 for a ConsularNotification's subject)
    ref: str  # person_ref in a CaseNotice; "person" for the subject of a ConsularNotification
    nationalities: frozenset[str]
    asylum: bool  # asylum seeker, refugee, or fear of return expressed
    minor: bool
    trafficking_victim: bool


class NoticeFacts(NamedTuple):
    """The floor's view of a notice, computed once and shared by every recipient's decision.

    ``persons`` holds only the persons some protection applies to: the others never change a
    decision, and most notices have none, which keeps this pass cheap on the hot path.
    """

    persons: tuple[PersonFacts, ...]
    single_subject: bool  # the notice is about one person: protecting them withholds it all
    asylum_nationalities: frozenset[str]  # recipients blocked by the asylum floor
    any_minor: bool
    any_victim: bool
    any_asylum: bool


_NO_FACTS_CASE = NoticeFacts((), False, frozenset(), False, False, False)


def notice_facts(notice_type: str, notice: Mapping[str, Any]) -> NoticeFacts:
    """Read the floor's facts from a notice of ``notice_type`` (a short type name)."""
    single = notice_type == "ConsularNotification"
    raw = (notice["person"],) if single else notice.get("persons") or ()
    protected: list[PersonFacts] = []
    for i, p in enumerate(raw):
        # One cheap test per person first: most persons are none of these.
        minor = p.get("minor") is True
        victim = p.get("trafficking_victim") is True
        asylum = p.get("fear_of_return_expressed") is True or (
            p.get("protection_status") in ASYLUM_STATUSES
        )
        if asylum or minor or victim:
            ref = "person" if single else str(p.get("person_ref", i))
            nats = frozenset(p.get("nationalities") or ())
            protected.append(PersonFacts(i, ref, nats, asylum, minor, victim))
    if not protected:
        return _NO_FACTS_CASE._replace(single_subject=True) if single else _NO_FACTS_CASE
    blocked: set[str] = set()
    for pf in protected:
        if pf.asylum:
            # The schema does not say which state the person fears; protect against every
            # nationality state, the reading that cannot endanger the person.
            blocked |= pf.nationalities
    return NoticeFacts(
        persons=tuple(protected),
        single_subject=single,
        asylum_nationalities=frozenset(blocked),
        any_minor=any(p.minor for p in protected),
        any_victim=any(p.trafficking_victim for p in protected),
        any_asylum=any(p.asylum for p in protected),
    )


def blocked_by_asylum(facts: NoticeFacts, recipient: str) -> list[PersonFacts]:
    """The persons whose asylum protection keeps them from ``recipient`` (a nationality state)."""
    if recipient not in facts.asylum_nationalities:
        return []
    return [p for p in facts.persons if p.asylum and recipient in p.nationalities]


def person_verdicts(
    facts: NoticeFacts,
    recipient: str,
    purposes: tuple[str, ...],
    protection_purposes: frozenset[str],
    exceptions: frozenset[FloorProtection],
) -> list[tuple[PersonFacts, FloorProtection]]:
    """The minors and trafficking victims who may not go to ``recipient`` for ``purposes``.

    A minor's identifying data goes only to the child's nationality states and only for
    protection purposes; a trafficking victim's identity and status go for protection purposes
    only. A rule's explicit exception (``floor_exceptions``, with its own legal basis) lifts
    either limit; nothing lifts the asylum floor.
    """
    if not (facts.any_minor or facts.any_victim):
        return []
    protective = all(p in protection_purposes for p in purposes)
    out: list[tuple[PersonFacts, FloorProtection]] = []
    for p in facts.persons:
        if (
            p.minor
            and FloorProtection.MINORS not in exceptions
            and not (protective and recipient in p.nationalities)
        ):
            out.append((p, FloorProtection.MINORS))
        elif (
            p.trafficking_victim
            and FloorProtection.TRAFFICKING_VICTIMS not in exceptions
            and not protective
        ):
            out.append((p, FloorProtection.TRAFFICKING_VICTIMS))
    return out


def remove_persons(notice: Mapping[str, Any], indexes: frozenset[int]) -> dict[str, Any]:
    """A CaseNotice without the persons at ``indexes`` and without what would still identify them.

    Removed with a person: the financial identifiers they hold (an account identifies its holder)
    and the free-text summary, which may name anyone and cannot be redacted mechanically; the
    summary is emptied rather than risk it naming the protected person.
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
    return out
