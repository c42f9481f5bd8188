"""The warnings topic as people read it (``puente warnings list``, ``GET /v1/warnings``): each
record's signature checked, a second evaluator's copy listed once, a record that does not verify
listed with its reason and never moving an episode."""

from __future__ import annotations

from puente.codec.registry import Registry
from puente.evidence.keys import SigningKey
from puente.evidence.trust import KeyEntry, TrustList, Usage, service_holder
from puente.warnings.listing import WarningRecord, list_document, select
from puente.warnings.signing import WARNING_CONTEXT, sign
from tests.unit.warnings.conftest import surge_episode

EVALUATOR = SigningKey.generate("puente.svc/warnings")
TRUST = TrustList(
    1,
    0,
    1 << 50,
    (KeyEntry(EVALUATOR.public, service_holder("warnings"), frozenset({Usage.EARLY_WARNING}), 0),),
)


def _record(offset: int, body: bytes, key: SigningKey = EVALUATOR) -> WarningRecord:
    headers = sign(key, WARNING_CONTEXT, body, signed_at=1).headers()
    return WarningRecord(offset, body, tuple(headers))


def test_copies_forgeries_and_what_is_in_force(registry: Registry) -> None:
    started, ended = (w.encode(registry) for w in surge_episode())
    forged_end = ended.replace(b"detentions", b"detentionz")  # same id, other bytes
    altered = ended.replace(b"detentions", b"detentionx")
    stranger = SigningKey.generate("puente.svc/warnings")  # a key the list does not name
    records = [
        _record(0, started),
        _record(1, started),  # a second evaluator: the same bytes
        _record(2, forged_end, stranger),
        WarningRecord(3, altered, tuple(_record(3, ended).headers)),  # altered under a signature
        _record(4, started),  # the same bytes again, after a forgery: still one STARTED
        WarningRecord(5, b"\xc3\x01not a warning"),
        WarningRecord(6, None),  # a tombstone
    ]
    doc = list_document(records, registry, TRUST)
    assert doc["contract"] == "puente.warnings.list/v1"
    assert [(w["offset"], w["verified"], w["reason"]) for w in doc["warnings"]] == [
        (0, True, None),
        (2, False, "KEY_UNKNOWN"),
        (3, False, "SIGNATURE_INVALID"),
        (5, False, "UNKNOWN_SCHEMA"),  # the decoder's reason
    ]
    assert doc["warnings"][0]["signed_by"] == "service:warnings"
    # No forged ENDED ends the episode.
    assert [w["offset"] for w in doc["active"]] == [0]
    ended_doc = list_document([*records, _record(7, ended)], registry, TRUST)
    assert ended_doc["active"] == []
    assert select(ended_doc, active=True)["warnings"] == []
    assert select(ended_doc, trigger="nothing")["warnings"] == []
    # Without a trust list nothing is verified, and the records still tell the episode.
    bare = list_document([_record(0, started), _record(1, ended)], registry, None)
    assert {w["reason"] for w in bare["warnings"]} == {"TRUST_LIST_MISSING"}
    assert bare["active"] == []
