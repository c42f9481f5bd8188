"""The gateway's own settings: ``PUENTE_GATEWAY_*`` environment variables.

Everything shared with other Puente processes (Kafka, state directory, schemas, members) stays
in :class:`puente.config.Settings`; this model only holds what is particular to the HTTP front
door. Defaults suit one replica on the embedded broker. The gateway keeps nothing on a local
disk: its tokens and idempotency ledger live in Kafka (puente_gateway.shared).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

NOTICE_TYPES = ("puente.CaseNotice", "puente.ConsularNotification")


class GatewaySettings(BaseSettings):
    """Settings of the HTTP gateway (``PUENTE_GATEWAY_<FIELD>``)."""

    model_config = SettingsConfigDict(env_prefix="PUENTE_GATEWAY_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="address uvicorn binds")
    port: int = Field(default=8780, ge=0, le=65535)
    notice_types: tuple[str, ...] = Field(
        default=NOTICE_TYPES, description="record full names agencies may publish"
    )
    # Ingress topics take 1 MiB records; a notice is a few KiB. 256 KiB leaves room for the
    # largest real notice while bounding what one request can make the process hold.
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=1024 * 1024)
    # Before authentication nothing may be unbounded: the HTTP parser refuses a head (request
    # line and headers) over these sizes, or one not complete in time, before the app sees it.
    max_head_bytes: int = Field(
        default=16 * 1024, ge=1024, description="request line + headers (431 beyond)"
    )
    max_url_bytes: int = Field(default=8 * 1024, ge=256, description="request line (414 beyond)")
    head_timeout_s: float = Field(
        default=10.0, gt=0, description="time to send the request line and headers (408)"
    )
    body_timeout_s: float = Field(default=30.0, gt=0, description="time to send a body (408)")
    auth_fail_burst: int = Field(
        default=10, ge=1, description="failed authentications per client address before 429"
    )
    auth_fail_per_s: float = Field(
        default=0.2, gt=0, description="failed authentications per second an address regains"
    )
    auth_fail_addresses: int = Field(
        default=10_000, ge=1, description="client addresses the failure limiter remembers"
    )
    trusted_proxies: tuple[str, ...] = Field(
        default=(),
        description="addresses of reverse proxies whose X-Forwarded-For gives the client address",
    )
    rate_per_s: float = Field(default=20.0, gt=0, description="sustained requests/s per caller")
    rate_burst: int = Field(default=40, ge=1, description="bucket size per caller")
    produce_timeout_s: float = Field(default=10.0, gt=0)
    # aiokafka keeps one request in flight per partition (idempotence), so what a round trip
    # carries bounds throughput: 16 KiB (its default) is ~20 notices; 256 KiB stays well under
    # the topics' 1 MiB max.message.bytes.
    max_batch_bytes: int = Field(default=256 * 1024, ge=16 * 1024, le=1024 * 1024)
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After sent with 503")
    kafka_cooldown_s: float = Field(
        default=1.0, ge=0, description="after a failed connect, answer 503 without retrying"
    )
    ready_timeout_s: float = Field(default=3.0, gt=0, description="bound of /readyz's probe")
    idempotency_ttl_s: int = Field(
        default=7 * 24 * 3600, ge=60, description="how long a notice id is remembered"
    )
    ledger_max_entries: int = Field(
        default=250_000,
        ge=1000,
        description="first answers held in memory at most (about 800 bytes each)",
    )
    wait_max_s: float = Field(
        default=30.0, ge=0, le=30, description="longest long-poll a page request may get"
    )
    sse_heartbeat_s: float = Field(default=15.0, gt=0)
    sse_recheck_s: float = Field(
        default=30.0, gt=0, description="how often a stream re-checks its caller's credentials"
    )
    max_readers: int = Field(default=64, ge=1, description="concurrent Kafka readers (pages+SSE)")
    reader_reserve_per_state: int = Field(
        default=1, ge=0, description="readers only a state's pages may use"
    )
    max_streams_per_caller: int = Field(default=2, ge=1)
    max_streams_per_state: int = Field(default=4, ge=1)
    max_pages_per_caller: int = Field(default=2, ge=1, description="concurrent pages")
    max_pages_per_state: int = Field(default=4, ge=1, description="concurrent pages")
    max_page_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="record bytes per page (at least one record)"
    )
    reader_fetch_bytes: int = Field(
        default=1024 * 1024, ge=64 * 1024, description="most bytes one reader fetches at once"
    )
    max_idle_readers: int = Field(default=8, ge=0, description="started readers kept for reuse")
    reader_fetch_wait_ms: int = Field(
        default=100, ge=1, le=500, description="longest a reader's fetch waits at the broker"
    )
    state_sync_s: float = Field(
        default=1.0, gt=0, description="how often a replica confirms its shared state is current"
    )
    state_max_lag_s: float = Field(
        default=5.0,
        gt=0,
        description="longest a replica serves token callers without confirming its shared state "
        "(the bound on a revocation taking effect)",
    )
    mtls_clients: Path | None = Field(
        default=None, description="YAML file mapping client-certificate subjects to agencies"
    )
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = Field(default=None, description="CA bundle for client certs")
    client_cert: Literal["required", "optional"] = "required"
    client_crl: Path | None = Field(
        default=None, description="PEM revocation list(s) of the client CA; re-read when changed"
    )
    mtls_reload_s: float = Field(
        default=5.0, gt=0, description="how often the client map and CRL files are checked"
    )
    trust_list_file: Path | None = Field(
        default=None, description="signed trust list served when the trust topic has none"
    )
    trust_anchors_file: Path | None = Field(
        default=None,
        description="verifier keys (one per line) of the trust-list signers; enables receipt "
        "signature checks",
    )
    trust_refresh_s: float = Field(default=60.0, gt=0)
    require_signed_receipts: bool = False
