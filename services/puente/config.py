"""Shared settings: one pydantic model, read from ``PUENTE_*`` environment variables and an
optional TOML file (``PUENTE_CONFIG=path``). Environment variables win over the file.

Nested fields use a double underscore: ``PUENTE_KAFKA__BOOTSTRAP=127.0.0.1:9092``; the most common
ones also have short aliases (``PUENTE_KAFKA_BOOTSTRAP``, ``PUENTE_KAFKA_USERNAME``,
``PUENTE_KAFKA_PASSWORD``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from puente.notices import NOTICE_TYPES
from puente.resources import data_dir, project_root


def _default_state_dir() -> Path:
    root = project_root()
    return (root if root is not None else Path.cwd()) / ".state"


def _default_cache_dir() -> Path:
    root = project_root()
    return (root if root is not None else Path.home()) / ".cache"


class KafkaSettings(BaseModel):
    """How to reach Kafka. When ``bootstrap`` is unset, the local broker in the state
    directory (``puente kafka up``) is used."""

    bootstrap: str | None = Field(default=None, description="host:port[,host:port...]")
    security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL", "PLAINTEXT", "SSL"] = "SASL_PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    username: str | None = Field(default=None, description="admin principal for provisioning")
    password: SecretStr | None = None
    ssl_cafile: Path | None = None
    topic_prefix: str = Field(default="puente", pattern=r"^[a-z][a-z0-9-]{0,30}$")
    version: str = Field(default="4.1.1", description="Apache Kafka version of the local broker")
    request_timeout_s: float = Field(default=15.0, gt=0)


class LocalBrokerSettings(BaseModel):
    """The embedded broker started from Maven Central jars."""

    client_port: int = Field(default=19092, ge=1024, le=65535)
    heap_mb: int = Field(default=512, ge=128)
    start_timeout_s: float = Field(default=60.0, gt=0)
    partitions: int = Field(default=4, ge=1)


CHECKPOINT_INTERVAL_S = 5.0
"""How long an audit record may wait for a signed checkpoint while its log's writer runs."""
CHECKPOINT_EVERY = 1000
"""Audit records after which a log is checkpointed at once, whatever the interval."""
CHECKPOINT_SLACK_S = 2.0
"""What the writer may add to the interval: one turn of its loop (a poll of at most 0.2 s and
the batch in hand). A record is covered within ``interval + slack`` while its writer runs; the
auditor reports a younger tail as PENDING, an older one as UNCHECKPOINTED_TAIL."""


def max_checkpoint_wait_s(interval_s: float = CHECKPOINT_INTERVAL_S) -> float:
    """The longest a record waits for its checkpoint while its writer runs."""
    return interval_s + CHECKPOINT_SLACK_S


class PolicyServiceSettings(BaseModel):
    """How a node processes (``puente serve node``): batching, signing, checkpoints."""

    signing_mode: Literal["batch", "each"] = Field(
        default="batch", description="one Ed25519 signature per batch, or per delivery"
    )
    max_batch: int = Field(default=500, ge=1, description="records per partition per transaction")
    checkpoint_every: int = Field(
        default=CHECKPOINT_EVERY, ge=1, description="audit records per checkpoint"
    )
    checkpoint_interval_s: float = Field(
        default=CHECKPOINT_INTERVAL_S,
        gt=0,
        description="longest wait of an audit record for its checkpoint (plus a slack of "
        f"{CHECKPOINT_SLACK_S:g} s), even when no input arrives",
    )
    reload_interval_s: float = Field(default=2.0, gt=0, description="policy-set change check")
    metrics_port: int = Field(default=9464, ge=0, description="Prometheus port; 0 = off")
    metrics_host: str = Field(
        default="127.0.0.1",
        description="address the metrics endpoint binds (0.0.0.0 in a container, so that probes "
        "and Prometheus reach it)",
    )
    max_notice_bytes: int = Field(default=256 * 1024, ge=1024)
    keys_dir: Path | None = Field(
        default=None,
        description="the node's key store: its node:CC signing and encryption keys (private "
        "parts 0600), provisioned by its state; unset: the embedded default's <state>/keys",
    )
    seal: bool = Field(
        default=True,
        description="seal deliveries to their recipients (off only to measure what sealing costs)",
    )
    trust_refresh_s: float = Field(default=10.0, gt=0, description="trust-list refresh period")


