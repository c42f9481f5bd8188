"""A local 3-broker cluster (3-voter KRaft quorum, RF 3, min ISR 2) for broker-failure tests.

Started for this package on free loopback ports and stopped after it. To iterate faster, point
``PUENTE_TEST_CLUSTER3_STATE`` at the state directory of a 3-broker cluster you started yourself
(``PUENTE_STATE_DIR=<dir> puente kafka up --brokers 3``): the tests then use it (and kill and
restart its brokers) instead of starting their own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from puente.config import Settings
from puente.kafka.connection import KafkaEndpoint
from puente.kafka.local import LocalCluster
from tests.harness import KafkaHarness, kafka_harness

START_TIMEOUT_ENV = "PUENTE_LOCAL__START_TIMEOUT_S"


@pytest.fixture(scope="package")
def kafka3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaHarness]:
    """Three brokers on loopback whose processes the tests may kill."""
    if os.environ.get("PUENTE_KAFKA_BOOTSTRAP"):
        pytest.skip("broker-failure tests kill local brokers; PUENTE_KAFKA_BOOTSTRAP is set")
    existing = os.environ.get("PUENTE_TEST_CLUSTER3_STATE")
    if existing:
        settings = Settings(state_dir=Path(existing), cache_dir=Settings().cache_dir)
        cluster = LocalCluster(settings, brokers=3)
        info = cluster.info()
        assert info is not None, f"no local cluster in {existing}"
        yield KafkaHarness(
            KafkaEndpoint(info.bootstrap),
            cluster.admin_credential(),
            tmp_path_factory.mktemp("secrets3"),
            3,
            "local",
            cluster,
        )
        return
    t0 = time.monotonic()
    with pytest.MonkeyPatch.context() as env:
        # kafka_harness takes no start timeout; three JVMs on two busy cores can need more than
        # the default 60 s to start (and a killed broker as long to rejoin).
        env.setenv("PUENTE_LOCAL__START_TIMEOUT_S", os.environ.get(START_TIMEOUT_ENV, "180"))
        with kafka_harness(brokers=3) as harness:
            assert harness.cluster is not None and harness.brokers == 3
            print(f"\n3-broker cluster ready in {time.monotonic() - t0:.1f} s")
            yield harness


@pytest.fixture(autouse=True)
def restore_brokers(kafka3: KafkaHarness) -> Iterator[None]:
    """Whatever a test killed is started again after it, so the next test finds 3 brokers."""
    yield
    cluster = kafka3.cluster
    assert cluster is not None
    if not all(node.running for node in cluster.status()):
        cluster.up()  # starts every stopped node and waits for all of them
