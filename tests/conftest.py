"""Session-wide fixtures: one real Kafka broker for every test that needs it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import KafkaHarness, kafka_harness


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaHarness]:
    """The session's real broker (see tests/harness.py for how it is chosen)."""
    with kafka_harness() as harness:
        yield harness
