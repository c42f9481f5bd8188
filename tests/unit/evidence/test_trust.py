"""The trust list: text form, anchors, expiry, and verification "at a time" across rotation and
revocation."""

from __future__ import annotations

import pytest

from puente.evidence.errors import MalformedError, TrustListError, UntrustedKeyError
from puente.evidence.keys import SigningKey
from puente.evidence.note import Note
from puente.evidence.trust import (
    KeyEntry,
    TrustList,
    Usage,
    member_holder,
    service_holder,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000


@pytest.fixture
def root() -> SigningKey:
    return SigningKey.generate("puente.operator/root")


def make_list(*entries: KeyEntry, serial: int = 1) -> TrustList:
    return TrustList(serial, T0, T0 + 30 * DAY, entries)


def test_text_round_trips_and_is_a_signed_note(root: SigningKey) -> None:
    svc = SigningKey.generate("puente.svc/policy")
    mx = SigningKey.generate("puente.member/MX")
    tl = make_list(
        KeyEntry(svc.public, service_holder(), frozenset({Usage.DELIVERY, Usage.CHECKPOINT}), T0),
        KeyEntry(mx.public, member_holder("MX"), frozenset({Usage.RECEIPT}), T0, T0 + DAY, None),
    )
    text = tl.text()
    assert text.splitlines()[0] == "puente.trust-list"
    assert f"key {svc.public.vkey} service:policy delivery,checkpoint {T0} - -" in text
    assert TrustList.from_text(text) == tl
    data = tl.sign(root)
    opened = TrustList.open(data, [root.public], now=T0 + DAY)
    assert opened == tl and opened.signed_by == (root.key_id,) and not opened.problems
    assert Note.parse(data).to_bytes() == data


def test_anchor_and_expiry_are_enforced(root: SigningKey) -> None:
    tl = make_list()
    data = tl.sign(root)
    other = SigningKey.generate("puente.operator/root")
    cases = {
        "TRUST_LIST_UNTRUSTED": (data, [other.public], T0 + 1),
        "TRUST_LIST_EXPIRED": (data, [root.public], T0 + 30 * DAY),
        "TRUST_LIST_NOT_YET_VALID": (data, [root.public], T0 - 1),
        "TRUST_LIST_UNSIGNED": (tl.text().encode(), [root.public], T0 + 1),
    }
    for reason, (blob, anchors, now) in cases.items():
        with pytest.raises(TrustListError) as exc:
            TrustList.open(blob, anchors, now=now)
        assert exc.value.reason == reason
        lenient = TrustList.open(blob, anchors, now=now, strict=False)
        assert reason in lenient.problems
    # An edited text under the old signature fails the anchor check.
    forged = data.replace(b"serial 1", b"serial 2")
    with pytest.raises(TrustListError) as exc:
        TrustList.open(forged, [root.public], now=T0 + 1)
    assert exc.value.reason == "TRUST_LIST_UNTRUSTED"
    with pytest.raises(TrustListError) as exc:
        TrustList.open(b"garbage\n\n\xe2\x80\x94 x AAAAAAAAAAAAAAAAAAAA\n", [root.public], now=T0)
    assert exc.value.reason == "TRUST_LIST_MALFORMED"


def test_a_second_anchor_can_cosign(root: SigningKey) -> None:
    second = SigningKey.generate("puente.operator/root-2")
    data = TrustList.cosign(make_list().sign(root), second)
    tl = TrustList.open(data, [root.public, second.public], now=T0 + 1)
    assert tl.signed_by == (root.key_id, second.key_id)
    assert TrustList.open(data, [second.public], now=T0 + 1).signed_by == (second.key_id,)


def test_verification_at_a_time_across_rotation_and_revocation() -> None:
    old = SigningKey.generate("puente.svc/policy")
    new = SigningKey.generate("puente.svc/policy")
    usages = frozenset({Usage.DELIVERY})
    tl = make_list(KeyEntry(old.public, service_holder(), usages, T0))
    # Rotation: the old key ends at T0+10d, the new one starts at T0+9d (a day of overlap).
    tl = tl.retire(old.key_id, until=T0 + 10 * DAY).with_entry(
        KeyEntry(new.public, service_holder(), usages, T0 + 9 * DAY)
    )
    e_old, e_new = tl.entry(old.key_id), tl.entry(new.key_id)
    tl.check(e_old, at=T0 + 5 * DAY, usage=Usage.DELIVERY)  # before rotation: still valid
    tl.check(e_old, at=T0 + 9 * DAY + 1, usage=Usage.DELIVERY)  # overlap: both valid
    tl.check(e_new, at=T0 + 9 * DAY + 1, usage=Usage.DELIVERY)
    with pytest.raises(UntrustedKeyError) as exc:
        tl.check(e_old, at=T0 + 10 * DAY, usage=Usage.DELIVERY)
    assert exc.value.reason == "KEY_EXPIRED"
    with pytest.raises(UntrustedKeyError) as exc:
        tl.check(e_new, at=T0 + DAY, usage=Usage.DELIVERY)
    assert exc.value.reason == "KEY_NOT_YET_VALID"
    # Revocation from T0+20d: earlier evidence verifies, later evidence fails.
    tl = tl.revoke(new.key_id, since=T0 + 20 * DAY)
    e_new = tl.entry(new.key_id)
    tl.check(e_new, at=T0 + 20 * DAY - 1, usage=Usage.DELIVERY)
    with pytest.raises(UntrustedKeyError) as exc:
        tl.check(e_new, at=T0 + 20 * DAY, usage=Usage.DELIVERY)
    assert exc.value.reason == "KEY_REVOKED"
    # Wrong usage and wrong holder are refused whatever the time.
    with pytest.raises(UntrustedKeyError) as exc:
        tl.check(e_old, at=T0 + DAY, usage=Usage.CHECKPOINT)
    assert exc.value.reason == "KEY_WRONG_USAGE"
    with pytest.raises(UntrustedKeyError) as exc:
        tl.check(e_old, at=T0 + DAY, usage=Usage.DELIVERY, holders=[member_holder("MX")])
    assert exc.value.reason == "KEY_WRONG_HOLDER"
    with pytest.raises(UntrustedKeyError) as exc:
        tl.entry("0123456789abcdef")
    assert exc.value.reason == "KEY_UNKNOWN"


def test_structural_errors_are_refused() -> None:
    k = SigningKey.generate("puente.svc/policy")
    e = KeyEntry(k.public, service_holder(), frozenset({Usage.DELIVERY}), T0)
    with pytest.raises(MalformedError):
        make_list(e, e)
    with pytest.raises(MalformedError):
        TrustList(1, T0, T0)
    with pytest.raises(MalformedError):
        KeyEntry(k.public, "member:mexico", frozenset({Usage.DELIVERY}), T0)
    with pytest.raises(MalformedError):
        KeyEntry(k.public, service_holder(), frozenset(), T0)
    with pytest.raises(MalformedError):
        KeyEntry(k.public, service_holder(), frozenset({Usage.DELIVERY}), T0, T0)
    text = make_list(e).text()
    for bad in [
        text.replace("serial 1", "serial 01"),
        text.replace("delivery", "delivery,delivery"),
        text.replace("delivery", "teleport"),
        text.replace("puente.trust-list", "puente.trust-lists"),
        text.replace(f"{T0} - -", f"{T0} -"),
    ]:
        with pytest.raises(MalformedError):
            TrustList.from_text(bad)
