from __future__ import annotations

from pathlib import Path

import pytest

from puente.codec.registry import Registry
from tests.unit.witness.federation import Federation

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


@pytest.fixture(scope="session")
def registry() -> Registry:
    return Registry.load(SCHEMAS)


@pytest.fixture
def fed(registry: Registry) -> Federation:
    return Federation(registry)
