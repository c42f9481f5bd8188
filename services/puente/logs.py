"""Structured logging for every Puente process (structlog).

JSON lines when stderr is not a terminal, readable colours when it is. Events carry ids
(notice id, member code, topic, partition) and never personal data: call sites log ids only,
and the ``drop_payloads`` processor removes any key named like a payload as a second line
of defence.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

_PAYLOAD_KEYS = frozenset({"payload", "notice", "person", "persons", "body", "value", "record"})


def drop_payloads(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: replace the value of any payload-named key by ``<redacted>``."""
    for key in _PAYLOAD_KEYS.intersection(event):
        event[key] = "<redacted>"
    return event


def configure_logging(
    level: str = "info", fmt: Literal["auto", "json", "console"] = "auto"
) -> None:
    """Configure structlog and the stdlib root logger once, at process start."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            drop_payloads,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (aiokafka, kafka-python, uvicorn) log through the stdlib; keep them quiet.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger bound to a component name."""
    return structlog.get_logger(component=name)  # type: ignore[no-any-return]
