"""Shaping a decoded record into a v0 request, or rejecting it with the code Hume v0 would have earned it.

v0's vocabulary lives here and nowhere else in the bridge: its per-payload limits, which models run on
which media, its headers (``hume-models``, ``hume-stream-window-ms``, ``hume-reset-stream``) and its
request envelope (``application/vnd.hume.stream+json``). The emulator keeps its own copies on purpose.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from bridge import media
from bridge.config import KNOWN_MODELS, models_problem
from bridge.core.decode import Decoded, check_payload_id
from bridge.core.model import Prepared
from bridge.errors import Code, MediaError
from bridge.media import MediaKind
from bridge.upstream.v0.limits import AUDIO_LIMIT_MS, FACEMESH_LIMIT_FACES, IMAGE_LIMIT_PX, TEXT_LIMIT_CHARS

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
HEADER_MODELS = "hume-models"
HEADER_WINDOW = "hume-stream-window-ms"
HEADER_RESET = "hume-reset-stream"


@dataclass(frozen=True, slots=True)
class Usage:
    """What one request costs at Hume, for the usage counters."""

    kind: str
    audio_s: float = 0.0
    images: int = 0
    text_chars: int = 0


@dataclass(frozen=True, slots=True)
class V0Request:
    """A v0 request body without ``payload_id`` and ``reset_stream`` (and without ``data`` when it is
    binary media, kept raw in ``media`` until the frame is built, so buffered records stay raw)."""

    body: dict[str, Any]
    models: tuple[str, ...]
    usage: Usage
    media: bytes | None = None


@dataclass(frozen=True, slots=True)
class V0Settings:
    default_models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    stream_window_ms: float | None = None
    job_details: bool = False


def prepare(record: Decoded, settings: V0Settings) -> Prepared:
    """``record`` as a v0 request; raises :class:`MediaError` for anything Hume v0 would refuse."""
    headers, value, kind = record.headers, record.value, record.kind
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
    media_bytes: bytes | None = None
    if kind is MediaKind.TEXT:
        text = media.decode_text(value)
        if len(text) > TEXT_LIMIT_CHARS:
            raise MediaError(
                Code.TEXT_TOO_LONG, f"text has {len(text)} characters, over Hume's {TEXT_LIMIT_CHARS}"
            )
        body["data"] = text
        body["raw_text"] = True
        usage = Usage("text", text_chars=len(text))
    elif kind is MediaKind.FACEMESH:
        media.check_facemesh(value, FACEMESH_LIMIT_FACES)
        media_bytes = value  # landmarks JSON, sent base64-encoded like any media
        usage = Usage("facemesh")
    elif kind is MediaKind.IMAGE:
        info = media.inspect_image(value)
        if info.width > IMAGE_LIMIT_PX or info.height > IMAGE_LIMIT_PX:
            raise MediaError(
                Code.IMAGE_TOO_LARGE,
                f"image is {info.width} x {info.height} px, over Hume's {IMAGE_LIMIT_PX} x {IMAGE_LIMIT_PX}",
            )
        media_bytes = value
        usage = Usage("image", images=1)
    elif kind is MediaKind.AUDIO:
        audio = media.inspect_audio(value, record.content_type)
        if audio.duration_ms is not None and audio.duration_ms > AUDIO_LIMIT_MS:
            raise MediaError(
                Code.AUDIO_TOO_LONG,
                f"audio lasts {audio.duration_ms:.0f} ms, over Hume's {AUDIO_LIMIT_MS} ms: "
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
    request = V0Request(body, tuple(models), usage, media_bytes)
    return Prepared(request, sticky=audio_context, reset_context=reset)


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
) -> Prepared:
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
    payload_id = obj.pop("payload_id", None)
    if payload_id is not None and not isinstance(payload_id, str):
        raise MediaError(Code.INVALID_ENVELOPE, "field payload_id must be a string")
    if payload_id:  # an empty one means "no id": the record's default
        pid_problem = check_payload_id(payload_id, "field payload_id")
        if pid_problem:
            raise MediaError(Code.INVALID_ENVELOPE, pid_problem)
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
    request = V0Request(obj, tuple(m for m in models if m in KNOWN_MODELS), usage)
    return Prepared(request, sticky=audio_context, reset_context=reset, payload_id=payload_id or None)
