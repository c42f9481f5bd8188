"""Load, validate and compile a policy directory into a :class:`~puente.policy.engine.PolicySet`.

Every problem is collected with its file and line before anything is refused, so one run of
``puente policy check`` lists them all. Errors refuse the set; warnings are kept on it. Whatever
the files hold, loading ends in a set or in a :class:`~puente.policy.errors.PolicyLoadError`:
a failure of the loader itself on some input becomes a problem of the file (and rule) being read,
never an exception that could stop the service reloading it.

Layout of a policy directory::

    members.yaml          the member list (read, owned by the exchange's operator)
    regional.yaml         groups, protection-floor citations, regional rules
    states/CC.yaml        one file per member state
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from puente.codec.registry import Registry
from puente.errors import PuenteError
from puente.members import MEMBERS_FILE, load_members
from puente.policy.cel import Condition, compile_condition
from puente.policy.engine import (
    NOTICE_TYPES,
    CompiledAcceptance,
    CompiledRule,
    FloorCitation,
    Plan,
    PolicySet,
)
from puente.policy.errors import CelCompileError, PolicyLoadError, Problem
from puente.policy.model import (
    ALL,
    Action,
    FloorProtection,
    RegionalFile,
    Rule,
    StateFile,
)
from puente.policy.transforms import TransformError, compile_transform, compile_transforms
from puente.policy.types import STRING, CelType, EnumT, ListT, RecordT, record_type
from puente.policy.yamlsrc import LList, LMap, YamlSourceError, line_of, load_yaml
from puente.resources import data_dir

REGIONAL_FILE = "regional.yaml"
STATES_DIR = "states"
STATE_SUFFIXES = (".yaml", ".yml")
CEL_VARIABLES = (
    "notice",
    "type",
    "origin",
    "recipient",
    "recipient_groups",
    "mandatory_notification",
)
_GROUP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{2,39}$")


def notice_schemas(schemas_dir: Path) -> dict[str, dict[str, Any]]:
    """The latest Avro schema (raw JSON) of each notice type the engine decides on, from the
    codec's registry: the one place the policy engine reads schemas."""
    registry = Registry.load(schemas_dir)
    return {t: dict(registry.latest(f"puente.{t}").schema) for t in NOTICE_TYPES}


def policy_version(files: Iterable[tuple[str, bytes]]) -> str:
    """The policy-set version: SHA-256 over every file's relative path and bytes, in path order."""
    h = hashlib.sha256(b"puente.policy-set.v1\n")
    for name, raw in sorted(files):
        h.update(name.encode() + b"\x00" + str(len(raw)).encode() + b"\x00" + raw)
    return "sha256:" + h.hexdigest()


def state_files(policies_dir: Path) -> list[Path]:
    """The state files of a policy directory (``states/*.yaml`` and ``states/*.yml``), sorted."""
    folder = policies_dir / STATES_DIR
    return sorted(p for p in folder.glob("*.y*ml") if p.suffix in STATE_SUFFIXES)


def current_version(policies_dir: Path) -> str | None:
    """The version the directory would load as, from its bytes alone (no parsing): what a
    running service compares before paying for a full load. None if a file is unreadable."""
    paths = [policies_dir / MEMBERS_FILE, policies_dir / REGIONAL_FILE]
    paths += state_files(policies_dir)
    try:
        return policy_version(
            (p.relative_to(policies_dir).as_posix(), p.read_bytes()) for p in paths
        )
    except OSError:
        return None


@dataclass
class _Source:
    name: str  # path relative to the policy root, as shown in problems
    data: Any
    model: BaseModel | None = None


