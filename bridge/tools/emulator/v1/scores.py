"""Deterministic scores: a pure function of the measured media's bytes and each name.

``seed = BLAKE2b-128(media bytes)``; for every name, ``u = uint32_le(BLAKE2b-32(seed + name)) / 2**32`` and
the probability is ``u`` rounded to 4 decimals. A list keeps the names whose probability reaches its floor and
is sorted by probability, highest first (ties by name). The same audio (the same window of samples) or the
same image therefore scores the same on any connection, in any run, streamed or uploaded.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

AUDIO_EXPRESSION_FLOOR: Final = 0.5  # "present": a speech expression is listed when judged present
VOICE_ATTRIBUTE_FLOOR: Final = 0.725  # Hume reports voice attributes at probability >= 0.725
FACE_EXPRESSION_FLOOR: Final = 0.0  # every face expression is listed
FACE_DESCRIPTION_FLOOR: Final = 0.1  # face descriptions only above 0.1


def seed_of(media: bytes) -> bytes:
    return hashlib.blake2b(media, digest_size=16).digest()


def probability(seed: bytes, name: str) -> float:
    raw = hashlib.blake2b(seed + name.encode(), digest_size=4).digest()
    return round(int.from_bytes(raw, "little") / 2**32, 4)


def scores(
    seed: bytes, names: tuple[str, ...], floor: float, *, strict: bool = False
) -> list[dict[str, Any]]:
    """``[{"name", "probability"}]`` for the names at or above ``floor`` (above it when ``strict``)."""
    picked = []
    for name in names:
        p = probability(seed, name)
        if p > floor if strict else p >= floor:
            picked.append((p, name))
    picked.sort(key=lambda pn: (-pn[0], pn[1]))
    return [{"name": name, "probability": p} for p, name in picked]
