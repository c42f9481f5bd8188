"""``puente audit``: export, verify and inspect the signed message log, and check one delivery —
an auditor's commands: they read keys they are given, and never create any."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from puente.app.commands._common import ANCHOR_HELP, TIME_HELP, duration_ms, err, out, time_ms
from puente.codec.registry import Registry, default_registry
from puente.config import get_settings, max_checkpoint_wait_s
from puente.errors import PuenteError
from puente.evidence._time import format_ms, now_ms
from puente.evidence.trust import TrustList
from puente.evidence.trustsource import read_anchor
from puente.topics import AUDIT, CHECKPOINTS, COSIGNATURES, EQUIVOCATIONS, TRUST, Naming

app = typer.Typer(help="Audit the signed message log.", no_args_is_help=True)
audit_app = app


def _naming() -> Naming:
    return Naming(get_settings().kafka.topic_prefix)


def _registry() -> Registry:
    return default_registry()


@audit_app.command()
def export(
    source: Annotated[str, typer.Argument(help="kafka:<bootstrap> (when wired) or an export file")],
    output: Annotated[Path, typer.Option("--out", "-o", help="the export file to write")],
) -> None:
    """Copy the trust, checkpoints, cosignatures, equivocations and audit topics into an export
    file (raw record bytes)."""
    from puente.evidence.audit.source import export as do_export
    from puente.evidence.audit.source import open_source

    src = open_source(source, _naming())
    with output.open("wb") as fh:
        n = do_export(src, fh, [TRUST, CHECKPOINTS, COSIGNATURES, EQUIVOCATIONS, AUDIT])
    out.print(f"{n} record(s) from {src.describe()} -> {output}")


@audit_app.command()
def verify(
    source: Annotated[str, typer.Argument(help="an export file (or a registered source)")],
    anchor: Annotated[list[str], typer.Option(help=ANCHOR_HELP)],
    trust_list: Annotated[
        Path | None, typer.Option(help="signed trust list (default: the export's)")
    ] = None,
    json_report: Annotated[
        Path | None, typer.Option("--json", help="write the JSON report here")
    ] = None,
    text_report: Annotated[
        Path | None, typer.Option("--text", help="write the text report here")
    ] = None,
    from_state: Annotated[
        Path | None, typer.Option(help="start each log from its checkpoint in this state file")
    ] = None,
    state_out: Annotated[
        Path | None, typer.Option(help="write the last verified checkpoint of each log here")
    ] = None,
    log: Annotated[
        list[str] | None, typer.Option("--log", help="only logs whose id starts with this")
    ] = None,
    now: Annotated[str | None, typer.Option(help=f"the audit's now ({TIME_HELP})")] = None,
    pending_bound: Annotated[
        str | None,
        typer.Option(
            help="how old records after a log's last checkpoint may be and still be PENDING "
            "(default: the writer's checkpoint interval plus its slack)"
        ),
    ] = None,
    quorum: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="distinct other states' witnesses whose cosignatures make a checkpoint final "
            "(default: PUENTE_WITNESS__QUORUM, else a majority of the other states the trust "
            "list names)",
        ),
    ] = None,
    require_witnessed: Annotated[
        bool,
        typer.Option(
            help="a checkpoint older than --witness-bound that no final checkpoint covers is "
            "an anomaly (CHECKPOINT_UNWITNESSED)"
        ),
    ] = False,
    witness_bound: Annotated[
        str, typer.Option(help="how long a checkpoint may wait for its quorum of witnesses")
    ] = "60s",
    progress: Annotated[bool, typer.Option(help="show progress on stderr")] = True,
) -> None:
    """Verify the audit logs and checkpoints, and how far the witnesses made them final. Exit
    0: VERIFIED (every record signed); 3: PENDING (no anomaly, but records younger than the
    bound await their checkpoint: audit again later); 1: ANOMALIES FOUND. Every anomaly is named
    with its position in the text report (stdout) and the JSON report."""
    from puente.evidence.audit.auditor import AuditOptions, Auditor
    from puente.evidence.audit.source import open_source

    registry = _registry()
    src = open_source(source, _naming())
    start, min_serial = _read_state(from_state, registry) if from_state else ({}, 0)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        disable=not progress,
        transient=True,
    ) as bar:
        task = bar.add_task("verifying", total=None)
        t0 = now_ms()

        def tick(records: int) -> None:
            rate = records * 1000 / max(now_ms() - t0, 1)
            bar.update(task, description=f"verifying: {records:,} records ({rate:,.0f}/s)")

        auditor = Auditor(
            registry=registry,
            anchors=read_anchor(anchor),
            trust_list=trust_list.read_bytes() if trust_list else None,
            options=AuditOptions(
                naming=_naming(),
                now=time_ms(now),
                logs=tuple(log or ()),
                start=start,
                min_trust_serial=min_serial,
                progress=tick,
                pending_bound_s=(
                    duration_ms(pending_bound) / 1000
                    if pending_bound
                    else max_checkpoint_wait_s(get_settings().policy.checkpoint_interval_s)
                ),
                quorum=quorum or get_settings().witness.quorum,
                require_witnessed=require_witnessed,
                witness_bound_s=duration_ms(witness_bound) / 1000,
            ),
        )
        report = auditor.run(src)
    text = report.to_text()
    sys.stdout.write(text)
    if text_report:
        text_report.write_text(text)
    if json_report:
        json_report.write_bytes(report.to_json())
    if state_out:
        _write_state(state_out, registry, auditor.verified, auditor.trust_serial)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def _read_state(path: Path, registry: Registry) -> tuple[dict[str, Any], int]:
    from puente.evidence.log import CheckpointRecord

    doc = orjson.loads(path.read_bytes())
    logs = {
        log_id: CheckpointRecord.decode(registry, base64.b64decode(item["checkpoint"]))
        for log_id, item in doc["logs"].items()
    }
    return logs, int(doc.get("trust_serial", 0))


def _write_state(
    path: Path, registry: Registry, verified: dict[str, Any], trust_serial: int
) -> None:
    doc = {
        "version": 1,
        "comment": "puente.Checkpoint records (single-object, base64) verified by the auditor, "
        "and the highest trust-list serial seen (a lower one later is a rollback)",
        "trust_serial": trust_serial,
        "logs": {
            log_id: {
                "size": rec.checkpoint.size,
                "checkpoint": base64.b64encode(rec.encode(registry)).decode(),
            }
            for log_id, rec in sorted(verified.items())
        },
    }
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")


@audit_app.command()
def dump(
    path: Annotated[Path, typer.Argument(help="an export file")],
    kind: Annotated[
        str, typer.Option(help="audit, checkpoints, cosignatures, equivocations or trust")
    ] = "audit",
    decode: Annotated[bool, typer.Option(help="decode the Avro records")] = True,
) -> None:
    """Print an export's records as JSON Lines (values base64, or decoded)."""
    from puente.codec.wire import decode as avro_decode
    from puente.evidence.audit.source import ExportFile

    kinds = {
        "audit": AUDIT,
        "checkpoints": CHECKPOINTS,
        "cosignatures": COSIGNATURES,
        "equivocations": EQUIVOCATIONS,
        "trust": TRUST,
    }
    if kind not in kinds:
        raise typer.BadParameter(f"kind is one of {', '.join(kinds)}")
    registry = _registry()
    for batch in ExportFile(path, naming=_naming()).batches(kinds[kind]):
        for offset, value in zip(batch.offsets, batch.values, strict=True):
            line: dict[str, Any] = {
                "topic": batch.topic,
                "partition": batch.partition,
                "offset": offset,
            }
            text = kind in ("trust", "cosignatures", "equivocations")  # signed notes, not Avro
            if value is not None and decode and not text:
                try:
                    line["record"] = avro_decode(registry, value)
                except PuenteError as exc:
                    line["error"] = exc.reason
            if value is not None and (not decode or "record" not in line):
                line["value"] = value.decode() if text else base64.b64encode(value).decode()
            sys.stdout.buffer.write(orjson.dumps(line, default=_jsonable) + b"\n")


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


