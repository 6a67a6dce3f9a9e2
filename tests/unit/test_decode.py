"""Decode: good records become requests; bad ones become error outcomes with a precise code."""

from __future__ import annotations

import io
import struct
import wave

import orjson
import pytest
from PIL import Image

from bridge.config import HumeConfig
from bridge.core.decode import DecodeSettings, decode
from bridge.core.model import InputRecord, Source
from bridge.errors import Code

SETTINGS = DecodeSettings(max_record_bytes=1_000_000, default_models=HumeConfig().default_models)


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


def rec(
    value: bytes | None, headers: dict[str, bytes] | None = None, key: bytes | None = b"s"
) -> InputRecord:
    return InputRecord(Source("media", 3, 42, 1000), key, value, tuple((headers or {}).items()))


def code_of(record: InputRecord, settings: DecodeSettings = SETTINGS) -> str | None:
    w = decode(record, settings, 0.0)
    if w.outcome is None:
        return None
    assert w.request is None
    assert w.outcome.error is not None and w.outcome.error.origin == "bridge"
    return w.outcome.error.code


def test_good_media_of_each_kind_becomes_a_request_with_default_models() -> None:
    """Audio, image, text, facemesh and envelopes are accepted and shaped for Hume."""
    audio = decode(rec(wav(1.0), {"content-type": b"audio/wav"}), SETTINGS, 0.0)
    assert audio.request is not None
    assert audio.request.body["models"] == {"prosody": {}}
    assert audio.request.media == wav(1.0)
    assert "data" not in audio.request.body
    assert audio.request.audio_context
    assert audio.payload_id == "media/3/42"
    image = decode(rec(png()), SETTINGS, 0.0)  # sniffed
    assert image.request is not None and image.request.body["models"] == {"face": {}}
    text = decode(rec("héllo".encode(), {"content-type": b"text/plain; charset=utf-8"}), SETTINGS, 0.0)
    assert text.request is not None
    assert text.request.body == {"models": {"language": {}}, "data": "héllo", "raw_text": True}
    mesh = orjson.dumps([[[0.1, 0.2, 0.3]] * 478])
    fm = decode(rec(mesh, {"content-type": b"application/vnd.hume.facemesh+json"}), SETTINGS, 0.0)
    assert fm.request is not None and fm.request.body["models"] == {"facemesh": {}}
    env = orjson.dumps({"data": "aGk=", "models": {"language": {}}, "raw_text": True, "payload_id": "mine"})
    e = decode(rec(env, {"content-type": b"application/vnd.hume.stream+json"}), SETTINGS, 0.0)
    assert e.request is not None and e.payload_id == "mine"
    assert "payload_id" not in e.request.body


def test_headers_choose_models_window_reset_and_payload_id() -> None:
    """hume-models, hume-stream-window-ms, hume-reset-stream and hume-payload-id are honoured."""
    headers = {
        "content-type": b"audio/wav",
        "hume-models": b'{"burst": {}, "prosody": {}}',
        "hume-stream-window-ms": b"2500",
        "hume-reset-stream": b"true",
        "hume-payload-id": b"call-7/chunk-3",
    }
    w = decode(rec(wav(0.5), headers), SETTINGS, 0.0)
    assert w.request is not None
    assert w.request.body["models"] == {"burst": {}, "prosody": {}}
    assert w.request.body["stream_window_ms"] == 2500.0
    assert w.request.reset_stream
    assert w.payload_id == "call-7/chunk-3"


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


@pytest.mark.parametrize(("name", "value", "headers", "code"), CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_record_becomes_error_with_precise_code(
    name: str, value: bytes | None, headers: dict[str, bytes], code: str
) -> None:
    """Each malformed record yields an error outcome with its own code, and no request."""
    assert code_of(rec(value, headers)) == code


def test_error_messages_never_contain_payload_bytes() -> None:
    """Messages describe the problem, not the content."""
    secret_text = b"my-private-words \xff"
    w = decode(rec(secret_text, {"content-type": b"text/plain"}), SETTINGS, 0.0)
    assert w.outcome is not None and w.outcome.error is not None
    assert "my-private-words" not in w.outcome.error.message


def test_record_without_key_is_a_stream_of_its_own() -> None:
    """Unkeyed records never share a stream."""
    a = decode(InputRecord(Source("m", 0, 1, None), None, b"hi", ()), SETTINGS, 0.0)
    b = decode(InputRecord(Source("m", 0, 2, None), None, b"hi", ()), SETTINGS, 0.0)
    assert a.stream != b.stream
