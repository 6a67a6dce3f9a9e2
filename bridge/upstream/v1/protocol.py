"""Hume v1 realtime sessions, sans I/O: client messages out, typed events and verdicts in.

Boundary: this module knows the wire (HUME_V1.md, "Realtime sessions", "Audio realtime", "Video
realtime") and nothing else. It builds the text messages a client sends (``session.update``,
``session.close``), turns each server text message into one frozen event (or None, counted, when the
message is unknown or lacks a required field: Hume's own client matches messages by shape and skips the
rest), and judges what errors, close codes and handshake statuses mean. It never touches a socket, a
clock or a Kafka record; :mod:`bridge.upstream.v1.session` carries out what it decides, and
:mod:`bridge.upstream.v1.ledger` turns the events into settled records.

Measurement objects are kept verbatim (``raw``): outputs publish Hume's object as received, unknown fields
included.

Assumption to confirm against Hume (unverified in HUME_V1.md): an audio ``rate_limited`` error refers to
the frame most recently sent on the session when the error is read (the server judges each frame on
arrival and frames are paced 100 ms apart, longer than a round trip).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import orjson

from bridge.errors import Code, MediaError


class Endpoint(StrEnum):
    AUDIO = "audio"
    VIDEO = "video"


REALTIME_PATH = {
    Endpoint.AUDIO: "/v1/expression/audio/realtime",
    Endpoint.VIDEO: "/v1/expression/video/realtime",
}
AUDIO_FORMAT: Mapping[str, Any] = {
    "type": "audio/pcm",
    "encoding": "s16le",
    "sample_rate": 16000,
    "channels": 1,
}
IMAGE_FORMAT: Mapping[str, Any] = {"type": "image/jpeg"}
MEASUREMENT_TIMER_MS_MIN = 3000
MEASUREMENT_TIMER_MS_MAX = 10000
MEASUREMENT_TIMER_MS_DEFAULT = 3000
FACE_THRESHOLD_DEFAULT = 0.9
FACE_MIN_SIZE_DEFAULT = 60
MEASUREMENT_TIMER_HEADER = "hume-measurement-timer-ms"


def realtime_url(base_url: str, endpoint: Endpoint) -> str:
    """``https://api.cloud.hume.ai`` -> ``wss://api.cloud.hume.ai/v1/expression/audio/realtime``."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return base + REALTIME_PATH[endpoint]


# --------------------------------------------------------------------------------------------------------
# Settings and client messages


@dataclass(frozen=True, slots=True)
class AudioSettings:
    measurement_timer_ms: int = MEASUREMENT_TIMER_MS_DEFAULT


@dataclass(frozen=True, slots=True)
class VideoSettings:
    face_threshold: float = FACE_THRESHOLD_DEFAULT
    face_min_size: int = FACE_MIN_SIZE_DEFAULT


def audio_settings_problems(
    settings: AudioSettings, name: str = "BRIDGE_V1_MEASUREMENT_TIMER_MS"
) -> list[str]:
    """What is wrong with configured audio settings (for the start-up ConfigError), empty if nothing."""
    timer = settings.measurement_timer_ms
    if not MEASUREMENT_TIMER_MS_MIN <= timer <= MEASUREMENT_TIMER_MS_MAX:
        return [f"{name}={timer}: must be {MEASUREMENT_TIMER_MS_MIN}..{MEASUREMENT_TIMER_MS_MAX}"]
    return []


def video_settings_problems(settings: VideoSettings, prefix: str = "BRIDGE_V1_FACE_") -> list[str]:
    problems: list[str] = []
    if not 0.0 <= settings.face_threshold <= 1.0:
        problems.append(f"{prefix}THRESHOLD={settings.face_threshold}: must be 0..1")
    if settings.face_min_size < 1:
        problems.append(f"{prefix}MIN_SIZE={settings.face_min_size}: must be at least 1 px")
    return problems


class HeaderError(MediaError):
    """A per-stream ``hume-*`` header value v1 cannot use; the record gets an INVALID_HEADER outcome."""

    def __init__(self, message: str) -> None:
        super().__init__(Code.INVALID_HEADER, message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message,))


def stream_audio_settings(default: AudioSettings, timer_header: bytes | str | None) -> AudioSettings:
    """The settings of one stream's session: the configured ones, overridden by the stream's header."""
    if timer_header is None:
        return default
    raw = timer_header.decode("utf-8", "replace") if isinstance(timer_header, bytes) else timer_header
    try:
        timer = int(raw.strip())
    except ValueError:
        raise HeaderError(f"{MEASUREMENT_TIMER_HEADER}={raw[:40]!r} is not an integer") from None
    if not MEASUREMENT_TIMER_MS_MIN <= timer <= MEASUREMENT_TIMER_MS_MAX:
        raise HeaderError(
            f"{MEASUREMENT_TIMER_HEADER}={timer} is outside "
            f"{MEASUREMENT_TIMER_MS_MIN}..{MEASUREMENT_TIMER_MS_MAX}"
        )
    return AudioSettings(measurement_timer_ms=timer)


