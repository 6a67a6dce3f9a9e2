"""structlog JSON lines on stdout: stable snake_case event names, context bound per task with
contextvars, never payload bytes or secrets.

The libraries (aiokafka, websockets) log through the standard library. Their records go through the same
processors as the bridge's own (timestamp, level, secret redaction, JSON), as ``library_log`` events with
``logger`` and ``message``, at WARNING and above, and rate-limited: at most :data:`BURST` lines of one kind
(logger, level, message template) per :data:`WINDOW_S`; the next line of that kind after the window says
how many were ``suppressed``. A broker outage that makes aiokafka log sixty lines a second thus costs a few
lines per window, each with a timestamp.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import orjson
import structlog
from structlog.typing import Processor

SECRET_KEYS = frozenset({"api_key", "password", "sasl_password", "hume_api_key", "token", "secret"})
REDACTED = "********"
# key=value, key: value and "key": "value" forms of secret-looking names, inside library message text.
_SECRET_TEXT = re.compile(
    r"""(?ix)
    (?P<key>["']?(?:x-hume-api-key|api[_-]?key|password|passwd|secret|token|authorization)["']?)
    (?P<sep>\s*[=:]\s*)
    (?P<value>"[^"]*"|'[^']*'|(?:bearer\s+)?[^\s,;)}\]]+)
    """
)

BURST = 5
WINDOW_S = 10.0
MAX_KINDS = 1024


def _drop_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in SECRET_KEYS & event.keys():
        event[key] = REDACTED
    return event


def redact_text(text: str) -> str:
    """``text`` with the value of every secret-looking ``key=value`` replaced."""
    return _SECRET_TEXT.sub(lambda m: f"{m['key']}{m['sep']}{REDACTED}", text)


def _library_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A standard-library record as a ``library_log`` event: its text under ``message``, redacted."""
    record = event.get("_record")
    event["message"] = redact_text(str(event.get("event", "")))
    event["event"] = "library_log"
    if isinstance(record, logging.LogRecord):
        event["logger"] = record.name
        suppressed = getattr(record, "suppressed", 0)
        if suppressed:
            event["suppressed"] = suppressed
    return event


@dataclass(slots=True)
class _Window:
    start: float
    count: int = 0
    suppressed: int = 0


class RateLimit(logging.Filter):
    """At most ``burst`` records of one kind per ``window_s``; the first record of a kind after a window with
    suppressed records carries ``suppressed`` (how many were dropped)."""

    def __init__(
        self, burst: int = BURST, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self.clock = clock
        self._windows: dict[tuple[str, int, str], _Window] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        window = self._windows.get(key)
        if window is None or now - window.start >= self.window_s:
            carried = window.suppressed if window is not None else 0
            if window is None and len(self._windows) >= MAX_KINDS:
                self._windows.clear()  # many distinct templates: forget the old ones rather than grow
            window = self._windows[key] = _Window(start=now)
            if carried:
                record.suppressed = carried
        window.count += 1
        if window.count > self.burst:
            window.suppressed += 1
            return False
        return True


class _Mute(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


@contextlib.contextmanager
def muted(logger: str, *prefixes: str) -> Iterator[None]:
    """Drop ``logger``'s records whose message template starts with one of ``prefixes`` for the block: for
    library lines about a failure the bridge reports itself, in words (a start-up waiting for Kafka)."""
    target = logging.getLogger(logger)
    flt = _Mute(prefixes)
    target.addFilter(flt)
    try:
        yield
    finally:
        target.removeFilter(flt)


def _shared(level_from_record: bool) -> list[Processor]:
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    level = structlog.stdlib.add_log_level if level_from_record else structlog.processors.add_log_level
    return [structlog.contextvars.merge_contextvars, level, stamp]


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Configure structlog (and the standard logging of aiokafka and websockets) once per process."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    out = stream or sys.stdout
    binary = cast(BinaryIO, getattr(out, "buffer", out))
    structlog.configure(
        processors=[
            *_shared(False),
            _drop_secrets,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.BytesLoggerFactory(file=binary),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    root.handlers[:] = [library_handler(out)]
    root.setLevel(max(numeric, logging.WARNING))


def library_handler(stream: Any, limit: RateLimit | None = None) -> logging.Handler:
    """The handler of standard-library records: rate-limited, then rendered like the bridge's own lines."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(limit or RateLimit())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_shared(True), _library_event, _drop_secrets],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _redact_exception,
                structlog.processors.JSONRenderer(serializer=_dumps_text),
            ],
        )
    )
    return handler


def _redact_exception(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    exc_info = event.pop("exc_info", None)
    if exc_info:
        event["exception"] = redact_text(logging.Formatter().formatException(exc_info))
    return event


def _dumps_text(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()
