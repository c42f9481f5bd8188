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

Sealing (:mod:`puente.evidence.seal`; keys in :mod:`puente.evidence.enckeys`)::

    to = sealing_key(tl, member_holder("GT"), at=now)             # from the trust list
    sealed = seal_delivery(payload, to=to, notice_id=..., recipient="GT", delivery_id=...)
    opened = open_delivery(sealed.envelope, keys=KeyStore(dir).keyring("member:GT"), ...)
    seal_notice(notice, to=sealing_key(tl, node_holder("MX"), at=now), origin="MX")
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
from puente.evidence.enckeys import EncryptionKey, EncryptionPublicKey, KeyRing
from puente.evidence.keys import PublicKey, SigningKey
from puente.evidence.keystore import KeyStore
from puente.evidence.log import AuditLog, CheckpointRecord, LogState, audit_log_id
from puente.evidence.records import AuditRecord, Decision
from puente.evidence.seal import (
    Opened,
    Sealed,
    open_delivery,
    open_notice,
    seal_delivery,
    seal_notice,
    sealing_key,
)
from puente.evidence.trust import EncKeyEntry, KeyEntry, TrustList, Usage
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
    "EncKeyEntry",
    "EncryptionKey",
    "EncryptionPublicKey",
    "KeyEntry",
    "KeyRing",
    "KeyStore",
    "LogState",
    "Opened",
    "PublicKey",
    "Sealed",
    "SigningKey",
    "TrustList",
    "Usage",
    "VerifiedCheckpoint",
    "VerifiedDelivery",
    "Verifier",
    "audit_log_id",
    "open_delivery",
    "open_notice",
    "seal_delivery",
    "seal_notice",
    "sealing_key",
    "sign_receipt",
]
