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
    """The policy service (``puente serve policy``)."""

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
    max_notice_bytes: int = Field(default=256 * 1024, ge=1024)
    signing_key_file: Path | None = Field(
        default=None,
        description="the service's Ed25519 key (.skey, mode 0600) issued by the operator; unset: "
        "the embedded default makes and keeps its own keys in <state>/keys",
    )


class WarningsSettings(BaseModel):
    """Early warning (docs/early-warning.md): the keys of usage ``early-warning``. Unset on the
    embedded default, which makes and keeps its own in <state>/keys."""

    aggregate_key_file: Path | None = Field(
        default=None,
        description="the key the policy service signs each origin's aggregates with (.skey, 0600)",
    )
    signing_key_file: Path | None = Field(
        default=None, description="the evaluator's key for early warnings (.skey, 0600)"
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
    warnings: WarningsSettings = Field(default_factory=WarningsSettings)

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
