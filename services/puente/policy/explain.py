"""Why a recipient gets what it gets: a step-by-step account of one decision.

Used by ``puente policy explain``; it replays the plan of the (origin, recipient, type) with every
condition's outcome, then shows the engine's own decision (the explanation never decides anything
the engine does not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from puente.policy.engine import Decision, PolicySet
from puente.policy.floor import notice_facts
from puente.policy.transforms import PseudonymKeys


@dataclass(frozen=True, slots=True)
class Step:
    """One line of an explanation: what was looked at, and what it gave."""

    what: str
    outcome: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Explanation:
    steps: tuple[Step, ...]
    decision: Decision


def explain(
    ps: PolicySet,
    notice: Mapping[str, Any],
    notice_type: str,
    recipient: str,
    keys: PseudonymKeys,
) -> Explanation:
    """Decide for ``recipient`` and say, step by step, why."""
    decision = ps.decide(notice, notice_type, recipient, keys)
    t = decision.notice_type
    origin = decision.origin
    steps: list[Step] = []
    if origin == recipient:
        steps.append(Step("origin", "withhold", "the origin never receives its own notice"))
        return Explanation(tuple(steps), decision)
    facts = notice_facts(t, notice)
    blocked = [p for p in facts.persons if p.feared_by(recipient)]
    steps.append(
        Step(
            "floor: asylum confidentiality",
            "protects " + ", ".join(p.ref for p in blocked) if blocked else "nothing to protect",
            f"{recipient} is a state a person fears (named in feared_states, or by default a "
            "nationality state or the state of habitual residence of a person who sought "
            "asylum, is a refugee or fears return)"
            if blocked
            else "",
        )
    )
    if blocked and facts.single_subject:
        steps.append(Step("decision", decision.action, ", ".join(decision.reasons)))
        return Explanation(tuple(steps), decision)
    plan = ps.plan(origin, recipient, t)
    decided = False
    for rule in plan.rules:
        where = f"{rule.file}:{rule.line}"
        label = f"{rule.scope} {rule.action.value} rule {rule.id} ({where})"
        if decided:
            steps.append(Step(label, "not reached"))
            continue
        cond = rule.conditions[t]
        if cond is None:
            outcome = "matches (no condition)"
            decided = True
        else:
            try:
                ok = cond.fn(notice, t, origin, recipient, plan.recipient_groups, plan.mandatory)
                outcome = "matches" if ok else "does not match"
                decided = bool(ok)
            except Exception as exc:  # as the engine: any failure is RULE_ERROR
                outcome = f"condition error ({type(exc).__name__}: {exc}); withheld, RULE_ERROR"
                decided = True
        steps.append(Step(label, outcome, " ".join((rule.when or "").split())))
    if not plan.rules:
        steps.append(
            Step("rules", f"no rule of {origin} or of the region covers {recipient} for {t}")
        )
    acc = plan.acceptance
    steps.append(
        Step(
            f"acceptance of {recipient}",
            f"{acc.id}: purposes {', '.join(sorted(acc.purposes))}"
            if acc
            else "does not accept " + t,
        )
    )
    for ref, codes in decision.person_reasons:
        steps.append(Step(f"floor: person {ref} removed", ", ".join(codes)))
    steps.append(
        Step(
            "decision",
            decision.action,
            "; ".join(
                x
                for x in (
                    f"reasons {', '.join(decision.reasons)}" if decision.reasons else "",
                    f"purposes {', '.join(decision.purposes)}" if decision.purposes else "",
                    f"handling {decision.handling}" if decision.handling else "",
                    f"retention {decision.retention_days} days" if decision.retention_days else "",
                    f"transforms {', '.join(decision.transforms)}" if decision.transforms else "",
                )
                if x
            ),
        )
    )
    return Explanation(tuple(steps), decision)
