"""Transformations: pseudonyms link for one recipient and not across two; every payload stays a
valid record of its schema (encoded and decoded again with fastavro)."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
from typing import Any

import fastavro
import pytest

from puente.policy.engine import PolicySet
from puente.policy.model import Op, Transform
from puente.policy.transforms import PseudonymKeys, TransformError, compile_transform
from tests.unit.policy.conftest import SCHEMAS
from tests.unit.policy.notices import case_notice, consular, consular_person, document, person

CASE_SCHEMA = json.loads((SCHEMAS / "CaseNotice" / "v1.avsc").read_text())
CONS_SCHEMA = json.loads((SCHEMAS / "ConsularNotification" / "v1.avsc").read_text())


def _ml_notice(doc_number: str) -> dict[str, Any]:
    """A money-laundering case: every member gets it with pseudonymised document numbers."""
    return case_notice(
        persons=[person("p1", ("GT",), identity_documents=[document(doc_number)])],
        crime_types=("MONEY_LAUNDERING",),
    )


def _doc(d: Any) -> str:
    return str(d.payload["persons"][0]["identity_documents"][0]["number"])


def test_pseudonyms_link_for_one_recipient(ps: PolicySet, keys: PseudonymKeys) -> None:
    a = ps.decide(_ml_notice("G123456"), "CaseNotice", "BR", keys)
    b = ps.decide(_ml_notice("G123456"), "CaseNotice", "BR", keys)
    c = ps.decide(_ml_notice("G999999"), "CaseNotice", "BR", keys)
    assert "persons[].identity_documents[].number:pseudonymise" in a.transforms
    assert _doc(a) == _doc(b) != _doc(c)
    assert _doc(a).startswith("psn:") and len(_doc(a)) == 4 + 32
    assert "G123456" not in _doc(a)


def test_money_laundering_rules_generalise_persons_as_described(
    ps: PolicySet, keys: PseudonymKeys
) -> None:
    """Every state's money-laundering rule says "persons generalised": no name, alias, document
    number or exact birth date in clear, for any recipient; the accounts go as published."""
    suspect = person(
        "p1", ("GT",), aliases=["El Contador"], identity_documents=[document("G123456")]
    )
    account = {
        "kind": "IBAN",
        "value": "GT82TRAJ01020000001210029690",
        "institution": None,
        "country": "GT",
        "holder_ref": "p1",
    }
    for origin in ps.members:
        notice = case_notice(
            origin=origin,
            persons=[suspect],
            crime_types=("MONEY_LAUNDERING",),
            financial_identifiers=[account],
        )
        shared = [
            d
            for d in ps.decide_all(notice, "CaseNotice", keys)
            if d.shared and d.rules[0] == f"{origin.lower()}.case.money-laundering"
        ]
        assert len(shared) >= 10, origin
        for d in shared:
            assert d.payload is not None
            [p] = d.payload["persons"]
            values = [p["given_names"], p["family_names"], *p["aliases"]]
            values += [doc["number"] for doc in p["identity_documents"]]
            assert all(v.startswith("psn:") for v in values), (origin, d.recipient, values)
            assert p["date_of_birth"] == dt.date(1990, 1, 1) and d.payload["summary"] == ""
            assert d.payload["financial_identifiers"] == [account]


def test_pseudonyms_do_not_link_across_recipients(ps: PolicySet, keys: PseudonymKeys) -> None:
    notice = _ml_notice("G123456")
    pseudonyms = {
        d.recipient: _doc(d)
        for d in ps.decide_all(notice, "CaseNotice", keys)
        if d.action == "share_transformed" and "summary:drop" in d.transforms
    }
    assert len(pseudonyms) >= 15
    assert len(set(pseudonyms.values())) == len(pseudonyms)


def test_pseudonyms_depend_on_the_secret(ps: PolicySet) -> None:
    notice = _ml_notice("G123456")
    one = ps.decide(notice, "CaseNotice", "BR", PseudonymKeys(b"a" * 32))
    two = ps.decide(notice, "CaseNotice", "BR", PseudonymKeys(b"b" * 32))
    assert _doc(one) != _doc(two)
    with pytest.raises(ValueError):
        PseudonymKeys(b"short")


def test_pseudonym_scope_links_across_notice_types() -> None:
    keys = PseudonymKeys(b"s" * 32).for_recipient("GT")
    tr = Transform(field="persons[].identity_documents[].number", op=Op.PSEUDONYMISE)
    tr2 = Transform(field="person.identity_documents[].number", op=Op.PSEUDONYMISE)
    case = compile_transform(CASE_SCHEMA, tr)(case_notice(persons=[person()]), keys)
    cons = compile_transform(CONS_SCHEMA, tr2)(
        consular(person=consular_person(identity_documents=[document("DOC-p1")])), keys
    )
    assert (
        case["persons"][0]["identity_documents"][0]["number"]
        == cons["person"]["identity_documents"][0]["number"]
    )


def test_year_only_mask_and_drop() -> None:
    keys = PseudonymKeys(b"s" * 32).for_recipient("GT")
    notice = case_notice(
        persons=[person(aliases=["El Flaco", "Flaquito"]), person("p2", date_of_birth=None)]
    )
    original = copy.deepcopy(notice)
    out = compile_transform(
        CASE_SCHEMA, Transform(field="persons[].date_of_birth", op=Op.YEAR_ONLY)
    )(notice, keys)
    assert out["persons"][0]["date_of_birth"] == dt.date(1990, 1, 1)
    assert out["persons"][1]["date_of_birth"] is None
    out = compile_transform(
        CASE_SCHEMA,
        Transform(field="persons[].identity_documents[].number", op=Op.MASK, keep_last=2),
    )(notice, keys)
    assert out["persons"][0]["identity_documents"][0]["number"] == "***p1"
    out = compile_transform(CASE_SCHEMA, Transform(field="persons[].aliases", op=Op.MASK))(
        notice, keys
    )
    assert out["persons"][0]["aliases"] == ["***", "***"]
    out = compile_transform(CASE_SCHEMA, Transform(field="persons", op=Op.DROP))(notice, keys)
    assert out["persons"] == []
    out = compile_transform(CASE_SCHEMA, Transform(field="persons[].sex", op=Op.DROP))(notice, keys)
    assert out["persons"][0]["sex"] == "UNKNOWN"
    out = compile_transform(CONS_SCHEMA, Transform(field="consular_contact.post", op=Op.MASK))(
        consular(), keys
    )
    assert out["consular_contact"] is None  # a null record on the path is left alone
    assert notice == original


@pytest.mark.parametrize(
    ("schema", "field", "op", "message"),
    [
        (CASE_SCHEMA, "persons[].passport", Op.DROP, "no field 'passport'"),
        (CASE_SCHEMA, "summary", Op.YEAR_ONLY, "needs a date"),
        (CASE_SCHEMA, "notice_id", Op.PSEUDONYMISE, "uuid must stay a uuid"),
        (CASE_SCHEMA, "handling.code", Op.DROP, "no default"),
        (CASE_SCHEMA, "persons.given_names", Op.MASK, "not a record"),
        (CASE_SCHEMA, "summary[]", Op.MASK, "not an array"),
        (CASE_SCHEMA, "persons[]", Op.DROP, "drop the array"),
        (CONS_SCHEMA, "person.minor", Op.MASK, "needs a string"),
        (CASE_SCHEMA, "persons..x", Op.DROP, "malformed"),
    ],
)
def test_transform_refused_at_load(
    schema: dict[str, Any], field: str, op: Op, message: str
) -> None:
    with pytest.raises(TransformError, match=message):
        compile_transform(schema, Transform(field=field, op=op))


def _roundtrip(schema: dict[str, Any], record: Any) -> Any:
    parsed = fastavro.parse_schema(copy.deepcopy(schema))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    buf.seek(0)
    return fastavro.schemaless_reader(buf, parsed)


NOTICES = [
    (
        "CaseNotice",
        case_notice(
            persons=[
                person("p1", ("GT",)),
                person("p2", ("HN",), protection_status="REFUGEE"),
                person("p3", ("CO",), minor=True, trafficking_victim=True, role="VICTIM"),
            ],
            crime_types=("MIGRANT_SMUGGLING", "MONEY_LAUNDERING", "DOCUMENT_FRAUD"),
            financial_identifiers=[
                {
                    "kind": "IBAN",
                    "value": "GT00TEST",
                    "institution": None,
                    "country": "GT",
                    "holder_ref": "p2",
                }
            ],
        ),
    ),
    (
        "CaseNotice",
        case_notice(
            origin="US", persons=[person("p1", ("CO",), protection_status="ASYLUM_SEEKER")]
        ),
    ),
    (
        "CaseNotice",
        case_notice(
            origin="CO",
            crime_types=("DOCUMENT_FRAUD",),
            permitted_purposes=["CRIMINAL_INVESTIGATION", "BORDER_MANAGEMENT"],
        ),
    ),
    (
        "ConsularNotification",
        consular(
            origin="US",
            event="ARREST",
            person=consular_person(("BZ", "GT"), requested_consular_notification=False),
        ),
    ),
]


@pytest.mark.parametrize(("notice_type", "notice"), NOTICES)
def test_every_payload_is_a_valid_record(
    notice_type: str, notice: dict[str, Any], ps: PolicySet, keys: PseudonymKeys
) -> None:
    schema = CASE_SCHEMA if notice_type == "CaseNotice" else CONS_SCHEMA
    shared = 0
    for d in ps.decide_all(notice, notice_type, keys):
        if d.payload is None:
            continue
        shared += 1
        assert _roundtrip(schema, d.payload) == _roundtrip(schema, dict(d.payload))
    assert shared > 0


def test_floor_removal_takes_the_persons_accounts_along(ps: PolicySet, keys: PseudonymKeys) -> None:
    notice_type, notice = NOTICES[0]
    d = ps.decide(notice, notice_type, "HN", keys)
    assert d.removed_persons == ("p2", "p3")
    assert d.payload is not None
    assert [p["person_ref"] for p in d.payload["persons"]] == ["p1"]
    assert d.payload["financial_identifiers"] == []
    assert d.payload["summary"] == ""


def test_pseudonym_is_hmac_sha256_as_documented() -> None:
    import hashlib
    import hmac

    secret = b"s" * 32
    key = hmac.digest(secret, b"puente.pseudonym.v1\x00GT", "sha256")
    expected = hmac.new(key, b"number\x00G123", hashlib.sha256).hexdigest()[:32]
    assert (
        PseudonymKeys(secret).for_recipient("GT").pseudonym(b"number", "G123") == "psn:" + expected
    )
