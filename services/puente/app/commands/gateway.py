"""``puente gateway``: agency tokens and the server.

``token create --state MX --agency "..." [--types CaseNotice] [--expires-in-days 90]`` prints the
token once; only its SHA-256 is kept. ``token revoke ID``, ``token list``. Rotation: create a new
token, hand it over, revoke the old one. A state's token records live in its own
gateway-tokens topic that every replica of its gateway follows (puente_gateway.shared): the
commands connect to Kafka as that state's gateway principal (``<prefix>-gateway-cc``), with its
credential from the secrets directory — run them where the state's gateway runs. ``serve`` runs
the HTTP gateway (uvicorn, one worker), as the gateway principal of each state it serves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import typer

from puente.app.runtime import Runtime
from puente.codec.errors import SchemaError
from puente.codec.registry import Registry
from puente.config import get_settings
from puente.errors import PuenteError
from puente.members import load_members
from puente_gateway.broker import GatewayKafka
from puente_gateway.clock import iso_ms, now_ms
from puente_gateway.shared import SharedState
from puente_gateway.tokens import TokenError, TokenRecord, new_token, revoked

app = typer.Typer(
    help="The HTTP gateway for agencies: tokens and the server.", no_args_is_help=True
)
token_app = typer.Typer(help="Agency bearer tokens (stored hashed).", no_args_is_help=True)
app.add_typer(token_app, name="token")
DAY_MS = 24 * 3600 * 1000


T = TypeVar("T")


class TokensUnavailable(PuenteError):
    """The token topic could not be read to its end."""

    reason = "KAFKA_UNAVAILABLE"


def _with_tokens(
    work: Callable[[SharedState], Awaitable[T]], states: tuple[str, ...] | None = None
) -> T:
    """Run ``work`` on the token table of ``states`` (default: every state this gateway
    serves) read to its end, with a producer to change it, as each state's gateway."""
    runtime = Runtime.from_settings()
    states = states or runtime.gateway_states
    creds = {s: runtime.gateway_credential(s) for s in states}

    async def run() -> T:
        gw = runtime.settings.gateway
        kafka = GatewayKafka(runtime.settings, gw, creds)
        state = SharedState(
            kafka,
            ttl_s=gw.idempotency_ttl_s,
            max_lag_s=gw.state_max_lag_s,
            interval_s=gw.state_sync_s,
            tokens_only=True,
        )
        state.start()
        try:
            if not await state.loaded(timeout_s=gw.produce_timeout_s * 3):
                raise TokensUnavailable(
                    f"could not read {', '.join(state.tokens_topics.values())} to its end",
                    hint="check that Kafka runs and that each state's gateway credential is in "
                    "the secrets directory (puente kafka provision)",
                )
            return await work(state)
        finally:
            await state.stop()
            await kafka.close()

    return asyncio.run(run())


def _iso(ms: int | None) -> str:
    return "-" if ms is None else iso_ms(ms)


def _row(r: TokenRecord, now: int) -> dict[str, object]:
    return {
        "id": r.id,
        "state": r.state,
        "agency": r.agency,
        "types": list(r.types) or ["*"],
        "created": _iso(r.created_ms),
        "expires": _iso(r.expires_ms),
        "revoked": _iso(r.revoked_ms),
        "status": r.status(now),
    }


def _notice_types(names: list[str]) -> list[str]:
    settings = get_settings()
    allowed = get_settings().gateway.notice_types
    registry = Registry.load(settings.schemas_dir)
    out = []
    for item in names:
        for name in filter(None, (x.strip() for x in item.split(","))):
            try:
                full = registry.full_name(name)
            except SchemaError:
                full = ""
            if full not in allowed:
                raise typer.BadParameter(
                    f"{name!r} is not a notice type ({', '.join(allowed)})", param_hint="--types"
                )
            out.append(full)
    return out


