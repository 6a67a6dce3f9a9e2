"""v1 statistics: counters by endpoint, for tests and the benchmark (``emu.stats.v1``, ``"v1"`` in the
snapshot). Per-session byte records live on the runs (``emu.runs``)."""

from __future__ import annotations

from collections import Counter
from typing import Any


class V1Stats:
    def __init__(self) -> None:
        self.sessions_open: Counter[str] = Counter()  # gauge by endpoint, not cleared by reset()
        self.reset()

    def reset(self) -> None:
        self.sessions_opened: Counter[str] = Counter()  # by endpoint: audio, video
        self.handshakes_refused: Counter[str] = Counter()  # by HTTP status
        self.http_responses: Counter[str] = Counter()  # uploads, runs and refusals, by HTTP status
        self.frames_received: Counter[str] = Counter()  # binary messages, by endpoint
        self.frames_accepted: Counter[str] = Counter()  # frames taken in for measurement, by endpoint
        self.audio_bytes_received = 0  # accepted audio; audio_ms_received = this // 32
        self.rate_limited: Counter[str] = Counter()  # by endpoint
        self.results_sent: Counter[str] = Counter()  # measurement.result messages, by endpoint
        self.errors_sent: Counter[str] = Counter()  # realtime error messages, by code
        self.closes: Counter[str] = Counter()  # session.closed sent, by reason
        self.dropped_connections = 0
        self.uploads: Counter[str] = Counter()  # successful uploads, by endpoint
        self.upload_bytes: Counter[str] = Counter()  # request bodies of uploads (all outcomes), by endpoint
        self.upload_errors: Counter[str] = Counter()  # by code

    def snapshot(self) -> dict[str, Any]:
        return {
            "sessions_opened": dict(self.sessions_opened),
            "sessions_open": dict(self.sessions_open),
            "handshakes_refused": dict(self.handshakes_refused),
            "http_responses": dict(self.http_responses),
            "frames_received": dict(self.frames_received),
            "frames_accepted": dict(self.frames_accepted),
            "audio_ms_received": self.audio_bytes_received // 32,
            "audio_bytes_received": self.audio_bytes_received,
            "rate_limited": dict(self.rate_limited),
            "results_sent": dict(self.results_sent),
            "errors_sent": dict(self.errors_sent),
            "closes": dict(self.closes),
            "dropped_connections": self.dropped_connections,
            "uploads": dict(self.uploads),
            "upload_bytes": dict(self.upload_bytes),
            "upload_errors": dict(self.upload_errors),
        }