class GatewaySettings(BaseModel):
    """Settings of the HTTP gateway (``PUENTE_GATEWAY__<FIELD>``, ``[gateway]`` in the TOML file).

    Everything shared with other Puente processes (Kafka, state directory, schemas, members)
    stays in :class:`Settings`; this model holds what is particular to the HTTP front door.
    Defaults suit one replica on the embedded broker. The gateway keeps nothing on a local disk:
    its tokens and idempotency ledger live in Kafka (puente_gateway.shared).
    """

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
    # An idle connection is closed after this long. A client that sends its next request on a
    # connection just as the server closes it gets a read error, not an answer: the server must
    # keep idle connections longer than clients do (httpx 5 s, Node 4 s, aiohttp 15 s), which
    # uvicorn's 5 s did not.
    keep_alive_s: int = Field(
        default=20, ge=1, description="how long an idle connection stays open between requests"
    )
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
        description="the genesis trust list (the signed note; or sha256:<hex> of it, the list "
        "then read from the trust topic), or in a single-root deployment the operator root's "
        "verifier keys (one per line); enables receipt signature checks",
    )
    trust_refresh_s: float = Field(default=60.0, gt=0)
    require_signed_receipts: bool = False
    states: tuple[str, ...] = Field(
        default=(),
        description='the member states this gateway is the edge of (JSON list, e.g. ["MX"]); '
        "callers of other states are refused (403 STATE_NOT_SERVED); empty: every member state "
        "(the embedded default)",
    )
    keys_dir: Path | None = Field(
        default=None,
        description="the key store holding the member:CC encryption keys (private parts 0600) "
        "of the states it serves, to open their deliveries; unset: the embedded default's "
        "<state>/keys",
    )
    keys_reload_s: float = Field(
        default=5.0,
        gt=0,
        description="how often the key store is checked, and read again if it changed (a "
        "rotated key opens after this)",
    )


class WarningsSettings(BaseModel):
    """The early-warning evaluator (``puente serve warnings``, docs/early-warning.md). Each
    state's node signs its own aggregates with its node key (``PUENTE_POLICY__KEYS_DIR``)."""

    keys_dir: Path | None = Field(
        default=None,
        description="the evaluator's key store: its service:warnings key of usage early-warning "
        "(private part 0600); unset: the embedded default's <state>/keys",
    )
    trust_refresh_s: float = Field(default=30.0, gt=0, description="trust-list refresh period")
    metrics_port: int = Field(default=9465, ge=0, description="Prometheus port; 0 = off")
    metrics_host: str = Field(
        default="127.0.0.1",
        description="address the metrics endpoint binds (0.0.0.0 in a container)",
    )


class ReceiptsSettings(BaseModel):
    """How a state's receipt tracker runs (``puente serve receipts``; ``PUENTE_RECEIPTS__*``)."""

    poll_s: float = Field(
        default=0.2, gt=0, le=5, description="longest wait for input (bounds an escalation's delay)"
    )
    max_batch: int = Field(default=2000, ge=1, description="records read per turn")
    clock_scale: float = Field(
        default=1.0,
        gt=0,
        description="run the tracker's clock this many times faster than real time (demos: a "
        "24-hour deadline passes in seconds); 1 in production",
    )
    metrics_port: int = Field(default=9465, ge=0, description="Prometheus port; 0 = off")
    metrics_host: str = Field(default="127.0.0.1", description="address the metrics bind")
    trust_refresh_s: float = Field(default=10.0, gt=0, description="trust-list refresh period")
    keep_closed_days: int = Field(
        default=30,
        ge=1,
        le=400,
        description="days a delivery no deadline runs for any more stays in the tracker's "
        "memory after its decision (a receipt for one forgotten is RECEIPT_UNKNOWN_DELIVERY)",
    )


