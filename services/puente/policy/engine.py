"""The decision engine: pure, no I/O, everything precomputed at load.

:meth:`PolicySet.decide` answers for one (notice, recipient) pair, :meth:`PolicySet.decide_all`
for every member at once (the policy service's hot path). Both return :class:`Decision`, which
carries everything an auditor needs to re-derive it: the rules that fired, their legal bases, the
purposes, handling and retention imposed, the reason codes, and the policy-set version.

The order of evaluation is in policies/SEMANTICS.md; in short, per recipient:
self → floor (asylum, a notice about one person) → regional withholds → origin withholds → origin
shares → regional shares → default withhold; then the narrowing of purposes and the recipient's
acceptance, the floor's person checks (asylum, minors, victims, each on its own), handling and
retention, and the rule's transformations. A condition that fails at run time withholds from that
recipient (``RULE_ERROR``), never from the whole notice and never by falling through to a later
rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from puente.notices import NOTICE_SHORT_NAMES
from puente.policy.cel import Condition
from puente.policy.errors import (
    PolicyError,
    UnknownNoticeTypeError,
    UnknownRecipientError,
)
from puente.policy.floor import (
    ORDER,
    REASON_ASYLUM,
    REASON_ASYLUM_ONWARD,
    REASON_OF,
    REASON_SUMMARY,
    FloorWarning,
    NoticeFacts,
    asylum_blocks,
    notice_facts,
    person_verdicts,
    remove_persons,
)
from puente.policy.model import Action, FloorProtection
from puente.policy.transforms import Apply, PseudonymKeys

# Reason codes of withholds that no rule names (stable; see SEMANTICS.md).
ORIGIN_IS_RECIPIENT = "ORIGIN_IS_RECIPIENT"
NO_MATCHING_RULE = "NO_MATCHING_RULE"
WITHHELD_BY_RULE = "WITHHELD_BY_RULE"
RECIPIENT_DOES_NOT_ACCEPT = "RECIPIENT_DOES_NOT_ACCEPT"
PURPOSE_NOT_PERMITTED = "PURPOSE_NOT_PERMITTED"
RULE_ERROR = "RULE_ERROR"

NOTICE_TYPES = NOTICE_SHORT_NAMES  # policies name the types by their short names
_NAMESPACE = "puente."


class UnknownOriginError(PolicyError):
    """The notice's origin is not a member state."""

    reason = "POLICY_UNKNOWN_ORIGIN"


class Decision(NamedTuple):
    """The outcome for one (notice, recipient) pair (immutable; a named tuple because the hot
    path builds twenty of them per notice).

    ``action`` is ``share`` (the notice as published), ``share_transformed`` (a different payload:
    fields transformed, persons removed by the floor, or purposes/handling/retention narrowed) or
    ``withhold`` (``payload`` is None). ``rules`` lists, in order, every rule that fired: the
    deciding rule (or the floor entry that withheld before any rule, or the rule that failed),
    the floor entries that acted on persons with the exceptions that let someone through, the
    acceptance entry, and the asylum entry if it raised the handling (policies/SEMANTICS.md §7).
    ``reasons`` holds stable codes for a withhold or for what the floor removed. ``errors``
    names the rule whose condition failed at run time (the recipient is then withheld,
    ``RULE_ERROR``). ``person_reasons`` pairs each removed person's ``person_ref`` with the
    reason code of every protection that kept them from the recipient.
    """

    notice_id: str
    notice_type: str
    origin: str
    recipient: str
    action: str
    payload: Mapping[str, Any] | None
    rules: tuple[str, ...]
    legal_bases: tuple[str, ...]
    purposes: tuple[str, ...]
    handling: str | None
    handling_conditions: str | None
    retention_days: int | None
    reasons: tuple[str, ...]
    removed_persons: tuple[str, ...]
    transforms: tuple[str, ...]
    errors: tuple[str, ...]
    policy_version: str
    person_reasons: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def shared(self) -> bool:
        """True unless withheld."""
        return self.action != _WITHHOLD

    def summary(self) -> dict[str, Any]:
        """The decision without its payload: safe for audit records and logs (no personal data;
        ``removed_persons`` holds in-notice references such as ``p2``, not identities)."""
        return {
            "notice_id": self.notice_id,
            "notice_type": self.notice_type,
            "origin": self.origin,
            "recipient": self.recipient,
            "action": self.action,
            "rules": list(self.rules),
            "legal_bases": list(self.legal_bases),
            "purposes": list(self.purposes),
            "handling": self.handling,
            "handling_conditions": self.handling_conditions,
            "retention_days": self.retention_days,
            "reasons": list(self.reasons),
            "removed_persons": list(self.removed_persons),
            "transforms": list(self.transforms),
            "errors": list(self.errors),
            "policy_version": self.policy_version,
            "person_reasons": {ref: list(codes) for ref, codes in self.person_reasons},
        }


