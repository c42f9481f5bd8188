"""What the generator makes: a record and the full name of its schema."""

from __future__ import annotations

from typing import Any, NamedTuple

CASE_NOTICE = "puente.CaseNotice"
CONSULAR_NOTIFICATION = "puente.ConsularNotification"
DELIVERY_RECEIPT = "puente.DeliveryReceipt"


class Notice(NamedTuple):
    """A generated record and the full name of its schema."""

    name: str
    record: dict[str, Any]
