"""Equivocation reports: signed by the reporting witness, holding both log-signed checkpoints."""

from __future__ import annotations

import pytest

from puente.evidence.equivocation import (
    EquivocationError,
    EquivocationReport,
    reported_by,
    verify_report,
)
from puente.evidence.errors import MalformedError, UntrustedKeyError
from puente.evidence.log import AuditLog
from puente.evidence.note import Note
from puente.evidence.witness import Fork, ForkKind
from tests.unit.witness.federation import T0, Federation


def same_size_fork(fed: Federation, state: str = "MX") -> Fork:
    log = fed.log(state)
    other = AuditLog.from_state(log.state())
    a, b = fed.grow(log, 3, tag=b"a"), fed.grow(other, 3, tag=b"b")
    return Fork(ForkKind.SAME_SIZE, log.log_id, a.note, b.note)


def test_a_same_size_report_verifies_and_round_trips(fed: Federation) -> None:
    report = EquivocationReport(same_size_fork(fed), "GT", T0 + 9000)
    data = report.sign(fed.witnesses["GT"])
    assert verify_report(data, fed.verifier()) == report
    assert EquivocationReport.from_text(Note.parse(data).text) == report
    assert Note.parse(data).text.startswith("puente.equivocation/v1\nlog puente.audit/MX/0\n")


def test_an_inconsistent_report_verifies_only_while_the_proof_fails(fed: Federation) -> None:
    log = fed.log()
    fed.grow(log, 4)
    other = AuditLog.from_state(log.state())
    a8 = fed.grow(log, 4, tag=b"a")
    fed.grow(other, 4, tag=b"b")
    b12 = fed.grow(other, 4, tag=b"b")
    fork = Fork(ForkKind.INCONSISTENT, log.log_id, a8.note, b12.note, b12.consistency_proof)
    data = EquivocationReport(fork, "HN", T0 + 9000).sign(fed.witnesses["HN"])
    assert verify_report(data, fed.verifier()).fork.kind is ForkKind.INCONSISTENT
    honest = fed.grow(log, 4, tag=b"a")  # 12 (a), proven from 8 (a)
    fine = Fork(ForkKind.INCONSISTENT, log.log_id, a8.note, honest.note, honest.consistency_proof)
    with pytest.raises(EquivocationError):
        verify_report(
            EquivocationReport(fine, "HN", T0 + 9000).sign(fed.witnesses["HN"]), fed.verifier()
        )


def test_a_report_without_a_contradiction_is_refused(fed: Federation) -> None:
    fork = same_size_fork(fed)
    twice = Fork(ForkKind.SAME_SIZE, fork.log_id, fork.a, fork.a)
    data = EquivocationReport(twice, "GT", T0 + 9000).sign(fed.witnesses["GT"])
    with pytest.raises(EquivocationError):
        verify_report(data, fed.verifier())


def test_a_report_signed_by_another_key_than_the_witness_named_is_refused(fed: Federation) -> None:
    report = EquivocationReport(same_size_fork(fed), "GT", T0 + 9000)
    with pytest.raises(EquivocationError) as exc:
        verify_report(report.sign(fed.witnesses["HN"]), fed.verifier())
    assert exc.value.reason == "EQUIVOCATION_UNSIGNED"
    with pytest.raises(UntrustedKeyError) as exc2:
        verify_report(report.sign(fed.nodes["GT"]), fed.verifier())
    assert exc2.value.reason == "KEY_WRONG_USAGE"


def test_a_malformed_report_is_refused(fed: Federation) -> None:
    with pytest.raises(MalformedError):
        EquivocationReport.from_text("puente.equivocation/v1\nlog x\n")


def test_a_witness_finds_the_forks_of_its_own_valid_reports_only(fed: Federation) -> None:
    """What a restarted witness reads back from the equivocations topic (not to report twice)."""
    mine, theirs, forged = (same_size_fork(fed, s) for s in ("MX", "CR", "PA"))
    at = T0 + 9000
    records = [
        EquivocationReport(mine, "GT", at).sign(fed.witnesses["GT"]),
        EquivocationReport(theirs, "HN", at).sign(fed.witnesses["HN"]),
        EquivocationReport(forged, "GT", at).sign(fed.witnesses["HN"]),  # names GT, HN signed
        b"not a report",
    ]
    assert reported_by("GT", records, fed.verifier()) == {mine.key}
    assert reported_by("HN", records, fed.verifier()) == {theirs.key}
    assert reported_by("CO", records, fed.verifier()) == set()
