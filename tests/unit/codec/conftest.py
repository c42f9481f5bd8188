from __future__ import annotations

from pathlib import Path

import pytest

from puente.codec.registry import Registry
from puente.resources import project_root

ROOT = project_root() or Path.cwd()
SCHEMAS = ROOT / "schemas"
FIXTURES = ROOT / "tests" / "fixtures" / "schemas"


@pytest.fixture(scope="session")
def reg() -> Registry:
    return Registry.load(SCHEMAS)
