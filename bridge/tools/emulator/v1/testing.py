"""Media for exercising the v1 emulator (tests, the benchmark, the demo): exact speech and silence, WAV, and
JPEGs that carry a face count."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bridge.tools import samples
from bridge.tools.emulator.v1 import limits as L


def silence(ms: int) -> bytes:
    """Digital silence: never speech."""
    return bytes(ms * L.BYTES_PER_MS)


def tone(ms: int, *, hz: float = 440.0, amplitude: int = 10_000, start_ms: int = 0) -> bytes:
    """A sine tone (speech to the emulator: its RMS is far above −40 dBFS); ``start_ms`` continues the phase
    of an earlier piece, so consecutive pieces join seamlessly."""
    n0 = start_ms * L.SAMPLE_RATE // 1000
    t = (np.arange(ms * L.SAMPLE_RATE // 1000) + n0) / L.SAMPLE_RATE
    return (np.sin(2 * np.pi * hz * t) * amplitude).astype("<i2").tobytes()


def wav(pcm: bytes, *, rate: int = L.SAMPLE_RATE, channels: int = 1) -> bytes:
    return samples.wav_of(pcm, sample_rate=rate, channels=channels)


def jpeg(
    width: int = 320, height: int = 240, *, faces: int | None = None, seed: int = 0, uniform: bool = False
) -> bytes:
    """A JPEG: a random pattern (faces, to the emulator), or one flat colour if ``uniform``; ``faces`` sets
    the face count through a ``faces=N`` comment."""
    if uniform:
        image = Image.new("RGB", (width, height), (90, 120, 150))
    else:
        rng = np.random.default_rng(seed)
        small = rng.integers(0, 256, size=(max(1, height // 8), max(1, width // 8), 3), dtype=np.uint8)
        image = Image.fromarray(small, "RGB").resize((width, height))
    out = io.BytesIO()
    extra = {} if faces is None else {"comment": f"faces={faces}".encode()}
    image.save(out, "JPEG", quality=85, **extra)
    return out.getvalue()
