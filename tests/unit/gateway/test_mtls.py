"""The client map and revocation list: loaded, checked, re-read on change, failing closed."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import yaml

from puente.errors import ConfigError
from puente_gateway.errors import Unauthenticated, Unavailable
from puente_gateway.mtls import ClientCertificates, load_clients
from tests.pki import CA, Issued, agency


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _write(path: Path, data: bytes) -> None:
    """Replace a file's content, with a new mtime even within the file system's granularity."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_bytes(data)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, max(st.st_mtime_ns, old + 1_000_000_000)))


def _write_map(path: Path, *who: Issued) -> None:
    entries = [{"subject": w.subject, "state": "MX", "agency": "SRE"} for w in who]
    _write(path, yaml.safe_dump({"clients": entries}, allow_unicode=True).encode())


@pytest.fixture
def pki(tmp_path: Path) -> tuple[CA, Issued, Issued]:
    ca = CA(tmp_path, "clients-ca")
    return (
        ca,
        ca.issue("a", agency("a.mx", "SRE", "MX")),
        ca.issue("b", agency("b.mx", "SRE", "MX")),
    )


def _resolve(certs: ClientCertificates, who: Issued) -> str:
    return certs.resolve(who.subject, serial=who.serial, issuer=who.issuer).agency


def test_malformed_client_maps_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    for text in (
        "clients: [{subject: x}]",
        "clients: [",
        "clients:\n  - {subject: a, state: MX, agency: b}\n"
        "  - {subject: a, state: GT, agency: c}\n",
    ):
        bad.write_text(text)
        with pytest.raises(ConfigError):
            load_clients(bad)
    with pytest.raises(ConfigError):
        load_clients(tmp_path / "missing.yaml")


def test_the_map_is_re_read_when_it_changes(tmp_path: Path, pki: tuple[CA, Issued, Issued]) -> None:
    _, a, b = pki
    path, clock = tmp_path / "clients.yaml", Clock()
    _write_map(path, a)
    certs = ClientCertificates(path, reload_s=5, clock=clock)
    assert _resolve(certs, a) == "SRE"
    with pytest.raises(Unauthenticated):
        _resolve(certs, b)
    _write_map(path, b)
    clock.t = 4.9
    assert _resolve(certs, a) == "SRE"  # not checked yet
    clock.t = 5.0
    assert _resolve(certs, b) == "SRE"
    with pytest.raises(Unauthenticated):
        _resolve(certs, a)


def test_a_broken_map_refuses_every_certificate_until_it_is_fixed(
    tmp_path: Path, pki: tuple[CA, Issued, Issued]
) -> None:
    _, a, _ = pki
    path = tmp_path / "clients.yaml"
    _write_map(path, a)
    certs = ClientCertificates(path, reload_s=0.0)
    _write(path, b"clients: [")
    with pytest.raises(Unavailable) as info:
        _resolve(certs, a)
    assert info.value.reason == "CLIENT_CERTIFICATES_UNAVAILABLE" and info.value.status == 503
    _write_map(path, a)
    assert _resolve(certs, a) == "SRE"


def test_a_revoked_certificate_is_refused_and_revocations_are_re_read(
    tmp_path: Path, pki: tuple[CA, Issued, Issued]
) -> None:
    ca, a, b = pki
    path, crl = tmp_path / "clients.yaml", tmp_path / "clients.crl"
    _write_map(path, a, b)
    crl.write_bytes(ca.crl([a.serial]))
    certs = ClientCertificates(path, crl=crl, ca=ca.path, reload_s=0.0)
    with pytest.raises(Unauthenticated):
        _resolve(certs, a)
    assert _resolve(certs, b) == "SRE"
    _write(crl, ca.crl([b.serial]))
    assert _resolve(certs, a) == "SRE"
    with pytest.raises(Unauthenticated):
        _resolve(certs, b)


def test_revocation_lists_that_cannot_be_trusted_fail_closed(
    tmp_path: Path, pki: tuple[CA, Issued, Issued]
) -> None:
    ca, a, _ = pki
    other = CA(tmp_path, "someone-else")
    path, crl = tmp_path / "clients.yaml", tmp_path / "clients.crl"
    _write_map(path, a)
    crl.write_bytes(other.crl([]))  # not signed by the client CA
    with pytest.raises(ConfigError):
        ClientCertificates(path, crl=crl, ca=ca.path)
    with pytest.raises(ConfigError):
        ClientCertificates(path, crl=crl)  # no CA to verify it with
    crl.write_bytes(ca.crl([], valid_for=dt.timedelta(seconds=-30)))  # past nextUpdate
    stale = ClientCertificates(path, crl=crl, ca=ca.path, reload_s=0.0)
    with pytest.raises(Unavailable):
        _resolve(stale, a)
    _write(crl, ca.crl([]))
    assert _resolve(stale, a) == "SRE"
    with pytest.raises(Unavailable):  # a certificate of an issuer the CRL file does not cover
        stale.resolve(a.subject, serial=a.serial, issuer="CN=another")
    _write(crl, b"garbage")
    with pytest.raises(Unavailable):
        _resolve(stale, a)