def audio_session_update(settings: AudioSettings) -> str:
    """The ``session.update`` of an audio session: the whole configuration (omitted fields reset)."""
    return orjson.dumps(
        {
            "type": "session.update",
            "audio": dict(AUDIO_FORMAT),
            "measurement_timer_ms": settings.measurement_timer_ms,
        }
    ).decode()


def video_session_update(settings: VideoSettings) -> str:
    return orjson.dumps(
        {
            "type": "session.update",
            "image": dict(IMAGE_FORMAT),
            "face": {"threshold": settings.face_threshold, "min_size": settings.face_min_size},
        }
    ).decode()


SESSION_CLOSE = '{"type":"session.close"}'


# --------------------------------------------------------------------------------------------------------
# Server events


class CloseReason(StrEnum):
    CLIENT_REQUEST = "client_request"
    SERVER_SHUTDOWN = "server_shutdown"
    IDLE_TIMEOUT = "idle_timeout"
    ERROR = "error"
    OTHER = "other"  # a reason this bridge does not know yet


@dataclass(frozen=True, slots=True)
class AudioConfig:
    measurement_timer_ms: int | None


@dataclass(frozen=True, slots=True)
class VideoConfig:
    face_threshold: float | None
    face_min_size: int | None


@dataclass(frozen=True, slots=True)
class SessionCreated:
    session_id: str
    config: AudioConfig | VideoConfig
    raw: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    config: AudioConfig | VideoConfig
    raw: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AudioReceived:
    audio_duration_ms: int
    frames: int


@dataclass(frozen=True, slots=True)
class VideoReceived:
    frames: int


@dataclass(frozen=True, slots=True)
class AudioProduced:
    utterances: int
    measurements: int


@dataclass(frozen=True, slots=True)
class VideoProduced:
    measurements: int  # faces measured


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """The server's last word. ``received``/``produced`` are None when absent or malformed."""

    session_id: str
    reason: CloseReason
    reason_text: str
    received: AudioReceived | VideoReceived | None
    produced: AudioProduced | VideoProduced | None


@dataclass(frozen=True, slots=True)
class UtteranceStart:
    utterance_id: int | str
    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class UtteranceEnd:
    utterance_id: int | str
    audio_start_ms: int
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class AudioMeasurement:
    measurement_id: int | str
    utterance_id: int | str
    audio_start_ms: int
    audio_end_ms: int
    trigger: str
    raw: Mapping[str, Any]  # Hume's object verbatim, for the output record


@dataclass(frozen=True, slots=True)
class VideoMeasurement:
    frame_id: int
    faces: int
    raw: Mapping[str, Any]


class ErrorScope(StrEnum):
    """What a server ``error`` is about."""

    SESSION = "session"  # ends the session; session.closed{reason: error} follows
    FRAME = "frame"  # about one media frame (video: takes that frame's reply slot)
    MESSAGE = "message"  # about a text message or nothing in particular; the session goes on


class ErrorAction(StrEnum):
    """What the bridge does about it."""

    RESEND_LATER = "resend_later"  # rate_limited: the same frame again after a wait
    RESEND = "resend"  # video internal_error with retryable: resend the frame
    FAIL_FRAME = "fail_frame"  # the frame is refused for good: its record gets the error
    END_SESSION = "end_session"  # wait for session.closed / the close, then judge the close
    IGNORE = "ignore"  # count it, go on


@dataclass(frozen=True, slots=True)
class ServerError:
    code: str
    message: str
    retryable: bool
    scope: ErrorScope
    action: ErrorAction


Event = (
    SessionCreated
    | SessionUpdated
    | SessionClosed
    | UtteranceStart
    | UtteranceEnd
    | AudioMeasurement
    | VideoMeasurement
    | ServerError
)


class Skip(StrEnum):
    """Why a server text message produced no event."""

    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    NO_TYPE = "no_type"
    UNKNOWN_TYPE = "unknown_type"  # ignored, as clients must
    MISSING_FIELDS = "missing_fields"  # a known type without a required field, or of the wrong type
    WRONG_ENDPOINT = "wrong_endpoint"  # e.g. utterance.start on a video session


