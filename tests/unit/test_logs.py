"""Logs carry ids, never personal data: the redaction processor, called as structlog calls it,
and the whole configured pipeline as a process writes it."""

from __future__ import annotations

import json

import pytest
import structlog

from puente.logs import configure_logging, drop_payloads, get_logger

PERSON = {"given_names": "Ana María", "family_names": "Quispe", "date_of_birth": "1990-01-02"}


def test_the_processor_redacts_payload_keys_and_keeps_ids() -> None:
    event = {
        "event": "delivery.unverified",
        "notice_id": "6f1d3a52-2b7e-4c1e-9a55-0c1d2e3f4a5b",
        "member": "GT",
        "partition": 3,
        "notice": {"persons": [PERSON]},
        "person": PERSON,
        "persons": [PERSON],
        "payload": b"\xc3\x01...",
        "value": b"raw",
        "body": "{}",
        "record": {"x": 1},
    }
    out = drop_payloads(None, "warning", dict(event))
    for key in ("notice", "person", "persons", "payload", "value", "body", "record"):
        assert out[key] == "<redacted>", key
    for key in ("event", "notice_id", "member", "partition"):
        assert out[key] == event[key], key


def test_a_configured_process_never_writes_a_payload(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    try:
        get_logger("test").warning("notice.refused", notice_id="n-1", notice={"persons": [PERSON]})
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        structlog.reset_defaults()
    doc = json.loads(line)
    assert doc["notice_id"] == "n-1" and doc["notice"] == "<redacted>"
    assert doc["component"] == "test" and doc["level"] == "warning"
    for value in PERSON.values():
        assert value not in line
