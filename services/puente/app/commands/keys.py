"""``puente keys``: Ed25519 signing keys, X25519 encryption keys and the signed trust list — the
operator's commands (they create keys; no partner-side or auditor command does)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from puente.app.commands._common import ANCHOR_HELP, TIME_HELP, duration_ms, err, out, time_ms
from puente.config import get_settings
from puente.errors import PuenteError
from puente.evidence._time import format_ms, now_ms
from puente.evidence.enckeys import EncryptionPublicKey
from puente.evidence.keys import PublicKey, read_private_key
from puente.evidence.keystore import TRUST_LIST_FILE, KeyStore, holder_for
from puente.evidence.note import Note
from puente.evidence.trust import TrustAnchor, TrustList, Usage
from puente.evidence.trustsource import read_anchor

keys_app = typer.Typer(
    help="Ed25519 signing keys, X25519 encryption keys and the signed trust list.",
    no_args_is_help=True,
)
trust_app = typer.Typer(help="Build, sign and show the trust list.", no_args_is_help=True)
keys_app.add_typer(trust_app, name="trust-list")
app = keys_app


DirOpt = Annotated[
    Path | None, typer.Option("--dir", help="key directory (default: <state dir>/keys)")
]
TRUST_DRAFT_FILE = "trust-list.txt"
NEXT_LIST = (
    "next: puente trust propose, puente trust sign --as CC (by k member states), puente trust "
    "publish (a single-root deployment: puente keys trust-list build && ... sign --key <root>)"
)


def _store(directory: Path | None) -> KeyStore:
    return KeyStore(directory or get_settings().state_dir / "keys")


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
            holder_for(for_), valid_from=time_ms(valid_from), name=name
        )
        key_id, text, public = ekey.key_id, f"encryption {ekey.public.ekey}", "ekey"
    else:
        key, meta = store.generate(
            holder_for(for_), valid_from=time_ms(valid_from), usages=usages, name=name
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
            EncryptionPublicKey.from_ekey(text), holder_for(for_), valid_from=time_ms(valid_from)
        )
    else:
        meta = store.import_public(
            PublicKey.from_vkey(text),
            holder_for(for_),
            valid_from=time_ms(valid_from),
            usages=usages,
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
    holder, at, overlap_ms = holder_for(for_), now_ms(), duration_ms(overlap)
    if _is_encryption(usages):
        ekey, retired = store.rotate_encryption(holder, at=at, overlap_ms=overlap_ms)
        key_id = ekey.key_id
    else:
        key, retired = store.rotate(holder, at=at, overlap_ms=overlap_ms, usages=usages)
        key_id = key.key_id
    out.print(f"new key {key_id}; retiring {', '.join(m.key_id for m in retired) or 'none'}")
    out.print(NEXT_LIST)


@keys_app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="key id (a unique prefix is enough)")],
    since: Annotated[str | None, typer.Option(help=f"revoked from ({TIME_HELP})")] = None,
    directory: DirOpt = None,
) -> None:
    """Revoke a key from a time on (backdate it to the suspected compromise)."""
    meta = _store(directory).revoke(key_id, since=time_ms(since))
    out.print(f"revoked {meta.key_id} ({meta.holder}) since {format_ms(meta.revoked_since)}")
    out.print(NEXT_LIST)


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
        expires_at=now + duration_ms(expires_in),
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
    anchor: Annotated[list[str] | None, typer.Option(help=ANCHOR_HELP)] = None,
    directory: DirOpt = None,
) -> None:
    """Show a trust list; with --anchor, verify it (exit 1 if it does not verify)."""
    data = (path or _store(directory).root / TRUST_LIST_FILE).read_bytes()
    anchors = read_anchor(anchor) if anchor else TrustAnchor.from_keys([])
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
    if tl.quorum is not None:
        out.print(f"quorum: {TrustAnchor.of(tl).describe()}")
    if anchor:
        if tl.problems:
            err.print(f"[red]NOT VALID: {', '.join(tl.problems)}[/red]")
            raise typer.Exit(1)
        out.print(f"[green]valid: signed by {', '.join(tl.signed_by)}[/green]")


def _table(*columns: str) -> Table:
    table = Table()
    for i, col in enumerate(columns):
        table.add_column(col, no_wrap=i < 2, overflow="fold")
    return table
