"""Switchable faults: one mutable settings object read live by the server, plus the pure decisions on it.

Every field can be changed while the emulator runs (``emu.faults.latency_s = 0.1``, ``POST /faults``, or a
CLI flag at start); the server reads the field at the moment it needs it, so a change applies to the next
handshake, message or reply. Per-connection random draws (jitter, drop probability) come from a generator
seeded with ``seed`` and the connection id, so a run is reproducible.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final


class FaultsError(ValueError):
    """A change to the faults that names unknown fields or gives bad values; lists every problem."""


@dataclass(slots=True)
class Faults:
    """The emulator's switchable faults. Times in seconds; ``None`` switches a limit off."""

    latency_s: float = 0.0
    """Every reply waits this long after its request arrived (each request its own wait)."""
    jitter_s: float = 0.0
    """Plus a uniform random extra in [0, jitter_s)."""
    drop_probability: float = 0.0
    """Each message received aborts its TCP connection (no close frame, no reply) with this probability."""
    drop_at_message: int | None = None
    """The N-th message (1-based) received on each connection aborts that connection."""
    drop_limit: int | None = None
    """At most this many more drops (the server counts it down); ``None`` = unlimited."""
    close_after_messages: int | None = None
    """After the N-th message on a connection: reply to everything received, then close with
    ``close_after_code``; later frames are not read."""
    close_after_code: int = 1000
    idle_timeout_s: float | None = 60.0
    """A connection that received no message for this long is closed with ``idle_close_code``."""
    idle_close_code: int = 1000
    max_connections: int | None = None
    """Concurrent WebSocket connections allowed; handshakes beyond are refused with HTTP
    ``max_connections_status``."""
    max_connections_status: int = 429
    handshake_rate_per_s: float | None = None
    """Handshakes accepted per second (token bucket, burst = one second's worth, at least 1); beyond: 429."""
    refuse_all_keys: bool = False
    """Refuse every handshake with 401, whatever the key."""
    out_of_credits: bool = False
    """Answer every payload with E0300 until switched back."""
    out_of_order: bool = False
    """Send pipelined replies as they finish instead of in request order; a finished reply is held up to
    ``out_of_order_hold_s`` for the next one and then the two go out in reverse order."""
    out_of_order_hold_s: float = 0.05
    top_level_warnings: bool = False
    """Send a no-detection warning in the top-level form (``{"warning", "code", "payload_id"}``) instead of
    nested under the model, when every requested model found nothing."""
    seed: int = 0
    """Seeds the jitter and drop draws and the job ids of connections opened after it is set."""

    # --- v1 only (the fields above apply to v1 too: latency and jitter to every realtime reply and upload
    # response, drops to every message received, the idle timeout, the handshake rate and refused keys) ---
    v1_handshake_status: int | None = None
    """Refuse every v1 realtime handshake with this HTTP status (e.g. 429 or 503), body ``{"message"}``."""
    max_sessions_per_key: int | None = None
    """Concurrent v1 realtime sessions allowed per credential; beyond: HTTP 429."""
    server_shutdown_after_s: float | None = None
    """A v1 session this old gets ``session.closed{server_shutdown}`` and is closed with
    ``server_shutdown_close_code``."""
    server_shutdown_close_code: int = 1012
    error_close_code: int = 1008
    """Close code after a session-ending error (Hume's appears to be 1008)."""
    audio_internal_errors: int = 0
    """The next N audio frames that would be measured fail with ``internal_error`` (each ends its session);
    counted down by the server."""
    audio_internal_error_at_frame: int | None = None
    """The N-th binary message (1-based) of every audio session fails with ``internal_error``."""
    video_internal_errors: int = 0
    """The next N video frames that would be measured fail with ``internal_error``; counted down. Five in a
    row end the session."""
    video_internal_error_retryable: bool = True
    upload_busy: bool = False
    """Answer every upload with 503 ``server_busy`` and ``Retry-After``."""
    upload_retry_after_s: int = 1
    audio_burst_ms: float = 1000.0
    """Pacing: the audio token bucket's size (ms of audio); read when a session opens."""
    video_burst_frames: float = 3.0
    """Pacing: the video token bucket's size (frames); read when a session opens."""
    pace_factor: float = 1.0
    """Pacing runs this many times faster than real time (tests); read when a session opens."""
    speech_threshold_dbfs: float = -40.0
    """A 20 ms window is speech when its RMS reaches this level; read when a session or upload starts."""
    speech_hangover_ms: int = 500
    """Unvoiced audio that ends an utterance; read when a session or upload starts."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Validate every change, then apply them all (or none, raising :class:`FaultsError`)."""
        problems: list[str] = []
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            spec = _SPECS.get(name)
            if spec is None:
                problems.append(f"{name}: unknown fault")
                continue
            problem, converted = spec.check(value)
            if problem:
                problems.append(f"{name}: {problem}")
            else:
                clean[name] = converted
        if problems:
            raise FaultsError("; ".join(problems))
        for name, value in clean.items():
            setattr(self, name, value)


