"""Statistics and the request log: what tests and the benchmark read back from the emulator."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from bridge.tools.emulator.v1.stats import V1Stats


@dataclass(frozen=True, slots=True)
class RequestLogEntry:
    """One request frame the emulator received."""

    connection_id: int
    payload_id: str | None
    models: tuple[str, ...]
    reset_stream: bool
    window_payload_ids: tuple[str, ...]
    """Payload ids of earlier audio payloads on this connection whose audio was analysed with this one."""
    reply_kind: str
    """"predictions", "error", "warning", "reset", "job_details" (a bare job-id query), or "dropped" (the
    connection was aborted on it)."""
    code: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "connection_id": self.connection_id,
            "payload_id": self.payload_id,
            "models": list(self.models),
            "reset_stream": self.reset_stream,
            "window_payload_ids": list(self.window_payload_ids),
            "reply_kind": self.reply_kind,
            "code": self.code,
        }


class Stats:
    """Live counters. Byte counts are WebSocket message payloads (no framing, no HTTP)."""

    def __init__(self) -> None:
        self.connections_open = 0  # gauges: not cleared by reset()
        self.in_flight = 0  # requests received and not yet answered, all connections
        self.v1 = (
            V1Stats()
        )  # the v1 counters: their own snapshot (``GET /v1/stats``), so v0's stays as it was
        self.reset()

    def reset(self) -> None:
        """Clear the counters (the gauges ``connections_open`` and ``in_flight`` stay)."""
        self.connections_opened = 0
        self.connections_refused: Counter[str] = Counter()  # by HTTP status
        self.requests = 0
        self.replies = 0
        self.replies_by_kind: Counter[str] = Counter()
        self.replies_by_code: Counter[str] = Counter()
        self.bytes_in = 0
        self.bytes_out = 0
        self.dropped_connections = 0
        self.idle_closes = 0
        self.message_limit_closes = 0
        self.max_in_flight_per_connection = 0  # the deepest pipelining seen on one connection
        self.v1.reset()

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able copy."""
        return {
            "connections_opened": self.connections_opened,
            "connections_open": self.connections_open,
            "connections_refused": dict(self.connections_refused),
            "requests": self.requests,
            "replies": self.replies,
            "replies_by_kind": dict(self.replies_by_kind),
            "replies_by_code": dict(self.replies_by_code),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "dropped_connections": self.dropped_connections,
            "idle_closes": self.idle_closes,
            "message_limit_closes": self.message_limit_closes,
            "in_flight": self.in_flight,
            "max_in_flight_per_connection": self.max_in_flight_per_connection,
        }
