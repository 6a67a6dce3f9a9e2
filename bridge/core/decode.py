"""Decode: an input record becomes a :class:`Work` item with either a request for Hume or a final error
outcome. Everything Hume would reject that the bridge can know in advance is rejected here, with a
specific code and no Hume call. Pure: no I/O, no clock (``now`` is passed in)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from bridge import media
from bridge.config import KNOWN_MODELS, models_problem
from bridge.core.model import ErrorInfo, InputRecord, Outcome, Request, StreamKey, Usage, Work
from bridge.errors import Code, MediaError
from bridge.media import MediaKind

# Which models Hume accepts for which media (a mismatch is Hume's E0102).
COMPATIBLE: dict[MediaKind, frozenset[str]] = {
    MediaKind.AUDIO: frozenset({"prosody", "burst"}),
    MediaKind.VIDEO: frozenset({"face", "prosody", "burst"}),
    MediaKind.IMAGE: frozenset({"face"}),
    MediaKind.TEXT: frozenset({"language"}),
    MediaKind.FACEMESH: frozenset({"facemesh"}),
}
AUDIO_MODELS = frozenset({"prosody", "burst"})
ENVELOPE_FIELDS = frozenset(
    {"data", "models", "stream_window_ms", "reset_stream", "raw_text", "job_details", "payload_id"}
)
MAX_PAYLOAD_ID_CHARS = 256
HEADER_CONTENT_TYPE = "content-type"
HEADER_MODELS = "hume-models"
HEADER_WINDOW = "hume-stream-window-ms"
HEADER_RESET = "hume-reset-stream"
HEADER_PAYLOAD_ID = "hume-payload-id"


@dataclass(frozen=True, slots=True)
class DecodeSettings:
    max_record_bytes: int = 10 * 1024 * 1024
    default_models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    stream_window_ms: float | None = None
    job_details: bool = False


def stream_key(record: InputRecord) -> StreamKey:
    s = record.source
    return (s.topic, s.partition, record.key if record.key is not None else s.offset)


def decode(record: InputRecord, settings: DecodeSettings, now: float) -> Work:
    """Turn ``record`` into work: a request to send, or a final error outcome."""
    headers = _header_map(record.headers)
    payload_id, pid_problem = _payload_id(record, headers)
    work = Work(
        source=record.source,
        stream=stream_key(record),
        key=record.key,
        headers=record.headers,
        payload_id=payload_id,
        size=len(record.value or b""),
        consumed_at=now,
        request=None,
    )
    try:
        if pid_problem:
            raise MediaError(Code.INVALID_HEADER, pid_problem)
        work.request = _request(record.value, headers, settings)
        envelope_pid = work.request.body.pop("payload_id", None)
        if HEADER_PAYLOAD_ID not in headers and isinstance(envelope_pid, str) and envelope_pid:
            work.payload_id = envelope_pid[:MAX_PAYLOAD_ID_CHARS]
    except MediaError as exc:
        work.outcome = Outcome(error=ErrorInfo(exc.code, exc.message, "bridge", False))
    return work


def _header_map(headers: tuple[tuple[str, bytes], ...]) -> dict[str, bytes]:
    # Later duplicates win, as in most Kafka header readers; names are matched case-insensitively.
    return {name.lower(): value for name, value in headers if name.lower().startswith(("hume-", "content-"))}


def _payload_id(record: InputRecord, headers: dict[str, bytes]) -> tuple[str, str | None]:
    default = record.source.ref
    raw = headers.get(HEADER_PAYLOAD_ID)
    if raw is None:
        return default, None
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return default, f"{HEADER_PAYLOAD_ID} is not UTF-8"
    if not text or len(text) > MAX_PAYLOAD_ID_CHARS:
        return default, f"{HEADER_PAYLOAD_ID} must be 1 to {MAX_PAYLOAD_ID_CHARS} characters"
    return text, None


def _request(value: bytes | None, headers: dict[str, bytes], settings: DecodeSettings) -> Request:
    if not value:
        raise MediaError(Code.EMPTY_VALUE, "the record has no value (null or zero bytes)")
    if len(value) > settings.max_record_bytes:
        raise MediaError(
            Code.RECORD_TOO_LARGE,
            f"value is {len(value)} bytes, over the limit of {settings.max_record_bytes} bytes "
            "(BRIDGE_MAX_RECORD_BYTES)",
        )
    content_type = _content_type(value, headers)
    kind = media.kind_of(content_type)
    if kind is None:
        raise MediaError(Code.UNSUPPORTED_MEDIA, f"content type {content_type!r} is not supported")
    models = _header_models(headers)
    window = _header_window(headers, settings.stream_window_ms)
    reset = _header_flag(headers, HEADER_RESET)
    if kind is MediaKind.ENVELOPE:
        return _envelope(value, models, window, reset)
    if models is None:
        models = dict(settings.default_models.get(kind.value, {}))
    wrong = sorted(set(models) - COMPATIBLE[kind])
    if wrong:
        raise MediaError(
            Code.MODEL_MEDIA_MISMATCH,
            f"model(s) {', '.join(wrong)} cannot run on {kind.value} "
            f"(allowed: {', '.join(sorted(COMPATIBLE[kind]))})",
        )
    if not models:
        raise MediaError(Code.INVALID_MODELS, f"no models configured for {kind.value}")
    body: dict[str, Any] = {"models": models}
    usage: Usage
    media_bytes: bytes | None = None  # base64-encoded only when sent, so buffered records stay raw
    if kind is MediaKind.TEXT:
        text = media.decode_text(value)
        if len(text) > media.TEXT_LIMIT_CHARS:
            raise MediaError(
                Code.TEXT_TOO_LONG, f"text has {len(text)} characters, over Hume's {media.TEXT_LIMIT_CHARS}"
            )
        body["data"] = text
        body["raw_text"] = True
        usage = Usage("text", text_chars=len(text))
    elif kind is MediaKind.FACEMESH:
        media.check_facemesh(value)
        media_bytes = value  # landmarks JSON, sent base64-encoded like any media
        usage = Usage("facemesh")
    elif kind is MediaKind.IMAGE:
        info = media.inspect_image(value)
        if info.width > media.IMAGE_LIMIT_PX or info.height > media.IMAGE_LIMIT_PX:
            raise MediaError(
                Code.IMAGE_TOO_LARGE,
                f"image is {info.width} x {info.height} px, over Hume's "
                f"{media.IMAGE_LIMIT_PX} x {media.IMAGE_LIMIT_PX}",
            )
        media_bytes = value
        usage = Usage("image", images=1)
    elif kind is MediaKind.AUDIO:
        audio = media.inspect_audio(value, content_type)
        if audio.duration_ms is not None and audio.duration_ms > media.AUDIO_LIMIT_MS:
            raise MediaError(
                Code.AUDIO_TOO_LONG,
                f"audio lasts {audio.duration_ms:.0f} ms, over Hume's {media.AUDIO_LIMIT_MS} ms: "
                "split it into shorter chunks",
            )
        media_bytes = value
        usage = Usage("audio", audio_s=(audio.duration_ms or 0.0) / 1000.0)
    else:  # video
        media_bytes = value
        usage = Usage("video", images=1)
    audio_context = bool(AUDIO_MODELS & set(models)) and kind in (MediaKind.AUDIO, MediaKind.VIDEO)
    if audio_context and window is not None:
        body["stream_window_ms"] = window
    if settings.job_details:
        body["job_details"] = True
    return Request(body, tuple(models), audio_context, reset, usage, media_bytes)


def _content_type(value: bytes, headers: dict[str, bytes]) -> str:
    raw = headers.get(HEADER_CONTENT_TYPE)
    if raw is not None:
        try:
            text = raw.decode("ascii").strip().lower()
        except UnicodeDecodeError:
            raise MediaError(Code.INVALID_HEADER, "content-type header is not ASCII") from None
        if text:
            return text.split(";", 1)[0].strip()
    sniffed = media.sniff(value)
    if sniffed is None:
        raise MediaError(
            Code.UNSUPPORTED_MEDIA,
            "no content-type header and the bytes are not a recognised format (WAV, MP3, MP4, WebM, PNG, "
            "JPEG, UTF-8 text)",
        )
    return str(sniffed)


def _header_models(headers: dict[str, bytes]) -> dict[str, Any] | None:
    raw = headers.get(HEADER_MODELS)
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MediaError(Code.INVALID_HEADER, f"{HEADER_MODELS} is not valid JSON") from None
    problem = models_problem(value)
    if problem:
        raise MediaError(Code.INVALID_MODELS, f"{HEADER_MODELS}: {problem}")
    result: dict[str, Any] = value
    return result


def _header_window(headers: dict[str, bytes], default: float | None) -> float | None:
    raw = headers.get(HEADER_WINDOW)
    if raw is None:
        return default
    try:
        window = float(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise MediaError(Code.INVALID_HEADER, f"{HEADER_WINDOW} is not a number") from None
    if not 500 <= window <= 10_000:
        raise MediaError(
            Code.INVALID_HEADER, f"{HEADER_WINDOW} must be between 500 and 10000, got {window:g}"
        )
    return window


def _header_flag(headers: dict[str, bytes], name: str) -> bool:
    raw = headers.get(name)
    if raw is None:
        return False
    text = raw.decode("ascii", "replace").strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no", ""):
        return False
    raise MediaError(Code.INVALID_HEADER, f"{name} must be true or false")


def _envelope(
    value: bytes, header_models: dict[str, Any] | None, window: float | None, reset: bool
) -> Request:
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise MediaError(Code.INVALID_ENVELOPE, "the value is not valid JSON") from None
    if not isinstance(obj, dict):
        raise MediaError(Code.INVALID_ENVELOPE, "the value must be a JSON object (a v0 request)")
    unknown = sorted(set(obj) - ENVELOPE_FIELDS)
    if unknown:
        raise MediaError(
            Code.INVALID_ENVELOPE,
            f"unknown field(s) {', '.join(unknown)}; a v0 request has {', '.join(sorted(ENVELOPE_FIELDS))}",
        )
    data = obj.get("data")
    if not isinstance(data, str) or not data:
        raise MediaError(Code.INVALID_ENVELOPE, "field data must be a non-empty string")
    models = obj.get("models", header_models)
    if models is None:
        raise MediaError(Code.INVALID_ENVELOPE, "field models is missing (and no hume-models header)")
    problem = models_problem(models)
    if problem:
        raise MediaError(Code.INVALID_MODELS, f"models: {problem}")
    for name, typ in (("raw_text", bool), ("job_details", bool), ("reset_stream", bool)):
        if name in obj and not isinstance(obj[name], typ):
            raise MediaError(Code.INVALID_ENVELOPE, f"field {name} must be true or false")
    if "payload_id" in obj and not isinstance(obj["payload_id"], str):
        raise MediaError(Code.INVALID_ENVELOPE, "field payload_id must be a string")
    if "stream_window_ms" in obj:
        w = obj["stream_window_ms"]
        if isinstance(w, bool) or not isinstance(w, int | float) or not 500 <= w <= 10_000:
            raise MediaError(
                Code.INVALID_ENVELOPE, "field stream_window_ms must be a number from 500 to 10000"
            )
    elif window is not None:
        obj["stream_window_ms"] = window
    obj["models"] = models
    reset = bool(obj.pop("reset_stream", False)) or reset
    raw_text = bool(obj.get("raw_text", False))
    audio_context = bool(AUDIO_MODELS & set(models)) and not raw_text
    if raw_text:
        usage = Usage("text", text_chars=len(data))
    elif audio_context:
        usage = Usage("audio")
    else:
        usage = Usage("image" if "face" in models else "facemesh", images=1 if "face" in models else 0)
    return Request(obj, tuple(m for m in models if m in KNOWN_MODELS), audio_context, reset, usage)