class WitnessSettings(BaseModel):
    """How a state's witness runs (``puente serve witness``; ``PUENTE_WITNESS__*``) and what
    counts as final (subscribers, gateways, the auditor, ``puente witness status``)."""

    quorum: int | None = Field(
        default=None,
        ge=1,
        description="cosignatures by distinct other states' witnesses that make a checkpoint "
        "final; unset: a majority of the other members (10 of 19 among 20)",
    )
    finality_lookback_s: float | None = Field(
        default=86_400.0,
        gt=0,
        description="how far back (seconds of write time) gateways and subscribers start "
        "counting the witnesses' cosignatures: a final checkpoint covers every record below "
        "it, so the latest suffice; null: from the beginning",
    )
    poll_s: float = Field(
        default=1.0,
        gt=0,
        le=5,
        description="longest wait for input while idle (a record ends the wait at once)",
    )
    max_batch: int = Field(default=2000, ge=1, description="records read per turn")
    linger_s: float = Field(
        default=0.05,
        ge=0,
        le=5,
        description="how long a witness's first cosignature (or report) of a turn waits for "
        "more to share its transaction (0: commit every poll that publishes)",
    )
    idle_commit_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="how long read positions with nothing to publish (gossip, skipped "
        "checkpoints) wait for a transaction; a restart re-reads at most that much",
    )
    metrics_port: int = Field(default=9466, ge=0, description="Prometheus port; 0 = off")
    metrics_host: str = Field(default="127.0.0.1", description="address the metrics bind")
    trust_refresh_s: float = Field(default=10.0, gt=0, description="trust-list refresh period")
    keys_dir: Path | None = Field(
        default=None,
        description="the witness's key store (its key: node:CC, usage witness); unset: the "
        "node's (PUENTE_POLICY__KEYS_DIR), else the embedded default's",
    )


class Settings(BaseSettings):
    """Every setting a Puente process reads."""

    model_config = SettingsConfigDict(
        env_prefix="PUENTE_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    state_dir: Path = Field(default_factory=_default_state_dir)
    secrets_dir: Path = Field(
        default=Path(),
        description="generated credentials and private keys (default: state/secrets)",
    )
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    schemas_dir: Path = Field(default_factory=lambda: data_dir("schemas"))
    policies_dir: Path = Field(default_factory=lambda: data_dir("policies"))
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    local: LocalBrokerSettings = Field(default_factory=LocalBrokerSettings)
    policy: PolicyServiceSettings = Field(default_factory=PolicyServiceSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    receipts: ReceiptsSettings = Field(default_factory=ReceiptsSettings)
    witness: WitnessSettings = Field(default_factory=WitnessSettings)
    warnings: WarningsSettings = Field(default_factory=WarningsSettings)

    @property
    def keys_dir(self) -> Path:
        """The embedded default's key store (``<state>/keys``)."""
        return self.state_dir / "keys"

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        if self.secrets_dir == Path():
            self.secrets_dir = self.state_dir / "secrets"
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, _ShortAliases(settings_cls)]
        sources.append(env_settings)
        config_file = os.environ.get("PUENTE_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)


_SHORT_ALIASES = {
    "PUENTE_KAFKA_BOOTSTRAP": ("kafka", "bootstrap"),
    "PUENTE_KAFKA_USERNAME": ("kafka", "username"),
    "PUENTE_KAFKA_PASSWORD": ("kafka", "password"),
    "PUENTE_KAFKA_TOPIC_PREFIX": ("kafka", "topic_prefix"),
}


class _ShortAliases(PydanticBaseSettingsSource):
    """``PUENTE_KAFKA_BOOTSTRAP`` and friends, the names the issue tracker and CI use."""

    def get_field_value(self, field: object, field_name: str) -> tuple[object, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, object]:
        out: dict[str, dict[str, str]] = {}
        for env, (section, key) in _SHORT_ALIASES.items():
            value = os.environ.get(env)
            if value:
                out.setdefault(section, {})[key] = value
        return dict(out)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests build their own ``Settings(...)``."""
    return Settings()
