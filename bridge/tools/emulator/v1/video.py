"""Video: the face rule (pure) and the realtime video session's rules.

An image must be a JPEG (``FF D8 FF``, decoded by Pillow) of at most 8,294,400 pixels. Its faces:

- a **uniform** image (every RGB band of its 32 x 32 thumbnail spans at most 8 levels) has none;
- otherwise it has ``N`` faces, where ``N`` is given by a JPEG comment ``faces=N`` (0-40) if there is one,
  else ``1 + digest[0] % 3`` (``digest`` = BLAKE2b-128 of the JPEG bytes);
- face ``k`` (its *slot*) has, from five fractions ``f1..f5`` of BLAKE2b(digest + "face" + k): width
  ``min(W, H) * (0.3 + 0.5 f1)``, height ``min(H, width * (1.1 + 0.2 f2))``, left ``(W - width) f3``, top
  ``(H - height) f4`` (the box lies inside the image; floats rounded to 0.01 px) and ``confidence`` ``0.9 +
  0.0999 f5`` (4 decimals);
- faces whose confidence is under ``threshold`` or whose shorter side is under ``min_size`` are not listed;
  the two largest (area, then slot) are measured and listed first, largest first; the others follow, most
  confident first (then by slot), 32 faces at most in all.
- A measured face gets a ``face_id``: the session's id of its slot, given from 0 in order of first measurement
  (32 slots remembered, the least recently measured forgotten first); ``expressions`` (every name) and
  ``descriptions`` (those above 0.1) score the image digest and the slot.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

from PIL import Image

from bridge.tools.emulator.v1 import limits as L
from bridge.tools.emulator.v1.audio import (
    CloseReason,
    Outcome,
    RealtimeCore,
    TokenBucket,
    error,
)
from bridge.tools.emulator.v1.scores import FACE_DESCRIPTION_FLOOR, FACE_EXPRESSION_FLOOR, scores, seed_of
from bridge.tools.emulator.v1.vocabulary import Vocabulary, VocabularyKind

Json = dict[str, Any]
MAX_FACES_BY_COMMENT: Final = 40
_FACES_COMMENT: Final = re.compile(rb"faces=(\d{1,2})")


@dataclass(frozen=True, slots=True)
class Picture:
    width: int
    height: int
    uniform: bool
    digest: bytes
    faces_hint: int | None


class BadImage(ValueError):
    """An image that is not a JPEG (``unsupported``), is too big, or cannot be decoded."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "unsupported" | "too_large" | "undecodable"


