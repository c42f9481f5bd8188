"""The engine on what the policy service will really hand it: synthetic notices encoded and
decoded by the codec; and every payload it returns must encode again."""

from __future__ import annotations

import copy

import pytest

from puente.codec.wire import decode, encode
from puente.policy.engine import PolicySet
from puente.policy.transforms import PseudonymKeys
from puente.synth import Generator
from tests.unit.policy.notices import registry


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_decoded_synthetic_notices_decide_and_reencode(
    seed: int, ps: PolicySet, keys: PseudonymKeys
) -> None:
    reg = registry()
    gen = Generator(seed)
    actions: set[str] = set()
    for i in range(40):
        name = "puente.ConsularNotification" if i % 3 == 2 else "puente.CaseNotice"
        record = gen.consular_notification() if i % 3 == 2 else gen.case_notice()
        notice = decode(reg, encode(reg, name, record))
        before = copy.deepcopy(notice)
        decisions = ps.decide_all(notice, name, keys)
        assert len(decisions) == 20
        for d in decisions:
            actions.add(d.action)
            if d.payload is not None:
                again = decode(reg, encode(reg, name, dict(d.payload)))
                assert again["notice_id"] == notice["notice_id"]
        assert notice == before
    assert {"withhold", "share_transformed"} <= actions
