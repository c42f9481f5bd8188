"""The notice types — the records agencies publish — by name: the one place these names are
defined (the schemas are ``schemas/<short name>/v<N>.avsc``)."""

from __future__ import annotations

CASE_NOTICE = "puente.CaseNotice"
CONSULAR_NOTIFICATION = "puente.ConsularNotification"
NOTICE_TYPES = (CASE_NOTICE, CONSULAR_NOTIFICATION)
"""Full names: what a single-object header's fingerprint resolves to, and what ingress takes."""
NOTICE_SHORT_NAMES = tuple(name.removeprefix("puente.") for name in NOTICE_TYPES)
"""``CaseNotice``, ``ConsularNotification``: how policies name the types (``types: [...]``)."""


def short_name(name: str) -> str:
    """``CaseNotice`` for ``puente.CaseNotice`` (a short name is returned unchanged)."""
    return name.removeprefix("puente.")
