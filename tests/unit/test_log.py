"""Library logs (aiokafka, websockets) go through the bridge's pipeline: timestamp, level, redaction, and a
rate limit, so an outage does not flood the log."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from bridge.log import RateLimit, library_handler, redact_text


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lib() -> Iterator[tuple[logging.Logger, io.StringIO, FakeClock]]:
    """A library-style logger with only the bridge's library handler (burst 3 per 10 s, fake clock)."""
    stream, clock = io.StringIO(), FakeClock()
    logger = logging.getLogger("aiokafka.test-lib")
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    handler = library_handler(stream, RateLimit(burst=3, window_s=10.0, clock=clock))
    logger.handlers[:] = [handler]
    yield logger, stream, clock
    logger.handlers[:] = []


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_library_records_have_timestamp_level_logger_and_message(
    lib: tuple[logging.Logger, io.StringIO, FakeClock],
) -> None:
    """A library warning becomes a library_log JSON line with an ISO UTC timestamp and its level."""
    logger, stream, _ = lib
    logger.warning("Unable connect to node with id %s", 1)
    (line,) = lines(stream)
    assert line["event"] == "library_log"
    assert line["level"] == "warning"
    assert line["logger"] == "aiokafka.test-lib"
    assert line["message"] == "Unable connect to node with id 1"
    assert str(line["timestamp"]).endswith("Z")


def test_repeated_library_records_are_rate_limited_and_counted(
    lib: tuple[logging.Logger, io.StringIO, FakeClock],
) -> None:
    """60 lines of one kind in a window give 3; the first after the window says 57 were suppressed;
    another kind of line is not held back by the first."""
    logger, stream, clock = lib
    for i in range(60):
        logger.error("Fetch to node %s failed", i)
    logger.error("a different message")
    assert len(lines(stream)) == 4
    clock.now = 10.5
    logger.error("Fetch to node %s failed", 99)
    last = lines(stream)[-1]
    assert last["message"] == "Fetch to node 99 failed"
    assert last["suppressed"] == 57
    logger.error("Fetch to node %s failed", 100)
    assert "suppressed" not in lines(stream)[-1]


def test_secrets_in_library_text_and_tracebacks_are_redacted(
    lib: tuple[logging.Logger, io.StringIO, FakeClock],
) -> None:
    """Secret-looking key=value pairs never reach the log, in the message or in an exception."""
    logger, stream, _ = lib
    try:
        raise RuntimeError("auth failed: password='hunter2'")
    except RuntimeError:
        logger.exception("SASL handshake with sasl_plain_password=hunter2 failed")
    text = stream.getvalue()
    assert "hunter2" not in text
    assert "********" in orjson.loads(text)["message"]
    assert "RuntimeError" in orjson.loads(text)["exception"]


def test_redact_text_forms() -> None:
    """key=value, key: value, quoted values and bearer tokens are redacted; other text is kept."""
    assert redact_text("api_key=abc123 next") == "api_key=******** next"
    assert redact_text('{"password": "p w"}') == '{"password": ********}'
    assert redact_text("Authorization: Bearer eyJabc") == "Authorization: ********"
    assert redact_text("X-Hume-Api-Key: k-1, other") == "X-Hume-Api-Key: ********, other"
    assert redact_text("connection refused by 127.0.0.1:9092") == "connection refused by 127.0.0.1:9092"
