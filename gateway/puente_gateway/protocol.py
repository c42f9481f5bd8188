"""The gateway's HTTP/1.1 protocol: uvicorn's httptools protocol, bounded before the app runs.

uvicorn with httptools accepts a request head of any size (an 8 MiB ``Authorization`` header
was accepted; the parser concatenates a header's pieces as they arrive) and any pace (a client
may send one header byte a minute). Before authentication nothing may be unbounded, so this
protocol refuses, with the gateway's usual error body and then closes the connection:

- a request line over ``max_url_bytes`` (``414 URL_TOO_LONG``) or a head — request line and
  headers — over ``max_head_bytes`` (``431 HEADERS_TOO_LARGE``); the parser holds at most the
  limit plus one network read;
- a head not complete ``head_timeout_s`` after the connection opened or the request began
  (``408 HEAD_TIMEOUT``), which also closes connections that never send anything;
- body bytes still arriving after the response was sent (an unauthenticated caller's upload,
  the rest of a body refused as too large or too slow): the connection is closed instead of
  being read to its end; such a response says ``Connection: close``.

It also gives the application the ASGI TLS extension (uvicorn checks a client certificate
against the CA but does not say who the client is): ``client_cert_name`` (the RFC 4514
subject) and, for the revocation check, ``client_cert_serial`` and ``client_cert_issuer``.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, ClassVar, cast

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from puente_gateway.errors import JSON, GatewayError
from puente_gateway.metrics import GatewayMetrics


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
        info["client_cert_serial"] = cert.serial_number
        info["client_cert_issuer"] = cert.issuer.rfc4514_string()
    return info


def _refusal(status: int, reason: str, message: str) -> bytes:
    err = GatewayError(message, reason=reason)
    body = err.body()
    phrase = {408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large"}
    return (
        f"HTTP/1.1 {status} {phrase[status]}\r\ncontent-type: {JSON}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode("ascii") + body


class GatewayProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded heads and the ASGI TLS extension.

    Use :func:`protocol_class` to get it with limits set.
    """

    max_head_bytes: ClassVar[int] = 16 * 1024
    max_url_bytes: ClassVar[int] = 8 * 1024
    head_timeout_s: ClassVar[float] = 10.0
    metrics: ClassVar[GatewayMetrics | None] = None

    _tls: dict[str, Any] | None = None
    _in_head = True
    _began_in_feed = False
    _head_read = 0  # bytes of whole reads inside the current head
    _head_parsed = 0  # request line and header bytes the parser handed over
    _refusal: tuple[int, str, str] | None = None
    _closed = False
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls = peer_tls_info(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        was_in_head = self._in_head
        self._began_in_feed = False
        super().data_received(data)
        if self._closed or self.transport.is_closing():
            return
        if self._in_head and was_in_head and not self._began_in_feed:
            # Only whole reads inside one head are counted (a read may end one request and
            # begin the next), so the parser holds at most the limit plus one read.
            self._head_read += len(data)
            self._check_head()
        if self._refusal is not None:
            self._refuse(*self._refusal)

    def _check_head(self) -> None:
        if self._refusal is None and max(self._head_read, self._head_parsed) > self.max_head_bytes:
            self._refusal = (
                431,
                "HEADERS_TOO_LARGE",
                f"the request line and headers are over {self.max_head_bytes} bytes",
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._began_in_feed = True
        self._head_read = 0
        self._head_parsed = 0
        self._arm_head_timer()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": cast(dict[object, object], self._tls)}

    def on_url(self, url: bytes) -> None:
        self._head_parsed += len(url)
        if self._head_parsed > self.max_url_bytes:
            if self._refusal is None:
                self._refusal = (
                    414,
                    "URL_TOO_LONG",
                    f"the request line is over {self.max_url_bytes} bytes",
                )
            return
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_parsed += len(name) + len(value) + 4
        self._check_head()
        if self._refusal is None:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm_head_timer()
        if self._refusal is not None:
            return
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None:
            return
        send = cycle.send

        async def send_closing_unread(message: Any) -> None:
            # An answer given before the body arrived (401, 413, 503 ...): say the connection
            # closes, so the client does not send its next request into a connection that
            # closes as soon as the rest of this body comes.
            if message["type"] == "http.response.start" and cycle.more_body:
                cycle.keep_alive = False
            await send(message)

        cycle.send = send_closing_unread  # type: ignore[method-assign]

    def on_body(self, body: bytes) -> None:
        if self._refusal is not None:
            return
        if self.cycle is not None and self.cycle.response_complete:
            # The answer is given: stop reading a body nobody will use.
            self._close()
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refusal is None and self.cycle is not None:
            super().on_message_complete()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(
                408, "HEAD_TIMEOUT", f"the request headers took over {self.head_timeout_s:g} s"
            )

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._disarm_head_timer()
        if self.metrics is not None:
            self.metrics.refused(reason)
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_refusal(status, reason, message))
        self._close()

    def _close(self) -> None:
        self._closed = True
        if not self.transport.is_closing():
            self.transport.close()


def protocol_class(
    *,
    max_head_bytes: int,
    max_url_bytes: int,
    head_timeout_s: float,
    metrics: GatewayMetrics | None = None,
) -> type[GatewayProtocol]:
    """:class:`GatewayProtocol` with these limits (uvicorn instantiates the class itself)."""
    attrs = {
        "max_head_bytes": max_head_bytes,
        "max_url_bytes": max_url_bytes,
        "head_timeout_s": head_timeout_s,
        "metrics": metrics,
    }
    return type("BoundedGatewayProtocol", (GatewayProtocol,), attrs)
