"""Validation of an ingress record: the bytes, then the schema, then the meaning.

Every refusal is a :class:`Refusal` with a stable reason code, the fields at fault and a message
the origin's officers can act on. Messages name fields and rules, never values (a value may be
personal data).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from puente.codec.errors import DecodeError
from puente.codec.registry import Registry
from puente.codec.wire import decode, header_fingerprint
from puente.errors import PuenteError
from puente.notices import NOTICE_TYPES

_COUNTRY = re.compile(r"^[A-Z]{2}$")

# Stable reason codes of notice-level refusals (docs/node.md explains each).
EMPTY_RECORD = "EMPTY_RECORD"
TOO_LARGE = "TOO_LARGE"
NOT_A_NOTICE = "NOT_A_NOTICE"
ORIGIN_MISMATCH = "ORIGIN_MISMATCH"
KEY_NOT_NOTICE_ID = "KEY_NOT_NOTICE_ID"
INVALID_FIELD = "INVALID_FIELD"
CREATED_IN_FUTURE = "CREATED_IN_FUTURE"
TOO_OLD = "TOO_OLD"
DUPLICATE_NOTICE = "DUPLICATE_NOTICE"
NOTICE_ID_REUSED = "NOTICE_ID_REUSED"
POLICY_FAILED = "POLICY_FAILED"
INTERNAL_ERROR = "INTERNAL_ERROR"

_DECODE_MESSAGES = {
    "BAD_MAGIC": "the record is not Avro single-object encoded (it must start with C3 01); "
    "publish notices with the Puente codec or an Avro library's single-object encoder",
    "UNKNOWN_SCHEMA": "the record's schema fingerprint is not registered in Puente; "
    "use a published schema version (GET /v1/schemas or `puente schemas list`)",
    "SCHEMA_MISMATCH": "the record's schema cannot be read as a notice of that type",
    "TRUNCATED": "the record ends before the notice does (truncated bytes)",
    "TRAILING_BYTES": "bytes follow the end of the notice; send exactly one encoded notice",
    "INVALID_DATA": "the record holds an impossible Avro value",
}


@dataclass(frozen=True)
class Limits:
    """What an ingress record may be."""

    max_bytes: int = 256 * 1024
    max_clock_skew_s: float = 300.0  # a notice created later than now + skew is refused
    max_age_days: int = 730  # older notices are refused: they belong to a manual channel
    max_retention_days: int = 5 * 365  # INTERPOL: data kept initially no longer than 5 years

    @property
    def dedupe_horizon_ms(self) -> int:
        """How long after a notice's ``created_at`` its id must be remembered: later, any notice
        created then is refused as TOO_OLD anyway (plus the skew: replicas' clocks differ)."""
        return int((self.max_age_days * 86_400 + self.max_clock_skew_s) * 1000)


class Refusal(PuenteError):
    """A notice Puente refuses as a whole."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        fields: tuple[str, ...] = (),
        notice_id: str | None = None,
        notice_type: str | None = None,
        fingerprint: bytes | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.fields = fields
        self.notice_id = notice_id
        self.notice_type = notice_type
        self.fingerprint = fingerprint


@dataclass(frozen=True)
class ValidNotice:
    """A decoded notice that passed every check."""

    notice_type: str  # full name, e.g. puente.CaseNotice
    notice: dict[str, Any]
    notice_id: str
    fingerprint: bytes  # 8 bytes, as in the single-object header
    created_at_ms: int


def validate(
    registry: Registry,
    value: bytes | None,
    *,
    key: bytes | None,
    origin: str,
    now: dt.datetime,
    limits: Limits,
) -> ValidNotice:
    """Decode and check one ingress record published to ``origin``'s ingress topic."""
    if not value:
        raise Refusal(EMPTY_RECORD, "the record has no value; publish an encoded notice")
    if len(value) > limits.max_bytes:
        raise Refusal(
            TOO_LARGE,
            f"the record is {len(value)} bytes, over the limit of {limits.max_bytes}; "
            "split the case into several notices linked by related_notice_ids",
        )
    # An unknown fingerprint or a short header: decode() below names the problem.
    header = header_fingerprint(value)
    writer = registry.by_fingerprint(header) if header is not None else None
    if writer is not None and writer.full_name not in NOTICE_TYPES:
        raise Refusal(
            NOT_A_NOTICE,
            f"a {writer.full_name} record is not a notice; ingress topics take "
            f"{' or '.join(NOTICE_TYPES)}",
            fingerprint=header,
        )
    try:
        notice = decode(registry, value, reader=writer.full_name if writer else None)
    except DecodeError as exc:
        raise Refusal(
            exc.reason,
            _DECODE_MESSAGES.get(exc.reason, str(exc)),
            fields=(exc.path,) if exc.path else (),
            fingerprint=header if writer is not None else None,
        ) from exc
    assert writer is not None and header is not None  # decode() succeeded: the header is known
    fingerprint = header
    notice_type = writer.full_name
    notice_id = str(notice["notice_id"])

    def refuse(reason: str, message: str, *fields: str) -> Refusal:
        return Refusal(
            reason,
            message,
            fields=fields,
            notice_id=notice_id,
            notice_type=notice_type,
            fingerprint=fingerprint,
        )

    if notice["origin"] != origin:
        raise refuse(
            ORIGIN_MISMATCH,
            f"the notice names another origin than the state of the topic it was published to "
            f"({origin}); a state publishes only its own notices",
            "origin",
        )
    if key != notice_id.encode():
        # Keying by notice id puts every copy of a notice in one partition, whose single
        # writer is the only one that can recognise a re-sent notice.
        raise refuse(
            KEY_NOT_NOTICE_ID,
            "the Kafka record key must be the notice_id (UTF-8), so that re-sent notices "
            "are recognised; the gateway and the Puente client do this for you",
        )
    created: dt.datetime = notice["created_at"]
    if created > now + dt.timedelta(seconds=limits.max_clock_skew_s):
        raise refuse(
            CREATED_IN_FUTURE,
            "created_at is in the future; check the publishing system's clock (UTC)",
            "created_at",
        )
    if created < now - dt.timedelta(days=limits.max_age_days):
        raise refuse(
            TOO_OLD,
            f"created_at is more than {limits.max_age_days} days ago; older cases go through "
            "the manual channel",
            "created_at",
        )
    bad = _meaning_problems(notice_type, notice, limits, now)
    if bad:
        raise refuse(
            INVALID_FIELD,
            "; ".join(f"{path}: {problem}" for path, problem in bad),
            *(path for path, _ in bad),
        )
    return ValidNotice(notice_type, notice, notice_id, fingerprint, int(created.timestamp() * 1000))


def _meaning_problems(
    notice_type: str,
    notice: Mapping[str, Any],
    limits: Limits,
    now: dt.datetime,
) -> list[tuple[str, str]]:
    """Checks the schema cannot express: codes, counts, ranges, coherence."""
    problems: list[tuple[str, str]] = []

    def country(path: str, value: Any) -> None:
        if not isinstance(value, str) or not _COUNTRY.match(value):
            problems.append((path, "not an ISO 3166-1 alpha-2 code (two capital letters)"))

    if notice_type == "puente.CaseNotice":
        if not notice["crime_types"]:
            problems.append(("crime_types", "at least one crime type is required"))
        if not notice["permitted_purposes"]:
            problems.append(("permitted_purposes", "at least one purpose is required"))
        retention = notice["retention_days"]
        if not 1 <= retention <= limits.max_retention_days:
            problems.append(
                ("retention_days", f"must be between 1 and {limits.max_retention_days}")
            )
        refs: set[str] = set()
        for i, person in enumerate(notice["persons"]):
            base = f"persons[{i}]"
            if person["person_ref"] in refs:
                problems.append((f"{base}.person_ref", "used twice in this notice"))
            refs.add(person["person_ref"])
            _person_states(country, base, person)
            _birth(problems, f"{base}.date_of_birth", person["date_of_birth"], now)
        for i, loc in enumerate(notice["locations"]):
            country(f"locations[{i}].country", loc["country"])
        if notice["handling"]["code"] == "H3" and not notice["handling"]["conditions"]:
            problems.append(("handling.conditions", "H3 needs its conditions in free text"))
    else:
        person = notice["person"]
        if not person["nationalities"]:
            problems.append(
                ("person.nationalities", "a consular notification needs the person's nationality")
            )
        _person_states(country, "person", person)
        _birth(problems, "person.date_of_birth", person["date_of_birth"], now)
        country("place.country", notice["place"]["country"])
        if notice["event"] == "REMOVAL_OR_RETURN" and notice["return_details"] is None:
            problems.append(("return_details", "a removal or return needs its itinerary"))
        if notice["event_time"] > now + dt.timedelta(seconds=limits.max_clock_skew_s):
            problems.append(("event_time", "in the future; check the clock (UTC)"))
    return problems


def _person_states(
    country: Callable[[str, Any], None], base: str, person: Mapping[str, Any]
) -> None:
    """A person's states must be codes: the protection floor keeps a person from the states
    named here, and a misspelt one ("Honduras") would protect them from no state at all."""
    for j, nat in enumerate(person["nationalities"]):
        country(f"{base}.nationalities[{j}]", nat)
    for j, feared in enumerate(person.get("feared_states") or ()):
        country(f"{base}.feared_states[{j}]", feared)
    if person.get("habitual_residence") is not None:
        country(f"{base}.habitual_residence", person["habitual_residence"])


def _birth(
    problems: list[tuple[str, str]], path: str, born: dt.date | None, now: dt.datetime
) -> None:
    if born is not None and born > now.date():
        problems.append((path, "a date of birth cannot be in the future"))
