"""Client certificates for the application: the ASGI TLS extension on top of uvicorn.

uvicorn checks the client certificate against the CA (``ssl_cert_reqs``) but does not tell the
application who the client is. :class:`TLSHttpToolsProtocol` reads the peer certificate once per
connection and adds the ASGI TLS extension (``scope["extensions"]["tls"]``) to every request of
that connection, with ``client_cert_name`` as the RFC 4514 subject. Pass it as uvicorn's
``http=`` protocol class.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def peer_tls_info(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI ``tls`` extension dict of a TLS transport; None for cleartext."""
    obj = transport.get_extra_info("ssl_object")
    if not isinstance(obj, ssl.SSLObject):
        return None
    der = obj.getpeercert(binary_form=True)
    info: dict[str, Any] = {
        "server_cert": None,
        "client_cert_chain": [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": None,
        "cipher_suite": None,
    }
    if der:
        cert = x509.load_der_x509_certificate(der)
        info["client_cert_chain"] = [cert.public_bytes(Encoding.PEM).decode("ascii")]
        info["client_cert_name"] = cert.subject.rfc4514_string()
    return info


class TLSHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the ASGI TLS extension in each request scope."""

    _tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls = peer_tls_info(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": cast(dict[object, object], self._tls)}
