"""Phase 3, plan: the validated set laid out for the hot path, one :class:`Plan` per (origin,
recipient, notice type) with its rules in evaluation order (policies/SEMANTICS.md): regional
withholds, the origin's withholds, the origin's shares, regional shares. Nothing here can fail on
a validated set; all the work of deciding is done once, here, instead of per notice.
"""

from __future__ import annotations

from typing import Any

from puente.policy.cel import Condition
from puente.policy.engine import NOTICE_TYPES, CompiledRule, Digests, Plan, PolicySet
from puente.policy.loader._validate import Validated
from puente.policy.model import Action


def plan(
    v: Validated,
    *,
    version: str,
    files: tuple[str, ...],
    warnings: tuple[str, ...],
    digests: Digests | None = None,
) -> PolicySet:
    """The policy set of ``v``, under ``version`` (the hash of ``files``), keeping ``warnings``."""
    plans: dict[tuple[str, str, str], Plan] = {}
    reg_withhold = [r for r in v.regional_rules if r.action is Action.WITHHOLD]
    reg_share = [r for r in v.regional_rules if r.action is not Action.WITHHOLD]
    member_groups = {
        code: tuple(g for g, ms in v.groups.items() if code in ms) for code in v.members
    }
    for origin in v.members:
        own = v.state_rules.get(origin, [])
        sequence = (
            reg_withhold
            + [r for r in own if r.action is Action.WITHHOLD]
            + [r for r in own if r.action is not Action.WITHHOLD]
            + reg_share
        )
        for recipient in v.members:
            for t in NOTICE_TYPES:
                rules = tuple(
                    r for r in sequence if t in r.conditions and recipient in r.recipients
                )
                plans[(origin, recipient, t)] = Plan(
                    rules=rules,
                    entries=tuple(
                        (r, _fn(r.conditions[t]), r.per_recipient[t], r.index) for r in rules
                    ),
                    acceptance=v.acceptances.get((recipient, t)),
                    recipient_groups=member_groups[recipient],
                    mandatory=v.mandatory.get(origin, ()),
                )
    all_rules: tuple[CompiledRule, ...] = tuple(v.regional_rules) + tuple(
        r for rs in v.state_rules.values() for r in rs
    )
    return PolicySet(
        version=version,
        members=v.members,
        groups=v.groups,
        plans=plans,
        floor=v.floor,
        protection_purposes=v.protection_purposes,
        rules=all_rules,
        files=files,
        warnings=warnings,
        digests=digests or Digests(b"", {}),
    )


def _fn(cond: Condition | None) -> Any:
    return None if cond is None else cond.fn
