"""A kafka-python admin client, used for administration (topics, SCRAM users, ACLs), which
aiokafka's admin client does not cover. Services use aiokafka for data."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from kafka.admin import KafkaAdminClient

from puente.kafka.connection import KafkaEndpoint
from puente.secrets import Credential

# kafka-python logs every failed connection attempt at ERROR; our callers report failures.
logging.getLogger("kafka").setLevel(logging.CRITICAL)


@contextmanager
def admin_client(endpoint: KafkaEndpoint, cred: Credential) -> Iterator[KafkaAdminClient]:
    """An admin client as ``cred``, closed on exit; calls are bounded by the endpoint's timeout."""
    kwargs = endpoint.kafka_python_kwargs(cred)
    kwargs["client_id"] = "puente-admin"
    client = KafkaAdminClient(**kwargs)
    try:
        yield client
    finally:
        client.close()
