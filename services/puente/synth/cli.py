"""``puente schemas sample`` and ``puente schemas scenario``: invented records from the synthetic
generator, mounted under ``puente schemas`` by the command root (the codec below knows nothing of
the generator)."""

from __future__ import annotations

from typing import Annotated

import typer

from puente.codec.cli import DirOption, emit_record, registry_for
from puente.synth.generator import Generator
from puente.synth.scenarios import SCENARIOS


def register(app: typer.Typer) -> None:
    """Add ``sample`` and ``scenario`` to the ``schemas`` command group."""
    app.command()(sample)
    app.command()(scenario)


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
