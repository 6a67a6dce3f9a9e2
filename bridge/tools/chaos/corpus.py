"""The v0 malformed-input corpus: records the bridge must reject, each with the error code it must yield.

One copy for everyone: the decode unit tests and the end-to-end test take it through ``tests/corpus.py``,
the chaos suite's poison scenario sends it through the broker. It lives here because a tool cannot import
from ``tests/`` (not installed).
"""

from __future__ import annotations

import functools
import io
import struct
import wave

import orjson
from PIL import Image

from bridge.errors import Code


def wav(seconds: float, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x01\x00" * int(seconds * rate))
    return buf.getvalue()


def png(w: int = 8, h: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


def jpeg_claiming(w: int, h: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof + b"\xff\xd9"


CORPUS: list[tuple[str, bytes | None, dict[str, bytes], str]] = [
    ("null value", None, {}, Code.EMPTY_VALUE),
    ("empty value", b"", {}, Code.EMPTY_VALUE),
    ("over the size cap", b"x" * 1_000_001, {}, Code.RECORD_TOO_LARGE),
    ("non-UTF-8 text", b"caf\xe9 au lait", {"content-type": b"text/plain"}, Code.INVALID_TEXT),
    ("whitespace-only text", b"   \n", {"content-type": b"text/plain"}, Code.INVALID_TEXT),
    ("text over 10,000 chars", b"a" * 10_001, {"content-type": b"text/plain"}, Code.TEXT_TOO_LONG),
    ("truncated WAV", wav(1.0)[:30], {"content-type": b"audio/wav"}, Code.MALFORMED_MEDIA),
    ("WAV data cut short", wav(1.0)[:2000], {"content-type": b"audio/wav"}, Code.MALFORMED_MEDIA),
    ("6 s WAV", wav(6.0), {"content-type": b"audio/wav"}, Code.AUDIO_TOO_LONG),
    ("JPEG claiming 5000x5000", jpeg_claiming(5000, 5000), {}, Code.IMAGE_TOO_LARGE),
    ("PNG 3001 wide", png(3001, 2), {"content-type": b"image/png"}, Code.IMAGE_TOO_LARGE),
    ("truncated PNG", png()[:20], {"content-type": b"image/png"}, Code.MALFORMED_MEDIA),
    ("JPEG without SOF", b"\xff\xd8\xff\xd9", {"content-type": b"image/jpeg"}, Code.MALFORMED_MEDIA),
    ("unknown content type", b"abc", {"content-type": b"application/zip"}, Code.UNSUPPORTED_MEDIA),
    ("unrecognised bytes", b"\x00\x01\x02\xff\xfe", {}, Code.UNSUPPORTED_MEDIA),
    ("invalid hume-models JSON", b"hi", {"hume-models": b"{face"}, Code.INVALID_HEADER),
    ("unknown model", b"hi", {"hume-models": b'{"ner": {}}'}, Code.INVALID_MODELS),
    ("model config not object", b"hi", {"hume-models": b'{"language": 1}'}, Code.INVALID_MODELS),
    ("language on audio", wav(0.5), {"hume-models": b'{"language": {}}'}, Code.MODEL_MEDIA_MISMATCH),
    ("face on text", b"hello", {"hume-models": b'{"face": {}}'}, Code.MODEL_MEDIA_MISMATCH),
    ("window not a number", wav(0.5), {"hume-stream-window-ms": b"soon"}, Code.INVALID_HEADER),
    ("window out of range", wav(0.5), {"hume-stream-window-ms": b"20000"}, Code.INVALID_HEADER),
    ("reset flag unreadable", b"hello", {"hume-reset-stream": b"perhaps"}, Code.INVALID_HEADER),
    ("payload id too long", b"hello", {"hume-payload-id": b"p" * 300}, Code.INVALID_HEADER),
    ("WAV without samples", wav(0.0), {"content-type": b"audio/wav"}, Code.EMPTY_MEDIA),
    (
        "envelope payload_id too long",
        orjson.dumps({"data": "x", "models": {"language": {}}, "raw_text": True, "payload_id": "p" * 257}),
        {"content-type": b"application/vnd.hume.stream+json"},
        Code.INVALID_ENVELOPE,
    ),
    (
        "envelope unknown field",
        b'{"data": "x", "models": {"face": {}}, "modelz": 1}',
        {"content-type": b"application/vnd.hume.stream+json"},
        Code.INVALID_ENVELOPE,
    ),
    (
        "envelope not JSON",
        b"{data:",
        {"content-type": b"application/vnd.hume.stream+json"},
        Code.INVALID_ENVELOPE,
    ),
    (
        "envelope camelCase field",
        b'{"data": "x", "models": {"face": {}}, "payloadId": "p"}',
        {"content-type": b"application/vnd.hume.stream+json"},
        Code.INVALID_ENVELOPE,
    ),
    (
        "envelope without data",
        b'{"models": {"face": {}}}',
        {"content-type": b"application/vnd.hume.stream+json"},
        Code.INVALID_ENVELOPE,
    ),
    (
        "facemesh wrong landmark count",
        b"[[[0.1, 0.2, 0.3]]]",
        {"content-type": b"application/vnd.hume.facemesh+json"},
        Code.INVALID_FACEMESH,
    ),
    (
        "facemesh 11 faces",
        orjson.dumps([[[0.0, 0.0, 0.0]] * 478] * 11),
        {"content-type": b"application/vnd.hume.facemesh+json"},
        Code.FACEMESH_TOO_LARGE,
    ),
]


@functools.cache
def v1_corpus() -> list[tuple[str, bytes | None, dict[str, bytes], str]]:
    """The v1 malformed corpus (realtime audio and camera frames), each with the code it must yield
    (built on first use: it encodes an MP3)."""
    from bridge.tools import samples

    mp3 = samples.mp3(1.0)
    jpeg = samples.jpeg(200, 150)
    pcm = {"content-type": b"audio/pcm;rate=16000"}
    return [
        ("odd-length PCM", b"\x01\x02\x03", pcm, Code.AUDIO_DECODE_FAILED),
        (
            "L16 rate not a number",
            b"\x00" * 3200,
            {"content-type": b"audio/L16;rate=fast"},
            Code.INVALID_MEDIA_PARAMETERS,
        ),
        (
            "PCM rate zero",
            b"\x00" * 3200,
            {"content-type": b"audio/pcm;rate=0"},
            Code.INVALID_MEDIA_PARAMETERS,
        ),
        (
            "truncated MP3",
            mp3[: len(mp3) // 2 + 3],
            {"content-type": b"audio/mpeg"},
            Code.AUDIO_DECODE_FAILED,
        ),
        ("corrupt JPEG", jpeg[: len(jpeg) // 2], {"content-type": b"image/jpeg"}, Code.IMAGE_DECODE_FAILED),
        (
            "a 50 MP image",
            samples.png_claiming(10_000, 5_000),
            {"content-type": b"image/png"},
            Code.IMAGE_TOO_LARGE,
        ),
        ("zero-length WAV", b"", {"content-type": b"audio/wav"}, Code.EMPTY_VALUE),
        ("zero-length PCM", b"", pcm, Code.EMPTY_VALUE),
    ]
