from __future__ import annotations

from pathlib import Path

import pytest

from puente.policy.engine import PolicySet
from puente.policy.loader import load_policy_set
from puente.policy.transforms import PseudonymKeys

ROOT = Path(__file__).resolve().parents[3]
POLICIES = ROOT / "policies"
SCHEMAS = ROOT / "schemas"
FIXTURES = ROOT / "tests" / "fixtures" / "policies"


@pytest.fixture(scope="session")
def ps() -> PolicySet:
    """The shipped policy set."""
    return load_policy_set(POLICIES, SCHEMAS)


@pytest.fixture(scope="session")
def keys() -> PseudonymKeys:
    return PseudonymKeys(b"test-secret-0123456789abcdef")
