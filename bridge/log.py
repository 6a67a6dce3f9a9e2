"""structlog JSON lines on stdout: stable snake_case event names, context bound per task with
contextvars, never payload bytes or secrets."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, BinaryIO, cast

import orjson
import structlog

SECRET_KEYS = frozenset({"api_key", "password", "sasl_password", "hume_api_key", "token", "secret"})


def _drop_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in SECRET_KEYS & event.keys():
        event[key] = "********"
    return event


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Configure structlog (and the standard logging of aiokafka and websockets) once per process."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    out = stream or sys.stdout
    binary = cast(BinaryIO, getattr(out, "buffer", out))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.BytesLoggerFactory(file=binary),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library: render them as JSON lines too, at WARNING and above.
    handler = logging.StreamHandler(out)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.WARNING))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "event": "library_log",
            "logger": record.name,
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        return orjson.dumps(payload).decode()