@audit_app.command("delivery")
def check_delivery(
    path: Annotated[Path, typer.Argument(help="a delivery (puente.Delivery, single-object bytes)")],
    trust_list: Annotated[Path, typer.Option(help="the signed trust list")],
    anchor: Annotated[list[str], typer.Option(help=ANCHOR_HELP)],
    recipient: Annotated[
        str, typer.Option(help="the member state the delivery must be addressed to")
    ],
    explain: Annotated[
        Path | None, typer.Option(help="write the pieces for openssl to this directory")
    ] = None,
) -> None:
    """Verify one delivery offline; with --explain, write the exact signed bytes, signature and
    public key so that `openssl pkeyutl -verify` can check it too (docs/evidence.md)."""
    from puente.evidence.delivery import Delivery, SignatureProof
    from puente.evidence.verify import Verifier

    registry = _registry()
    tl = TrustList.open(trust_list.read_bytes(), read_anchor(anchor), now=now_ms())
    data = path.read_bytes()
    res = Verifier(trust_list=tl, registry=registry).verify_delivery(data, recipient=recipient)
    st = res.statement
    out.print(
        f"[green]VERIFIED[/green] ({res.mode}, key {', '.join(res.key_ids)}, "
        f"at {format_ms(res.time_ms)}): "
        f"notice {st.notice_id} {st.origin} -> {st.recipient}, {st.decision.action.value}, "
        f"{st.payload_schema}, digest {res.digest.hex()}"
    )
    if explain:
        explain.mkdir(parents=True, exist_ok=True)
        d = Delivery.decode(registry, data)
        (explain / "signed.bin").write_bytes(d.signed_bytes)
        (explain / "payload.bin").write_bytes(d.payload)
        if isinstance(d.proof, SignatureProof):
            (explain / "signature.bin").write_bytes(d.proof.signature)
            (explain / "pub.pem").write_bytes(tl.entry(d.proof.key_id).key.spki_pem())
        else:
            (explain / "batch.note").write_bytes(d.proof.batch_note)
            (explain / "inclusion.txt").write_text(
                f"leaf_index {d.proof.leaf_index}\n"
                + "".join(base64.b64encode(h).decode() + "\n" for h in d.proof.inclusion_path)
            )
        out.print(f"pieces for standard tools written to {explain}")
