"""``puente policy``: check, explain, simulate, diff.

The JSON forms of ``simulate`` and ``diff`` are stable contracts, documented in
policies/SEMANTICS.md ("Command-line contracts").
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from puente.codec.registry import Registry
from puente.config import get_settings
from puente.policy.engine import NOTICE_TYPES, Decision, PolicySet
from puente.policy.explain import explain as explain_decision
from puente.policy.loader import collect_problems, load_policy_set
from puente.policy.notice_json import (
    NoticeJsonError,
    guess_type,
    payload_to_json,
    record_from_json,
)
from puente.policy.transforms import PseudonymKeys

app = typer.Typer(
    help="Data-sharing policies: check, explain, simulate, diff.", no_args_is_help=True
)

SECRET_ENV = "PUENTE_PSEUDONYM_SECRET"  # noqa: S105 - a variable name, not a secret
_DEMO_SECRET = b"puente-cli-demo-secret-not-for-deliveries"
SIMULATE_CONTRACT = "puente.policy.simulate/v1"
DIFF_CONTRACT = "puente.policy.diff/v1"

PoliciesOpt = Annotated[
    Path | None, typer.Option("--policies", help="policy directory (default: settings)")
]
SchemasOpt = Annotated[
    Path | None, typer.Option("--schemas", help="schema directory (default: settings)")
]
TypeOpt = Annotated[
    str | None,
    typer.Option("--type", help="CaseNotice or ConsularNotification (default: guessed)"),
]


def _dirs(policies: Path | None, schemas: Path | None) -> tuple[Path, Path]:
    settings = get_settings()
    return policies or settings.policies_dir, schemas or settings.schemas_dir


def _keys() -> PseudonymKeys:
    secret = os.environ.get(SECRET_ENV)
    # Without the service's secret, pseudonyms are computed under a fixed demo secret: the
    # structure is right, the values are not the ones partners receive.
    return PseudonymKeys(secret.encode() if secret else _DEMO_SECRET)


def _read_notices(path: Path, registry: Registry, notice_type: str | None) -> list[tuple[str, Any]]:
    """Notices from a JSON file (one object or an array) or JSON Lines; each item may be a bare
    notice or ``{"type": ..., "notice": {...}}``."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        items = [json.loads(line) for line in text.splitlines() if line.strip()]
    out: list[tuple[str, Any]] = []
    for item in items:
        if isinstance(item, dict) and "notice" in item and isinstance(item["notice"], dict):
            t = str(item.get("type") or notice_type or guess_type(item["notice"]))
            body = item["notice"]
        else:
            t = notice_type or guess_type(item)
            body = item
        t = t.removeprefix("puente.")
        if t not in NOTICE_TYPES:
            raise NoticeJsonError(f"unknown notice type {t!r}")
        out.append((t, record_from_json(registry, t, body)))
    return out


def decision_json(d: Decision, registry: Registry) -> dict[str, Any]:
    """The stable JSON form of one decision (contract ``puente.policy.simulate/v1``)."""
    out = d.summary()
    out["payload"] = payload_to_json(registry, d.notice_type, d.payload)
    return out


@app.command()
def check(policies: PoliciesOpt = None, schemas: SchemasOpt = None) -> None:
    """Validate every policy file; list each problem with file and line. Exit 1 on errors."""
    from puente.warnings.loader import collect_trigger_problems  # triggers.yaml, places.yaml

    pdir, sdir = _dirs(policies, schemas)
    ps, problems = collect_problems(pdir, sdir)
    ts, trigger_problems = collect_trigger_problems(pdir, sdir)
    problems += trigger_problems
    console = Console(stderr=False, highlight=False)
    for p in problems:
        colour = "red" if p.severity == "error" else "yellow"
        console.print(f"[{colour}]{p}[/{colour}]", soft_wrap=True)
    if ps is None or ts is None:
        errors = sum(1 for p in problems if p.severity == "error")
        console.print(f"[red]policy set refused: {errors} error(s)[/red]")
        raise typer.Exit(1)
    console.print(
        f"ok: {len(ps.files)} files, {len(ps.rules)} rules, {len(ps.members)} members, "
        f"version {ps.version}"
    )
    if ts.triggers:
        console.print(f"ok: {len(ts.triggers)} early-warning triggers, version {ts.version}")


@app.command()
def explain(
    notice: Annotated[Path, typer.Argument(help="NOTICE.json")],
    to: Annotated[str, typer.Option("--to", help="recipient state code")],
    notice_type: TypeOpt = None,
    policies: PoliciesOpt = None,
    schemas: SchemasOpt = None,
    show_payload: Annotated[bool, typer.Option("--payload", help="print the payload")] = False,
) -> None:
    """Which rules fired and why this recipient gets what it gets."""
    pdir, sdir = _dirs(policies, schemas)
    ps = load_policy_set(pdir, sdir)
    registry = Registry.load(sdir)
    [(t, record)] = _read_notices(notice, registry, notice_type)[:1]
    ex = explain_decision(ps, record, t, to.upper(), _keys())
    console = Console(highlight=False)
    d = ex.decision
    console.print(f"{t} {d.notice_id} from {d.origin} to {d.recipient} (policy {ps.version})")
    for i, step in enumerate(ex.steps, 1):
        console.print(f"{i:2}. {step.what}: [bold]{step.outcome}[/bold]", soft_wrap=True)
        if step.detail:
            console.print(f"      {step.detail}", soft_wrap=True)
    if d.legal_bases:
        console.print("legal bases:")
        for basis in d.legal_bases:
            console.print(f"  - {basis}", soft_wrap=True)
    if show_payload and d.payload is not None:
        console.print_json(json.dumps(payload_to_json(registry, t, d.payload)))


