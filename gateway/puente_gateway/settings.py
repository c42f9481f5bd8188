"""The gateway's own settings: ``PUENTE_GATEWAY_*`` environment variables.

Everything shared with other Puente processes (Kafka, state directory, schemas, members) stays
in :class:`puente.config.Settings`; this model only holds what is particular to the HTTP front
door. Defaults suit one replica on the embedded broker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from puente.config import Settings

NOTICE_TYPES = ("puente.CaseNotice", "puente.ConsularNotification")


class GatewaySettings(BaseSettings):
    """Settings of the HTTP gateway (``PUENTE_GATEWAY_<FIELD>``)."""

    model_config = SettingsConfigDict(env_prefix="PUENTE_GATEWAY_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="address uvicorn binds")
    port: int = Field(default=8780, ge=0, le=65535)
    data_dir: Path | None = Field(
        default=None, description="token and notice ledgers (default: <state_dir>/gateway)"
    )
    notice_types: tuple[str, ...] = Field(
        default=NOTICE_TYPES, description="record full names agencies may publish"
    )
    # Ingress topics take 1 MiB records; a notice is a few KiB. 256 KiB leaves room for the
    # largest real notice while bounding what one request can make the process hold.
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=1024 * 1024)
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
    wait_max_s: float = Field(
        default=30.0, ge=0, le=30, description="longest long-poll a page request may get"
    )
    sse_heartbeat_s: float = Field(default=15.0, gt=0)
    sse_recheck_s: float = Field(
        default=30.0, gt=0, description="how often a stream re-checks its caller's credentials"
    )
    max_readers: int = Field(default=64, ge=1, description="concurrent Kafka readers (pages+SSE)")
    auth_cache_s: float = Field(
        default=2.0, ge=0, description="how long a token lookup is reused (revocation delay)"
    )
    mtls_clients: Path | None = Field(
        default=None, description="YAML file mapping client-certificate subjects to agencies"
    )
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = Field(default=None, description="CA bundle for client certs")
    client_cert: Literal["required", "optional"] = "required"
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

    def ledger_dir(self, settings: Settings) -> Path:
        """Where the token and notice ledgers live."""
        return self.data_dir if self.data_dir is not None else settings.state_dir / "gateway"
