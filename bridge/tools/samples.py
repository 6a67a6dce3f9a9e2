"""Sample media for tests, the demo and the benchmark: small, deterministic, generated on the spot.

Every function is pure (same arguments, same bytes) and cached, so a benchmark can ask for the same sample a
million times. Under the emulator's detection rules (docs/EMULATOR.md):

- ``wav(..., amplitude=0)`` is silence: no vocal burst (W0101); the default amplitude has a burst;
- ``png``/``jpeg`` images have a face unless ``uniform=True`` (W0103);
- ``jpeg_claiming``/``png_claiming`` are headers only, claiming any size: enough for size checks (E0205)
  without big buffers, not decodable;
- ``mp3``/``mp4``/``webm`` are container skeletons whose headers state the duration (and, for MP4 and WebM,
  which tracks exist); their media data is silence or empty.
"""

from __future__ import annotations

import array
import base64
import functools
import io
import math
import random
import struct
import sys
import wave
import zlib
from typing import Any

import orjson
from PIL import Image

__all__ = [
    "b64",
    "facemesh",
    "jpeg",
    "jpeg_claiming",
    "mp3",
    "mp4",
    "png",
    "png_claiming",
    "text",
    "v0_request",
    "wav",
    "webm",
]


def b64(data: bytes) -> str:
    """Standard base64, as a v0 request's ``data`` field wants it."""
    return base64.b64encode(data).decode("ascii")


@functools.lru_cache(maxsize=128)
def wav(
    duration_s: float,
    *,
    sample_rate: int = 16000,
    channels: int = 1,
    freq_hz: float = 440.0,
    amplitude: float = 0.5,
    seed: int = 0,
) -> bytes:
    """16-bit PCM WAV of a sine tone at ``amplitude`` (0..1 of full scale; 0 = silence). ``seed`` shifts the
    phase, so different seeds give different bytes (and different scores)."""
    frames = max(0, round(duration_s * sample_rate))
    level = max(0.0, min(1.0, amplitude)) * 32767.0
    phase = (seed * 2.399963229728653) % (2 * math.pi)
    step = 2 * math.pi * freq_hz / sample_rate
    mono = [round(level * math.sin(phase + i * step)) for i in range(frames)] if level else [0] * frames
    samples = array.array("h", mono if channels == 1 else [s for s in mono for _ in range(channels)])
    if sys.byteorder == "big":  # pragma: no cover - WAV is little-endian
        samples.byteswap()
    return wav_of(samples.tobytes(), sample_rate=sample_rate, channels=channels)


