"""Cursors: opaque strings that encode, per partition, the next Kafka offset to read.

Form: ``<kind>1.<base64url("p:o,p:o,...")>``, where ``kind`` is ``d`` (deliveries) or ``r``
(rejections), so a cursor of one stream is refused by the other. A partition a cursor does not
name is read from its beginning. Clients must treat cursors as opaque; the form may change
under a new version digit.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Literal

from puente_gateway.errors import BadRequest

Kind = Literal["d", "r"]
_VERSION = "1"
_MAX_PARTITIONS = 10_000
MAX_CURSOR = 4096  # ample for hundreds of partitions, well under HTTP line limits
_BLOB = re.compile(r"[A-Za-z0-9_-]*")


def encode_cursor(kind: Kind, offsets: Mapping[int, int]) -> str:
    """The cursor of per-partition next offsets."""
    text = ",".join(f"{p}:{o}" for p, o in sorted(offsets.items()))
    return f"{kind}{_VERSION}." + base64.urlsafe_b64encode(text.encode("ascii")).decode(
        "ascii"
    ).rstrip("=")


def decode_cursor(kind: Kind, cursor: str | None) -> dict[int, int]:
    """Per-partition next offsets of a cursor; ``{}`` for none (``None``; an empty string is not
    a cursor). BadRequest ``CURSOR_INVALID``."""
    if cursor is None:
        return {}
    prefix = f"{kind}{_VERSION}."
    if len(cursor) > MAX_CURSOR or not cursor.startswith(prefix):
        raise _invalid()
    blob = cursor[len(prefix) :]
    if not _BLOB.fullmatch(blob):
        raise _invalid()
    try:
        text = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise _invalid() from None
    offsets: dict[int, int] = {}
    if not text:
        return offsets
    for item in text.split(","):
        p, sep, o = item.partition(":")
        if not sep or not p.isdigit() or not o.isdigit() or not p.isascii() or not o.isascii():
            raise _invalid()
        part, off = int(p), int(o)
        if part >= _MAX_PARTITIONS or off >= 2**63 or part in offsets:
            raise _invalid()
        offsets[part] = off
    return offsets


def _invalid() -> BadRequest:
    return BadRequest(
        "the cursor was not issued by this endpoint; start without one or use a cursor it gave",
        reason="CURSOR_INVALID",
    )
