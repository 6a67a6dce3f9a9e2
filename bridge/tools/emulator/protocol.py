"""The sans-I/O core of the emulator: one request frame in, one reply (bytes and what it was) out.

No sockets, no clock, no ``await``: :class:`Session` holds what Hume keeps per connection (the audio window,
face identities, the job id) and :meth:`Session.handle` turns a frame into a :class:`Reply`. The asyncio
shell in :mod:`bridge.tools.emulator.server` adds latency, ordering, faults and the network.

Validation, in this order (the first failure is the reply; Hume documents the codes, not their order):

1. the frame is not JSON → **E0100**;
2. not an object; unknown field (snake_case only: ``payloadId`` is unknown); missing ``data`` (unless the
   request is ``reset_stream`` or ``job_details`` alone) or ``models``; no model; a field of the wrong type
   (``null`` counts as absent for every optional field); a bad model option; ``stream_window_ms`` outside
   500-10000 → **E0101** (every problem is listed in the message);
3. the account is out of credits → **E0300** (payloads only; a bare ``reset_stream`` is still answered);
4. ``data`` is not strict base64 (unless ``raw_text``) → **E0201**; the bytes are no known format → **E0200**;
5. a model that cannot run on the media kind (text: language; image: face; audio: prosody, burst; video:
   face, prosody, burst; facemesh JSON: facemesh) → **E0102**;
6. prosody or burst on media without audio (an empty WAV, a video without an audio track) → **E0202**;
7. limits: audio over 5000 ms → **E0203**; video over 5000 ms → **E0204**; image over 3000 x 3000 px →
   **E0205**; text over 10,000 characters → **E0206**; facemesh over 10 faces → **E0207** (the last two
   codes are the emulator's: Hume's are not documented).

The audio window: every payload that prosody or burst ran on is remembered (up to 10 s of audio). A new one
is analysed together with the most recent earlier audio, so that the window holds at most
``stream_window_ms`` (default 5000) of audio in total: the whole current payload, then as much earlier audio
as fits, the oldest part cut first. Prosody reports one time range per payload in the window, in seconds from
the window's start, so context shows as ranges that begin before the current payload's own.
``reset_stream: true`` empties the window before the payload (or alone).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from bridge.tools.emulator import predictions as P
from bridge.tools.emulator.media import (
    MAX_IMAGE_SIDE_PX,
    Media,
    MediaCache,
    MediaKind,
    Unparseable,
)
from bridge.tools.emulator.predictions import FaceOptions, FragmentCache, LanguageOptions

MAX_AUDIO_MS: Final = 5000
MAX_VIDEO_MS: Final = 5000
MAX_TEXT_CHARS: Final = 10_000
MAX_FACEMESH_FACES: Final = 10
MIN_WINDOW_MS: Final = 500
MAX_WINDOW_MS: Final = 10_000
DEFAULT_WINDOW_MS: Final = 5000

MODELS: Final = ("face", "language", "prosody", "burst", "facemesh")
AUDIO_MODELS: Final = frozenset({"prosody", "burst"})
COMPATIBLE: Final[Mapping[MediaKind, frozenset[str]]] = {
    MediaKind.TEXT: frozenset({"language"}),
    MediaKind.IMAGE: frozenset({"face"}),
    MediaKind.AUDIO: AUDIO_MODELS,
    MediaKind.VIDEO: frozenset({"face"}) | AUDIO_MODELS,
    MediaKind.FACEMESH: frozenset({"facemesh"}),
}
GRANULARITIES: Final = ("word", "sentence", "utterance", "passage")
FIELDS: Final = frozenset(
    {"data", "models", "stream_window_ms", "reset_stream", "raw_text", "job_details", "payload_id"}
)
OUT_OF_CREDITS: Final = "Out of credits: add credits to your account to continue using the API."

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Models:
    """The models of one request, in the order the request named them."""

    names: tuple[str, ...]
    face: FaceOptions | None = None
    language: LanguageOptions | None = None


@dataclass(frozen=True, slots=True)
class Request:
    payload_id: str | None
    data: str | None
    models: Models | None
    stream_window_ms: float = DEFAULT_WINDOW_MS
    reset_stream: bool = False
    raw_text: bool = False
    job_details: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply frame and what the request log and the statistics record about it."""

    body: bytes
    kind: str  # "predictions" | "error" | "warning" | "reset" | "job_details"
    code: str | None  # error or warning code (a nested warning in a predictions reply too)
    payload_id: str | None = None
    models: tuple[str, ...] = ()
    reset_stream: bool = False
    window_payload_ids: tuple[str, ...] = ()


def error_reply(
    code: str,
    message: str,
    payload_id: str | None = None,
    models: tuple[str, ...] = (),
    reset_stream: bool = False,
) -> Reply:
    body: Json = {"error": message, "code": code}
    if payload_id is not None:
        body["payload_id"] = payload_id
    return Reply(orjson.dumps(body), "error", code, payload_id, models, reset_stream)


