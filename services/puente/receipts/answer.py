"""A consular officer's answer to a delivery, signed and sent: what ``puente receipts ack`` and
the demo do (the gateway's ``POST /v1/receipts`` takes receipts signed elsewhere).

The answer is a DeliveryReceipt with an acknowledgment (ACKNOWLEDGED, or DECLINED with a reason
code, and an optional case reference), signed with the recipient state's own receipt key and
produced to its receipts topic as its own principal, the signature in the record's headers.
"""

from __future__ import annotations

import uuid
from typing import Any

from puente.codec.registry import Registry
from puente.evidence.keys import SigningKey
from puente.evidence.receipt import (
    Acknowledgment,
    AcknowledgmentDecision,
    Receipt,
    check_receipt,
)
from puente.evidence.verify import sign_receipt
from puente.kafka.clients import producer, start
from puente.kafka.connection import KafkaEndpoint
from puente.secrets import Credential
from puente.topics import RECEIPT_KEY_ID_HEADER, RECEIPT_SIGNATURE_HEADER, RECEIPTS, Naming


def acknowledgment(
    *,
    recipient: str,
    notice_id: str,
    delivery_digest: bytes,
    log_id: str | None,
    log_index: int | None,
    now: int,
    received_at: int | None = None,
    decline: str | None = None,
    case_reference: str | None = None,
) -> Receipt:
    """The officer's answer at ``now``: ACKNOWLEDGED, or DECLINED with reason ``decline``.
    ``received_at``: when the state's software received the delivery, if known (else now).
    Raises ``RECEIPT_MALFORMED`` for a reason or case reference the rules refuse."""
    return check_receipt(
        Receipt(
            receipt_id=str(uuid.uuid4()),
            notice_id=notice_id,
            recipient=recipient,
            delivery_digest=delivery_digest.hex(),
            log_id=log_id,
            log_index=log_index,
            received_at=min(received_at if received_at is not None else now, now),
            acknowledgment=Acknowledgment(
                decision=AcknowledgmentDecision.DECLINED
                if decline is not None
                else AcknowledgmentDecision.ACKNOWLEDGED,
                acknowledged_at=now,
                reason_code=decline,
                case_reference=case_reference,
            ),
        )
    )


async def send_receipt(
    *,
    endpoint: KafkaEndpoint,
    credential: Credential,
    naming: Naming,
    registry: Registry,
    key: SigningKey,
    receipt: Receipt,
) -> dict[str, Any]:
    """Sign ``receipt`` with ``key`` (its recipient's receipt key) and produce it to the
    recipient's receipts topic as ``credential`` (its own principal); where it landed."""
    data = receipt.encode(registry)
    topic = naming.topic(RECEIPTS, receipt.recipient)
    p = producer(endpoint, credential)
    await start(p, endpoint, credential)
    try:
        md = await p.send_and_wait(
            topic,
            data,
            key=receipt.notice_id.encode(),
            headers=[
                (RECEIPT_KEY_ID_HEADER, key.key_id.encode()),
                (RECEIPT_SIGNATURE_HEADER, sign_receipt(key, data)),
            ],
        )
    finally:
        await p.stop()
    return {"key_id": key.key_id, "topic": topic, "partition": md.partition, "offset": md.offset}