def wav_of(pcm: bytes, *, sample_rate: int = 16000, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV file around ``pcm`` (little-endian samples, interleaved channels)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return out.getvalue()


def _picture(width: int, height: int, uniform: bool, seed: int) -> Image.Image:
    rng = random.Random(seed)
    if uniform:
        return Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
    tiles = Image.frombytes("RGB", (8, 8), rng.randbytes(8 * 8 * 3))
    return tiles.resize((width, height), Image.Resampling.BILINEAR)


@functools.lru_cache(maxsize=64)
def png(width: int = 64, height: int = 64, *, uniform: bool = False, seed: int = 0) -> bytes:
    """A PNG picture: a smooth random pattern (a face, to the emulator), or one flat colour if ``uniform``."""
    out = io.BytesIO()
    _picture(width, height, uniform, seed).save(out, "PNG")
    return out.getvalue()


@functools.lru_cache(maxsize=64)
def jpeg(width: int = 64, height: int = 64, *, uniform: bool = False, seed: int = 0) -> bytes:
    """A JPEG picture, as :func:`png`."""
    out = io.BytesIO()
    _picture(width, height, uniform, seed).save(out, "JPEG", quality=90)
    return out.getvalue()


def jpeg_claiming(width: int, height: int) -> bytes:
    """A tiny JPEG-looking byte string (SOI, JFIF, a baseline SOF0 header, EOI) claiming ``width`` x
    ``height``; no image data."""
    app0 = b"\xff\xe0" + struct.pack(">H5sBBBHHBB", 16, b"JFIF\x00", 1, 1, 0, 1, 1, 0, 0)
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + bytes.fromhex("012200021101031101")
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG signature, an IHDR header claiming ``width`` x ``height`` and IEND; no image data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")


_WORDS = (
    "the",
    "quiet",
    "morning",
    "call",
    "went",
    "well",
    "and",
    "everyone",
    "sounded",
    "calm",
    "until",
    "the",
    "billing",
    "question",
    "came",
    "up",
    "then",
    "voices",
    "rose",
    "a",
    "little",
    "before",
    "the",
    "agent",
    "explained",
    "the",
    "refund",
    "policy",
    "clearly",
    "so",
    "the",
    "customer",
    "thanked",
    "her",
    "warmly",
    "laughed",
    "about",
    "the",
    "weather",
    "and",
    "promised",
    "to",
    "write",
    "a",
    "kind",
    "review",
    "of",
    "this",
    "helpful",
    "service",
    "today",
)


def text(words: int = 12, *, seed: int = 0) -> str:
    """``words`` words of plain English in sentences of 3 to 8 words (the last may be shorter), each
    capitalised and ended by a full stop, a question mark or an exclamation mark."""
    rng = random.Random(seed)
    sentences: list[str] = []
    left = words
    while left > 0:
        n = min(left, rng.randint(3, 8))
        chosen = [rng.choice(_WORDS) for _ in range(n)]
        chosen[0] = chosen[0].capitalize()
        sentences.append(" ".join(chosen) + rng.choice(".....?!"))
        left -= n
    return " ".join(sentences)


def facemesh(faces: int = 1, *, seed: int = 0) -> bytes:
    """Facemesh JSON: a list of ``faces`` faces, each 478 landmarks of ``[x, y, z]`` (x, y in 0..1)."""
    rng = random.Random(seed)
    mesh = [
        [
            [round(rng.random(), 6), round(rng.random(), 6), round(rng.uniform(-0.1, 0.1), 6)]
            for _ in range(478)
        ]
        for _ in range(faces)
    ]
    return orjson.dumps(mesh)


def v0_request(data_b64: str, models: dict[str, Any], **fields: Any) -> bytes:
    """A complete v0 request object as JSON bytes: ``data``, ``models`` and any other fields as given
    (``payload_id=...``, ``stream_window_ms=...``, ``reset_stream=True``, ``raw_text=True``, ...)."""
    return orjson.dumps({"data": data_b64, "models": models, **fields})


# --- container skeletons --------------------------------------------------------------------------------

_MP3_FRAME_BYTES = 417  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz, no padding
_MP3_FRAME_SAMPLES = 1152


@functools.lru_cache(maxsize=32)
def mp3(duration_s: float) -> bytes:
    """An MP3 of silent frames (MPEG-1 layer III, 128 kbit/s, 44.1 kHz, mono) with a Xing header giving the
    frame count; its duration is ``duration_s`` rounded up to a whole frame (26.1 ms)."""
    count = max(1, math.ceil(duration_s * 44100 / _MP3_FRAME_SAMPLES - 1e-9))
    header = bytes.fromhex("fffb90c0")
    side_info = bytes(17)
    xing = header + side_info + b"Xing" + struct.pack(">II", 1, count)
    first = xing + bytes(_MP3_FRAME_BYTES - len(xing))
    frame = header + bytes(_MP3_FRAME_BYTES - 4)
    return first + frame * count


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _mp4_track(handler: bytes, duration_ms: int) -> bytes:
    mdhd = _box(b"mdhd", struct.pack(">IIIIIHH", 0, 0, 0, 1000, duration_ms, 0x55C4, 0))
    name = b"SoundHandler\x00" if handler == b"soun" else b"VideoHandler\x00"
    hdlr = _box(b"hdlr", struct.pack(">II4s12s", 0, 0, handler, bytes(12)) + name)
    return _box(b"trak", _box(b"mdia", mdhd, hdlr))


@functools.lru_cache(maxsize=32)
def mp4(duration_s: float, *, video: bool = False, audio: bool = True) -> bytes:
    """An MP4 skeleton (ftyp and moov: mvhd with the duration, one trak per track kind); no media data.
    Audio only is an M4A (audio to Hume); with ``video`` it is a video."""
    ms = round(duration_s * 1000)
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2mp41" if video else b"M4A isommp41")
    identity = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _box(
        b"mvhd",
        struct.pack(">IIIIIIH", 0, 0, 0, 1000, ms, 0x10000, 0x100) + bytes(10) + identity + bytes(24),
        struct.pack(">I", 3),
    )
    tracks = (_mp4_track(b"vide", ms) if video else b"") + (_mp4_track(b"soun", ms) if audio else b"")
    return ftyp + _box(b"moov", mvhd, tracks)


def _ebml_size(n: int) -> bytes:
    for length in range(1, 9):
        if n < (1 << (7 * length)) - 1:
            return (n | (1 << (7 * length))).to_bytes(length, "big")
    raise ValueError("EBML element too large")


def _ebml(element: int, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return element.to_bytes((element.bit_length() + 7) // 8, "big") + _ebml_size(len(body)) + body


def _ebml_uint(element: int, value: int) -> bytes:
    return _ebml(element, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


@functools.lru_cache(maxsize=32)
def webm(duration_s: float, *, video: bool = False, audio: bool = True, live: bool = False) -> bytes:
    """A WebM skeleton: EBML header, Segment Info with the duration, Tracks (Opus audio, VP8 video), and a
    Cluster of empty blocks every 20 ms up to the duration. ``live=True`` leaves the duration out, as a
    browser's MediaRecorder does; then only the last block's timestamp tells it."""
    ms = round(duration_s * 1000)
    header = _ebml(
        0x1A45DFA3,
        _ebml_uint(0x4286, 1),
        _ebml_uint(0x42F7, 1),
        _ebml_uint(0x42F2, 4),
        _ebml_uint(0x42F3, 8),
        _ebml(0x4282, b"webm"),
        _ebml_uint(0x4287, 4),
        _ebml_uint(0x4285, 2),
    )
    info = _ebml(
        0x1549A966,
        _ebml_uint(0x2AD7B1, 1_000_000),
        b"" if live else _ebml(0x4489, struct.pack(">d", float(ms))),
        _ebml(0x4D80, b"bridge.tools.samples"),
        _ebml(0x5741, b"bridge.tools.samples"),
    )
    entries = []
    if video:
        entries.append(_ebml(0xAE, _ebml_uint(0xD7, 1), _ebml_uint(0x83, 1), _ebml(0x86, b"V_VP8")))
    if audio:
        entries.append(_ebml(0xAE, _ebml_uint(0xD7, 2), _ebml_uint(0x83, 2), _ebml(0x86, b"A_OPUS")))
    track = 0x82 if audio else 0x81
    clusters: dict[int, list[bytes]] = {}
    for t in [*range(0, ms, 20), ms]:  # block timestamps are relative to their cluster's, 16-bit signed
        base = t - t % 30_000
        clusters.setdefault(base, []).append(_ebml(0xA3, bytes([track]) + struct.pack(">hB", t - base, 0x80)))
    body = b"".join(_ebml(0x1F43B675, _ebml_uint(0xE7, base), *blocks) for base, blocks in clusters.items())
    return header + _ebml(0x18538067, info, _ebml(0x1654AE6B, *entries), body)