def classify_error(endpoint: Endpoint, code: str, retryable: bool) -> tuple[ErrorScope, ErrorAction]:
    """Scope and action of a server error (HUME_V1.md: session-ending errors, frame replies).

    Unknown codes follow the documented rule: ``retryable`` is false exactly for session-ending errors.
    """
    if code == "rate_limited":
        return ErrorScope.FRAME, ErrorAction.RESEND_LATER
    if code in ("invalid_audio_frame", "invalid_image_frame"):
        return ErrorScope.FRAME, ErrorAction.FAIL_FRAME
    if code == "internal_error":
        if endpoint is Endpoint.VIDEO:
            return ErrorScope.FRAME, ErrorAction.RESEND if retryable else ErrorAction.FAIL_FRAME
        return ErrorScope.SESSION, ErrorAction.END_SESSION
    if code in ("config_invalid", "message_too_large"):
        return ErrorScope.SESSION, ErrorAction.END_SESSION
    if code == "message_invalid":
        return ErrorScope.MESSAGE, ErrorAction.IGNORE
    if not retryable:
        return ErrorScope.SESSION, ErrorAction.END_SESSION
    return ErrorScope.MESSAGE, ErrorAction.IGNORE


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ms(value: object) -> int | None:
    """A time in ms (a non-negative finite number), rounded to an int, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e15:
        return None
    return round(value)


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _id(value: object) -> int | str | None:
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    return None


class ServerMessages:
    """Parses one session's server text messages into events; counts what it skips, by reason.

    Stateless apart from the counters, so one instance per session (or per process) will do.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.skipped: Counter[Skip] = Counter()

    def parse(self, data: str | bytes) -> Event | None:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._skip(Skip.NOT_JSON)
            return None
        if not isinstance(obj, dict):
            self._skip(Skip.NOT_OBJECT)
            return None
        kind = obj.get("type")
        if not isinstance(kind, str):
            self._skip(Skip.NO_TYPE)
            return None
        handler = _HANDLERS.get(kind)
        if handler is None:
            self._skip(Skip.UNKNOWN_TYPE)
            return None
        try:
            event = handler(self, obj)
        except _Missing:
            self._skip(Skip.MISSING_FIELDS)
            return None
        except _WrongEndpoint:
            self._skip(Skip.WRONG_ENDPOINT)
            return None
        return event

    def _skip(self, why: Skip) -> None:
        self.skipped[why] += 1

    # -- one method per message type ----------------------------------------------------------------------

    def _config(self, obj: Mapping[str, Any]) -> AudioConfig | VideoConfig:
        if self.endpoint is Endpoint.AUDIO:
            timer = obj.get("measurement_timer_ms")
            return AudioConfig(timer if _is_int(timer) else None)
        face = obj.get("face")
        face = face if isinstance(face, dict) else {}
        threshold, min_size = face.get("threshold"), face.get("min_size")
        return VideoConfig(
            float(threshold)
            if isinstance(threshold, int | float) and not isinstance(threshold, bool)
            else None,
            _count(min_size),
        )

    def _created(self, obj: Mapping[str, Any]) -> SessionCreated:
        return SessionCreated(_str(obj, "session_id"), self._config(obj), obj)

    def _updated(self, obj: Mapping[str, Any]) -> SessionUpdated:
        return SessionUpdated(self._config(obj), obj)

    def _closed(self, obj: Mapping[str, Any]) -> SessionClosed:
        session_id = _str(obj, "session_id")
        reason_text = _str(obj, "reason")
        try:
            reason = CloseReason(reason_text)
        except ValueError:
            reason = CloseReason.OTHER
        received_obj, produced_obj = obj.get("received"), obj.get("produced")
        received: AudioReceived | VideoReceived | None = None
        produced: AudioProduced | VideoProduced | None = None
        if isinstance(received_obj, dict):
            frames = _count(received_obj.get("frames"))
            if self.endpoint is Endpoint.AUDIO:
                duration = _ms(received_obj.get("audio_duration_ms"))
                if duration is not None and frames is not None:
                    received = AudioReceived(duration, frames)
            elif frames is not None:
                received = VideoReceived(frames)
        if isinstance(produced_obj, dict):
            measurements = _count(produced_obj.get("measurements"))
            if self.endpoint is Endpoint.AUDIO:
                utterances = _count(produced_obj.get("utterances"))
                if utterances is not None and measurements is not None:
                    produced = AudioProduced(utterances, measurements)
            elif measurements is not None:
                produced = VideoProduced(measurements)
        return SessionClosed(session_id, reason, reason_text, received, produced)

    def _audio_only(self) -> None:
        if self.endpoint is not Endpoint.AUDIO:
            raise _WrongEndpoint

    def _utterance_start(self, obj: Mapping[str, Any]) -> UtteranceStart:
        self._audio_only()
        return UtteranceStart(_req_id(obj, "utterance_id"), _need(_ms(obj.get("audio_start_ms"))))

    def _utterance_end(self, obj: Mapping[str, Any]) -> UtteranceEnd:
        self._audio_only()
        start, end = _need(_ms(obj.get("audio_start_ms"))), _need(_ms(obj.get("audio_end_ms")))
        return UtteranceEnd(_req_id(obj, "utterance_id"), start, end)

    def _measurement(self, obj: Mapping[str, Any]) -> AudioMeasurement | VideoMeasurement:
        if self.endpoint is Endpoint.VIDEO:
            faces = obj.get("faces")
            if not isinstance(faces, list):
                raise _Missing
            return VideoMeasurement(_need(_count(obj.get("frame_id"))), len(faces), obj)
        for name in ("expressions", "voice_attributes"):
            if not isinstance(obj.get(name), list):
                raise _Missing
        start, end = _need(_ms(obj.get("audio_start_ms"))), _need(_ms(obj.get("audio_end_ms")))
        if end < start:
            raise _Missing
        return AudioMeasurement(
            _req_id(obj, "measurement_id"),
            _req_id(obj, "utterance_id"),
            start,
            end,
            _str(obj, "trigger"),
            obj,
        )

    def _error(self, obj: Mapping[str, Any]) -> ServerError:
        code, message, retryable = _str(obj, "code"), _str(obj, "message"), obj.get("retryable")
        if not isinstance(retryable, bool):
            raise _Missing
        scope, action = classify_error(self.endpoint, code, retryable)
        return ServerError(code, message, retryable, scope, action)


