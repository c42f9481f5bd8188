"""The decision engine: pure, no I/O, everything precomputed at load.

:meth:`PolicySet.decide` answers for one (notice, recipient) pair, :meth:`PolicySet.decide_all`
for every member at once (the policy service's hot path). Both return :class:`Decision`, which
carries everything an auditor needs to re-derive it: the rules that fired, their legal bases, the
purposes, handling and retention imposed, the reason codes, and the policy-set version.

The order of evaluation is in policies/SEMANTICS.md; in short, per recipient:
self → floor (asylum) → regional withholds → origin withholds → origin shares → regional shares
→ default withhold; then the recipient's acceptance, the floor's person checks (minors, victims),
the narrowing of purposes, handling and retention, and the rule's transformations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from puente.policy.cel import Condition
from puente.policy.errors import (
    CelEvalError,
    PolicyError,
    UnknownNoticeTypeError,
    UnknownRecipientError,
)
from puente.policy.floor import (
    REASON_ASYLUM,
    REASON_ASYLUM_ONWARD,
    REASON_OF,
    REASON_SUMMARY,
    NoticeFacts,
    blocked_by_asylum,
    notice_facts,
    person_verdicts,
    remove_persons,
)
from puente.policy.model import Action, FloorProtection
from puente.policy.transforms import Apply, Keys, PseudonymKeys

# Reason codes of withholds that no rule names (stable; see SEMANTICS.md).
ORIGIN_IS_RECIPIENT = "ORIGIN_IS_RECIPIENT"
NO_MATCHING_RULE = "NO_MATCHING_RULE"
WITHHELD_BY_RULE = "WITHHELD_BY_RULE"
RECIPIENT_DOES_NOT_ACCEPT = "RECIPIENT_DOES_NOT_ACCEPT"
PURPOSE_NOT_PERMITTED = "PURPOSE_NOT_PERMITTED"
CONDITION_ERROR = "CONDITION_ERROR"

NOTICE_TYPES = ("CaseNotice", "ConsularNotification")
_NAMESPACE = "puente."


class UnknownOriginError(PolicyError):
    """The notice's origin is not a member state."""

    reason = "POLICY_UNKNOWN_ORIGIN"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one (notice, recipient) pair.

    ``action`` is ``share`` (the notice as published), ``share_transformed`` (a different payload:
    fields transformed, persons removed by the floor, or purposes/handling/retention narrowed) or
    ``withhold`` (``payload`` is None). ``rules`` lists, in order, every rule that fired: floor
    entries that acted, the deciding rule, floor exceptions used, and the acceptance entry.
    ``reasons`` holds stable codes for a withhold or for what the floor removed. ``errors``
    names rules whose condition failed at run time (handled fail-closed).
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

    @property
    def shared(self) -> bool:
        return self.action != Action.WITHHOLD.value

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
    transforms: dict[str, tuple[tuple[str, Apply], ...]] = field(default_factory=dict)
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
    acceptance: CompiledAcceptance | None
    recipient_groups: tuple[str, ...]
    mandatory: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FloorCitation:
    id: str
    legal_basis: str


