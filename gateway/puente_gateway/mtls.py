"""Client certificates: which agency a certificate subject stands for, and whether the
certificate was revoked — both from files an operator may change while the gateway runs.

The client map (YAML, ``clients: [{subject, state, agency, types}]``) and the revocation list
(PEM, one CRL per client CA, each signed by that CA) are checked for changes every
``reload_s`` and re-read when they changed, so adding an agency or revoking a certificate needs
no restart. Fail closed: a map or CRL that cannot be read or parsed, a CRL not signed by a
client CA, or one past its ``nextUpdate``, makes every certificate caller ``503
CLIENT_CERTIFICATES_UNAVAILABLE`` until it is fixed (token callers are not affected); a
certificate whose serial the CRL of its issuer lists is ``401``. A bad file at start-up is a
configuration error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes
from pydantic import BaseModel, Field, ValidationError

from puente.errors import ConfigError
from puente.logs import get_logger
from puente_gateway.errors import Unauthenticated, Unavailable

log = get_logger("gateway.mtls")
_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


class ClientEntry(BaseModel, frozen=True):
    """One client certificate subject and the agency it stands for."""

    subject: str = Field(description="RFC 4514 subject as cryptography renders it")
    state: str = Field(pattern=r"^[A-Z]{2}$")
    agency: str = Field(min_length=1)
    types: tuple[str, ...] = ()


class _ClientFile(BaseModel, frozen=True):
    clients: tuple[ClientEntry, ...] = ()


def load_clients(path: Path) -> dict[str, ClientEntry]:
    """Read the YAML map of client-certificate subjects (``clients: [{subject, state, ...}]``)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        parsed = _ClientFile.model_validate(raw)
    except (FileNotFoundError, PermissionError) as exc:
        raise ConfigError(f"client certificate map not readable: {path}") from exc
    except (yaml.YAMLError, ValidationError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid client certificate map: {exc}") from exc
    out: dict[str, ClientEntry] = {}
    for entry in parsed.clients:
        if entry.subject in out:
            raise ConfigError(f"{path}: subject {entry.subject!r} is listed twice")
        out[entry.subject] = entry
    return out


@dataclass(frozen=True)
class Revocations:
    """The revoked serials of each client CA (by issuer), and until when the lists hold."""

    revoked: dict[str, frozenset[int]]
    next_update: dt.datetime


def load_crls(path: Path, ca_file: Path) -> Revocations:
    """The CRLs in ``path``, each verified against the client CA that issued it."""
    try:
        crls = [x509.load_pem_x509_crl(m.group(0)) for m in _PEM_CRL.finditer(path.read_bytes())]
        cas = x509.load_pem_x509_certificates(ca_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: revocation list not usable ({type(exc).__name__})") from exc
    if not crls:
        raise ConfigError(f"{path}: no revocation list in the file")
    revoked: dict[str, frozenset[int]] = {}
    next_update = dt.datetime.max.replace(tzinfo=dt.UTC)
    for crl in crls:
        issuer = crl.issuer.rfc4514_string()
        keys: list[CertificateIssuerPublicKeyTypes] = [
            ca.public_key()  # type: ignore[misc]
            for ca in cas
            if ca.subject == crl.issuer
        ]
        if not any(crl.is_signature_valid(k) for k in keys):
            raise ConfigError(f"{path}: the CRL of {issuer!r} is not signed by a client CA")
        if crl.next_update_utc is None:
            raise ConfigError(f"{path}: the CRL of {issuer!r} has no nextUpdate")
        next_update = min(next_update, crl.next_update_utc)
        revoked[issuer] = revoked.get(issuer, frozenset()) | {r.serial_number for r in crl}
    return Revocations(revoked, next_update)


def subject_id(subject: str) -> str:
    """The id of a certificate caller in logs and headers (a subject may name a person)."""
    return "cert:" + hashlib.sha256(subject.encode("utf-8")).hexdigest()[:16]


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ClientCertificates:
    """The client map and revocation list in force, re-read when their files change."""

    def __init__(
        self,
        clients: Path,
        *,
        crl: Path | None = None,
        ca: Path | None = None,
        reload_s: float = 5.0,
        retry_after_s: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if crl is not None and ca is None:
            raise ConfigError("a client revocation list needs the client CA to verify it")
        self.clients_file = clients
        self.crl_file = crl
        self.ca_file = ca
        self.reload_s = reload_s
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._stamps = self._current_stamps()
        self._clients = load_clients(clients)
        self._revocations = load_crls(crl, ca) if crl is not None and ca is not None else None
        self._broken: str | None = None
        self._checked = clock()

    def _current_stamps(self) -> tuple[tuple[int, int, int] | None, ...]:
        return tuple(_stamp(p) for p in (self.clients_file, self.crl_file) if p is not None)

    def refresh(self) -> None:
        """Re-read the files if they changed since they were last read."""
        self._checked = self._clock()
        stamps = self._current_stamps()
        if stamps == self._stamps:
            return
        self._stamps = stamps
        try:
            clients = load_clients(self.clients_file)
            revocations = (
                load_crls(self.crl_file, self.ca_file)
                if self.crl_file is not None and self.ca_file is not None
                else None
            )
        except ConfigError as exc:
            self._broken = exc.message
            log.error(
                "client certificate files unusable; certificate callers refused", error=exc.message
            )
            return
        self._clients, self._revocations, self._broken = clients, revocations, None
        log.info("client certificate files reloaded", clients=len(clients))

    def _unavailable(self, why: str) -> Unavailable:
        return Unavailable(
            f"client certificates cannot be checked now ({why}); retry later",
            retry_after_s=self.retry_after_s,
            reason="CLIENT_CERTIFICATES_UNAVAILABLE",
        )

    def resolve(self, subject: str, *, serial: int | None, issuer: str | None) -> ClientEntry:
        """The entry of a certificate that is mapped and not revoked; Unauthenticated (401) or
        Unavailable (503) otherwise."""
        if self._clock() - self._checked >= self.reload_s:
            self.refresh()
        if self._broken is not None:
            raise self._unavailable("the client map or revocation list is invalid")
        if self._revocations is not None:
            if dt.datetime.now(dt.UTC) >= self._revocations.next_update:
                raise self._unavailable("the revocation list is past its nextUpdate")
            revoked = self._revocations.revoked.get(issuer or "")
            if revoked is None or serial is None:
                raise self._unavailable("no revocation list for the certificate's issuer")
            if serial in revoked:
                log.info("revoked client certificate", caller=subject_id(subject))
                raise Unauthenticated("client certificate revoked")
        entry = self._clients.get(subject)
        if entry is None:
            log.info("client certificate not mapped", caller=subject_id(subject))
            raise Unauthenticated("client certificate not registered")
        return entry