_T = TypeVar("_T")


class _Missing(Exception):
    """A required field is absent or of the wrong type."""


class _WrongEndpoint(Exception):
    """A message type of the other endpoint."""


def _req_id(obj: Mapping[str, Any], name: str) -> int | str:
    value = _id(obj.get(name))
    if value is None:
        raise _Missing
    return value


def _need(value: _T | None) -> _T:
    if value is None:
        raise _Missing
    return value


def _str(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise _Missing
    return value


_HANDLERS: dict[str, Callable[[ServerMessages, Mapping[str, Any]], Event]] = {
    "session.created": ServerMessages._created,
    "session.updated": ServerMessages._updated,
    "session.closed": ServerMessages._closed,
    "utterance.start": ServerMessages._utterance_start,
    "utterance.end": ServerMessages._utterance_end,
    "measurement.result": ServerMessages._measurement,
    "error": ServerMessages._error,
}


# --------------------------------------------------------------------------------------------------------
# Verdicts: closes and handshakes


class CloseVerdict(StrEnum):
    """What the end of a session means for the stream's unsettled work."""

    DONE = "done"  # we asked for it (client_request) and it ended normally
    RECONNECT = "reconnect"  # worth a new session: unsettled records go again, with backoff
    FINAL = "final"  # a new session would fail the same way: the stream's unsettled records fail


RECONNECT_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013})
CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
# Session-ending errors after which a new session cannot help: the bridge sent something wrong.
_FINAL_ERRORS = frozenset({"config_invalid", "message_too_large"})


def judge_close(
    close_code: int | None, closed: SessionClosed | None, last_error: ServerError | None
) -> CloseVerdict:
    """The verdict on a finished session, from the close code (None: the connection was lost), the
    ``session.closed`` message if one came, and the last session-ending error if one came.

    Follows Hume's SDK reconnect policy (HUME_V1.md): reconnect after server_shutdown, idle_timeout,
    closes 1001/1006/1011/1012/1013, and audio internal_error (1008); configuration and size errors are
    final; other close codes are final.
    """
    session_error = last_error if last_error is not None and last_error.scope is ErrorScope.SESSION else None
    if session_error is not None and session_error.code in _FINAL_ERRORS:
        return CloseVerdict.FINAL
    if closed is not None:
        if closed.reason is CloseReason.CLIENT_REQUEST:
            return CloseVerdict.DONE
        return CloseVerdict.RECONNECT  # shutdown, idle, an error worth retrying, or a reason we do not know
    if close_code is None or close_code in RECONNECT_CLOSE_CODES:
        return CloseVerdict.RECONNECT
    if close_code in (CLOSE_NORMAL, CLOSE_POLICY):
        return CloseVerdict.RECONNECT  # ended without session.closed: whatever was unsettled goes again
    return CloseVerdict.FINAL


class HandshakeVerdict(StrEnum):
    """What a refused WebSocket upgrade means."""

    KEY_REFUSED = "key_refused"  # 401/403: an outage (pause, readiness false, probe), not record errors
    TRANSIENT = "transient"  # 408/429/5xx: an outage while it lasts; retry with backoff
    FINAL = "final"  # other statuses: the URL or request is wrong; configuration, not data


def judge_handshake(status: int) -> HandshakeVerdict:
    if status in (401, 403):
        return HandshakeVerdict.KEY_REFUSED
    if status in (408, 429) or status >= 500:
        return HandshakeVerdict.TRANSIENT
    return HandshakeVerdict.FINAL
