"""``puente publish --as CC``: an agency of state CC publishes notices, each sealed to CC's node.

Input: JSON Lines, one notice per line in its JSON form (as ``puente schemas sample --json``
prints it), from a file or standard input; ``--type`` names the notice type. Each notice is
encoded, sealed to the current encryption key of ``node:CC`` in the trust list (followed from
the trust topic, then a file), and produced to ``ingress.CC`` as CC's principal, keyed by its
notice id. A line that is not a valid notice is reported with its line number and field paths
and nothing of it is published; the others are.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, TextIO

import orjson
import typer

from puente.app.runtime import Runtime
from puente.codec.jsonconv import from_json
from puente.codec.wire import encode
from puente.errors import ConfigError, PuenteError
from puente.evidence.trust import TrustAnchor
from puente.notices import NOTICE_TYPES
from puente.publisher.core import Publisher


def publish(
    member: Annotated[str, typer.Option("--as", help="the publishing member state (ISO code)")],
    notice_type: Annotated[
        str, typer.Option("--type", help="CaseNotice or ConsularNotification")
    ] = "CaseNotice",
    file: Annotated[
        Path | None, typer.Option("--file", help="JSON Lines of notices (default: stdin)")
    ] = None,
    anchor: Annotated[
        list[str] | None,
        typer.Option(help="trust anchor (a vkey or a .vkey file; default: the local key store's)"),
    ] = None,
    trust_list: Annotated[
        Path | None,
        typer.Option(help="a signed trust-list file, used when the trust topic has none"),
    ] = None,
) -> None:
    """Seal each notice to the state's own node and publish it to the state's ingress topic;
    print one JSON line per notice (its id and where it landed, or why it was refused)."""
    member = member.upper()
    name = notice_type if notice_type.startswith("puente.") else f"puente.{notice_type}"
    if name not in NOTICE_TYPES:
        raise typer.BadParameter(f"one of {', '.join(NOTICE_TYPES)}", param_hint="--type")
    runtime = Runtime.from_settings()
    try:
        anchors = runtime.anchors(anchor)
    except ConfigError as exc:
        raise typer.BadParameter(exc.message, param_hint="--anchor") from None
    source: TextIO = file.open(encoding="utf-8") if file else sys.stdin
    try:
        failed = asyncio.run(_run(runtime, member, name, anchors, trust_list, source))
    finally:
        if file:
            source.close()
    if failed:
        raise typer.Exit(1)


async def _run(
    runtime: Runtime,
    member: str,
    name: str,
    anchors: TrustAnchor,
    trust_file: Path | None,
    source: TextIO,
) -> int:
    cred = runtime.member_credential(member)
    tracker, topic, fetches = runtime.trust_tracker(cred, anchors=anchors, trust_file=trust_file)
    failed = 0
    async with topic:
        await tracker.refresh(fetches)
        async with Publisher(
            endpoint=runtime.endpoint,
            credential=cred,
            naming=runtime.naming,
            member=member,
            registry=runtime.registry,
            trust=tracker,
        ) as publisher:
            for line_no, line in enumerate(source, 1):
                if not line.strip():
                    continue
                try:
                    record = from_json(runtime.registry, name, orjson.loads(line))
                    partition, offset = await publisher.publish(
                        encode(runtime.registry, name, record)
                    )
                    out = {"line": line_no, "notice_id": record["notice_id"]}
                    out |= {"partition": partition, "offset": offset}
                except (PuenteError, orjson.JSONDecodeError) as exc:
                    failed += 1
                    reason = getattr(exc, "reason", "INVALID_JSON")
                    out = {"line": line_no, "error": reason, "message": str(exc)}
                sys.stdout.write(orjson.dumps(out).decode() + "\n")
    return failed
