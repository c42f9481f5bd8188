"""Random tampering: whatever is done to a real log, the auditor never crashes, never passes a
tampered log, and locates a single tampering at the leaf it touched."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from puente.codec.registry import Registry
from puente.evidence.audit.auditor import AuditOptions, Auditor
from puente.evidence.audit.report import AuditReport
from puente.evidence.audit.source import ExportFile
from puente.evidence.records import AuditRecord

from .auditlog import Exported, build
from .conftest import DAY, T0, World, make_world

OPS = ["alter", "corrupt", "remove", "insert", "swap", "duplicate"]


def tamper(world: World, exp: Exported, op: str, i: int, j: int) -> set[int]:
    """Apply one tampering; returns the leaf indices an auditor may blame for it."""
    part = exp.partition()
    off, data = part[i]
    if op in ("alter", "insert"):
        try:
            AuditRecord.decode(world.registry, data)
        except Exception:  # corrupted by an earlier tampering: corrupt it further instead
            op = "corrupt"
    if op == "alter":
        rec = AuditRecord.decode(world.registry, data)
        part[i] = (off, replace(rec, reason_code="TAMPERED").encode(world.registry))
        return {i}
    if op == "corrupt":
        part[i] = (off, data[:30] + bytes([data[30] ^ 0x55]) + data[31:])
        return {i}
    if op == "remove":
        del part[i]
        return {i}
    if op == "insert":
        rec = AuditRecord.decode(world.registry, data)
        part.insert(i, (off, replace(rec, rule_ids=("forged",)).encode(world.registry)))
        return {i}
    if op == "swap":
        k = min(i + 1, len(part) - 1)
        part[i], part[k] = part[k], part[i]
        return {i, k} if k != i else set()
    part.insert(j, part[i])  # duplicate leaf i at position j
    return {i}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(OPS),
    st.integers(min_value=0, max_value=99),
    st.integers(min_value=0, max_value=100),
    st.sampled_from([1, 7, 16, 50]),
)
def test_single_tampering_is_located(op: str, i: int, j: int, batch: int) -> None:
    world = _world()
    exp, _ = build(world.registry, world.service, world.trust_bytes, records=100, batch=batch)
    blame = tamper(world, exp, op, i, j)
    if not blame:
        return  # swapping the last record with itself is no tampering
    report = _audit(world, exp)
    assert not report.ok, f"{op}@{i} passed: {report.to_text()}"
    located = {a.index for a in report.anomalies if a.kind.value.startswith("RECORD_")}
    ranges = [
        (a.index, a.index_end)
        for a in report.anomalies
        if a.index is not None and a.index_end is not None
    ]
    assert located & blame or any(lo <= b < hi for lo, hi in ranges for b in blame), (
        f"{op}@{i} (batch {batch}) not located: {report.to_text()}"
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(OPS), st.integers(0, 89), st.integers(0, 90)),
        min_size=2,
        max_size=5,
    )
)
def test_several_tamperings_never_pass_or_crash(ops: list[tuple[str, int, int]]) -> None:
    world = _world()
    exp, _ = build(world.registry, world.service, world.trust_bytes, records=100, batch=8)
    original = list(exp.partition())
    for op, i, j in ops:
        tamper(world, exp, op, i, j)
    if exp.partition() != original:  # (two swaps can undo each other)
        assert not _audit(world, exp).ok


_WORLD: list[World] = []


def _world() -> World:
    if not _WORLD:
        _WORLD.append(make_world(Registry.load(Path(__file__).parents[3] / "schemas")))
    return _WORLD[0]


def _audit(world: World, exp: Exported) -> AuditReport:
    with tempfile.TemporaryDirectory() as tmp:
        path = exp.write(Path(tmp) / "x.pxp")
        return Auditor(
            registry=world.registry,
            anchors=[world.root.public],
            options=AuditOptions(now=T0 + DAY),
        ).run(ExportFile(path))