@app.command()
def simulate(
    notice: Annotated[Path, typer.Argument(help="NOTICE.json")],
    as_json: Annotated[bool, typer.Option("--json", help="the stable JSON contract")] = False,
    notice_type: TypeOpt = None,
    policies: PoliciesOpt = None,
    schemas: SchemasOpt = None,
) -> None:
    """Every member's decision for one notice."""
    pdir, sdir = _dirs(policies, schemas)
    ps = load_policy_set(pdir, sdir)
    registry = Registry.load(sdir)
    [(t, record)] = _read_notices(notice, registry, notice_type)[:1]
    decisions = ps.decide_all(record, t, _keys())
    warnings = ps.floor_warnings(record, t)
    if as_json:
        doc = {
            "contract": SIMULATE_CONTRACT,
            "policy_version": ps.version,
            "notice_type": t,
            "notice_id": str(record.get("notice_id")),
            "origin": record.get("origin"),
            "decisions": [decision_json(d, registry) for d in decisions],
            "warnings": [
                {"code": w.code, "fields": list(w.fields), "message": w.message} for w in warnings
            ],
        }
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{t} {record.get('notice_id')} from {record.get('origin')}")
    for col in ("to", "action", "rules", "purposes", "handling", "retention", "reasons"):
        table.add_column(col, overflow="fold")
    for d in decisions:
        table.add_row(
            d.recipient,
            d.action,
            "\n".join(d.rules),
            ", ".join(d.purposes),
            d.handling or "",
            str(d.retention_days or ""),
            ", ".join(d.reasons),
        )
    Console(width=max(Console().width, 140)).print(table)
    for w in warnings:
        typer.echo(f"warning to the origin: [{w.code}] {w.message}")
    typer.echo(f"policy version {ps.version}")


def _compare(old: Decision, new: Decision) -> str | None:
    if old.shared != new.shared:
        return "gains" if new.shared else "loses"
    keys = (
        "action",
        "purposes",
        "handling",
        "retention_days",
        "transforms",
        "removed_persons",
        "person_reasons",
    )
    if any(getattr(old, k) != getattr(new, k) for k in keys):
        return "changes"
    return None


def _brief(d: Decision) -> dict[str, Any]:
    return {
        "action": d.action,
        "rules": list(d.rules),
        "purposes": list(d.purposes),
        "handling": d.handling,
        "retention_days": d.retention_days,
        "transforms": list(d.transforms),
        "removed_persons": list(d.removed_persons),
        "person_reasons": {ref: list(codes) for ref, codes in d.person_reasons},
        "reasons": list(d.reasons),
    }


def diff_sets(
    old: PolicySet, new: PolicySet, notices: list[tuple[str, Any]], keys: PseudonymKeys
) -> dict[str, Any]:
    """Which recipients gain, lose or get something different under ``new`` (contract
    ``puente.policy.diff/v1``)."""
    changes: list[dict[str, Any]] = []
    summary = {"gains": 0, "loses": 0, "changes": 0}
    for t, record in notices:
        before = {d.recipient: d for d in old.decide_all(record, t, keys)}
        after = {d.recipient: d for d in new.decide_all(record, t, keys)}
        for recipient in sorted(set(before) | set(after)):
            b, a = before.get(recipient), after.get(recipient)
            if b is None or a is None:
                kind = "gains" if b is None else "loses"
            else:
                found = _compare(b, a)
                if found is None:
                    continue
                kind = found
            summary[kind] += 1
            changes.append(
                {
                    "notice_id": str(record.get("notice_id")),
                    "notice_type": t,
                    "recipient": recipient,
                    "change": kind,
                    "old": _brief(b) if b else None,
                    "new": _brief(a) if a else None,
                }
            )
    return {
        "contract": DIFF_CONTRACT,
        "old_version": old.version,
        "new_version": new.version,
        "notices": len(notices),
        "summary": summary,
        "changes": changes,
    }


@app.command()
def diff(
    old_dir: Annotated[Path, typer.Argument(help="the current policy directory")],
    new_dir: Annotated[Path, typer.Argument(help="the proposed policy directory")],
    notices: Annotated[Path, typer.Option("--notices", help="JSON or JSON Lines of notices")],
    as_json: Annotated[bool, typer.Option("--json", help="the stable JSON contract")] = False,
    schemas: SchemasOpt = None,
) -> None:
    """Which recipients would gain or lose what under a proposed change, over a file of notices."""
    _, sdir = _dirs(None, schemas)
    old = load_policy_set(old_dir, sdir)
    new = load_policy_set(new_dir, sdir)
    doc = diff_sets(old, new, _read_notices(notices, Registry.load(sdir), None), _keys())
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    console = Console(highlight=False)
    s = doc["summary"]
    console.print(
        f"{doc['notices']} notices: {s['gains']} gains, {s['loses']} losses, "
        f"{s['changes']} changes ({old.version[:19]} → {new.version[:19]})"
    )
    for c in doc["changes"]:
        o, n = c["old"], c["new"]
        console.print(
            f"  {c['notice_id'][:8]} {c['notice_type']:<20} {c['recipient']} {c['change']:<7} "
            f"{o['action'] if o else '-'} → {n['action'] if n else '-'}"
            f"  [{', '.join(n['rules']) if n else ''}]",
            soft_wrap=True,
        )