# --- request validation ---------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _flag(obj: Mapping[str, Any], key: str, where: str, problems: list[str]) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        problems.append(f"{where}{key}: input should be a valid boolean")
        return False
    return value


def _enable(obj: Mapping[str, Any], key: str, where: str, problems: list[str]) -> bool:
    """``{}`` enables an optional output (facs, descriptions, sentiment, toxicity); ``null`` leaves it off."""
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, dict):
        problems.append(f"{where}{key}: input should be an object")
        return False
    for extra in value:
        problems.append(f"{where}{key}.{extra}: extra inputs are not permitted")
    return True


def _number(
    obj: Mapping[str, Any], key: str, where: str, problems: list[str], *, low: float, high: float | None
) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if not _is_number(value):
        problems.append(f"{where}{key}: input should be a number")
        return None
    number = float(value)
    if number < low or (high is not None and number > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        problems.append(f"{where}{key}: input should be {bound}")
        return None
    return number


def _face_options(config: Mapping[str, Any], problems: list[str]) -> FaceOptions:
    where = "models.face."
    known = {"fps_pred", "prob_threshold", "identify_faces", "min_face_size", "facs", "descriptions"}
    problems.extend(f"{where}{k}: extra inputs are not permitted" for k in config if k not in known)
    fps = config.get("fps_pred")
    if fps is not None and (not _is_number(fps) or fps <= 0):
        problems.append(f"{where}fps_pred: input should be a number greater than 0")
        fps = None
    return FaceOptions(
        fps_pred=3.0 if fps is None else float(fps),
        prob_threshold=_number(config, "prob_threshold", where, problems, low=0.0, high=1.0),
        identify_faces=_flag(config, "identify_faces", where, problems),
        min_face_size=_number(config, "min_face_size", where, problems, low=0.0, high=None),
        facs=_enable(config, "facs", where, problems),
        descriptions=_enable(config, "descriptions", where, problems),
    )


def _language_options(config: Mapping[str, Any], problems: list[str]) -> LanguageOptions:
    where = "models.language."
    known = {"granularity", "sentiment", "toxicity"}
    problems.extend(f"{where}{k}: extra inputs are not permitted" for k in config if k not in known)
    granularity = config.get("granularity")
    if granularity is None:
        granularity = "word"
    elif granularity not in GRANULARITIES:
        problems.append(
            f"{where}granularity: input should be one of {', '.join(repr(g) for g in GRANULARITIES)}"
        )
        granularity = "word"
    return LanguageOptions(
        granularity=granularity,
        sentiment=_enable(config, "sentiment", where, problems),
        toxicity=_enable(config, "toxicity", where, problems),
    )


def _models(value: object, problems: list[str]) -> Models | None:
    if not isinstance(value, dict):
        problems.append("models: input should be an object")
        return None
    names: list[str] = []
    face: FaceOptions | None = None
    language: LanguageOptions | None = None
    for name, config in value.items():
        if name not in MODELS:
            problems.append(f"models.{name}: extra inputs are not permitted")
            continue
        if config is None:
            continue
        if not isinstance(config, dict):
            problems.append(f"models.{name}: input should be an object")
            continue
        names.append(name)
        if name == "face":
            face = _face_options(config, problems)
        elif name == "language":
            language = _language_options(config, problems)
        else:
            problems.extend(f"models.{name}.{k}: extra inputs are not permitted" for k in config)
    if not names and not problems:
        problems.append("models: at least one model is required")
    return Models(tuple(names), face, language)


def parse_request(frame: bytes | str) -> Request | Reply:
    """Validate one frame as a v0 request; an error :class:`Reply` when it is not one."""
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return error_reply("E0100", "The WebSocket payload must be a valid JSON object.")
    if not isinstance(obj, dict):
        return error_reply("E0101", "Invalid request: the payload must be a JSON object.")
    problems: list[str] = []
    payload_id = obj.get("payload_id")
    if payload_id is not None and not isinstance(payload_id, str):
        problems.append("payload_id: input should be a valid string")
        payload_id = None
    problems.extend(f"{key}: extra inputs are not permitted" for key in obj if key not in FIELDS)
    reset_stream = _flag(obj, "reset_stream", "", problems)
    raw_text = _flag(obj, "raw_text", "", problems)
    job_details = _flag(obj, "job_details", "", problems)
    window = _number(obj, "stream_window_ms", "", problems, low=MIN_WINDOW_MS, high=MAX_WINDOW_MS)
    data = obj.get("data")
    models: Models | None = None
    if data is None and obj.get("models") is None and (reset_stream or job_details):
        pass  # a bare reset or job-id query: answered, nothing analysed
    else:
        if data is None:
            problems.append("data: field required")
        elif not isinstance(data, str):
            problems.append("data: input should be a valid string")
        if obj.get("models") is None:
            problems.append("models: field required")
        else:
            models = _models(obj["models"], problems)
    if problems:
        message = "Invalid request: " + "; ".join(problems) + "."
        return error_reply("E0101", message, payload_id, reset_stream=reset_stream)
    return Request(
        payload_id=payload_id,
        data=data,
        models=models,
        stream_window_ms=DEFAULT_WINDOW_MS if window is None else window,
        reset_stream=reset_stream,
        raw_text=raw_text,
        job_details=job_details,
    )


def check_media(media: Media, models: Models) -> tuple[str, str] | None:
    """(code, message) of the first rule ``media`` breaks for ``models``, or ``None``."""
    wrong = [m for m in models.names if m not in COMPATIBLE[media.kind]]
    if wrong:
        return (
            "E0102",
            f"Model(s) {', '.join(wrong)} not compatible with the media provided: detected {media.kind.value}"
            f" ({media.format}).",
        )
    audio = AUDIO_MODELS.intersection(models.names)
    if audio and not media.has_audio:
        return "E0202", "No audio signal could be inferred from the media provided."
    ms = round(media.duration_ms or 0.0)
    if media.kind is MediaKind.AUDIO and (media.duration_ms or 0.0) > MAX_AUDIO_MS:
        return (
            "E0203",
            f"Audio is too long: the streaming limit is {MAX_AUDIO_MS} ms, received {ms} ms. Split it into"
            " shorter payloads.",
        )
    if media.kind is MediaKind.VIDEO and (media.duration_ms or 0.0) > MAX_VIDEO_MS:
        return (
            "E0204",
            f"Video is too long: the streaming limit is {MAX_VIDEO_MS} ms, received {ms} ms. Send frames as"
            " images instead.",
        )
    if media.kind is MediaKind.IMAGE and media.too_large_image:
        return (
            "E0205",
            f"Image is too large: streaming supports images up to {MAX_IMAGE_SIDE_PX}x{MAX_IMAGE_SIDE_PX} px,"
            f" received {media.width}x{media.height} px.",
        )
    if media.kind is MediaKind.TEXT and len(media.text or "") > MAX_TEXT_CHARS:
        return (
            "E0206",
            f"Text is too long: the streaming limit is {MAX_TEXT_CHARS} characters, received"
            f" {len(media.text or '')}.",
        )
    if media.kind is MediaKind.FACEMESH and media.faces > MAX_FACEMESH_FACES:
        return (
            "E0207",
            f"Too many facemeshes: the streaming limit is {MAX_FACEMESH_FACES} faces,"
            f" received {media.faces}.",
        )
    return None


# --- the per-connection session ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Audio:
    """One earlier payload's audio in the window."""

    payload_id: str | None
    digest: bytes
    duration_ms: float
    voiced: bool


class Engine:
    """What the sessions of one emulator share: the media and prediction caches."""

    def __init__(self, media_cache_size: int = 2048, fragment_cache_size: int = 8192) -> None:
        self.media = MediaCache(media_cache_size)
        self.fragments = FragmentCache(fragment_cache_size)


class Session:
    """Hume's per-connection state and the request → reply function."""

    def __init__(self, engine: Engine, job_id: str) -> None:
        self._engine = engine
        self.job_id = job_id
        self._window: deque[_Audio] = deque()
        self._face_ids: dict[bytes, str] = {}

    @staticmethod
    def job_id_for(seed: int, connection_id: int) -> str:
        """A 32-character job id, fixed per connection and reproducible from the seed."""
        return hashlib.blake2b(f"{seed}:{connection_id}".encode(), digest_size=16).hexdigest()

    @property
    def window_payload_ids(self) -> tuple[str | None, ...]:
        """The payload ids whose audio the window currently remembers, oldest first."""
        return tuple(a.payload_id for a in self._window)

    def handle(
        self, frame: bytes | str, *, out_of_credits: bool = False, top_level_warnings: bool = False
    ) -> Reply:
        request = parse_request(frame)
        if isinstance(request, Reply):
            return request
        if request.reset_stream:
            self._window.clear()
        pid = request.payload_id
        if request.models is None or request.data is None:
            body: Json = {} if pid is None else {"payload_id": pid}
            if request.job_details:
                body["job_details"] = {"job_id": self.job_id}
            kind = "reset" if request.reset_stream else "job_details"
            return Reply(orjson.dumps(body), kind, None, pid, reset_stream=request.reset_stream)
        models = request.models
        if out_of_credits:
            return error_reply("E0300", OUT_OF_CREDITS, pid, models.names, request.reset_stream)
        media = self._engine.media.inspect(request.data, raw_text=request.raw_text)
        if isinstance(media, Unparseable):
            return error_reply(media.code, media.message, pid, models.names, request.reset_stream)
        broken = check_media(media, models)
        if broken is not None:
            return error_reply(*broken, pid, models.names, request.reset_stream)
        return self._predict(request, models, media, top_level_warnings)

    def _predict(self, request: Request, models: Models, media: Media, top_level_warnings: bool) -> Reply:
        body: Json = {} if request.payload_id is None else {"payload_id": request.payload_id}
        warnings: list[tuple[str, str]] = []
        window: list[tuple[_Audio, float, float]] = []
        window_ids: tuple[str, ...] = ()
        if AUDIO_MODELS.intersection(models.names):
            window, window_ids = self._audio_window(request, media)
        for name in models.names:
            part: orjson.Fragment | list[Json] | None
            warning: tuple[str, str] | None
            if name == "face":
                part, warning = self._face(media, models.face or FaceOptions()), P.NO_FACES
            elif name == "language":
                part, warning = self._language(media, models.language or LanguageOptions()) or [], None
            elif name == "facemesh":
                part, warning = self._facemesh(media), P.NO_FACEMESHES
            else:  # prosody, burst: one time range per payload in the window (burst: voiced ones only)
                part = [
                    {
                        "time": {"begin": round(begin / 1000.0, 3), "end": round(end / 1000.0, 3)},
                        "emotions": self._audio_emotions(audio.digest, name),
                    }
                    for audio, begin, end in window
                    if name == "prosody" or audio.voiced
                ] or None
                warning = P.NO_BURSTS
            if part is None and warning is not None:
                warnings.append(warning)
                body[name] = {"warning": warning[0], "code": warning[1]}
            else:
                body[name] = {"predictions": part}
        all_warned = len(warnings) == len(models.names)
        if all_warned and top_level_warnings:
            body = {"warning": warnings[0][0], "code": warnings[0][1]}
            if request.payload_id is not None:
                body["payload_id"] = request.payload_id
        elif request.job_details:
            body["job_details"] = {"job_id": self.job_id}
        return Reply(
            orjson.dumps(body),
            "warning" if all_warned else "predictions",
            warnings[0][1] if warnings else None,
            request.payload_id,
            models.names,
            request.reset_stream,
            window_ids,
        )

    def _audio_emotions(self, digest: bytes, model: str) -> orjson.Fragment | None:
        return self._engine.fragments.get((model, digest), lambda: P.audio_emotions(digest, model))

    def _language(self, media: Media, options: LanguageOptions) -> orjson.Fragment | None:
        text = media.text or ""
        return self._engine.fragments.get(
            ("language", media.digest, options), lambda: P.language(text, options)
        )

    def _facemesh(self, media: Media) -> orjson.Fragment | None:
        return self._engine.fragments.get(
            ("facemesh", media.digest), lambda: P.facemesh(media.digest, media.faces)
        )

    def _face(self, media: Media, options: FaceOptions) -> orjson.Fragment | None:
        if media.kind is MediaKind.IMAGE:
            if media.uniform:
                return None
            frames: tuple[tuple[int, float | None], ...] = ((0, None),)
            width, height = media.width or 0, media.height or 0
        else:
            frames = P.video_frames(media.duration_ms or 0.0, options.fps_pred)
            width, height = P.VIDEO_SIZE
        face_id = "unknown"
        if options.identify_faces:
            face_id = self._face_ids.setdefault(media.digest, f"face_{len(self._face_ids)}")
        key = ("face", media.digest, options, face_id)
        return self._engine.fragments.get(
            key, lambda: P.face(media.digest, options, face_id, width=width, height=height, frames=frames)
        )

    def _audio_window(
        self, request: Request, media: Media
    ) -> tuple[list[tuple[_Audio, float, float]], tuple[str, ...]]:
        """The payloads analysed together, each with its (begin, end) in ms from the window's start; the
        current payload joins the window for the payloads after it."""
        current = _Audio(request.payload_id, media.digest, media.duration_ms or 0.0, media.voiced)
        budget = request.stream_window_ms - current.duration_ms
        earlier: list[tuple[_Audio, float]] = []
        for audio in reversed(self._window):
            if budget <= 0:
                break
            used = min(audio.duration_ms, budget)
            earlier.append((audio, used))
            budget -= used
        earlier.reverse()
        window: list[tuple[_Audio, float, float]] = []
        at = 0.0
        for audio, used in (*earlier, (current, current.duration_ms)):
            window.append((audio, at, at + used))
            at += used
        self._window.append(current)
        total = sum(a.duration_ms for a in self._window)
        while total - self._window[0].duration_ms >= MAX_WINDOW_MS:
            total -= self._window.popleft().duration_ms
        ids = tuple(audio.payload_id for audio, _ in earlier if audio.payload_id is not None)
        return window, ids