@dataclass
class _Loader:
    root: Path
    schemas: dict[str, dict[str, Any]]
    problems: list[Problem] = field(default_factory=list)
    raw: list[tuple[str, bytes]] = field(default_factory=list)

    def error(self, file: str, line: int, code: str, message: str) -> None:
        self.problems.append(Problem(file, line, code, message))

    def warn(self, file: str, line: int, code: str, message: str) -> None:
        self.problems.append(Problem(file, line, code, message, "warning"))

    # -------------------------------------------------------------- reading

    def read(self, path: Path, model: type[BaseModel]) -> _Source | None:
        name = path.relative_to(self.root).as_posix()
        try:
            data, raw = load_yaml(path, name)
        except YamlSourceError as exc:
            self.problems.append(exc.problem)
            return None
        except OSError as exc:
            self.error(name, 1, "POLICY_FILE_UNREADABLE", str(exc))
            return None
        except UnicodeDecodeError as exc:
            self.error(name, 1, "POLICY_FILE_UNREADABLE", f"not UTF-8 text: {exc.reason}")
            return None
        except Exception as exc:  # e.g. a RecursionError on absurdly nested YAML
            self.error(name, 1, "POLICY_YAML_SYNTAX", f"unreadable YAML ({_what(exc)})")
            return None
        self.raw.append((name, raw))
        if not isinstance(data, LMap):
            self.error(name, 1, "POLICY_SHAPE", "the file must hold a mapping")
            return None
        try:
            return _Source(name, data, model.model_validate(data))
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(err["loc"])
                where = ".".join(str(p) for p in loc) or "(file)"
                self.error(name, line_of(data, loc), "POLICY_SHAPE", f"{where}: {err['msg']}")
            return None
        except Exception as exc:  # a validator's own failure on odd input
            self.error(name, 1, "POLICY_SHAPE", f"the file could not be validated ({_what(exc)})")
            return None

    # -------------------------------------------------------------- the whole set

    def load(self) -> PolicySet | None:
        try:
            members = load_members(self.root).codes
        except PuenteError as exc:
            self.error(MEMBERS_FILE, 1, exc.reason, exc.message)
            return None
        self.raw.append((MEMBERS_FILE, (self.root / MEMBERS_FILE).read_bytes()))
        member_set = frozenset(members)

        regional_path = self.root / REGIONAL_FILE
        if not regional_path.is_file():
            self.error(REGIONAL_FILE, 1, "POLICY_MISSING_FILE", "the regional file is missing")
            return None
        reg = self.read(regional_path, RegionalFile)

        states: dict[str, _Source] = {}
        paths = state_files(self.root)
        stems: dict[str, list[Path]] = {}
        for path in paths:
            stems.setdefault(path.stem, []).append(path)
        refused: set[str] = set()
        for stem, same in stems.items():
            if len(same) > 1:
                # CR.yml beside CR.yaml: which one is the state's law? Never guessed.
                names = " and ".join(f"{STATES_DIR}/{p.name}" for p in same)
                for path in same:
                    self.error(
                        f"{STATES_DIR}/{path.name}",
                        1,
                        "POLICY_AMBIGUOUS_FILE",
                        f"{names} are both the policy file of {stem}; keep exactly one",
                    )
                refused.add(stem)
        for path in paths:
            if path.stem in refused:
                continue
            src = self.read(path, StateFile)
            if src is None:
                continue
            sf = src.model
            assert isinstance(sf, StateFile)
            if sf.state != path.stem:
                self.error(
                    src.name,
                    _line(src.data, "state"),
                    "POLICY_STATE_MISMATCH",
                    f"file {path.name} declares state {sf.state}; name it {sf.state}.yaml",
                )
            elif sf.state not in member_set:
                self.error(
                    src.name,
                    _line(src.data, "state"),
                    "POLICY_UNKNOWN_STATE",
                    f"{sf.state} is not in {MEMBERS_FILE}",
                )
            else:
                states[sf.state] = src
        for code in members:
            if code not in states and not any(
                p.file in {f"{STATES_DIR}/{code}{s}" for s in STATE_SUFFIXES} for p in self.problems
            ):
                self.warn(
                    f"{STATES_DIR}/{code}.yaml",
                    1,
                    "POLICY_STATE_WITHOUT_FILE",
                    f"member {code} has no policy file: it shares nothing and accepts nothing",
                )
        if reg is None:
            return None
        regional = reg.model
        assert isinstance(regional, RegionalFile)

        groups = self.check_groups(reg, regional, member_set)
        purposes = self.enum_symbols("CaseNotice", "Purpose")
        handling_codes = self.enum_symbols("CaseNotice", "HandlingCode")
        for sym in regional.purposes.protection:
            if sym not in purposes:
                self.error(
                    reg.name,
                    _line(reg.data, "purposes"),
                    "POLICY_UNKNOWN_PURPOSE",
                    f"unknown purpose {sym!r}",
                )
        floor = self.check_floor(reg, regional)

        ctx = _RuleContext(members, groups, purposes, handling_codes, self.variables())
        seen_ids: dict[str, tuple[str, int]] = {
            f.id: (reg.name, _item_line(reg.data, "floor", i)) for i, f in enumerate(regional.floor)
        }
        regional_rules = self.compile_rules(reg, "regional", regional.rules, ctx, seen_ids)
        state_rules: dict[str, list[CompiledRule]] = {}
        acceptances: dict[tuple[str, str], CompiledAcceptance] = {}
        mandatory: dict[str, tuple[str, ...]] = {}
        for code, src in states.items():
            sf = src.model
            assert isinstance(sf, StateFile)
            if not sf.illustrative and not sf.legal_framework.strip():
                self.error(
                    src.name,
                    _line(src.data, "legal_framework"),
                    "POLICY_NO_LEGAL_BASIS",
                    "a non-illustrative state file must cite its legal framework",
                )
            state_rules[code] = self.compile_rules(src, code, sf.rules, ctx, seen_ids)
            mandatory[code] = sf.mandatory_consular_notification
            for i, m in enumerate(sf.mandatory_consular_notification):
                if not re.fullmatch(r"[A-Z]{2}", m):
                    self.error(
                        src.name,
                        _item_line(src.data, "mandatory_consular_notification", i),
                        "POLICY_UNKNOWN_STATE",
                        f"{m!r} is not an ISO 3166-1 alpha-2 code",
                    )
            for i, acc in enumerate(sf.accepts):
                line = _item_line(src.data, "accepts", i)
                if acc.id in seen_ids:
                    self.duplicate(src.name, line, acc.id, seen_ids)
                seen_ids[acc.id] = (src.name, line)
                if not acc.legal_basis.strip():
                    self.error(
                        src.name,
                        line,
                        "POLICY_NO_LEGAL_BASIS",
                        f"acceptance {acc.id} has no legal_basis",
                    )
                for p in acc.purposes:
                    if p not in purposes:
                        self.error(
                            src.name, line, "POLICY_UNKNOWN_PURPOSE", f"unknown purpose {p!r}"
                        )
                for t in acc.types:
                    if t not in NOTICE_TYPES:
                        self.error(
                            src.name, line, "POLICY_UNKNOWN_TYPE", f"unknown notice type {t!r}"
                        )
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

        self.check_shadowing(regional_rules, state_rules)
        if any(p.severity == "error" for p in self.problems):
            return None

        plans: dict[tuple[str, str, str], Plan] = {}
        reg_withhold = [r for r in regional_rules if r.action is Action.WITHHOLD]
        reg_share = [r for r in regional_rules if r.action is not Action.WITHHOLD]
        member_groups = {
            code: tuple(g for g, ms in groups.items() if code in ms) for code in members
        }
        for origin in members:
            own = state_rules.get(origin, [])
            sequence = (
                reg_withhold
                + [r for r in own if r.action is Action.WITHHOLD]
                + [r for r in own if r.action is not Action.WITHHOLD]
                + reg_share
            )
            for recipient in members:
                for t in NOTICE_TYPES:
                    rules = tuple(
                        r for r in sequence if t in r.conditions and recipient in r.recipients
                    )
                    plans[(origin, recipient, t)] = Plan(
                        rules=rules,
                        entries=tuple(
                            (
                                r,
                                _fn(r.conditions[t]),
                                r.per_recipient[t],
                                r.index,
                            )
                            for r in rules
                        ),
                        acceptance=acceptances.get((recipient, t)),
                        recipient_groups=member_groups[recipient],
                        mandatory=mandatory.get(origin, ()),
                    )
        all_rules = tuple(regional_rules) + tuple(r for rs in state_rules.values() for r in rs)
        return PolicySet(
            version=policy_version(self.raw),
            members=members,
            groups=groups,
            plans=plans,
            floor=floor,
            protection_purposes=frozenset(regional.purposes.protection),
            rules=all_rules,
            files=tuple(sorted(name for name, _ in self.raw)),
            warnings=tuple(str(p) for p in self.problems if p.severity == "warning"),
        )

    # -------------------------------------------------------------- pieces

    def variables(self) -> dict[str, dict[str, CelType]]:
        out: dict[str, dict[str, CelType]] = {}
        for t, schema in self.schemas.items():
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
        self, src: _Source, regional: RegionalFile, members: frozenset[str]
    ) -> dict[str, tuple[str, ...]]:
        groups: dict[str, tuple[str, ...]] = {}
        glines = src.data.get("groups")
        for name, g in regional.groups.items():
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

    def check_floor(
        self, src: _Source, regional: RegionalFile
    ) -> dict[FloorProtection, FloorCitation]:
        floor: dict[FloorProtection, FloorCitation] = {}
        for i, entry in enumerate(regional.floor):
            line = _item_line(src.data, "floor", i)
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
                    _line(src.data, "floor"),
                    "POLICY_FLOOR_INCOMPLETE",
                    f"the {p.value} floor must be declared (it cannot be switched off)",
                )
        return floor

    def duplicate(
        self, file: str, line: int, rule_id: str, seen: dict[str, tuple[str, int]]
    ) -> None:
        f, ln = seen[rule_id]
        self.error(file, line, "POLICY_DUPLICATE_ID", f"id {rule_id!r} is already used at {f}:{ln}")

    def compile_rules(
        self,
        src: _Source,
        scope: str,
        rules: tuple[Rule, ...],
        ctx: _RuleContext,
        seen: dict[str, tuple[str, int]],
    ) -> list[CompiledRule]:
        out: list[CompiledRule] = []
        raw_rules = src.data.get("rules")
        for i, rule in enumerate(rules):
            data = raw_rules[i] if isinstance(raw_rules, LList) else LMap()
            line = _item_line(src.data, "rules", i)
            try:
                compiled = self.compile_rule(src.name, line, data, scope, rule, ctx)
            except Exception as exc:  # a bug or a limit met on odd input
                self.error(
                    src.name,
                    line,
                    "POLICY_UNCOMPILABLE",
                    f"rule {rule.id} could not be compiled ({_what(exc)})",
                )
                compiled = None
            if rule.id in seen:
                self.duplicate(src.name, line, rule.id, seen)
            else:
                seen[rule.id] = (src.name, line)
            if compiled is not None:
                compiled.index = len(ctx.compiled)
                ctx.compiled.append(compiled)
                out.append(compiled)
        return out

    def compile_rule(
        self, file: str, line: int, data: Any, scope: str, rule: Rule, ctx: _RuleContext
    ) -> CompiledRule | None:
        ok = True

        def err(key: str, code: str, msg: str) -> None:
            nonlocal ok
            ok = False
            self.error(file, _line(data, key, line), code, f"rule {rule.id}: {msg}")

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
            self.warn(
                file,
                _line(data, "to", line),
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

        conditions: dict[str, Any] = {}
        per_recipient: dict[str, bool] = {}
        transforms: dict[str, Any] = {}
        for t in rule.types:
            if t not in NOTICE_TYPES:
                continue
            cond = None
            if rule.when is not None and rule.when.strip() not in ("", "true"):
                try:
                    cond = compile_condition(rule.when, ctx.variables[t], name=f"{file}:{rule.id}")
                except CelCompileError as exc:
                    where = _line(data, "when", line) + exc.line_offset
                    ok = False
                    self.error(file, where, exc.reason, f"rule {rule.id} ({t}): {exc.message}")
            conditions[t] = cond
            per_recipient[t] = cond is not None and bool(
                cond.used & {"recipient", "recipient_groups"}
            )
            compiled_tr = []
            for j, tr in enumerate(rule.transform):
                try:
                    apply = compile_transform(self.schemas[t], tr)
                except TransformError as exc:
                    ok = False
                    tl = (
                        data["transform"].item_lines[j]
                        if isinstance(data.get("transform"), LList)
                        else line
                    )
                    self.error(
                        file, tl, "POLICY_BAD_TRANSFORM", f"rule {rule.id} ({t}): {tr.field}: {exc}"
                    )
                    continue
                compiled_tr.append(apply)
            if compiled_tr and len(compiled_tr) == len(rule.transform):
                transforms[t] = compile_transforms(self.schemas[t], rule.transform)
        if not ok:
            return None
        return CompiledRule(
            index=-1,
            id=rule.id,
            scope=scope,
            file=file,
            line=line,
            action=rule.action,
            recipients=frozenset(recipients),
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


def _what(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _fn(cond: Condition | None) -> Any:
    return None if cond is None else cond.fn


def _covers(a: CompiledRule, b: CompiledRule) -> bool:
    if not (set(b.conditions) <= set(a.conditions) and b.recipients <= a.recipients):
        return False
    a_when = (a.when or "true").strip()
    b_when = (b.when or "true").strip()
    return a_when == "true" or a_when == b_when


@dataclass
class _RuleContext:
    members: tuple[str, ...]
    groups: dict[str, tuple[str, ...]]
    purposes: frozenset[str]
    handling_codes: frozenset[str]
    variables: dict[str, dict[str, CelType]]
    compiled: list[CompiledRule] = field(default_factory=list)


def _line(data: Any, key: str, default: int = 1) -> int:
    if isinstance(data, LMap):
        return data.value_lines.get(key, data.key_lines.get(key, data.line))
    return default


def _item_line(data: Any, key: str, i: int) -> int:
    seq = data.get(key) if isinstance(data, LMap) else None
    if isinstance(seq, LList) and i < len(seq.item_lines):
        return seq.item_lines[i]
    return _line(data, key)


def collect_problems(
    policies_dir: Path, schemas_dir: Path | None = None
) -> tuple[PolicySet | None, list[Problem]]:
    """Load ``policies_dir`` and return the set (None if refused) with every problem found."""
    schemas = notice_schemas(schemas_dir or data_dir("schemas"))
    loader = _Loader(policies_dir.resolve(), schemas)
    try:
        ps = loader.load()
    except Exception as exc:  # never crash on a policy directory; refuse it
        ps = None
        loader.error(".", 1, "POLICY_UNCOMPILABLE", f"the set could not be loaded ({_what(exc)})")
    return ps, loader.problems


def load_policy_set(policies_dir: Path, schemas_dir: Path | None = None) -> PolicySet:
    """Load, validate and compile a policy directory; :class:`PolicyLoadError` lists every error
    with file and line. Warnings are kept on ``PolicySet.warnings``."""
    ps, problems = collect_problems(policies_dir, schemas_dir)
    if ps is None:
        raise PolicyLoadError(problems, root=policies_dir)
    return ps
