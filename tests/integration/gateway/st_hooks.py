"""Schemathesis hooks for the gateway fuzz run (``SCHEMATHESIS_HOOKS``).

The fuzzing token belongs to an MX agency. Generated notices and receipts are made to speak for
MX, so that schema-valid bodies get past the origin check into the codec, the ledger and Kafka
instead of all stopping at 403 ORIGIN_MISMATCH.
"""

from __future__ import annotations

from typing import Any

import schemathesis

STATE = "MX"


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    """Set ``notice.origin`` and ``receipt.recipient`` to the caller's state when present."""
    if isinstance(body, dict):
        notice = body.get("notice")
        if isinstance(notice, dict) and "origin" in notice:
            notice["origin"] = STATE
        receipt = body.get("receipt")
        if isinstance(receipt, dict) and "recipient" in receipt:
            receipt["recipient"] = STATE
    return body
