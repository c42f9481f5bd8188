"""What the generator makes: a record and the full name of its schema."""

from __future__ import annotations

from typing import Any, NamedTuple

from puente.notices import CASE_NOTICE, CONSULAR_NOTIFICATION

__all__ = ["CASE_NOTICE", "CONSULAR_NOTIFICATION", "DELIVERY_RECEIPT", "Notice"]

DELIVERY_RECEIPT = "puente.DeliveryReceipt"


class Notice(NamedTuple):
    """A generated record and the full name of its schema."""

    name: str
    record: dict[str, Any]
