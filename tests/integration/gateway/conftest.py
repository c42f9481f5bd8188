"""One tenant (MX, GT, US) on the session broker, its federation's keys and trust list, and one
real gateway server for these tests, serving every state (as on the embedded default)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from puente.codec.registry import Registry
from puente.config import GatewaySettings, Settings
from puente.evidence.trust import TRUST_LIST_KEY
from puente.topics import TRUST
from puente_gateway.app import create_app
from puente_gateway.tokens import TokenRecord
from tests.harness import KafkaHarness, Tenant
from tests.integration.gateway.support import (
    Keys,
    issue_token,
    produce,
    revoke_token,
    run,
    serving,
)

MEMBERS = ("MX", "GT", "US")


@pytest.fixture(scope="session")
def gw_tenant(kafka: KafkaHarness) -> Tenant:
    return kafka.provision(list(MEMBERS), partitions=2)


@pytest.fixture(scope="session")
def keys(gw_tenant: Tenant, tmp_path_factory: pytest.TempPathFactory) -> Keys:
    k = Keys.make(MEMBERS, tmp_path_factory.mktemp("keys"))
    # The operator publishes the signed trust list on the trust topic, as in production.
    run(
        produce(
            gw_tenant,
            gw_tenant.service("operator"),
            gw_tenant.topic(TRUST),
            [k.trust_bytes],
            key=TRUST_LIST_KEY,
        )
    )
    return k


@dataclass
class Gateway:
    """A running gateway and what the tests need around it."""

    url: str
    settings: Settings
    gw: GatewaySettings
    tenant: Tenant
    registry: Registry
    keys: Keys
    app: FastAPI
    issued: dict[str, str] = field(default_factory=dict)

    def issue(
        self, state: str, *, types: tuple[str, ...] = (), agency: str = "", **kw: Any
    ) -> tuple[TokenRecord, str]:
        """A new token for an agency of ``state``, and its record."""
        return issue_token(self.app, self.url, state, types=types, agency=agency, **kw)

    def token(self, state: str, *, types: tuple[str, ...] = (), agency: str = "") -> str:
        """A new active token for an agency of ``state``."""
        return self.issue(state, types=types, agency=agency)[1]

    def revoke(self, token_id: str) -> TokenRecord:
        """Revoke a token."""
        return revoke_token(self.app, self.url, token_id)

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="session")
def gateway(kafka: KafkaHarness, gw_tenant: Tenant, keys: Keys) -> Iterator[Gateway]:
    settings = kafka.settings_for(gw_tenant)
    gw = keys.gateway(
        rate_per_s=1000,
        rate_burst=1000,
        auth_fail_burst=10_000,  # the hostile tests run their own gateway with the default
        sse_heartbeat_s=0.5,
        sse_recheck_s=0.5,
        produce_timeout_s=10,
        trust_refresh_s=0.5,
    )
    registry = Registry.load(settings.schemas_dir)
    app = create_app(settings, gw, registry=registry)
    with serving(app, gw) as url:
        yield Gateway(url, settings, gw, gw_tenant, registry, keys, app)
