"""Phase 2, validate: what the files say, checked against each other and against the schemas.

Groups, purposes and handling codes name what exists; the floor is complete; every rule and
acceptance cites a legal basis, names known recipients, types and purposes, and uses only the
fields its action allows; ids are unique across the set; no rule is shadowed by an earlier one.
A rule's condition and transformations are checked by compiling them against the Avro schema of
each notice type it covers (the CEL type checker is also its code generator), so the rules this
phase hands on are ready for the hot path. Every problem carries the file and line it is about.

A transformation is checked once per notice type and a list of them merged once, however many
rules repeat it (the shipped set repeats 12 distinct transformations 167 times).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from puente.policy.cel import Condition, compile_condition
from puente.policy.engine import (
    NOTICE_TYPES,
    CompiledAcceptance,
    CompiledRule,
    FloorCitation,
)
from puente.policy.errors import CelCompileError
from puente.policy.loader._problems import Problems, what
from puente.policy.loader._read import Source, Sources
from puente.policy.model import (
    ALL,
    Action,
    FloorProtection,
    RegionalFile,
    Rule,
    StateFile,
    Transform,
)
from puente.policy.transforms import (
    Apply,
    CheckedTransform,
    TransformError,
    check_transform,
    merge_transforms,
)
from puente.policy.types import STRING, CelType, EnumT, ListT, RecordT, record_type
from puente.policy.yamlsrc import LList, LMap, item_line, key_line

CEL_VARIABLES = (
    "notice",
    "type",
    "origin",
    "recipient",
    "recipient_groups",
    "mandatory_notification",
)
_GROUP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{2,39}$")


def cel_variables(schemas: dict[str, dict[str, Any]]) -> dict[str, dict[str, CelType]]:
    """The typed variables a condition sees, per notice type, in :data:`CEL_VARIABLES` order."""
    out: dict[str, dict[str, CelType]] = {}
    for t, schema in schemas.items():
        out[t] = {
            "notice": record_type(schema),
            "type": STRING,
            "origin": STRING,
            "recipient": STRING,
            "recipient_groups": ListT(STRING),
            "mandatory_notification": ListT(STRING),
        }
        assert tuple(out[t]) == CEL_VARIABLES
    return out


@dataclass(frozen=True, slots=True)
class Validated:
    """What the validate phase hands on to the plan: every part of the set, checked and compiled.
    Meaningful only when no error was found."""

    members: tuple[str, ...]
    groups: dict[str, tuple[str, ...]]
    floor: dict[FloorProtection, FloorCitation]
    protection_purposes: frozenset[str]
    regional_rules: list[CompiledRule]
    state_rules: dict[str, list[CompiledRule]]
    acceptances: dict[tuple[str, str], CompiledAcceptance]
    mandatory: dict[str, tuple[str, ...]]


def validate(sources: Sources, schemas: dict[str, dict[str, Any]], problems: Problems) -> Validated:
    """Check ``sources`` against each other and against the notice ``schemas``; every problem
    found is added to ``problems`` (the set is refused if one is an error)."""
    return _Validator(schemas, problems).run(sources)


@dataclass
class _RuleContext:
    members: tuple[str, ...]
    groups: dict[str, tuple[str, ...]]
    purposes: frozenset[str]
    handling_codes: frozenset[str]
    variables: dict[str, dict[str, CelType]]
    compiled: list[CompiledRule] = field(default_factory=list)
    seen: dict[str, tuple[str, int]] = field(default_factory=dict)  # id → where first used


class _Transforms:
    """Transformations checked and merged once per notice type, whichever rules repeat them."""

    def __init__(self, schemas: dict[str, dict[str, Any]]) -> None:
        self.schemas = schemas
        self._checked: dict[tuple[str, Transform], CheckedTransform | TransformError] = {}
        self._merged: dict[tuple[str, tuple[Transform, ...]], Apply] = {}

    def check(self, t: str, tr: Transform) -> CheckedTransform | TransformError:
        key = (t, tr)
        found = self._checked.get(key)
        if found is None:
            try:
                found = check_transform(self.schemas[t], tr)
            except TransformError as exc:
                found = exc
            self._checked[key] = found
        return found

    def merged(self, t: str, trs: tuple[Transform, ...], checked: list[CheckedTransform]) -> Apply:
        """The one applier of ``trs`` (whose checks are ``checked``), shared by every rule that
        lists the same transformations in the same order."""
        key = (t, trs)
        apply = self._merged.get(key)
        if apply is None:
            apply = self._merged[key] = merge_transforms(checked)
        return apply


class _Validator:
    def __init__(self, schemas: dict[str, dict[str, Any]], problems: Problems) -> None:
        self.schemas = schemas
        self.problems = problems
        self.transforms = _Transforms(schemas)

    def error(self, file: str, line: int, code: str, message: str) -> None:
        self.problems.error(file, line, code, message)

    def run(self, sources: Sources) -> Validated:
        reg = sources.regional
        regional = reg.model
        members = sources.members
        groups = self.check_groups(reg, frozenset(members))
        purposes = self.enum_symbols("CaseNotice", "Purpose")
        handling_codes = self.enum_symbols("CaseNotice", "HandlingCode")
        for sym in regional.purposes.protection:
            if sym not in purposes:
                self.error(
                    reg.name,
                    key_line(reg.data, "purposes"),
                    "POLICY_UNKNOWN_PURPOSE",
                    f"unknown purpose {sym!r}",
                )
        floor = self.check_floor(reg)

        ctx = _RuleContext(members, groups, purposes, handling_codes, cel_variables(self.schemas))
        ctx.seen.update(
            (f.id, (reg.name, item_line(reg.data, "floor", i)))
            for i, f in enumerate(regional.floor)
        )
        regional_rules = self.compile_rules(reg, "regional", regional.rules, ctx)
        state_rules: dict[str, list[CompiledRule]] = {}
        acceptances: dict[tuple[str, str], CompiledAcceptance] = {}
        mandatory: dict[str, tuple[str, ...]] = {}
        for code, src in sources.states.items():
            sf = src.model
            if not sf.illustrative and not sf.legal_framework.strip():
                self.error(
                    src.name,
                    key_line(src.data, "legal_framework"),
                    "POLICY_NO_LEGAL_BASIS",
                    "a non-illustrative state file must cite its legal framework",
                )
            state_rules[code] = self.compile_rules(src, code, sf.rules, ctx)
            mandatory[code] = sf.mandatory_consular_notification
            for i, m in enumerate(sf.mandatory_consular_notification):
                if not re.fullmatch(r"[A-Z]{2}", m):
                    self.error(
                        src.name,
                        item_line(src.data, "mandatory_consular_notification", i),
                        "POLICY_UNKNOWN_STATE",
                        f"{m!r} is not an ISO 3166-1 alpha-2 code",
                    )
            self.check_acceptances(code, src, ctx, acceptances)

        self.check_shadowing(regional_rules, state_rules)
        return Validated(
            members=members,
            groups=groups,
            floor=floor,
            protection_purposes=frozenset(regional.purposes.protection),
            regional_rules=regional_rules,
            state_rules=state_rules,
            acceptances=acceptances,
            mandatory=mandatory,
        )

    # -------------------------------------------------------------- the regional file

    def enum_symbols(self, t: str, name: str) -> frozenset[str]:
        rec = record_type(self.schemas[t])
        found: list[EnumT] = []

        def walk(x: Any, seen: set[int]) -> None:
            if id(x) in seen:
                return
            seen.add(id(x))
            if isinstance(x, EnumT) and x.name.rsplit(".", 1)[-1] == name:
                found.append(x)
            elif isinstance(x, RecordT):
                for v in x.fields.values():
                    walk(v, seen)
            elif isinstance(x, ListT):
                walk(x.elem, seen)
            elif hasattr(x, "inner"):
                walk(x.inner, seen)

        walk(rec, set())
        return frozenset(found[0].symbols) if found else frozenset()

    def check_groups(
        self, src: Source[RegionalFile], members: frozenset[str]
    ) -> dict[str, tuple[str, ...]]:
        groups: dict[str, tuple[str, ...]] = {}
        glines = src.data.get("groups")
        for name, g in src.model.groups.items():
            line = glines.key_lines.get(name, 1) if isinstance(glines, LMap) else 1
            if not _GROUP_NAME.match(name) or name == ALL or re.fullmatch(r"[A-Z]{2}", name):
                self.error(
                    src.name,
                    line,
                    "POLICY_BAD_GROUP_NAME",
                    f"group name {name!r} must be 3-40 letters/digits and not a state code or ALL",
                )
            for code in g.members:
                if code not in members:
                    self.error(
                        src.name,
                        line,
                        "POLICY_UNKNOWN_STATE",
                        f"group {name}: {code!r} is not a member state",
                    )
            groups[name] = tuple(c for c in g.members if c in members)
        return groups

    def check_floor(self, src: Source[RegionalFile]) -> dict[FloorProtection, FloorCitation]:
        floor: dict[FloorProtection, FloorCitation] = {}
        for i, entry in enumerate(src.model.floor):
            line = item_line(src.data, "floor", i)
            if entry.protects in floor:
                self.error(
                    src.name,
                    line,
                    "POLICY_DUPLICATE_FLOOR",
                    f"the {entry.protects.value} floor is declared twice",
                )
            if not entry.legal_basis.strip():
                self.error(
                    src.name,
                    line,
                    "POLICY_NO_LEGAL_BASIS",
                    f"floor entry {entry.id} has no legal_basis",
                )
            floor[entry.protects] = FloorCitation(entry.id, entry.legal_basis.strip())
        for p in FloorProtection:
            if p not in floor:
                self.error(
                    src.name,
                    key_line(src.data, "floor"),
                    "POLICY_FLOOR_INCOMPLETE",
                    f"the {p.value} floor must be declared (it cannot be switched off)",
                )
        return floor

    # -------------------------------------------------------------- a state file

    def check_acceptances(
        self,
        code: str,
        src: Source[StateFile],
        ctx: _RuleContext,
        acceptances: dict[tuple[str, str], CompiledAcceptance],
    ) -> None:
        for i, acc in enumerate(src.model.accepts):
            line = item_line(src.data, "accepts", i)
            if acc.id in ctx.seen:
                self.duplicate(src.name, line, acc.id, ctx.seen)
            ctx.seen[acc.id] = (src.name, line)
            if not acc.legal_basis.strip():
                self.error(
                    src.name,
                    line,
                    "POLICY_NO_LEGAL_BASIS",
                    f"acceptance {acc.id} has no legal_basis",
                )
            for p in acc.purposes:
                if p not in ctx.purposes:
                    self.error(src.name, line, "POLICY_UNKNOWN_PURPOSE", f"unknown purpose {p!r}")
            for t in acc.types:
                if t not in NOTICE_TYPES:
                    self.error(src.name, line, "POLICY_UNKNOWN_TYPE", f"unknown notice type {t!r}")
                elif (code, t) in acceptances:
                    self.error(
                        src.name,
                        line,
                        "POLICY_DUPLICATE_ACCEPTANCE",
                        f"{t} is already accepted by {acceptances[(code, t)].id}",
                    )
                else:
                    acceptances[(code, t)] = CompiledAcceptance(
                        acc.id,
                        code,
                        frozenset(acc.types),
                        frozenset(acc.purposes),
                        acc.legal_basis.strip(),
                    )

    def duplicate(
        self, file: str, line: int, rule_id: str, seen: dict[str, tuple[str, int]]
    ) -> None:
        f, ln = seen[rule_id]
        self.error(file, line, "POLICY_DUPLICATE_ID", f"id {rule_id!r} is already used at {f}:{ln}")

    # -------------------------------------------------------------- rules

    def compile_rules(
        self,
        src: Source[Any],
        scope: str,
        rules: tuple[Rule, ...],
        ctx: _RuleContext,
    ) -> list[CompiledRule]:
        out: list[CompiledRule] = []
        raw_rules = src.data.get("rules")
        for i, rule in enumerate(rules):
            data = raw_rules[i] if isinstance(raw_rules, LList) else LMap()
            line = item_line(src.data, "rules", i)
            try:
                compiled = self.compile_rule(src.name, line, data, scope, rule, ctx)
            except Exception as exc:  # a bug or a limit met on odd input
                self.error(
                    src.name,
                    line,
                    "POLICY_UNCOMPILABLE",
                    f"rule {rule.id} could not be compiled ({what(exc)})",
                )
                compiled = None
            if rule.id in ctx.seen:
                self.duplicate(src.name, line, rule.id, ctx.seen)
            else:
                ctx.seen[rule.id] = (src.name, line)
            if compiled is not None:
                compiled.index = len(ctx.compiled)
                ctx.compiled.append(compiled)
                out.append(compiled)
        return out

    def compile_rule(
        self, file: str, line: int, data: Any, scope: str, rule: Rule, ctx: _RuleContext
    ) -> CompiledRule | None:
        """The rule ready for the hot path, or None if it has a problem (each one said)."""
        ok, recipients, exceptions = self.check_rule(file, line, data, scope, rule, ctx)
        conditions: dict[str, Condition | None] = {}
        per_recipient: dict[str, bool] = {}
        transforms: dict[str, Apply] = {}
        for t in rule.types:
            if t not in NOTICE_TYPES:
                continue
            cond_ok, cond = self.compile_condition(file, line, data, rule, t, ctx)
            conditions[t] = cond
            per_recipient[t] = cond is not None and bool(
                cond.used & {"recipient", "recipient_groups"}
            )
            tr_ok, apply = self.compile_transforms(file, line, data, rule, t)
            if apply is not None:
                transforms[t] = apply
            ok = ok and cond_ok and tr_ok
        if not ok:
            return None
        return CompiledRule(
            index=-1,
            id=rule.id,
            scope=scope,
            file=file,
            line=line,
            action=rule.action,
            recipients=recipients,
            conditions=conditions,
            per_recipient=per_recipient,
            purposes=rule.purposes,
            handling=rule.handling,
            handling_conditions=rule.handling_conditions,
            retention_days=rule.retention_days,
            transforms=transforms,
            transform_labels=tuple(f"{tr.field}:{tr.op.value}" for tr in rule.transform),
            exceptions=exceptions,
            reason=rule.reason,
            legal_basis=rule.legal_basis.strip(),
            when=rule.when,
        )

    def check_rule(
        self, file: str, line: int, data: Any, scope: str, rule: Rule, ctx: _RuleContext
    ) -> tuple[bool, frozenset[str], dict[FloorProtection, str]]:
        """What the rule says, checked field by field: (no error, its recipients, its floor
        exceptions with their legal bases)."""
        ok = True

        def err(key: str, code: str, msg: str) -> None:
            nonlocal ok
            ok = False
            self.error(file, key_line(data, key, line), code, f"rule {rule.id}: {msg}")

        if not rule.legal_basis.strip():
            err("id", "POLICY_NO_LEGAL_BASIS", "no legal_basis (every rule must cite one)")
        for t in rule.types:
            if t not in NOTICE_TYPES:
                err(
                    "types",
                    "POLICY_UNKNOWN_TYPE",
                    f"unknown notice type {t!r} ({', '.join(NOTICE_TYPES)})",
                )
        recipients: set[str] = set()
        for target in rule.to:
            if target == ALL:
                recipients |= set(ctx.members)
            elif target in ctx.groups:
                recipients |= set(ctx.groups[target])
            elif target in ctx.members:
                recipients.add(target)
            else:
                err(
                    "to",
                    "POLICY_UNKNOWN_RECIPIENT",
                    f"{target!r} is neither a member state, a group nor ALL",
                )
        if scope != "regional" and scope in rule.to:
            self.problems.warn(
                file,
                key_line(data, "to", line),
                "POLICY_SELF_RECIPIENT",
                f"rule {rule.id}: the origin never receives its own notices",
            )
        share = rule.action is not Action.WITHHOLD
        if share:
            if not rule.purposes:
                err(
                    "action", "POLICY_SHARE_WITHOUT_PURPOSE", "a share rule must state its purposes"
                )
            if rule.handling is None:
                err(
                    "action",
                    "POLICY_SHARE_WITHOUT_HANDLING",
                    "a share rule must state a handling code",
                )
            if rule.retention_days is None:
                err(
                    "action",
                    "POLICY_SHARE_WITHOUT_RETENTION",
                    "a share rule must state retention_days",
                )
            if rule.reason is not None:
                err("reason", "POLICY_SHAPE", "reason is for withhold rules")
        else:
            for key, present in (
                ("purposes", rule.purposes),
                ("transform", rule.transform),
                ("handling", rule.handling),
                ("floor_exceptions", rule.floor_exceptions),
                ("retention_days", rule.retention_days),
            ):
                if present:
                    err(key, "POLICY_SHAPE", f"a withhold rule takes no {key}")
        if rule.action is Action.SHARE and rule.transform:
            err(
                "action", "POLICY_SHAPE", "a rule with transformations has action share_transformed"
            )
        if rule.action is Action.SHARE_TRANSFORMED and not rule.transform:
            err("action", "POLICY_SHAPE", "share_transformed needs at least one transformation")
        for p in rule.purposes:
            if p not in ctx.purposes:
                err("purposes", "POLICY_UNKNOWN_PURPOSE", f"unknown purpose {p!r}")
        if rule.handling is not None and rule.handling not in ctx.handling_codes:
            err("handling", "POLICY_UNKNOWN_HANDLING", f"unknown handling code {rule.handling!r}")
        exceptions: dict[FloorProtection, str] = {}
        for fe in rule.floor_exceptions:
            if fe.floor is FloorProtection.ASYLUM:
                err(
                    "floor_exceptions",
                    "POLICY_FLOOR_NOT_EXCEPTABLE",
                    "the asylum floor admits no exception",
                )
            elif not fe.legal_basis.strip():
                err(
                    "floor_exceptions",
                    "POLICY_NO_LEGAL_BASIS",
                    f"the exception to the {fe.floor.value} floor needs its own legal_basis",
                )
            else:
                exceptions[fe.floor] = fe.legal_basis.strip()
        return ok, frozenset(recipients), exceptions

    def compile_condition(
        self, file: str, line: int, data: Any, rule: Rule, t: str, ctx: _RuleContext
    ) -> tuple[bool, Condition | None]:
        """The rule's condition for notice type ``t``: (no error, the condition or None if the
        rule applies always)."""
        if rule.when is None or rule.when.strip() in ("", "true"):
            return True, None
        try:
            return True, compile_condition(rule.when, ctx.variables[t], name=f"{file}:{rule.id}")
        except CelCompileError as exc:
            where = key_line(data, "when", line) + exc.line_offset
            self.error(file, where, exc.reason, f"rule {rule.id} ({t}): {exc.message}")
            return False, None

    def compile_transforms(
        self, file: str, line: int, data: Any, rule: Rule, t: str
    ) -> tuple[bool, Apply | None]:
        """The rule's transformations for notice type ``t`` merged in one applier: (no error, the
        applier or None if there are none)."""
        checked: list[CheckedTransform] = []
        for j, tr in enumerate(rule.transform):
            result = self.transforms.check(t, tr)
            if isinstance(result, TransformError):
                tl = (
                    data["transform"].item_lines[j]
                    if isinstance(data.get("transform"), LList)
                    else line
                )
                self.error(
                    file, tl, "POLICY_BAD_TRANSFORM", f"rule {rule.id} ({t}): {tr.field}: {result}"
                )
                continue
            checked.append(result)
        if len(checked) < len(rule.transform):
            return False, None
        if not checked:
            return True, None
        return True, self.transforms.merged(t, rule.transform, checked)

    # -------------------------------------------------------------- the whole set

    def check_shadowing(
        self, regional: list[CompiledRule], states: dict[str, list[CompiledRule]]
    ) -> None:
        """A rule is shadowed when an earlier rule in its evaluation order matches every notice and
        recipient it could match: it can never fire, which is almost always a mistake."""
        reg_w = [r for r in regional if r.action is Action.WITHHOLD]
        reg_s = [r for r in regional if r.action is not Action.WITHHOLD]
        sequences = [reg_w + reg_s]
        for own in states.values():
            sequences.append(
                reg_w
                + [r for r in own if r.action is Action.WITHHOLD]
                + [r for r in own if r.action is not Action.WITHHOLD]
            )
        reported: set[int] = set()
        for seq in sequences:
            for j, later in enumerate(seq):
                if later.index in reported:
                    continue
                for earlier in seq[:j]:
                    if _covers(earlier, later):
                        reported.add(later.index)
                        self.error(
                            later.file,
                            later.line,
                            "POLICY_SHADOWED_RULE",
                            f"rule {later.id} can never fire: rule {earlier.id} "
                            f"({earlier.file}:{earlier.line}) comes first and matches "
                            "every notice and recipient it could",
                        )
                        break


def _covers(a: CompiledRule, b: CompiledRule) -> bool:
    if not (set(b.conditions) <= set(a.conditions) and b.recipients <= a.recipients):
        return False
    a_when = (a.when or "true").strip()
    b_when = (b.when or "true").strip()
    return a_when == "true" or a_when == b_when
