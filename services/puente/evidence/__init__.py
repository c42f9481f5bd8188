"""Evidence: keys and the trust list, signed deliveries, the Merkle audit log, checkpoints, and
the auditor. Pure objects; files only at the edges (key store, export files).

The policy service's calls, in order of use::

    keys = KeyStore(dir); key = keys.current("service:policy", usage=Usage.DELIVERY, at=now)
    log = AuditLog(audit_log_id("MX", 0))            # or AuditLog.from_state(LogState.decode(...))
    placed, value = log.append_record(registry, AuditRecord(...))   # produce `value` to audit
    cp = log.checkpoint(key, time_ms=now)            # produce cp.encode(registry) to checkpoints
    log.state().encode(registry)                     # persist with the same transaction
    DeliverySigner(key, registry).sign(statement, payload)          # per-delivery mode
    batch = DeliveryBatch(registry, "MX/0/1234"); batch.add(...); batch.seal(key, time_ms=now)

and a subscriber's::

    tl = TrustList.open(trust_list_bytes, [anchor], now=now)
    Verifier(trust_list=tl, registry=registry).verify_delivery(value, recipient="GT")
"""

from puente.evidence.checkpoint import Checkpoint
from puente.evidence.delivery import (
    Delivery,
    DeliveryAction,
    DeliveryBatch,
    DeliveryDecision,
    DeliverySigner,
    DeliveryStatement,
)
from puente.evidence.keys import PublicKey, SigningKey
from puente.evidence.keystore import KeyStore
from puente.evidence.log import AuditLog, CheckpointRecord, LogState, audit_log_id
from puente.evidence.records import AuditRecord, Decision
from puente.evidence.trust import KeyEntry, TrustList, Usage
from puente.evidence.verify import VerifiedCheckpoint, VerifiedDelivery, Verifier, sign_receipt

__all__ = [
    "AuditLog",
    "AuditRecord",
    "Checkpoint",
    "CheckpointRecord",
    "Decision",
    "Delivery",
    "DeliveryAction",
    "DeliveryBatch",
    "DeliveryDecision",
    "DeliverySigner",
    "DeliveryStatement",
    "KeyEntry",
    "KeyStore",
    "LogState",
    "PublicKey",
    "SigningKey",
    "TrustList",
    "Usage",
    "VerifiedCheckpoint",
    "VerifiedDelivery",
    "Verifier",
    "audit_log_id",
    "sign_receipt",
]
