"""``puente trust propose | sign | merge | publish``: a trust list changes only when a quorum of the
member states signs it (docs/evidence.md, "The trust list").

1. ``propose`` writes the next list's text: the list in force plus the change made in the key
   directory (``puente keys import | rotate | revoke``), under the next serial; it prints the
   change for the signers to review.
2. ``sign --as CC`` appends state CC's root signature (every root key of CC valid now in CC's
   key directory signs: during a rotation the old key satisfies the list in force, the new one
   the proposed list; one state counts once).
   States may also sign copies of the proposal each on its own (in parallel, offline);
   ``merge`` then makes one proposal carrying every copy's root signatures.
3. ``publish`` checks the proposal exactly as every verifier will (a quorum of the roots of the
   list in force, a quorum of its own, no lower serial) and only then writes it to the trust
   topic; short of quorum it says so and publishes nothing (exit 1).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from puente.app.commands._common import AnchorOpt, TrustListOpt, duration_ms, err, out
from puente.app.operator import publish_trust_list
from puente.app.runtime import Runtime
from puente.config import get_settings
from puente.evidence._time import now_ms
from puente.evidence.errors import SignatureError, TrustListError
from puente.evidence.keystore import TRUST_LIST_FILE, KeyStore, holder_for
from puente.evidence.note import Note
from puente.evidence.trust import TrustAnchor, TrustList, Usage, majority
from puente.evidence.trustchange import changes, merge, propose
from puente.evidence.trustissue import PROPOSAL_FILE, read_note

app = typer.Typer(
    help="Change the trust list: propose it, have k member states sign it, publish it.",
    no_args_is_help=True,
)

DirOpt = Annotated[
    Path | None, typer.Option("--dir", help="key directory (default: <state dir>/keys)")
]
InOpt = Annotated[
    Path | None, typer.Option("--in", help=f"the proposal (default: <dir>/{PROPOSAL_FILE})")
]


def _store(directory: Path | None) -> KeyStore:
    return KeyStore(directory or get_settings().keys_dir)


def _read_note(path: Path) -> Note:
    return read_note(path.read_bytes())


@app.command("propose")
def propose_cmd(
    quorum: Annotated[
        int | None,
        typer.Option(help="signatures the next lists need (default: the current list's)"),
    ] = None,
    expires_in: Annotated[str, typer.Option(help="validity of the list")] = "30d",
    current: Annotated[
        Path | None,
        typer.Option(help=f"the signed list in force (default: <dir>/{TRUST_LIST_FILE})"),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help=f"default: <dir>/{PROPOSAL_FILE}")
    ] = None,
    directory: DirOpt = None,
) -> None:
    """Write the next trust list (unsigned): the list in force plus the keys of the key
    directory, serial + 1. Then: `puente trust sign --as CC` by k member states."""
    store = _store(directory)
    cur = TrustList.from_text(_read_note(current or store.root / TRUST_LIST_FILE).text)
    now = now_ms()
    known = store.trust_list(serial=0, issued_at=now, expires_at=now + 1)
    nxt = propose(
        cur, known, issued_at=now, expires_at=now + duration_ms(expires_in), quorum=quorum
    )
    if nxt.quorum is None:  # from a single-root list: the members take over
        roots = len(nxt.roots(at=now))
        if not roots:
            raise TrustListError(
                "the proposed list names no root keys, so no member state could sign it",
                reason="TRUST_QUORUM_MISSING",
                hint="import each member's root key first: puente keys import <vkey> --for CC "
                "--usage trust-list",
            )
        nxt = propose(cur, known, issued_at=now, expires_at=nxt.expires_at, quorum=majority(roots))
    path = output or store.root / PROPOSAL_FILE
    path.write_text(nxt.text())
    for line in changes(cur, nxt) or ["(no key changed: a re-issue)"]:
        out.print(line, markup=False, highlight=False)
    out.print(
        f"trust list serial {nxt.serial} proposed -> {path}; it needs "
        f"{TrustAnchor.of(nxt).describe()} and {cur.quorum or 1} of the roots in force"
    )
    out.print(f"next: puente trust sign --as CC --in {path} (by each signing state)")


@app.command("sign")
def sign_cmd(
    member: Annotated[
        str,
        typer.Option(
            "--as",
            help="the signing member state (ISO code); `root`: a single-root deployment's "
            "operator root, for the transition list only",
        ),
    ],
    input_: InOpt = None,
    directory: DirOpt = None,
) -> None:
    """Append state CC's root signature to the proposal (in place), from CC's key directory."""
    store = _store(directory)
    path = input_ or store.root / PROPOSAL_FILE
    note = _read_note(path)
    TrustList.from_text(note.text)  # a malformed proposal is refused before it is signed
    holder, now = holder_for(member), now_ms()
    keys = store.private_keys(holder, usage=Usage.TRUST_LIST, at=now)
    if not keys:
        raise TrustListError(
            f"{store.root} holds no root key of {holder} valid now",
            reason="TRUST_ROOT_KEY_MISSING",
            hint=f"sign with {holder}'s own key directory (--dir)",
        )
    signed = [k for k in keys if not any(s.made_by(k.public) for s in note.signatures)]
    if not signed:
        err.print(f"{holder} has already signed {path}")
        raise typer.Exit(1)
    for key in signed:
        note = note.sign(key)
    path.write_bytes(note.to_bytes())
    out.print(f"signed by {holder} ({', '.join(k.key_id for k in signed)}) -> {path}")
    _say_signers(note)


@app.command("merge")
def merge_cmd(
    copies: Annotated[
        list[Path], typer.Argument(help="copies of one proposal, each signed by some states")
    ],
    output: Annotated[
        Path | None, typer.Option("--out", help=f"default: <dir>/{PROPOSAL_FILE}")
    ] = None,
    directory: DirOpt = None,
) -> None:
    """One proposal carrying the signatures of every copy (states that signed copies of the
    same proposal each on its own). Copies of different lists are refused, and so is a root's
    signature that does not verify; a signature by a key neither the list nor the key
    directory names as a root is kept, unchecked, and said so."""
    store = _store(directory)
    roots = [store.public(m) for m in store.key_metas() if Usage.TRUST_LIST in m.usages]
    merged = merge([_read_note(p) for p in copies], roots)
    path = output or store.root / PROPOSAL_FILE
    if not merged.note.signatures:
        raise TrustListError(
            "no copy carries a signature",
            reason="TRUST_QUORUM_MISSING",
            hint="puente trust sign --as CC --in <copy>",
        )
    path.write_bytes(merged.note.to_bytes())
    for sig in merged.unchecked:
        err.print(f"kept unchecked a signature by {sig.name}: no root key known here made it")
    out.print(f"{len(merged.note.signatures)} signatures from {len(copies)} copies -> {path}")
    _say_signers(merged.note)


def _say_signers(note: Note) -> None:
    """How many of the roots the proposal names have signed it (a list with a quorum)."""
    tl = TrustList.from_text(note.text)
    if tl.quorum is None:
        return
    own = TrustAnchor.of(tl)
    try:
        signers = own.signers(note.verify(e.key for e in own.roots), at=tl.issued_at)
    except SignatureError:  # only roots of the list in force signed so far
        signers = set()
    out.print(f"{len(signers)} of the {own.describe()} roots it names have signed")


@app.command("publish")
def publish_cmd(
    input_: InOpt = None,
    anchor: AnchorOpt = None,
    trust_list: TrustListOpt = None,
    directory: DirOpt = None,
) -> None:
    """Check the signed proposal as every verifier will, then write it to the trust topic (and
    the key directory's trust-list.note). Short of quorum: a clear error, nothing published."""
    runtime = Runtime.from_settings()
    store = _store(directory)
    path = input_ or store.root / PROPOSAL_FILE
    serial = asyncio.run(_publish(runtime, path.read_bytes(), anchor, trust_list))
    if store.root.is_dir():
        (store.root / TRUST_LIST_FILE).write_bytes(path.read_bytes())
    out.print(f"trust list serial {serial} published on the trust topic")


async def _publish(
    runtime: Runtime, data: bytes, anchor: list[str] | None, trust_file: Path | None
) -> int:
    cred = runtime.service_credential("operator")
    tracker, topic, fetches = runtime.trust_tracker(
        cred, anchors=runtime.anchors(anchor), trust_file=trust_file
    )
    async with topic:
        await tracker.refresh(fetches)  # the list in force judges the proposal
        try:
            tracker.offer(data)
        except TrustListError as exc:
            err.print(f"[red]not published ({exc.reason}):[/red] {exc.message}")
            raise typer.Exit(1) from None
        tl = tracker.current
        assert tl is not None
        await publish_trust_list(runtime.endpoint, cred, runtime.naming, data)
    return tl.serial