@token_app.command("create")
def token_create(
    state: Annotated[str, typer.Option("--state", help="member state code, e.g. MX")],
    agency: Annotated[str, typer.Option("--agency", help="the agency's name")],
    types: Annotated[
        list[str] | None,
        typer.Option("--types", help="notice types it may publish (repeat or comma-separate)"),
    ] = None,
    expires_in_days: Annotated[
        int, typer.Option("--expires-in-days", min=0, help="0: never expires")
    ] = 90,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Create a token for an agency of a member state; the token is shown only now."""
    state = state.upper()
    if state not in load_members(get_settings().policies_dir).codes:
        raise typer.BadParameter(f"{state} is not a member state", param_hint="--state")
    served = get_settings().gateway.states
    if served and state not in served:
        raise typer.BadParameter(
            f"this gateway serves {', '.join(served)} (PUENTE_GATEWAY__STATES): a token of "
            f"{state} is created at {state}'s own gateway",
            param_hint="--state",
        )
    full_types = _notice_types(types or [])
    now = now_ms()
    expires = now + expires_in_days * DAY_MS if expires_in_days else None
    record, token = new_token(
        state=state, agency=agency, types=full_types, expires_ms=expires, now=now
    )

    async def publish(shared: SharedState) -> None:
        await shared.put_token(record)

    _with_tokens(publish, (state,))
    if as_json:
        typer.echo(json.dumps(_row(record, now) | {"token": token}))
        return
    typer.echo(f"token id  {record.id}")
    typer.echo(f"state     {record.state}")
    typer.echo(f"agency    {record.agency}")
    typer.echo(f"types     {', '.join(record.types) or 'every notice type'}")
    typer.echo(f"expires   {_iso(record.expires_ms)}")
    typer.echo("")
    typer.echo("Give this token to the agency now; it is not stored and cannot be shown again:")
    typer.echo(token)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(help="the token id")]) -> None:
    """Revoke a token (effective on every gateway replica within its state_max_lag_s, 5 s by
    default)."""

    async def revoke(shared: SharedState) -> TokenRecord:
        current = shared.tokens.get(token_id)
        if current is None:
            raise TokenError(f"no token with id {token_id}")
        record = revoked(current)
        if record is not current:
            await shared.put_token(record)
        return record

    record = _with_tokens(revoke)
    typer.echo(
        f"revoked {record.id} ({record.state}, {record.agency}) at {_iso(record.revoked_ms)}"
    )


@token_app.command("list")
def token_list(
    state: Annotated[str | None, typer.Option("--state", help="only this state's")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Every token's id, state, agency, types, times and status (never the token)."""

    async def listing(shared: SharedState) -> list[TokenRecord]:
        return shared.tokens.list(state=state.upper() if state else None)

    records = _with_tokens(listing, (state.upper(),) if state else None)
    now = now_ms()
    rows = [_row(r, now) for r in records]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    header = f"{'id':16}  {'state':5}  {'status':8}  {'expires':24}  {'types':30}  agency"
    typer.echo(header)
    for row in rows:
        types = ",".join(str(t).rpartition(".")[2] for t in row["types"])  # type: ignore[attr-defined]
        typer.echo(
            f"{row['id']:16}  {row['state']:5}  {row['status']:8}  {row['expires']!s:24}  "
            f"{types:30}  {row['agency']}"
        )


@app.command("serve")
def serve_command(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="server certificate (PEM)")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="server key (PEM)")] = None,
    client_ca: Annotated[
        Path | None, typer.Option(help="CA bundle for client certificates (enables mTLS)")
    ] = None,
    client_cert: Annotated[
        str | None, typer.Option(help="required | optional (with --client-ca)")
    ] = None,
    mtls_clients: Annotated[
        Path | None, typer.Option(help="YAML map of certificate subjects to agencies")
    ] = None,
    client_crl: Annotated[
        Path | None, typer.Option(help="PEM revocation list(s) of the client CA (re-read)")
    ] = None,
) -> None:
    """Run the gateway (one uvicorn worker) until interrupted."""
    from puente_gateway.server import serve

    updates: dict[str, object] = {
        "host": host,
        "port": port,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
        "tls_client_ca": client_ca,
        "mtls_clients": mtls_clients,
        "client_crl": client_crl,
    }
    if client_cert is not None:
        if client_cert not in ("required", "optional"):
            raise typer.BadParameter("required or optional", param_hint="--client-cert")
        mode: Literal["required", "optional"] = (
            "required" if client_cert == "required" else "optional"
        )
        updates["client_cert"] = mode
    given = {k: v for k, v in updates.items() if v is not None}
    runtime = Runtime.from_settings()
    gw = runtime.settings.gateway.model_copy(update=given)
    serve(runtime.settings, gw, credentials=runtime.gateway_credentials())
