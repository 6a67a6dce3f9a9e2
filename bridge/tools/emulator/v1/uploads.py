"""Uploads (pure): the parts of a multipart request in, the response body or an HTTP error out.

Audio (``POST /v1/expression/audio/file``): exactly one ``file`` part and at most one ``config`` part
(``{"measurement_timer_ms": int}``). The file is sniffed from its bytes, whatever its declared type:
``RIFF....WAVE`` is read with the standard library's :mod:`wave` (only 16 kHz mono 16-bit PCM; another rate,
channel count or width, ``WAVE_FORMAT_EXTENSIBLE``, a broken or truncated file → ``audio_decode_failed``);
``RIFF`` without ``WAVE``, ``ID3``, an MPEG/ADTS frame sync (``FF FB``, ``FF F3``, ``FF F2``, ``FF F1``,
``FF F9``), ``fLaC``, ``OggS`` and ``....ftyp`` → ``unsupported_media_type``; anything else is headerless PCM
(empty or odd length → ``audio_decode_failed``). The audio goes through the same :class:`SpeechTracker` as a
realtime session, so the measurements are the ones a session would stream for the same audio.

Video (``POST /v1/expression/video/file``): one or more ``file`` parts (JPEG) and an optional ``config``
part ``{"face": {"threshold", "min_size", "return_face_state"}, "face_state"}``. Every image is checked
before any is measured: not a JPEG → ``unsupported_media_type``; over 2,000,000 bytes or 8,294,400 pixels →
``image_too_large``; undecodable → ``image_decode_failed``.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
import wave
from dataclasses import dataclass
from typing import Any

import orjson

from bridge.tools.emulator.v1 import limits as L
from bridge.tools.emulator.v1.audio import SpeechRules, SpeechTracker, check_timer
from bridge.tools.emulator.v1.video import (
    BadImage,
    FaceIds,
    Picture,
    face_config,
    inspect_jpeg,
    measure_faces,
)
from bridge.tools.emulator.v1.vocabulary import Vocabulary

Json = dict[str, Any]

STATUS_OF: dict[str, int] = {
    "message_invalid": 400,
    "config_invalid": 400,
    "audio_decode_failed": 400,
    "image_decode_failed": 400,
    "invalid_request": 400,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "audio_too_long": 413,
    "image_too_large": 413,
    "unsupported_media_type": 415,
    "internal_error": 500,
    "server_busy": 503,
}


class UploadError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return STATUS_OF[self.code]


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    content_type: str | None
    data: bytes


def _config_part(parts: list[Part]) -> Json | None:
    configs = [p for p in parts if p.name == "config"]
    if len(configs) > 1:
        raise UploadError("invalid_request", "At most one config part is allowed.")
    if not configs:
        return None
    try:
        config = orjson.loads(configs[0].data)
    except orjson.JSONDecodeError:
        raise UploadError("message_invalid", "The config part is not valid JSON.") from None
    if not isinstance(config, dict):
        raise UploadError("config_invalid", "The config part must be a JSON object.")
    return config


def _other_parts(parts: list[Part]) -> None:
    others = sorted({p.name for p in parts if p.name not in ("file", "config")})
    if others:
        raise UploadError("invalid_request", f"Unknown form parts: {', '.join(others)}.")


_UNSUPPORTED_PREFIXES = (
    b"ID3",
    b"\xff\xfb",
    b"\xff\xf3",
    b"\xff\xf2",
    b"\xff\xf1",
    b"\xff\xf9",
    b"fLaC",
    b"OggS",
)


def decode_audio(data: bytes) -> bytes:
    """The PCM of an uploaded audio file; :class:`UploadError` as the module describes."""
    if data.startswith(b"RIFF"):
        if data[8:12] != b"WAVE":
            raise UploadError("unsupported_media_type", "RIFF files other than WAV are not supported.")
        try:
            with wave.open(io.BytesIO(data)) as wav:
                channels, width, rate, frames = (
                    wav.getnchannels(),
                    wav.getsampwidth(),
                    wav.getframerate(),
                    wav.getnframes(),
                )
                pcm = bytes(wav.readframes(frames))
        except (wave.Error, EOFError, ValueError, struct.error) as exc:
            raise UploadError("audio_decode_failed", f"The WAV file could not be read: {exc}.") from None
        if (channels, width, rate) != (1, 2, L.SAMPLE_RATE):
            raise UploadError(
                "audio_decode_failed",
                f"WAV must be 16 kHz mono 16-bit PCM; got {rate} Hz, {channels} channel(s), {8 * width}-bit.",
            )
        if len(pcm) != frames * 2:
            raise UploadError("audio_decode_failed", "The WAV file is truncated.")
        if not pcm:
            raise UploadError("audio_decode_failed", "The WAV file holds no audio.")
        return pcm
    if data.startswith(_UNSUPPORTED_PREFIXES) or data[4:8] == b"ftyp":
        raise UploadError(
            "unsupported_media_type", "Only WAV and headerless PCM (16 kHz mono s16le) are supported."
        )
    if not data or len(data) % 2:
        raise UploadError(
            "audio_decode_failed", "Headerless PCM must be a non-empty whole number of samples."
        )
    return data


@dataclass(frozen=True, slots=True)
class AudioUpload:
    body: Json  # without request_id and run_id
    pcm: bytes
    config: Json


def audio_upload(parts: list[Part], vocabulary: Vocabulary, rules: SpeechRules) -> AudioUpload:
    _other_parts(parts)
    files = [p for p in parts if p.name == "file"]
    if len(files) != 1:
        raise UploadError("invalid_request", "Exactly one file part is required.")
    config = _config_part(parts) or {}
    problems = [f"{key}: unknown field" for key in config if key != "measurement_timer_ms"]
    timer = check_timer(config.get("measurement_timer_ms"), problems)
    if problems:
        raise UploadError("config_invalid", "Invalid configuration: " + "; ".join(problems) + ".")
    pcm = decode_audio(files[0].data)
    tracker = SpeechTracker(timer, rules, vocabulary)
    messages = tracker.feed(pcm) + tracker.finish()
    utterances = [
        {k: m[k] for k in ("utterance_id", "audio_start_ms", "audio_end_ms")}
        for m in messages
        if m["type"] == "utterance.end"
    ]
    measurements = [
        {k: v for k, v in m.items() if k != "type"} for m in messages if m["type"] == "measurement.result"
    ]
    body = {
        "received": {"audio_duration_ms": len(pcm) // L.BYTES_PER_MS},
        "utterances": utterances,
        "measurements": measurements,
    }
    run_config = {"schema": "v4", "audio": dict(L.AUDIO_CONFIG), "measurement_timer_ms": timer}
    return AudioUpload(body, pcm, run_config)


def encode_face_state(ids: FaceIds, now: float) -> str:
    state = {
        "v": 1,
        "next": ids.next_id,
        "known": [[s, i] for s, i in ids.known.items()],
        "exp": now + L.FACE_STATE_TTL_S,
    }
    return base64.urlsafe_b64encode(orjson.dumps(state)).decode().rstrip("=")


def decode_face_state(token: Any, now: float) -> FaceIds:
    if not isinstance(token, str):
        raise UploadError("config_invalid", "face_state must be a string from an earlier response.")
    try:
        state = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        known = {int(s): int(i) for s, i in state["known"]}
        next_id, expires = int(state["next"]), float(state["exp"])
    except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise UploadError("config_invalid", "face_state is not a state this server gave.") from None
    if expires < now:
        raise UploadError("config_invalid", "face_state has expired (it is valid for 24 hours).")
    return FaceIds(next_id, known)


@dataclass(frozen=True, slots=True)
class VideoUpload:
    body: Json
    frames: int
    jpeg_bytes: int
    config: Json


def video_upload(parts: list[Part], vocabulary: Vocabulary, now: float) -> VideoUpload:
    _other_parts(parts)
    files = [p for p in parts if p.name == "file"]
    if not files:
        raise UploadError("invalid_request", "At least one file part is required.")
    config = _config_part(parts) or {}
    problems = [f"{key}: unknown field" for key in config if key not in ("face", "face_state")]
    face_value = config.get("face")
    want_state = False
    if isinstance(face_value, dict):
        want_state_value = face_value.get("return_face_state", False)
        if not isinstance(want_state_value, bool):
            problems.append("face.return_face_state must be true or false")
        else:
            want_state = want_state_value
    face = face_config(face_value, problems, ("threshold", "min_size", "return_face_state"))
    if problems:
        raise UploadError("config_invalid", "Invalid configuration: " + "; ".join(problems) + ".")
    ids = decode_face_state(config["face_state"], now) if config.get("face_state") is not None else FaceIds()
    pictures: list[Picture] = []
    for index, part in enumerate(files):
        if len(part.data) > L.MAX_VIDEO_FRAME_BYTES:
            raise UploadError("image_too_large", f"Image {index} is over {L.MAX_VIDEO_FRAME_BYTES} bytes.")
        try:
            pictures.append(inspect_jpeg(part.data))
        except BadImage as exc:
            code = {
                "unsupported": "unsupported_media_type",
                "too_large": "image_too_large",
                "undecodable": "image_decode_failed",
            }[exc.kind]
            raise UploadError(code, f"Image {index}: {exc}") from None
    measurements = [
        {"frame_id": i, "faces": measure_faces(p, face, ids, vocabulary)} for i, p in enumerate(pictures)
    ]
    body: Json = {"received": {"frames": len(pictures)}, "measurements": measurements}
    if want_state:
        body["face_state"] = encode_face_state(ids, now)
    run_config = {"schema": "v4", "image": dict(L.IMAGE_CONFIG), "face": face.to_json()}
    return VideoUpload(body, len(pictures), sum(len(p.data) for p in files), run_config)
