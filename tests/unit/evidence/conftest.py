"""Shared fixtures: a registry over schemas/, keys, and a signed trust list."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from puente.codec.registry import Registry
from puente.evidence.delivery import DeliveryDecision, DeliveryStatement
from puente.evidence.keys import SigningKey
from puente.evidence.records import AuditDecision, AuditRecord
from puente.evidence.trust import KeyEntry, TrustList, Usage, member_holder, service_holder

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000


@pytest.fixture(scope="session")
def registry() -> Registry:
    return Registry.load(SCHEMAS)


@dataclass
class World:
    """A small Puente: operator root, policy-service key, two member keys, a signed list."""

    registry: Registry
    root: SigningKey
    service: SigningKey
    mx: SigningKey
    gt: SigningKey
    trust_list: TrustList
    trust_bytes: bytes

    def payload(self, n: int = 0) -> bytes:
        """Something shaped like a single-object-encoded notice (header + body)."""
        return b"\xc3\x01" + bytes(range(8)) + f"notice body {n}".encode() * 20

    def statement(self, payload: bytes, *, n: int = 0, recipient: str = "GT") -> DeliveryStatement:
        return DeliveryStatement.for_payload(
            payload,
            payload_schema="puente.CaseNotice",
            delivery_id=str(uuid.UUID(int=n + 1)),
            notice_id=str(uuid.UUID(int=10_000 + n)),
            origin="MX",
            recipient=recipient,
            original_sha256=hashlib.sha256(b"original %d" % n).digest(),
            decision=DeliveryDecision(
                action=AuditDecision.TRANSFORMED,
                rule_ids=("mx.share.gt", "floor.minor"),
                legal_bases=("MX-GT MLAT art. 4",),
                handling_code="H2",
                purposes=("CRIMINAL_INVESTIGATION",),
                retention_days=365,
            ),
            policy_set_version="2026.01.1",
            notice_created_at=T0 + n,
            decided_at=T0 + 10 + n,
            signed_at=T0 + 20 + n,
            audit_log_id="puente.audit/MX/0",
            audit_leaf_index=n,
        )


def audit_record(n: int, *, decision: AuditDecision = AuditDecision.DELIVERED) -> AuditRecord:
    """The n-th decision of a synthetic stream (no personal data, as in production)."""
    sent = decision in (AuditDecision.DELIVERED, AuditDecision.TRANSFORMED)
    return AuditRecord(
        decided_at=T0 + n,
        ingress_topic="puente.ingress.MX",
        ingress_partition=0,
        ingress_offset=n // 3,
        notice_id=str(uuid.UUID(int=n // 3 + 1)),
        notice_schema="puente.CaseNotice",
        schema_fingerprint=bytes(8),
        origin="MX",
        recipient=None if decision is AuditDecision.REJECTED else ("GT", "HN", "US")[n % 3],
        decision=decision,
        reason_code="PROTECTION_FLOOR_ASYLUM" if decision is AuditDecision.WITHHELD else None,
        rule_ids=("floor.asylum",) if decision is AuditDecision.WITHHELD else ("mx.share",),
        legal_bases=("LA Declaration",),
        policy_set_version="2026.01.1",
        original_sha256=hashlib.sha256(b"notice %d" % (n // 3)).digest(),
        delivered_sha256=hashlib.sha256(b"delivered %d" % n).digest() if sent else None,
        delivery_id=str(uuid.UUID(int=1_000_000 + n)) if sent else None,
        delivery_digest=hashlib.sha256(b"delivery %d" % n).digest() if sent else None,
    )


def make_world(registry: Registry) -> World:
    root = SigningKey.generate("puente.operator/root")
    service = SigningKey.generate("puente.svc/policy")
    mx = SigningKey.generate("puente.member/MX")
    gt = SigningKey.generate("puente.member/GT")
    tl = TrustList(
        1,
        T0 - DAY,
        T0 + 365 * DAY,
        (
            KeyEntry(
                service.public,
                service_holder(),
                frozenset({Usage.DELIVERY, Usage.CHECKPOINT}),
                T0 - DAY,
            ),
            KeyEntry(mx.public, member_holder("MX"), frozenset({Usage.RECEIPT}), T0 - DAY),
            KeyEntry(gt.public, member_holder("GT"), frozenset({Usage.RECEIPT}), T0 - DAY),
        ),
    )
    data = tl.sign(root)
    opened = TrustList.open(data, [root.public], now=T0)
    return World(registry, root, service, mx, gt, opened, data)


@pytest.fixture
def world(registry: Registry) -> World:
    return make_world(registry)
