"""Helpers for the emulator's pure-logic tests: a session and a way to ask it one request."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bridge.tools.emulator.protocol import Engine, Reply, Session


class Asker:
    """Feeds frames to one :class:`Session` (one connection's worth of state) and decodes the replies."""

    def __init__(self) -> None:
        self.session = Session(Engine(), "0" * 32)
        self.last: Reply | None = None

    def reply(self, frame: Any, **kwargs: Any) -> Reply:
        """``frame``: the frame as sent (bytes or str), or a JSON value to send."""
        if not isinstance(frame, bytes | str):
            frame = orjson.dumps(frame)
        self.last = self.session.handle(frame, **kwargs)
        return self.last

    def __call__(self, frame: Any, **kwargs: Any) -> Any:
        return orjson.loads(self.reply(frame, **kwargs).body)


@pytest.fixture
def ask() -> Asker:
    return Asker()
