"""``puente keys`` (Ed25519 signing keys, X25519 encryption keys, the signed trust list) and
``puente audit`` (export, verify, inspect)."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from puente.codec.registry import Registry, default_registry
from puente.config import get_settings, max_checkpoint_wait_s
from puente.errors import PuenteError
from puente.evidence._time import DAY_MS, format_ms, now_ms, parse_time
from puente.evidence.enckeys import EncryptionPublicKey
from puente.evidence.keys import PublicKey, read_private_key
from puente.evidence.keystore import KeyStore, holder_for
from puente.evidence.note import Note
from puente.evidence.trust import TrustList, Usage
from puente.topics import AUDIT, CHECKPOINTS, TRUST, Naming

keys_app = typer.Typer(
    help="Ed25519 signing keys, X25519 encryption keys and the signed trust list.",
    no_args_is_help=True,
)
audit_app = typer.Typer(help="Audit the signed message log.", no_args_is_help=True)
trust_app = typer.Typer(help="Build, sign and show the trust list.", no_args_is_help=True)
keys_app.add_typer(trust_app, name="trust-list")

err = Console(stderr=True)
out = Console()

DirOpt = Annotated[
    Path | None, typer.Option("--dir", help="key directory (default: <state dir>/keys)")
]
TIME_HELP = "Unix ms or ISO 8601 (default: now)"
TRUST_LIST_FILE = "trust-list.note"
TRUST_DRAFT_FILE = "trust-list.txt"


def _store(directory: Path | None) -> KeyStore:
    return KeyStore(directory or get_settings().state_dir / "keys")


def _time(text: str | None) -> int:
    return now_ms() if text is None else parse_time(text)


def _usages(values: list[str] | None) -> list[Usage] | None:
    if not values:
        return None
    try:
        return [Usage(v) for part in values for v in part.split(",")]
    except ValueError as exc:
        raise typer.BadParameter(f"{exc}; usages: {', '.join(u.value for u in Usage)}") from None


def _is_encryption(usages: list[Usage] | None) -> bool:
    """``--usage encryption``: an X25519 key, which has that usage alone."""
    if not usages or Usage.ENCRYPTION not in usages:
        return False
    if usages != [Usage.ENCRYPTION]:
        raise typer.BadParameter("an encryption key has usage encryption alone")
    return True


def _floor(text: str) -> bytes:
    try:
        digest = bytes.fromhex(text)
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise typer.BadParameter(f"{text!r}: the floor's SHA-256, 64 hex digits")
    return digest


def _duration_ms(text: str) -> int:
    units = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * units[unit]
    raise typer.BadParameter(f"{text!r}: a duration like 90s, 10m, 1h, 30d")


# --- puente keys ----------------------------------------------------------------------------


@keys_app.command()
def generate(
    for_: Annotated[
        str, typer.Option("--for", help="service, service:<role>, a member code, or root")
    ],
    usage: Annotated[list[str] | None, typer.Option(help="usages (default by holder)")] = None,
    name: Annotated[str | None, typer.Option(help="key name (default by holder)")] = None,
    valid_from: Annotated[str | None, typer.Option(help=TIME_HELP)] = None,
    directory: DirOpt = None,
) -> None:
    """Generate an Ed25519 signing key, or with --usage encryption an X25519 encryption key
    (members and nodes): private part 0600 in the key directory, never printed."""
    store = _store(directory)
    usages = _usages(usage)
    if _is_encryption(usages):
        ekey, meta = store.generate_encryption(
            holder_for(for_), valid_from=_time(valid_from), name=name
        )
        key_id, text, public = ekey.key_id, f"encryption {ekey.public.ekey}", "ekey"
    else:
        key, meta = store.generate(
            holder_for(for_), valid_from=_time(valid_from), usages=usages, name=name
        )
        key_id, text, public = key.key_id, f"verifier {key.public.vkey}", "vkey"
    out.print(f"key id   {key_id}  ({meta.holder}; {', '.join(meta.usages)})")
    out.print(text)
    stem = f"{store.root}/{meta.holder.replace(':', '-')}-{key_id}"
    out.print(f"files    {stem}.{{skey,{public},pem,json}}")


@keys_app.command("import")
def import_key(
    vkey: Annotated[
        str, typer.Argument(help="a verifier key or .vkey file (an .ekey with --usage encryption)")
    ],
    for_: Annotated[str, typer.Option("--for", help="the holder: a member code, service:<role>")],
    usage: Annotated[list[str] | None, typer.Option(help="usages (default by holder)")] = None,
    valid_from: Annotated[str | None, typer.Option(help=TIME_HELP)] = None,
    directory: DirOpt = None,
) -> None:
    """Record a key whose private part its holder keeps (a member state's receipt key, or
    with --usage encryption the encryption key deliveries to it are sealed to)."""
    text = Path(vkey).read_text() if Path(vkey).is_file() else vkey
    usages = _usages(usage)
    store = _store(directory)
    if _is_encryption(usages):
        meta = store.import_encryption(
            EncryptionPublicKey.from_ekey(text), holder_for(for_), valid_from=_time(valid_from)
        )
    else:
        meta = store.import_public(
            PublicKey.from_vkey(text), holder_for(for_), valid_from=_time(valid_from), usages=usages
        )
    out.print(f"imported {meta.key_id} for {meta.holder}")


@keys_app.command("list")
def list_keys(directory: DirOpt = None) -> None:
    """Every key in the key directory and its validity."""
    store = _store(directory)
    table = _table(
        "key id", "holder", "usages", "valid from", "valid until", "revoked since", "private"
    )
    for m in store.key_metas():
        private = store.root / f"{m.holder.replace(':', '-')}-{m.key_id}.skey"
        table.add_row(
            m.key_id,
            m.holder,
            ",".join(m.usages),
            format_ms(m.valid_from),
            format_ms(m.valid_until),
            format_ms(m.revoked_since),
            "yes" if private.exists() else "-",
        )
    out.print(table)


@keys_app.command()
def rotate(
    for_: Annotated[str, typer.Option("--for", help="service, a member code, ...")],
    overlap: Annotated[str, typer.Option(help="how long the old key stays valid")] = "1h",
    usage: Annotated[
        list[str] | None, typer.Option(help="usages of the new key; 'encryption' rotates those")
    ] = None,
    directory: DirOpt = None,
) -> None:
    """A new key for the holder; its current keys (signing keys, or with --usage encryption
    its encryption keys) stay valid for the overlap, then end. Rebuild and sign the trust list
    afterwards. Rotated encryption keys keep their private parts: what was sealed to them
    stays readable."""
    store = _store(directory)
    usages = _usages(usage)
    holder, at, overlap_ms = holder_for(for_), now_ms(), _duration_ms(overlap)
    if _is_encryption(usages):
        ekey, retired = store.rotate_encryption(holder, at=at, overlap_ms=overlap_ms)
        key_id = ekey.key_id
    else:
        key, retired = store.rotate(holder, at=at, overlap_ms=overlap_ms, usages=usages)
        key_id = key.key_id
    out.print(f"new key {key_id}; retiring {', '.join(m.key_id for m in retired) or 'none'}")
    out.print("next: puente keys trust-list build && puente keys trust-list sign --key <root.skey>")


@keys_app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="key id (a unique prefix is enough)")],
    since: Annotated[str | None, typer.Option(help=f"revoked from ({TIME_HELP})")] = None,
    directory: DirOpt = None,
) -> None:
    """Revoke a key from a time on (backdate it to the suspected compromise)."""
    meta = _store(directory).revoke(key_id, since=_time(since))
    out.print(f"revoked {meta.key_id} ({meta.holder}) since {format_ms(meta.revoked_since)}")
    out.print("next: puente keys trust-list build && puente keys trust-list sign --key <root.skey>")


@trust_app.command("build")
def trust_build(
    expires_in: Annotated[str, typer.Option(help="validity of the list")] = "30d",
    serial: Annotated[int | None, typer.Option(help="default: the signed list's + 1")] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help=f"default: <dir>/{TRUST_DRAFT_FILE}")
    ] = None,
    floor: Annotated[
        str | None,
        typer.Option(help="hex SHA-256 of the regional floor to pin (default: the signed list's)"),
    ] = None,
    directory: DirOpt = None,
) -> None:
    """Write the unsigned trust list of every key in the directory (then: sign)."""
    store = _store(directory)
    signed = store.root / TRUST_LIST_FILE
    previous = (
        TrustList.from_text(Note.parse(signed.read_bytes()).text) if signed.exists() else None
    )
    if serial is None:
        serial = previous.serial + 1 if previous else 1
    pinned = previous.floor_digest if previous else None
    if floor is not None:
        pinned = _floor(floor)
    now = now_ms()
    tl = store.trust_list(
        serial=serial,
        issued_at=now,
        expires_at=now + _duration_ms(expires_in),
        floor_digest=pinned,
    )
    path = output or store.root / TRUST_DRAFT_FILE
    path.write_text(tl.text())
    out.print(
        f"trust list serial {serial}: {len(tl.entries)} signing key(s), "
        f"{len(tl.encryption_entries)} encryption key(s), "
        f"expires {format_ms(tl.expires_at)} -> {path}"
    )


@trust_app.command("sign")
def trust_sign(
    key: Annotated[Path, typer.Option(help="the operator's .skey file")],
    input_: Annotated[
        Path | None, typer.Option("--in", help="draft or signed list (cosign)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help=f"default: <dir>/{TRUST_LIST_FILE}")
    ] = None,
    directory: DirOpt = None,
) -> None:
    """Sign the draft trust list (or add a signature to a signed one)."""
    store = _store(directory)
    src = input_ or store.root / TRUST_DRAFT_FILE
    data = src.read_bytes()
    signer = read_private_key(key)
    try:
        signed = TrustList.cosign(data, signer)
    except PuenteError:
        signed = TrustList.from_text(data.decode()).sign(signer)
    path = output or store.root / TRUST_LIST_FILE
    path.write_bytes(signed)
    out.print(f"signed by {signer.key_id} -> {path}")
    out.print(f"anchor (give it to every participant): {signer.public.vkey}")


@trust_app.command("show")
def trust_show(
    path: Annotated[Path | None, typer.Argument(help=f"default: <dir>/{TRUST_LIST_FILE}")] = None,
    anchor: Annotated[
        list[str] | None, typer.Option(help="trust anchor vkey or .vkey file")
    ] = None,
    directory: DirOpt = None,
) -> None:
    """Show a trust list; with --anchor, verify it (exit 1 if it does not verify)."""
    data = (path or _store(directory).root / TRUST_LIST_FILE).read_bytes()
    anchors = [_vkey(a) for a in anchor or []]
    tl = TrustList.open(data, anchors, now=now_ms(), strict=False)
    table = _table(
        "key id", "name", "holder", "usages", "valid from", "valid until", "revoked since"
    )
    for e in tl.entries:
        table.add_row(
            e.key_id,
            e.key.name,
            e.holder,
            ",".join(sorted(u.value for u in e.usages)),
            format_ms(e.valid_from),
            format_ms(e.valid_until),
            format_ms(e.revoked_since),
        )
    for x in tl.encryption_entries:
        table.add_row(
            x.key_id,
            x.key.name,
            x.holder,
            Usage.ENCRYPTION.value,
            format_ms(x.valid_from),
            format_ms(x.valid_until),
            format_ms(x.revoked_since),
        )
    out.print(
        f"trust list serial {tl.serial}, issued {format_ms(tl.issued_at)}, "
        f"expires {format_ms(tl.expires_at)}"
    )
    if tl.floor_digest is not None:
        out.print(f"regional floor pinned: {tl.floor_digest.hex()}")
    out.print(table)
    if anchors:
        if tl.problems:
            err.print(f"[red]NOT VALID: {', '.join(tl.problems)}[/red]")
            raise typer.Exit(1)
        out.print(f"[green]valid: signed by {', '.join(tl.signed_by)}[/green]")


def _table(*columns: str) -> Table:
    table = Table()
    for i, col in enumerate(columns):
        table.add_column(col, no_wrap=i < 2, overflow="fold")
    return table


def _vkey(spec: str) -> PublicKey:
    p = Path(spec)
    return PublicKey.from_vkey(p.read_text() if p.is_file() else spec)


# --- puente audit ---------------------------------------------------------------------------


def _naming() -> Naming:
    return Naming(get_settings().kafka.topic_prefix)


def _registry() -> Registry:
    return default_registry()


@audit_app.command()
def export(
    source: Annotated[str, typer.Argument(help="kafka:<bootstrap> (when wired) or an export file")],
    output: Annotated[Path, typer.Option("--out", "-o", help="the export file to write")],
) -> None:
    """Copy the trust, checkpoints and audit topics into an export file (raw record bytes)."""
    from puente.evidence.audit.source import export as do_export
    from puente.evidence.audit.source import open_source

    src = open_source(source, _naming())
    with output.open("wb") as fh:
        n = do_export(src, fh, [TRUST, CHECKPOINTS, AUDIT])
    out.print(f"{n} record(s) from {src.describe()} -> {output}")


@audit_app.command()
def verify(
    source: Annotated[str, typer.Argument(help="an export file (or a registered source)")],
    anchor: Annotated[list[str], typer.Option(help="trust anchor vkey or .vkey file (repeatable)")],
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
    progress: Annotated[bool, typer.Option(help="show progress on stderr")] = True,
) -> None:
    """Verify the audit logs and checkpoints. Exit 0: VERIFIED (every record signed); 3:
    PENDING (no anomaly, but records younger than the bound await their checkpoint: audit
    again later); 1: ANOMALIES FOUND. Every anomaly is named with its position in the text
    report (stdout) and the JSON report."""
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
            anchors=[_vkey(a) for a in anchor],
            trust_list=trust_list.read_bytes() if trust_list else None,
            options=AuditOptions(
                naming=_naming(),
                now=_time(now),
                logs=tuple(log or ()),
                start=start,
                min_trust_serial=min_serial,
                progress=tick,
                pending_bound_s=(
                    _duration_ms(pending_bound) / 1000
                    if pending_bound
                    else max_checkpoint_wait_s(get_settings().policy.checkpoint_interval_s)
                ),
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
    kind: Annotated[str, typer.Option(help="audit, checkpoints or trust")] = "audit",
    decode: Annotated[bool, typer.Option(help="decode the Avro records")] = True,
) -> None:
    """Print an export's records as JSON Lines (values base64, or decoded)."""
    from puente.codec.wire import decode as avro_decode
    from puente.evidence.audit.source import ExportFile

    kinds = {"audit": AUDIT, "checkpoints": CHECKPOINTS, "trust": TRUST}
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
            if value is not None and decode and kind != "trust":
                try:
                    line["record"] = avro_decode(registry, value)
                except PuenteError as exc:
                    line["error"] = exc.reason
            if value is not None and (not decode or "record" not in line):
                line["value"] = (
                    value.decode() if kind == "trust" else base64.b64encode(value).decode()
                )
            sys.stdout.buffer.write(orjson.dumps(line, default=_jsonable) + b"\n")


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


@audit_app.command("delivery")
def check_delivery(
    path: Annotated[Path, typer.Argument(help="a delivery (puente.Delivery, single-object bytes)")],
    trust_list: Annotated[Path, typer.Option(help="the signed trust list")],
    anchor: Annotated[list[str], typer.Option(help="trust anchor vkey or .vkey file")],
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
    tl = TrustList.open(trust_list.read_bytes(), [_vkey(a) for a in anchor], now=now_ms())
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
