"""aiokafka producers and consumers as a given principal, with errors a person can act on.

aiokafka reports a refused login as a generic "Unable to bootstrap" connection error (the SASL
failure only reaches its log). ``start`` turns that into :class:`KafkaAuthError` or
:class:`KafkaUnavailable` by probing one connection, so callers and tests see the real cause.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError, SaslAuthenticationFailed

from puente.errors import PuenteError
from puente.kafka.connection import KafkaEndpoint
from puente.secrets import Credential


class KafkaAuthError(PuenteError):
    """The brokers refused the principal's credentials."""

    reason = "KAFKA_AUTHENTICATION_FAILED"


class KafkaUnavailable(PuenteError):
    """No broker answered."""

    reason = "KAFKA_UNAVAILABLE"


def producer(endpoint: KafkaEndpoint, cred: Credential, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent, acks=all producer as ``cred`` (not started)."""
    kwargs: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "client_id": cred.username,
    }
    kwargs |= overrides
    return AIOKafkaProducer(**endpoint.aiokafka_kwargs(cred), **kwargs)


def consumer(
    endpoint: KafkaEndpoint, cred: Credential, *topics: str, **overrides: Any
) -> AIOKafkaConsumer:
    """A read_committed consumer as ``cred`` (not started); offsets committed explicitly."""
    kwargs: dict[str, Any] = {
        "isolation_level": "read_committed",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "client_id": cred.username,
    }
    kwargs |= overrides
    return AIOKafkaConsumer(*topics, **endpoint.aiokafka_kwargs(cred), **kwargs)


async def probe(endpoint: KafkaEndpoint, cred: Credential) -> None:
    """Open and authenticate one connection; raise the precise error if that fails."""
    host, _, port = endpoint.bootstrap.split(",")[0].rpartition(":")
    kwargs = endpoint.aiokafka_kwargs(cred)
    for key in ("bootstrap_servers",):
        kwargs.pop(key)
    try:
        conn = await asyncio.wait_for(
            create_conn(host, int(port), **kwargs), timeout=endpoint.request_timeout_s
        )
    except SaslAuthenticationFailed as exc:
        raise KafkaAuthError(
            f"Kafka refused the credentials of principal {cred.username!r}",
            hint="check the username and password (secrets directory or PUENTE_KAFKA_*)",
        ) from exc
    except (OSError, TimeoutError, KafkaError) as exc:
        raise KafkaUnavailable(
            f"no Kafka broker answers at {endpoint.bootstrap} ({type(exc).__name__})",
            hint="start it with `puente kafka up` or check PUENTE_KAFKA_BOOTSTRAP",
        ) from exc
    conn.close()


async def start(
    client: AIOKafkaProducer | AIOKafkaConsumer, endpoint: KafkaEndpoint, cred: Credential
) -> None:
    """Start an aiokafka client; a failed bootstrap becomes KafkaAuthError or KafkaUnavailable."""
    try:
        await client.start()
    except KafkaConnectionError:
        await client.stop()
        await probe(endpoint, cred)
        raise KafkaUnavailable(
            f"cannot bootstrap from {endpoint.bootstrap}",
            hint="check that the brokers run and are reachable",
        ) from None
    except BaseException:
        await client.stop()
        raise
