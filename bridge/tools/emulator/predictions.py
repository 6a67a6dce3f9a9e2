"""Deterministic predictions in the exact shapes of Hume's v0 streaming replies.

Every number is a function of the content, never of time, connection or order of arrival:

- A score list is seeded by a hash of (what is scored, which model, which label set). Scores are
  ``u ** 2 * 1.03`` for a uniform ``u`` drawn from that hash, so most are small, a few are high and about one
  in seventy is slightly above 1 (Hume's scores are intensities, not probabilities).
- Labels are listed in an order shuffled by the same hash: different from the documented alphabetical order
  and different from one prediction to the next, so only lookups by name work.
- A face: one per image that is not uniform (see :mod:`bridge.tools.emulator.media`), one per sampled frame
  of a video (frames every ``1 / fps_pred`` s, numbered at a nominal 30 fps, in a nominal 1280 x 720 picture).
  ``prob`` lies in [0.99, 0.9999); a face under ``prob_threshold`` or with a box side under
  ``min_face_size`` pixels is not reported. ``bbox`` is inside the picture, about half its size.
- Language units (end-exclusive character positions into the text): ``word`` = each run of non-space
  characters; ``sentence`` = text up to and including a run of ``.``, ``!`` or ``?``; ``utterance`` = each
  non-empty line; ``passage`` = the whole text. Leading and trailing white space is never part of a unit.
  A unit's scores depend on its text only, so the same word scores the same everywhere.
- Prosody: one prediction per payload in the audio window (see :mod:`bridge.tools.emulator.protocol`), with
  the payload's time range in the window; burst: the same for voiced payloads only.
- Facemesh: one prediction per face.

Prediction lists are cached as pre-serialised JSON fragments (bounded LRU), so a repeated payload costs a
dictionary lookup and a small ``orjson.dumps``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final

import orjson

from bridge.tools.emulator.labels import DESCRIPTIONS, EMOTIONS, FACS, LANGUAGE_EMOTIONS, SENTIMENT, TOXICITY

VIDEO_FRAME_RATE: Final = 30.0
VIDEO_SIZE: Final = (1280, 720)
PROB_MIN: Final = 0.99
PROB_SPAN: Final = 0.0099

NO_FACES: Final = ("No faces detected.", "W0103")
NO_BURSTS: Final = ("No vocal bursts detected.", "W0101")
NO_FACEMESHES: Final = ("No facemeshes detected.", "W0102")

Json = dict[str, Any]


def scores(seed: bytes, labels: tuple[str, ...]) -> list[Json]:
    """``[{"name", "score"}]`` for every label, deterministic in ``seed``, in a seed-shuffled order."""
    n = len(labels)
    raw = hashlib.shake_256(seed + b"|" + str(n).encode()).digest(3 * n)
    values = [int.from_bytes(raw[2 * i : 2 * i + 2], "little") / 65535.0 for i in range(n)]
    order = sorted(range(n), key=lambda i: (raw[2 * n + i], i))
    return [{"name": labels[i], "score": values[i] * values[i] * 1.03} for i in order]


def _fractions(seed: bytes, count: int) -> list[float]:
    raw = hashlib.shake_256(seed).digest(2 * count)
    return [int.from_bytes(raw[2 * i : 2 * i + 2], "little") / 65536.0 for i in range(count)]


@dataclass(frozen=True, slots=True)
class FaceOptions:
    fps_pred: float = 3.0
    prob_threshold: float | None = None
    identify_faces: bool = False
    min_face_size: float | None = None
    facs: bool = False
    descriptions: bool = False


@dataclass(frozen=True, slots=True)
class LanguageOptions:
    granularity: str = "word"
    sentiment: bool = False
    toxicity: bool = False


def face(
    digest: bytes,
    options: FaceOptions,
    face_id: str,
    *,
    width: int,
    height: int,
    frames: tuple[tuple[int, float | None], ...],
) -> list[Json]:
    """One face per (frame, time) in ``frames``; an empty list when every face is filtered out."""
    out: list[Json] = []
    for frame, time in frames:
        seed = digest + b"face" + frame.to_bytes(4, "little")
        fx, fy, fw, fh, fp = _fractions(seed + b"geometry", 5)
        w = width * (0.35 + 0.15 * fw)
        h = height * (0.45 + 0.15 * fh)
        box = {
            "x": round((width - w) * (0.2 + 0.6 * fx), 3),
            "y": round((height - h) * (0.2 + 0.6 * fy), 3),
            "w": round(w, 3),
            "h": round(h, 3),
        }
        prob = PROB_MIN + PROB_SPAN * fp
        if options.prob_threshold is not None and prob < options.prob_threshold:
            continue
        if options.min_face_size is not None and min(w, h) < options.min_face_size:
            continue
        out.append(
            {
                "frame": frame,
                "time": time,
                "bbox": box,
                "prob": prob,
                "face_id": face_id,
                "emotions": scores(seed + b"emotions", EMOTIONS),
                "facs": scores(seed + b"facs", FACS) if options.facs else None,
                "descriptions": (
                    scores(seed + b"descriptions", DESCRIPTIONS) if options.descriptions else None
                ),
            }
        )
    return out


def video_frames(duration_ms: float, fps_pred: float) -> tuple[tuple[int, float | None], ...]:
    """(frame number, time in s) of the frames a video is sampled at: every ``1 / fps_pred`` s."""
    count = max(1, math.ceil(duration_ms / 1000.0 * fps_pred - 1e-9))
    return tuple((round(i / fps_pred * VIDEO_FRAME_RATE), round(i / fps_pred, 6)) for i in range(count))


_WORD: Final = re.compile(r"\S+")
_SENTENCE: Final = re.compile(r"\S[^.!?]*(?:[.!?]+|$)")
_LINE: Final = re.compile(r"[^\r\n]+")


def language_units(text: str, granularity: str) -> list[tuple[str, int, int]]:
    """(unit text, begin, end) of each unit of ``text`` at ``granularity``; end is exclusive."""
    if granularity == "word":
        return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
    if granularity == "passage":
        spans = [(0, len(text))]
    else:
        pattern = _SENTENCE if granularity == "sentence" else _LINE
        spans = [(m.start(), m.end()) for m in pattern.finditer(text)]
    units = []
    for begin, end in spans:
        chunk = text[begin:end]
        stripped = chunk.strip()
        if stripped:
            start = begin + len(chunk) - len(chunk.lstrip())
            units.append((stripped, start, start + len(stripped)))
    return units


def language(text: str, options: LanguageOptions) -> list[Json]:
    out: list[Json] = []
    for unit, begin, end in language_units(text, options.granularity):
        seed = unit.encode("utf-8", "surrogatepass")
        out.append(
            {
                "text": unit,
                "position": {"begin": begin, "end": end},
                "emotions": scores(seed + b"language", LANGUAGE_EMOTIONS),
                "sentiment": scores(seed + b"sentiment", SENTIMENT) if options.sentiment else None,
                "toxicity": scores(seed + b"toxicity", TOXICITY) if options.toxicity else None,
            }
        )
    return out


def audio_emotions(digest: bytes, model: str) -> list[Json]:
    """The scores of one payload's audio for ``prosody`` or ``burst``, wherever it sits in a window."""
    return scores(digest + model.encode(), EMOTIONS)


def facemesh(digest: bytes, faces: int) -> list[Json]:
    return [
        {"emotions": scores(digest + b"facemesh" + i.to_bytes(2, "little"), EMOTIONS)} for i in range(faces)
    ]


class FragmentCache:
    """A bounded LRU of pre-serialised prediction lists (``orjson.Fragment``) keyed by what they depend on.
    An empty list is kept as ``None``: nothing detected."""

    def __init__(self, maxsize: int = 8192) -> None:
        self._maxsize = maxsize
        self._entries: OrderedDict[Hashable, orjson.Fragment | None] = OrderedDict()

    def get(self, key: Hashable, build: Callable[[], list[Json]]) -> orjson.Fragment | None:
        try:
            found = self._entries[key]
        except KeyError:
            pass
        else:
            self._entries.move_to_end(key)
            return found
        built = build()
        fragment = orjson.Fragment(orjson.dumps(built)) if built else None
        self._entries[key] = fragment
        if len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)
        return fragment

    def __len__(self) -> int:
        return len(self._entries)
