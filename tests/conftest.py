"""Session-wide fixtures: one real Kafka broker for every test that needs it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.harness import KafkaHarness, kafka_harness

# Property tests must not depend on the machine's speed: no per-example deadline, and no
# "data generation too slow" failure on a loaded two-core machine. Each test keeps its own
# number of examples.
settings.register_profile(
    "puente",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("puente")


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaHarness]:
    """The session's real broker (see tests/harness.py for how it is chosen)."""
    with kafka_harness() as harness:
        yield harness
