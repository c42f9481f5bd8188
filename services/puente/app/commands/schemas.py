"""``puente schemas``: list, show and check the schemas in schemas/; sample and scenario notices
from the synthetic generator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Column, Table

from puente.codec.fingerprint import format_fingerprint
from puente.codec.registry import Registry, default_registry
from puente.synth.generator import Generator
from puente.synth.scenarios import SCENARIOS

app = typer.Typer(
    help="Avro schemas: list, show, check; sample and scenario notices.", no_args_is_help=True
)

DirOption = Annotated[
    Path | None, typer.Option("--dir", help="schemas directory (default: the configured one)")
]


def registry_for(directory: Path | None) -> Registry:
    """The schemas of ``directory``, or the configured ones."""
    return Registry.load(directory) if directory is not None else default_registry()


@app.command("list")
def list_schemas(directory: DirOption = None) -> None:
    """Every record schema, its versions and the latest fingerprint."""
    reg = registry_for(directory)
    # The record name is what `show` takes: on a narrow terminal the file path gives way, never it.
    record = Column("record", no_wrap=True, min_width=max(map(len, reg.names()), default=6))
    table = Table(record, "versions", "latest", "fingerprint (CRC-64-AVRO)", "file")
    for name in reg.names():
        versions = reg.versions(name)
        latest = versions[-1]
        table.add_row(
            name,
            ", ".join(f"v{v.version}" for v in versions),
            f"v{latest.version}",
            format_fingerprint(latest.fingerprint),
            str(latest.path),
        )
    Console().print(table)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="full or short record name")],
    version: Annotated[int | None, typer.Option(help="a version (default: latest)")] = None,
    canonical: Annotated[bool, typer.Option(help="print the Parsing Canonical Form")] = False,
    directory: DirOption = None,
) -> None:
    """Print a schema (JSON), or its Parsing Canonical Form."""
    reg = registry_for(directory)
    sv = reg.latest(name) if version is None else reg.get(name, version)
    if canonical:
        typer.echo(sv.canonical_form)
    else:
        typer.echo(json.dumps(sv.schema, indent=2, ensure_ascii=False))


@app.command()
def check(directory: DirOption = None) -> None:
    """Load every schema, require a doc on every field, and run the evolution gate (the latest
    version of each record against every earlier one, both directions, Apache avro's checker).
    Exits 1 on any finding."""
    from puente.codec.compat import check_registry, undocumented

    reg = registry_for(directory)
    findings: list[str] = []
    for sv in reg:
        findings += [f"{sv.path}: no doc: {p}" for p in undocumented(sv.schema)]
    findings += [str(i) for i in check_registry(reg)]
    for line in findings:
        typer.secho(line, fg=typer.colors.RED, err=True)
    count = len(reg)
    if findings:
        typer.secho(f"{len(findings)} problem(s) in {count} schema file(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"ok: {count} schema file(s) of {len(reg.names())} record(s)")


def emit_record(reg: Registry, name: str, record: dict[str, Any], as_hex: bool) -> None:
    """Print a record as indented JSON, or its single-object encoding in hex."""
    from puente.codec.jsonconv import to_json
    from puente.codec.wire import encode

    if as_hex:
        typer.echo(encode(reg, name, record).hex())
    else:
        typer.echo(orjson.dumps(to_json(reg, name, record), option=orjson.OPT_INDENT_2).decode())


@app.command()
def sample(
    name: Annotated[str, typer.Argument(help="full or short record name")],
    seed: Annotated[int, typer.Option(help="generator seed")] = 0,
    count: Annotated[int, typer.Option(min=1, help="how many records")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="JSON form (the default)")] = True,
    as_hex: Annotated[bool, typer.Option("--hex", help="single-object encoding, hex")] = False,
    directory: DirOption = None,
) -> None:
    """Invented records of a schema (deterministic by seed)."""
    reg = registry_for(directory)
    sv = reg.latest(name)
    gen = Generator(seed)
    for _ in range(count):
        emit_record(reg, sv.full_name, gen.sample(sv.full_name, sv.parsed), as_hex)


@app.command()
def scenario(
    name: Annotated[str | None, typer.Argument(help="scenario name; omit to list them")] = None,
    seed: Annotated[int, typer.Option(help="generator seed")] = 0,
    as_hex: Annotated[bool, typer.Option("--hex", help="single-object encoding, hex")] = False,
    directory: DirOption = None,
) -> None:
    """A named scenario notice (e.g. asylum-seeker-detention), or the list of scenarios."""
    if name is None:
        for s in SCENARIOS.values():
            typer.echo(f"{s.name}: {s.description.splitlines()[0]}")
        return
    if name not in SCENARIOS:
        typer.secho(f"no scenario {name!r}; known: {', '.join(SCENARIOS)}", err=True)
        raise typer.Exit(2)
    notice = Generator(seed).scenario(name)
    emit_record(registry_for(directory), notice.name, notice.record, as_hex)