@dataclass(slots=True, eq=False)
class CompiledRule:
    """A rule ready for the hot path (built by the loader)."""

    index: int  # unique in the set: the fan-out's cache key
    id: str
    scope: str  # "regional" or the origin's state code
    file: str
    line: int
    action: Action
    recipients: frozenset[str]
    conditions: dict[str, Condition | None]  # per notice type the rule covers
    per_recipient: dict[str, bool]  # condition reads recipient or recipient_groups
    purposes: tuple[str, ...] = ()
    handling: str | None = None
    handling_conditions: str | None = None
    retention_days: int | None = None
    transforms: dict[str, Apply] = field(default_factory=dict)  # per type, all merged in one
    transform_labels: tuple[str, ...] = ()  # "path:op", as decisions report them
    exceptions: dict[FloorProtection, str] = field(default_factory=dict)  # protection → basis
    reason: str | None = None
    legal_basis: str = ""
    when: str | None = None


@dataclass(frozen=True, slots=True)
class CompiledAcceptance:
    id: str
    state: str
    types: frozenset[str]
    purposes: frozenset[str]
    legal_basis: str


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything precomputed for one (origin, recipient, notice type)."""

    rules: tuple[CompiledRule, ...]  # withholds first, then shares, in evaluation order
    # The same rules with what the hot loop needs for this notice type, looked up once at load:
    # (rule, condition function or None, reads the recipient, cache index).
    entries: tuple[tuple[CompiledRule, Any, bool, int], ...]
    acceptance: CompiledAcceptance | None
    recipient_groups: tuple[str, ...]
    mandatory: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FloorCitation:
    id: str
    legal_basis: str


_ERR = object()
_WITHHOLD = Action.WITHHOLD.value
_SHARE = Action.SHARE.value
_SHARE_TRANSFORMED = Action.SHARE_TRANSFORMED.value
_EMPTY_SHARE: tuple[Any, ...] = ((), None, None, None, (), ())


class Digests(NamedTuple):
    """The SHA-256 of the files a policy set was loaded from that the federation cares about:
    the regional file (its floor is pinned in the trust list) and each member's own rules."""

    floor: bytes
    states: dict[str, bytes]

    def policy(self, origin: str) -> bytes:
        """The digest of ``origin``'s own policy file (empty if it has none)."""
        return self.states.get(origin, b"")