def inspect_jpeg(data: bytes) -> Picture:
    if not data.startswith(b"\xff\xd8\xff"):
        raise BadImage("unsupported", "The image is not a JPEG.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=["JPEG"])
            width, height = image.size
            if width * height > L.MAX_IMAGE_PIXELS:
                raise BadImage(
                    "too_large",
                    f"The image has {width * height} pixels; at most {L.MAX_IMAGE_PIXELS} are allowed.",
                )
            comment = image.info.get("comment", b"")
            image.draft("RGB", (64, 64))
            thumb = image.convert("RGB").resize((32, 32))
    except BadImage:
        raise
    except Exception as exc:  # Pillow raises many kinds for broken data
        raise BadImage("undecodable", f"The JPEG could not be decoded: {type(exc).__name__}.") from None
    uniform = all(high - low <= 8 for low, high in thumb.getextrema())  # type: ignore[misc]
    hint = None
    if isinstance(comment, bytes) and (match := _FACES_COMMENT.search(comment)):
        hint = min(MAX_FACES_BY_COMMENT, int(match.group(1)))
    return Picture(width, height, uniform, seed_of(data), hint)


@dataclass(frozen=True, slots=True)
class FaceConfig:
    threshold: float = L.DEFAULT_FACE_THRESHOLD
    min_size: int = L.DEFAULT_FACE_MIN_SIZE

    def to_json(self) -> Json:
        return {"threshold": self.threshold, "min_size": self.min_size}


def _fractions(seed: bytes, n: int) -> list[float]:
    raw = hashlib.blake2b(seed, digest_size=2 * n).digest()
    return [int.from_bytes(raw[2 * i : 2 * i + 2], "little") / 65536 for i in range(n)]


@dataclass(frozen=True, slots=True)
class FaceBox:
    slot: int
    bbox: tuple[float, float, float, float]
    confidence: float

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.bbox
        return (x1 - x0) * (y1 - y0)

    @property
    def shorter_side(self) -> float:
        x0, y0, x1, y1 = self.bbox
        return min(x1 - x0, y1 - y0)


def detect_faces(picture: Picture, config: FaceConfig) -> list[FaceBox]:
    """The listed faces of a picture, at most 32: the measured ones (the two largest) first, largest first,
    then the others, most confident first."""
    if picture.uniform:
        return []
    count = picture.faces_hint if picture.faces_hint is not None else 1 + picture.digest[0] % 3
    w_img, h_img = picture.width, picture.height
    boxes = []
    for slot in range(count):
        f1, f2, f3, f4, f5 = _fractions(picture.digest + b"face" + slot.to_bytes(2, "little"), 5)
        width = min(w_img, h_img) * (0.3 + 0.5 * f1)
        height = min(float(h_img), width * (1.1 + 0.2 * f2))
        x0 = (w_img - width) * f3
        y0 = (h_img - height) * f4
        bbox = (round(x0, 2), round(y0, 2), round(x0 + width, 2), round(y0 + height, 2))
        face = FaceBox(slot, bbox, round(0.9 + 0.0999 * f5, 4))
        if face.confidence >= config.threshold and face.shorter_side >= config.min_size:
            boxes.append(face)
    boxes.sort(key=lambda f: (-f.area, f.slot))
    rest = sorted(boxes[L.MEASURED_FACES :], key=lambda f: (-f.confidence, f.slot))
    return (boxes[: L.MEASURED_FACES] + rest)[: L.LISTED_FACES]


class FaceIds:
    """A session's face identities: slot -> face id, 32 remembered (least recently measured forgotten)."""

    def __init__(self, next_id: int = 0, known: dict[int, int] | None = None) -> None:
        self.next_id = next_id
        self.known: OrderedDict[int, int] = OrderedDict(known or {})

    def id_for(self, slot: int) -> int:
        if slot in self.known:
            self.known.move_to_end(slot)
            return self.known[slot]
        face_id = self.next_id
        self.next_id += 1
        self.known[slot] = face_id
        while len(self.known) > L.REMEMBERED_FACES:
            self.known.popitem(last=False)
        return face_id


def measure_faces(picture: Picture, config: FaceConfig, ids: FaceIds, vocabulary: Vocabulary) -> list[Json]:
    faces: list[Json] = []
    for index, box in enumerate(detect_faces(picture, config)):
        face: Json = {"face_id": None, "bbox": list(box.bbox), "confidence": box.confidence}
        if index < L.MEASURED_FACES:
            seed = seed_of(picture.digest + box.slot.to_bytes(2, "little"))
            face["face_id"] = ids.id_for(box.slot)
            face["expressions"] = scores(
                seed, vocabulary.names(VocabularyKind.FACE_EXPRESSIONS), FACE_EXPRESSION_FLOOR
            )
            face["descriptions"] = scores(
                seed, vocabulary.names(VocabularyKind.FACE_DESCRIPTIONS), FACE_DESCRIPTION_FLOOR, strict=True
            )
        else:
            face["expressions"] = face["descriptions"] = None
        faces.append(face)
    return faces


def face_config(
    value: Any, problems: list[str], allowed: tuple[str, ...] = ("threshold", "min_size")
) -> FaceConfig:
    """A face configuration from a (possibly absent) JSON object; omitted fields take the defaults."""
    if value is None:
        return FaceConfig()
    if not isinstance(value, dict):
        problems.append("face must be an object")
        return FaceConfig()
    problems.extend(f"face.{key}: unknown field" for key in value if key not in allowed)
    threshold = value.get("threshold")
    if threshold is None:
        threshold = L.DEFAULT_FACE_THRESHOLD
    elif isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        problems.append("face.threshold must be a number from 0 to 1")
        threshold = L.DEFAULT_FACE_THRESHOLD
    min_size = value.get("min_size")
    if min_size is None:
        min_size = L.DEFAULT_FACE_MIN_SIZE
    elif isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 1:
        problems.append("face.min_size must be an integer of at least 1")
        min_size = L.DEFAULT_FACE_MIN_SIZE
    return FaceConfig(float(threshold), min_size)


@dataclass(slots=True)
class VideoSessionSettings:
    burst_frames: float = 3.0
    pace_factor: float = 1.0


@dataclass(slots=True)
class VideoCounters:
    frames: int = 0  # frames accepted for measurement (later internal errors included)
    results: int = 0
    faces_measured: int = 0
    rate_limited: int = 0
    invalid: int = 0
    errors_in_a_row: int = 0
    bytes_accepted: int = 0


class VideoSession(RealtimeCore):
    """One realtime video session, sans I/O: every frame gets exactly one reply, in order."""

    MAX_TEXT_BYTES = L.MAX_VIDEO_FRAME_BYTES
    MEDIA = "image frame"

    def __init__(self, session_id: str, settings: VideoSessionSettings, vocabulary: Vocabulary, now: float):
        self.session_id = session_id
        self.vocabulary = vocabulary
        self.face = FaceConfig()
        self.bucket = TokenBucket(L.VIDEO_FPS * settings.pace_factor, settings.burst_frames, now)
        self.ids = FaceIds()
        self.media_seen = False
        self.count = VideoCounters()
        self.closed = False

    def config(self) -> Json:
        return {"image": dict(L.IMAGE_CONFIG), "face": self.face.to_json()}

    def on_text(self, data: str | bytes) -> Outcome:
        obj = self.update_message(data)
        if isinstance(obj, Outcome):
            return obj
        problems = [f"{key}: unknown field" for key in obj if key not in ("type", "image", "face")]
        image = obj.get("image")
        if image is not None:
            if not isinstance(image, dict):
                problems.append("image must be an object")
            else:
                problems.extend(f"image.{key}: unknown field" for key in image if key != "type")
                if image.get("type") not in (None, "image/jpeg"):
                    problems.append("image.type must be 'image/jpeg'")
        face = face_config(obj.get("face"), problems)
        if problems:
            return self._fail("config_invalid", "Invalid configuration: " + "; ".join(problems) + ".")
        self.face = face
        return Outcome([{"type": "session.updated", **self.config()}])

    def on_binary(
        self, data: bytes, now: float, *, internal_error: bool = False, internal_retryable: bool = True
    ) -> Outcome:
        self.media_seen = True
        if len(data) > L.MAX_VIDEO_FRAME_BYTES:
            return self._fail(
                "message_too_large", f"Image frames are limited to {L.MAX_VIDEO_FRAME_BYTES} bytes."
            )
        if not self.bucket.take(1.0, now):
            self.count.rate_limited += 1
            return Outcome(
                [
                    error(
                        "rate_limited",
                        "Frames are arriving faster than 3 per second; not measured.",
                        retryable=True,
                    )
                ]
            )
        try:
            if not data:
                raise BadImage("unsupported", "The frame is empty.")
            picture = inspect_jpeg(data)
        except BadImage as exc:
            self.count.invalid += 1
            return Outcome([error("invalid_image_frame", str(exc), retryable=True)])
        self.count.frames += 1
        self.count.bytes_accepted += len(data)
        if internal_error:
            self.count.errors_in_a_row += 1
            failure = error(
                "internal_error", "The frame could not be measured.", retryable=internal_retryable
            )
            if self.count.errors_in_a_row >= L.VIDEO_ERRORS_IN_A_ROW_END:
                self.closed = True
                return Outcome(
                    [failure, self.closed_message(CloseReason.ERROR)], L.CLOSE_POLICY, CloseReason.ERROR
                )
            return Outcome([failure])
        self.count.errors_in_a_row = 0
        faces = measure_faces(picture, self.face, self.ids, self.vocabulary)
        result = {"type": "measurement.result", "frame_id": self.count.results, "faces": faces}
        self.count.results += 1
        self.count.faces_measured += sum(1 for f in faces if f["face_id"] is not None)
        return Outcome([result], accepted=data)

    def close(self, reason: CloseReason, close_code: int = L.CLOSE_NORMAL) -> Outcome:
        self.closed = True
        return Outcome([self.closed_message(reason)], close_code, reason)

    def closed_message(self, reason: CloseReason) -> Json:
        return {
            "type": "session.closed",
            "session_id": self.session_id,
            "reason": reason.value,
            "received": {"frames": self.count.frames},
            "produced": {"measurements": self.count.faces_measured},
        }
