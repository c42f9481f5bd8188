"""Client certificates: uvicorn with TLS and a client CA; subjects mapped to agencies."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID
from fastapi import FastAPI

from puente.codec.registry import Registry
from puente.config import GatewaySettings
from puente_gateway.app import create_app
from tests.harness import KafkaHarness, Tenant
from tests.integration.gateway.support import Keys, issue_token, notice_json, serving, wait_until
from tests.pki import CA, Issued, agency

pytestmark = pytest.mark.kafka


@dataclass
class TLSWorld:
    ca: CA
    server: Issued
    mx_police: Issued
    mx_consular: Issued
    unmapped: Issued
    stranger: Issued  # a certificate from another CA
    clients: Path


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSWorld:
    d = tmp_path_factory.mktemp("pki")
    ca = CA(d, "puente-test-ca")
    other = CA(d, "someone-else")
    server = ca.issue("server", [x509.NameAttribute(NameOID.COMMON_NAME, "gateway")], server=True)
    mx_police = ca.issue("mx-police", agency("gateway-client.policia.mx", "Policía Federal", "MX"))
    mx_consular = ca.issue("mx-sre", agency("gateway-client.sre.mx", "SRE", "MX"))
    unmapped = ca.issue("unmapped", agency("someone.gt", "Unknown", "GT"))
    stranger = other.issue("stranger", agency("gateway-client.policia.mx", "Policía Federal", "MX"))
    clients = d / "clients.yaml"
    clients.write_text(
        yaml.safe_dump(
            {
                "clients": [
                    {"subject": mx_police.subject, "state": "MX", "agency": "Policía Federal"},
                    {
                        "subject": mx_consular.subject,
                        "state": "MX",
                        "agency": "SRE",
                        "types": ["ConsularNotification"],
                    },
                ]
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    return TLSWorld(ca, server, mx_police, mx_consular, unmapped, stranger, clients)


def _client(url: str, tls: TLSWorld, who: Issued | None, **kw: Any) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(tls.ca.path))
    if who is not None:
        ctx.load_cert_chain(str(who.cert), str(who.key))
    return httpx.Client(base_url=url, verify=ctx, timeout=30, **kw)


def _server(
    kafka: KafkaHarness, tenant: Tenant, keys: Keys, tls: TLSWorld, mode: str, **extra: object
) -> tuple[FastAPI, GatewaySettings]:
    settings = kafka.settings_for(tenant)
    values: dict[str, object] = {
        "tls_cert": tls.server.cert,
        "tls_key": tls.server.key,
        "tls_client_ca": tls.ca.path,
        "client_cert": mode,
        "mtls_clients": tls.clients,
    }
    gw = keys.gateway(**(values | extra))
    return create_app(settings, gw), gw


@pytest.fixture(scope="module")
def required_url(
    kafka: KafkaHarness, gw_tenant: Tenant, keys: Keys, tls: TLSWorld
) -> Iterator[str]:
    app, gw = _server(kafka, gw_tenant, keys, tls, "required")
    with serving(app, gw) as url:
        yield url


def test_mapped_certificate_publishes_as_its_state(
    required_url: str, tls: TLSWorld, gw_tenant: Tenant, kafka: KafkaHarness
) -> None:
    registry = Registry.load(kafka.settings_for(gw_tenant).schemas_dir)
    with _client(required_url, tls, tls.mx_police) as c:
        ok = c.post(
            "/v1/notices", json={"type": "CaseNotice", "notice": notice_json(registry, "MX")}
        )
        assert ok.status_code == 202, ok.text
        assert ok.json()["origin"] == "MX"
        spoof = c.post(
            "/v1/notices", json={"type": "CaseNotice", "notice": notice_json(registry, "GT")}
        )
        assert spoof.status_code == 403
        assert spoof.json()["reason"] == "ORIGIN_MISMATCH"
        assert c.get("/v1/deliveries").status_code == 200


def test_certificate_agency_limited_to_its_types(
    required_url: str, tls: TLSWorld, gw_tenant: Tenant, kafka: KafkaHarness
) -> None:
    registry = Registry.load(kafka.settings_for(gw_tenant).schemas_dir)
    with _client(required_url, tls, tls.mx_consular) as c:
        r = c.post(
            "/v1/notices", json={"type": "CaseNotice", "notice": notice_json(registry, "MX")}
        )
        assert r.status_code == 403
        assert r.json()["reason"] == "NOTICE_TYPE_FORBIDDEN"
        notice = notice_json(registry, "MX", consular=True)
        ok = c.post("/v1/notices", json={"type": "ConsularNotification", "notice": notice})
        assert ok.status_code == 202, ok.text


def test_valid_but_unmapped_certificate_is_401(required_url: str, tls: TLSWorld) -> None:
    with _client(required_url, tls, tls.unmapped) as c:
        r = c.get("/v1/schemas")
    assert r.status_code == 401
    assert r.json()["reason"] == "AUTH_INVALID"
    assert "WWW-Authenticate" in r.headers


@pytest.mark.parametrize("who", ["none", "stranger"])
def test_no_or_foreign_certificate_fails_the_handshake(
    required_url: str, tls: TLSWorld, who: str
) -> None:
    cert = None if who == "none" else tls.stranger
    with pytest.raises(httpx.TransportError), _client(required_url, tls, cert) as c:
        c.get("/healthz")


def test_optional_client_certificates_let_token_callers_in(
    kafka: KafkaHarness, gw_tenant: Tenant, keys: Keys, tls: TLSWorld, tmp_path: Path
) -> None:
    app, gw = _server(kafka, gw_tenant, keys, tls, "optional")
    with serving(app, gw) as url:
        _, token = issue_token(app, url, "GT", agency="token agency")
        with _client(url, tls, None, headers={"Authorization": f"Bearer {token}"}) as c:
            assert c.get("/v1/schemas").status_code == 200
        with _client(url, tls, None) as c:
            assert c.get("/v1/schemas").status_code == 401
        with _client(url, tls, tls.mx_police) as c:
            assert c.get("/v1/schemas").status_code == 200


def test_revoked_certificates_are_refused_and_the_files_are_re_read_while_serving(
    kafka: KafkaHarness, gw_tenant: Tenant, keys: Keys, tls: TLSWorld, tmp_path: Path
) -> None:
    crl = tmp_path / "clients.crl"
    crl.write_bytes(tls.ca.crl([tls.mx_consular.serial]))
    clients = tmp_path / "clients.yaml"
    clients.write_bytes(tls.clients.read_bytes())
    app, gw = _server(
        kafka,
        gw_tenant,
        keys,
        tls,
        "required",
        mtls_clients=clients,
        client_crl=crl,
        mtls_reload_s=0.1,
    )
    with serving(app, gw) as url:
        with _client(url, tls, tls.mx_consular) as c:
            r = c.get("/v1/schemas")
            assert r.status_code == 401 and r.json()["reason"] == "AUTH_INVALID"
        with _client(url, tls, tls.mx_police) as c:
            assert c.get("/v1/schemas").status_code == 200
            # The operator revokes the police certificate and maps the GT certificate.
            crl.write_bytes(tls.ca.crl([tls.mx_police.serial]))
            mapping = yaml.safe_load(clients.read_text(encoding="utf-8"))
            mapping["clients"].append(
                {"subject": tls.unmapped.subject, "state": "GT", "agency": "PNC"}
            )
            clients.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
            wait_until(lambda: c.get("/v1/schemas").status_code == 401, what="the new CRL")
        with _client(url, tls, tls.unmapped) as c:
            wait_until(lambda: c.get("/v1/schemas").status_code == 200, what="the new map")
        with _client(url, tls, tls.mx_consular) as c:
            assert c.get("/v1/schemas").status_code == 200  # no longer revoked
            clients.write_text("clients: [", encoding="utf-8")  # a broken edit fails closed
            wait_until(lambda: c.get("/v1/schemas").status_code == 503, what="the broken map")
            r = c.get("/v1/schemas")
            assert r.json()["reason"] == "CLIENT_CERTIFICATES_UNAVAILABLE"
