"""PolicyStore: a broken reload never replaces the working set; the error is reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from puente.policy.errors import PolicyError, PolicyLoadError
from puente.policy.store import PolicyStore
from tests.unit.policy.conftest import FIXTURES, SCHEMAS
from tests.unit.policy.notices import case_notice


def _store(tmp_path: Path) -> tuple[PolicyStore, Path]:
    root = tmp_path / "policies"
    shutil.copytree(FIXTURES / "base", root)
    return PolicyStore(root, SCHEMAS, secret=b"k" * 32), root


def test_nothing_loaded_is_an_error(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    with pytest.raises(PolicyError) as err:
        _ = store.current
    assert err.value.reason == "POLICY_NOT_LOADED"


def test_reload_keeps_the_last_good_set(tmp_path: Path) -> None:
    store, root = _store(tmp_path)
    first = store.reload()
    assert first.ok and first.changed
    v1 = store.current.version
    assert store.decide(case_notice(origin="MX"), "CaseNotice", "GT").action == "share_transformed"

    # Same files: no change.
    again = store.reload()
    assert again.ok and not again.changed and again.version == v1

    # A broken file: refused, the old set keeps deciding, the error is kept for health checks.
    shutil.copytree(FIXTURES / "broken" / "duplicate-rule-id", root, dirs_exist_ok=True)
    bad = store.reload()
    assert not bad.ok and not bad.changed
    assert isinstance(bad.error, PolicyLoadError)
    assert "states/MX.yaml" in str(bad.error)
    assert bad.version == v1 and store.current.version == v1
    assert store.last_error is bad.error
    decisions = store.decide_all(case_notice(origin="MX"), "CaseNotice")
    assert {d.policy_version for d in decisions} == {v1}

    # Fixed: the new version takes over and appears in later decisions.
    shutil.copy(FIXTURES / "base" / "states" / "MX.yaml", root / "states" / "MX.yaml")
    (root / "states" / "MX.yaml").write_text(
        (root / "states" / "MX.yaml")
        .read_text()
        .replace("retention_days: 365", "retention_days: 30")
    )
    good = store.reload()
    assert good.ok and good.changed and good.version != v1
    assert store.last_error is None
    d = store.decide(case_notice(origin="MX"), "CaseNotice", "GT")
    assert d.policy_version == good.version and d.retention_days == 30


def test_unreadable_directory_is_reported(tmp_path: Path) -> None:
    store = PolicyStore(tmp_path / "missing", SCHEMAS, secret=b"k" * 32)
    result = store.reload()
    assert not result.ok and result.version is None
