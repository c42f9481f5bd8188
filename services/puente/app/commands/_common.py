"""What several command modules share: time and duration options, trust anchors, consoles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from puente.evidence._time import DAY_MS, now_ms, parse_time

err = Console(stderr=True)
out = Console()
TIME_HELP = "Unix ms or ISO 8601 (default: now)"

ANCHOR_HELP = (
    "trust anchor: the genesis trust list (a file, or sha256:<hex> of it: the list is then "
    "read from the trust topic), or in a single-root deployment the operator's root verifier "
    "key or a .vkey file (repeatable)"
)
# The trust options of partner-side commands (they follow the trust topic, then this file).
AnchorOpt = Annotated[
    list[str] | None,
    typer.Option(help=ANCHOR_HELP + "; default: the local key store's genesis list or root keys"),
]
TrustListOpt = Annotated[
    Path | None,
    typer.Option(help="a signed trust-list file, used when the trust topic has none"),
]


def time_ms(text: str | None) -> int:
    """A time given on the command line (default: now), as Unix ms."""
    return now_ms() if text is None else parse_time(text)


def duration_ms(text: str) -> int:
    """A duration like 90s, 10m, 1h, 30d, as ms."""
    units = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * units[unit]
    raise typer.BadParameter(f"{text!r}: a duration like 90s, 10m, 1h, 30d")