class PolicySet:
    """A loaded, validated, compiled policy set. Immutable; safe to share between threads.

    Build it with :func:`puente.policy.loader.load_policy_set`; hold it in a
    :class:`~puente.policy.store.PolicyStore` to reload safely.
    """

    def __init__(
        self,
        *,
        version: str,
        members: tuple[str, ...],
        groups: dict[str, tuple[str, ...]],
        plans: dict[tuple[str, str, str], Plan],
        floor: dict[FloorProtection, FloorCitation],
        protection_purposes: frozenset[str],
        rules: tuple[CompiledRule, ...],
        files: tuple[str, ...],
        warnings: tuple[str, ...] = (),
        digests: Digests | None = None,
    ) -> None:
        self.version = version
        self.digests = digests or Digests(b"", {})
        self.members = members
        self.groups = groups
        self.floor = floor
        self.protection_purposes = protection_purposes
        self.rules = rules
        self.files = files
        self.warnings = warnings
        self._plans = plans
        self._member_set = frozenset(members)
        self._last_facts: tuple[Mapping[str, Any] | None, str, NoticeFacts, dict[int, object]] = (
            None,
            "",
            notice_facts("CaseNotice", {}),
            {},
        )

    # ------------------------------------------------------------------ public API

    def decide(
        self,
        notice: Mapping[str, Any],
        notice_type: str,
        recipient: str,
        keys: PseudonymKeys,
    ) -> Decision:
        """Decide what ``recipient`` gets of ``notice`` (a decoded Avro record of ``notice_type``,
        e.g. ``"CaseNotice"`` or ``"puente.CaseNotice"``).

        Notices are read-only to the engine. The floor's facts and the recipient-independent
        condition results of the last notice decided on are kept (by identity), so deciding
        recipient after recipient for one notice does that work once, as :meth:`decide_all`
        does."""
        t = self._type(notice_type)
        if recipient not in self._member_set:
            raise UnknownRecipientError(f"{recipient!r} is not a member state")
        origin = self._origin(notice)
        last = self._last_facts  # one read: a racing thread may replace it, never tear it
        if last[0] is notice and last[1] == t:
            facts, cache = last[2], last[3]
        else:
            facts, cache = notice_facts(t, notice), {}
            self._last_facts = (notice, t, facts, cache)
        return self._decide(notice, t, origin, recipient, facts, keys, cache)

    def decide_all(
        self, notice: Mapping[str, Any], notice_type: str, keys: PseudonymKeys
    ) -> list[Decision]:
        """Decide for every member state (member-list order); the origin's own entry is a
        withhold with ``ORIGIN_IS_RECIPIENT``. Conditions that do not read the recipient are
        evaluated once for all members."""
        t = self._type(notice_type)
        origin = self._origin(notice)
        facts = notice_facts(t, notice)
        cache: dict[int, object] = {}
        return [self._decide(notice, t, origin, r, facts, keys, cache) for r in self.members]

    def floor_warnings(
        self, notice: Mapping[str, Any], notice_type: str
    ) -> tuple[FloorWarning, ...]:
        """What the origin should correct in ``notice`` although it was decided as usual (a
        minor flag that contradicts the date of birth): warnings, never refusals."""
        return notice_facts(self._type(notice_type), notice).warnings

    def plan(self, origin: str, recipient: str, notice_type: str) -> Plan:
        """The precomputed plan of one (origin, recipient, type), for explain and tests."""
        return self._plans[(origin, recipient, self._type(notice_type))]

    # ------------------------------------------------------------------ internals

    def _type(self, notice_type: str) -> str:
        t = notice_type.removeprefix(_NAMESPACE)
        if t not in NOTICE_TYPES:
            raise UnknownNoticeTypeError(f"unknown notice type {notice_type!r}")
        return t

    def _origin(self, notice: Mapping[str, Any]) -> str:
        origin = notice.get("origin")
        if origin not in self._member_set:
            raise UnknownOriginError(f"origin {origin!r} is not a member state")
        return str(origin)

    def _decide(
        self,
        notice: Mapping[str, Any],
        t: str,
        origin: str,
        recipient: str,
        facts: NoticeFacts,
        keys: PseudonymKeys,
        cache: dict[int, object] | None,
    ) -> Decision:
        # The hot path: locals and plain lists rather than helper objects; a decision is made
        # twenty times per notice.
        fired: list[str] = []
        bases: list[str] = []
        reasons: list[str] = []
        errors: list[str] = []
        floor = self.floor

        def done(
            action: str,
            payload: Mapping[str, Any] | None = None,
            *rest: Any,
            person_reasons: tuple[tuple[str, tuple[str, ...]], ...] = (),
        ) -> Decision:
            purposes, handling, conditions, retention, removed, transforms = rest or _EMPTY_SHARE
            return Decision(
                str(notice.get("notice_id")), t, origin, recipient, action, payload,
                tuple(fired), tuple(bases), purposes, handling, conditions, retention,
                tuple(reasons), removed, transforms, tuple(errors), self.version, person_reasons,
            )  # fmt: skip

        def fire(rule_id: str, basis: str) -> None:
            if rule_id not in fired:
                fired.append(rule_id)
                if basis and basis not in bases:
                    bases.append(basis)

        if recipient == origin:
            reasons.append(ORIGIN_IS_RECIPIENT)
            return done(_WITHHOLD)

        if facts.single_subject and facts.any_asylum and asylum_blocks(facts, recipient):
            # A notice about one person the recipient must not learn about: no rule is consulted.
            cite = floor[FloorProtection.ASYLUM]
            fire(cite.id, cite.legal_basis)
            reasons.append(REASON_ASYLUM)
            return done(_WITHHOLD)

        # First match over the plan: withholds (regional, then the origin's), then shares (the
        # origin's, then regional). Conditions that ignore the recipient are evaluated once per
        # notice in a fan-out.
        plan = self._plans[(origin, recipient, t)]
        rule: CompiledRule | None = None
        for candidate, fn, per_recipient, index in plan.entries:
            if fn is None:
                rule = candidate
                break
            result = None
            if cache is not None and not per_recipient:
                result = cache.get(index)
            if result is None:
                try:
                    result = fn(notice, t, origin, recipient, plan.recipient_groups, plan.mandatory)
                except Exception:  # whatever fails, that rule fails (below)
                    result = _ERR
                if cache is not None and not per_recipient:
                    cache[index] = result
            if result is _ERR:
                # Fail closed, for this recipient only: a rule that cannot be evaluated withholds,
                # whether it would have shared or withheld, and never lets a later (broader)
                # rule decide in its place. Its legal basis is not cited: it did not apply.
                errors.append(candidate.id)
                fired.append(candidate.id)
                reasons.append(RULE_ERROR)
                return done(_WITHHOLD)
            if result:
                rule = candidate
                break
        if rule is None:
            reasons.append(NO_MATCHING_RULE)
            return done(_WITHHOLD)
        fire(rule.id, rule.legal_basis)
        if rule.action is Action.WITHHOLD:
            reasons.append(rule.reason or WITHHELD_BY_RULE)
            return done(_WITHHOLD)

        # Purposes: the rule's, within what the origin permits in the notice, within what the
        # recipient's law lets it receive.
        purposes = rule.purposes
        if t == "CaseNotice":
            permitted = notice["permitted_purposes"]
            purposes = tuple(p for p in purposes if p in permitted)
            if not purposes:
                reasons.append(PURPOSE_NOT_PERMITTED)
                return done(_WITHHOLD)
        acc = plan.acceptance
        if acc is not None:
            purposes = tuple(p for p in purposes if p in acc.purposes)
        if acc is None or not purposes:
            reasons.append(RECIPIENT_DOES_NOT_ACCEPT)
            return done(_WITHHOLD)

        # The floor's person checks, now that the purposes are final: every protection on its
        # own, an exception lifting only the protection it names.
        remove: dict[int, tuple[FloorProtection, ...]] = {}
        if facts.any_minor or facts.any_victim or asylum_blocks(facts, recipient):
            lifted: set[FloorProtection] = set()
            for v in person_verdicts(
                facts, recipient, purposes, self.protection_purposes, rule.exceptions
            ):
                if v.applied:
                    remove[v.person.position] = v.applied
                else:
                    # Cited only when it let a person through, not when another protection
                    # removed that person anyway.
                    lifted.update(v.lifted)
            applied = {p for ps in remove.values() for p in ps}
            for protection in ORDER:
                if protection in applied:
                    cite = floor[protection]
                    fire(cite.id, cite.legal_basis)
                if protection in lifted:
                    fire(f"{rule.id}#exception:{protection.value}", rule.exceptions[protection])
            if remove and facts.single_subject:
                reasons.extend(sorted({REASON_OF[p] for p in applied}))
                return done(_WITHHOLD)

        payload: Mapping[str, Any] = notice
        removed: tuple[str, ...] = ()
        person_reasons: tuple[tuple[str, tuple[str, ...]], ...] = ()
        if remove:
            payload = remove_persons(notice, frozenset(remove))
            refs = {p.position: p.ref for p in facts.persons}
            removed = tuple(refs[i] for i in sorted(remove))
            person_reasons = tuple(
                (refs[i], tuple(REASON_OF[p] for p in remove[i])) for i in sorted(remove)
            )
            reasons.extend(sorted({REASON_OF[p] for ps in remove.values() for p in ps}))
            reasons.append(REASON_SUMMARY)
        fire(acc.id, acc.legal_basis)

        # Handling and retention: the stricter of the notice's and the rule's.
        handling = rule.handling
        conditions = rule.handling_conditions
        retention = rule.retention_days
        if t == "CaseNotice":
            nh = notice["handling"]
            if handling is None or nh["code"] > handling:
                handling = nh["code"]
            conditions = conditions or nh.get("conditions")
            if retention is None or notice["retention_days"] < retention:
                retention = notice["retention_days"]
        if (
            facts.any_asylum
            and (handling is None or handling < "H2")
            and any(p.asylum and p.position not in remove for p in facts.persons)
        ):
            # No recipient may pass a protected person's data on, to the state they fear or to
            # anyone else, without the origin's permission.
            handling = "H2"
            cite = floor[FloorProtection.ASYLUM]
            fire(cite.id, cite.legal_basis)
            reasons.append(REASON_ASYLUM_ONWARD)
        if t == "CaseNotice":
            payload = _narrow(payload, notice, purposes, handling, conditions, retention)

        apply = rule.transforms.get(t)
        labels: tuple[str, ...] = ()
        if apply is not None:
            payload = apply(payload, keys.for_recipient(recipient))
            labels = rule.transform_labels
        action = _SHARE if payload is notice else _SHARE_TRANSFORMED
        return done(
            action,
            payload,
            purposes,
            handling,
            conditions,
            retention,
            removed,
            labels,
            person_reasons=person_reasons,
        )


def _narrow(
    payload: Mapping[str, Any],
    notice: Mapping[str, Any],
    purposes: tuple[str, ...],
    handling: str | None,
    conditions: str | None,
    retention: int | None,
) -> Mapping[str, Any]:
    """Write the decision's purposes, handling and retention into a CaseNotice payload, copying
    only when one of them differs from what the origin published."""
    changes: dict[str, Any] = {}
    if list(purposes) != list(notice["permitted_purposes"]):
        changes["permitted_purposes"] = list(purposes)
    nh = notice["handling"]
    if handling != nh["code"] or conditions != nh.get("conditions"):
        changes["handling"] = {"code": handling, "conditions": conditions}
    if retention != notice["retention_days"]:
        changes["retention_days"] = retention
    if not changes:
        return payload
    out = dict(payload)
    out.update(changes)
    return out