@dataclass(frozen=True, slots=True)
class _Spec:
    kind: type  # float, int or bool
    nullable: bool = False
    low: float | None = None
    high: float | None = None
    close_code: bool = False

    def check(self, value: Any) -> tuple[str | None, Any]:
        if value is None:
            return (None, None) if self.nullable else ("must not be null", None)
        if self.kind is bool:
            return (None, value) if isinstance(value, bool) else ("must be true or false", None)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a{'n integer' if self.kind is int else ' number'}", None
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                return "must be an integer", None
            value = int(value)
        else:
            value = float(value)
        if self.low is not None and value < self.low:
            return f"must be at least {self.low:g}", None
        if self.high is not None and value > self.high:
            return f"must be at most {self.high:g}", None
        if self.close_code and not is_sendable_close_code(value):
            return "must be a close code a server may send (1000-1003, 1007-1014, 3000-4999)", None
        return None, value


def is_sendable_close_code(code: int) -> bool:
    return code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999


_SPECS: Final[dict[str, _Spec]] = {
    "latency_s": _Spec(float, low=0),
    "jitter_s": _Spec(float, low=0),
    "drop_probability": _Spec(float, low=0, high=1),
    "drop_at_message": _Spec(int, nullable=True, low=1),
    "drop_limit": _Spec(int, nullable=True, low=0),
    "close_after_messages": _Spec(int, nullable=True, low=1),
    "close_after_code": _Spec(int, close_code=True),
    "idle_timeout_s": _Spec(float, nullable=True, low=0),
    "idle_close_code": _Spec(int, close_code=True),
    "max_connections": _Spec(int, nullable=True, low=0),
    "max_connections_status": _Spec(int, low=400, high=599),
    "handshake_rate_per_s": _Spec(float, nullable=True, low=0),
    "refuse_all_keys": _Spec(bool),
    "out_of_credits": _Spec(bool),
    "out_of_order": _Spec(bool),
    "out_of_order_hold_s": _Spec(float, low=0),
    "top_level_warnings": _Spec(bool),
    "seed": _Spec(int),
    "v1_handshake_status": _Spec(int, nullable=True, low=400, high=599),
    "max_sessions_per_key": _Spec(int, nullable=True, low=0),
    "server_shutdown_after_s": _Spec(float, nullable=True, low=0),
    "server_shutdown_close_code": _Spec(int, close_code=True),
    "error_close_code": _Spec(int, close_code=True),
    "audio_internal_errors": _Spec(int, low=0),
    "audio_internal_error_at_frame": _Spec(int, nullable=True, low=1),
    "video_internal_errors": _Spec(int, low=0),
    "video_internal_error_retryable": _Spec(bool),
    "upload_busy": _Spec(bool),
    "upload_retry_after_s": _Spec(int, low=0),
    "audio_burst_ms": _Spec(float, low=1),
    "video_burst_frames": _Spec(float, low=1),
    "pace_factor": _Spec(float, low=0.001, high=1000),
    "speech_threshold_dbfs": _Spec(float, low=-120, high=0),
    "speech_hangover_ms": _Spec(int, low=20, high=10_000),
}
assert set(_SPECS) == {f.name for f in dataclasses.fields(Faults)}


def should_drop(faults: Faults, message_index: int, draw: float) -> bool:
    """Whether the ``message_index``-th message (1-based) of a connection aborts it; ``draw`` is a uniform
    random number in [0, 1) from the connection's generator."""
    if faults.drop_limit is not None and faults.drop_limit <= 0:
        return False
    return faults.drop_at_message == message_index or draw < faults.drop_probability


def reply_delay_s(faults: Faults, draw: float) -> float:
    """The wait of one reply: the latency plus ``draw`` (uniform in [0, 1)) times the jitter."""
    return faults.latency_s + faults.jitter_s * draw


class HandshakeLimiter:
    """A token bucket for handshakes, refilled at the rate in force; the clock is passed in."""

    def __init__(self) -> None:
        self._rate: float | None = None
        self._tokens = 0.0
        self._last = 0.0

    def allow(self, rate_per_s: float | None, now: float) -> bool:
        if rate_per_s is None:
            self._rate = None
            return True
        capacity = max(1.0, rate_per_s)
        if rate_per_s != self._rate:  # a new rate starts with a full bucket
            self._rate, self._tokens, self._last = rate_per_s, capacity if rate_per_s > 0 else 0.0, now
        self._tokens = min(capacity, self._tokens + (now - self._last) * rate_per_s)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