_ERR = object()


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
    ) -> None:
        self.version = version
        self.members = members
        self.groups = groups
        self.floor = floor
        self.protection_purposes = protection_purposes
        self.rules = rules
        self.files = files
        self.warnings = warnings
        self._plans = plans
        self._member_set = frozenset(members)

    # ------------------------------------------------------------------ public API

    def decide(
        self,
        notice: Mapping[str, Any],
        notice_type: str,
        recipient: str,
        keys: PseudonymKeys,
    ) -> Decision:
        """Decide what ``recipient`` gets of ``notice`` (a decoded Avro record of ``notice_type``,
        e.g. ``"CaseNotice"`` or ``"puente.CaseNotice"``)."""
        t = self._type(notice_type)
        if recipient not in self._member_set:
            raise UnknownRecipientError(f"{recipient!r} is not a member state")
        origin = self._origin(notice)
        return self._decide(notice, t, origin, recipient, notice_facts(t, notice), keys, None)

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
        out = _Builder(self, notice, t, origin, recipient)
        if recipient == origin:
            return out.withhold(ORIGIN_IS_RECIPIENT)

        blocked = blocked_by_asylum(facts, recipient)
        if blocked and facts.single_subject:
            out.floor(FloorProtection.ASYLUM)
            return out.withhold(REASON_ASYLUM)

        plan = self._plans[(origin, recipient, t)]
        rule = self._first_match(plan, notice, t, origin, recipient, cache, out)
        if rule is None:
            return out.withhold(NO_MATCHING_RULE)
        out.fire(rule.id, rule.legal_basis)
        if rule.action is Action.WITHHOLD:
            return out.withhold(rule.reason or WITHHELD_BY_RULE)

        # Purposes: the rule's, within what the origin permits in the notice, within what the
        # recipient's law lets it receive.
        purposes = rule.purposes
        if t == "CaseNotice":
            permitted = notice["permitted_purposes"]
            purposes = tuple(p for p in purposes if p in permitted)
            if not purposes:
                return out.withhold(PURPOSE_NOT_PERMITTED)
        acc = plan.acceptance
        if acc is None:
            return out.withhold(RECIPIENT_DOES_NOT_ACCEPT)
        purposes = tuple(p for p in purposes if p in acc.purposes)
        if not purposes:
            return out.withhold(RECIPIENT_DOES_NOT_ACCEPT)

        # The floor's person checks, now that the purposes are final.
        remove: dict[int, FloorProtection] = {p.index: FloorProtection.ASYLUM for p in blocked}
        if blocked:
            out.floor(FloorProtection.ASYLUM)
        for person, protection in person_verdicts(
            facts, recipient, purposes, self.protection_purposes, frozenset()
        ):
            basis = rule.exceptions.get(protection)
            if basis is not None:
                out.fire(f"{rule.id}#exception:{protection.value}", basis)
            else:
                remove.setdefault(person.index, protection)
                out.floor(protection)
        if remove and facts.single_subject:
            return out.withhold(*sorted({REASON_OF[p] for p in remove.values()}))

        payload: Mapping[str, Any] = notice
        if remove:
            payload = remove_persons(notice, frozenset(remove))
            out.removed = tuple(facts.persons[i].ref for i in sorted(remove))
            out.reasons.extend(sorted({REASON_OF[p] for p in remove.values()}))
            out.reasons.append(REASON_SUMMARY)
        out.fire(acc.id, acc.legal_basis)

        # Handling and retention: the stricter of the notice's and the rule's.
        handling = rule.handling
        conditions = rule.handling_conditions
        retention = rule.retention_days
        asylum_left = facts.any_asylum and any(
            p.asylum and p.index not in remove for p in facts.persons
        )
        if t == "CaseNotice":
            nh = notice["handling"]
            if handling is None or nh["code"] > handling:
                handling = nh["code"]
            conditions = conditions or nh.get("conditions")
            if retention is None or notice["retention_days"] < retention:
                retention = notice["retention_days"]
        if asylum_left and (handling is None or handling < "H2"):
            # A third state must not pass a protected person's data on to the state they fear.
            handling = "H2"
            out.floor(FloorProtection.ASYLUM)
            out.reasons.append(REASON_ASYLUM_ONWARD)
        if t == "CaseNotice":
            payload = _narrow(payload, notice, purposes, handling, conditions, retention)

        transforms = rule.transforms.get(t, ())
        if transforms:
            k: Keys = keys.for_recipient(recipient)
            mutable = dict(payload)
            for _label, apply in transforms:
                mutable = apply(mutable, k)
            payload = mutable
            out.transforms = tuple(label for label, _ in transforms)
        return out.share(payload, purposes, handling, conditions, retention)

    def _first_match(
        self,
        plan: Plan,
        notice: Mapping[str, Any],
        t: str,
        origin: str,
        recipient: str,
        cache: dict[int, object] | None,
        out: _Builder,
    ) -> CompiledRule | None:
        for rule in plan.rules:
            cond = rule.conditions[t]
            if cond is None:
                return rule
            shared_result = cache is not None and not rule.per_recipient[t]
            result: object = cache.get(rule.index) if cache is not None and shared_result else None
            if result is None:
                try:
                    result = cond.fn(
                        notice, t, origin, recipient, plan.recipient_groups, plan.mandatory
                    )
                except CelEvalError:
                    result = _ERR
                if shared_result and cache is not None:
                    cache[rule.index] = result
            if result is _ERR:
                out.errors.append(rule.id)
                # Fail closed: a withhold rule that cannot be evaluated withholds; a share rule
                # that cannot be evaluated does not share.
                if rule.action is Action.WITHHOLD:
                    out.reasons.append(CONDITION_ERROR)
                    return rule
                continue
            if result:
                return rule
        return None


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


class _Builder:
    """Collects what fired while one decision is made (not part of the public API)."""

    __slots__ = (
        "bases",
        "errors",
        "fired",
        "notice",
        "origin",
        "ps",
        "reasons",
        "recipient",
        "removed",
        "t",
        "transforms",
    )

    def __init__(
        self, ps: PolicySet, notice: Mapping[str, Any], t: str, origin: str, recipient: str
    ) -> None:
        self.ps = ps
        self.notice = notice
        self.t = t
        self.origin = origin
        self.recipient = recipient
        self.fired: list[str] = []
        self.bases: list[str] = []
        self.reasons: list[str] = []
        self.errors: list[str] = []
        self.removed: tuple[str, ...] = ()
        self.transforms: tuple[str, ...] = ()

    def fire(self, rule_id: str, basis: str) -> None:
        self.fired.append(rule_id)
        if basis and basis not in self.bases:
            self.bases.append(basis)

    def floor(self, protection: FloorProtection) -> None:
        cite = self.ps.floor[protection]
        if cite.id not in self.fired:
            self.fire(cite.id, cite.legal_basis)

    def withhold(self, *reasons: str) -> Decision:
        for r in reasons:
            if r not in self.reasons:
                self.reasons.append(r)
        return self._make(Action.WITHHOLD.value, None, (), None, None, None)

    def share(
        self,
        payload: Mapping[str, Any],
        purposes: tuple[str, ...],
        handling: str | None,
        conditions: str | None,
        retention: int | None,
    ) -> Decision:
        action = Action.SHARE if payload is self.notice else Action.SHARE_TRANSFORMED
        return self._make(action.value, payload, purposes, handling, conditions, retention)

    def _make(
        self,
        action: str,
        payload: Mapping[str, Any] | None,
        purposes: tuple[str, ...],
        handling: str | None,
        conditions: str | None,
        retention: int | None,
    ) -> Decision:
        return Decision(
            notice_id=str(self.notice.get("notice_id")),
            notice_type=self.t,
            origin=self.origin,
            recipient=self.recipient,
            action=action,
            payload=payload,
            rules=tuple(self.fired),
            legal_bases=tuple(self.bases),
            purposes=purposes,
            handling=handling,
            handling_conditions=conditions,
            retention_days=retention,
            reasons=tuple(self.reasons),
            removed_persons=self.removed,
            transforms=self.transforms,
            errors=tuple(self.errors),
            policy_version=self.ps.version,
        )
