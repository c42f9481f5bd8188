"""Client certificates: uvicorn with TLS and a client CA; subjects mapped to agencies."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from puente.codec.registry import Registry
from puente_gateway.app import create_app
from puente_gateway.settings import GatewaySettings
from puente_gateway.tokens import TOKENS_FILE, TokenStore
from tests.harness import KafkaHarness, Tenant
from tests.integration.gateway.support import notice_json, serving

pytestmark = pytest.mark.kafka


@dataclass
class Issued:
    cert: Path
    key: Path
    subject: str


class CA:
    """A throw-away certificate authority."""

    def __init__(self, directory: Path, name: str) -> None:
        self.dir = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.path = directory / f"{name}.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, file: str, attrs: list[x509.NameAttribute], *, server: bool = False) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        subject = x509.Name(attrs)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path, key_path = self.dir / f"{file}.pem", self.dir / f"{file}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return Issued(cert_path, key_path, subject.rfc4514_string())


def _agency(cn: str, org: str, country: str) -> list[x509.NameAttribute]:
    return [
        x509.NameAttribute(NameOID.COUNTRY_NAME, country),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ]


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
    mx_police = ca.issue("mx-police", _agency("gateway-client.policia.mx", "Policía Federal", "MX"))
    mx_consular = ca.issue("mx-sre", _agency("gateway-client.sre.mx", "SRE", "MX"))
    unmapped = ca.issue("unmapped", _agency("someone.gt", "Unknown", "GT"))
    stranger = other.issue(
        "stranger", _agency("gateway-client.policia.mx", "Policía Federal", "MX")
    )
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


def _client(url: str, tls: TLSWorld, who: Issued | None, **kw: object) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(tls.ca.path))
    if who is not None:
        ctx.load_cert_chain(str(who.cert), str(who.key))
    return httpx.Client(base_url=url, verify=ctx, timeout=30, **kw)  # type: ignore[arg-type]


def _server(
    kafka: KafkaHarness, tenant: Tenant, tls: TLSWorld, data: Path, mode: str
) -> tuple[object, GatewaySettings]:
    settings = kafka.settings_for(tenant)
    gw = GatewaySettings(
        data_dir=data,
        tls_cert=tls.server.cert,
        tls_key=tls.server.key,
        tls_client_ca=tls.ca.path,
        client_cert=mode,  # type: ignore[arg-type]
        mtls_clients=tls.clients,
    )
    return create_app(settings, gw), gw


@pytest.fixture(scope="module")
def required_url(
    kafka: KafkaHarness, gw_tenant: Tenant, tls: TLSWorld, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    app, gw = _server(kafka, gw_tenant, tls, tmp_path_factory.mktemp("mtls-req"), "required")
    with serving(app, gw) as url:  # type: ignore[arg-type]
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
    kafka: KafkaHarness, gw_tenant: Tenant, tls: TLSWorld, tmp_path: Path
) -> None:
    app, gw = _server(kafka, gw_tenant, tls, tmp_path, "optional")
    store = TokenStore(tmp_path / TOKENS_FILE)
    _, token = store.create(state="GT", agency="token agency")
    store.close()
    with serving(app, gw) as url:  # type: ignore[arg-type]
        with _client(url, tls, None, headers={"Authorization": f"Bearer {token}"}) as c:
            assert c.get("/v1/schemas").status_code == 200
        with _client(url, tls, None) as c:
            assert c.get("/v1/schemas").status_code == 401
        with _client(url, tls, tls.mx_police) as c:
            assert c.get("/v1/schemas").status_code == 200
