"""Decode: good records become requests; bad ones become error outcomes with a precise code."""

from __future__ import annotations

import orjson
import pytest

from bridge.config import HumeConfig
from bridge.core.decode import Decoded, DecodeSettings
from bridge.core.decode import decode as core_decode
from bridge.core.model import InputRecord, Prepared, Source, Work
from bridge.upstream.v0.prepare import V0Request, V0Settings, prepare
from tests.corpus import CORPUS, png, wav

SETTINGS = DecodeSettings(max_record_bytes=1_000_000)
V0 = V0Settings(default_models=HumeConfig().default_models)


def v0_prepare(record: Decoded) -> Prepared:
    return prepare(record, V0)


def decode(record: InputRecord, settings: DecodeSettings, now: float) -> Work:
    """The core's decode with the v0 adapter's prepare, as the bridge runs it for v0."""
    return core_decode(record, settings, v0_prepare, now)


def request_of(work: Work) -> V0Request:
    assert work.prepared is not None and work.rejection is None
    request: V0Request = work.prepared.payload
    return request


def rec(
    value: bytes | None, headers: dict[str, bytes] | None = None, key: bytes | None = b"s"
) -> InputRecord:
    return InputRecord(Source("media", 3, 42, 1000), key, value, tuple((headers or {}).items()))


def code_of(record: InputRecord, settings: DecodeSettings = SETTINGS) -> str | None:
    w = decode(record, settings, 0.0)
    if w.rejection is None:
        return None
    assert w.prepared is None
    assert w.rejection.origin == "bridge"
    return w.rejection.code


def test_good_media_of_each_kind_becomes_a_request_with_default_models() -> None:
    """Audio, image, text, facemesh and envelopes are accepted and shaped for Hume."""
    audio = decode(rec(wav(1.0), {"content-type": b"audio/wav"}), SETTINGS, 0.0)
    assert request_of(audio).body["models"] == {"prosody": {}}
    assert request_of(audio).media == wav(1.0)
    assert "data" not in request_of(audio).body
    assert audio.prepared is not None and audio.prepared.sticky
    assert audio.payload_id == "media/3/42"
    image = decode(rec(png()), SETTINGS, 0.0)  # sniffed
    assert request_of(image).body["models"] == {"face": {}}
    text = decode(rec("héllo".encode(), {"content-type": b"text/plain; charset=utf-8"}), SETTINGS, 0.0)
    assert request_of(text).body == {"models": {"language": {}}, "data": "héllo", "raw_text": True}
    mesh = orjson.dumps([[[0.1, 0.2, 0.3]] * 478])
    fm = decode(rec(mesh, {"content-type": b"application/vnd.hume.facemesh+json"}), SETTINGS, 0.0)
    assert request_of(fm).body["models"] == {"facemesh": {}}
    env = orjson.dumps({"data": "aGk=", "models": {"language": {}}, "raw_text": True, "payload_id": "mine"})
    e = decode(rec(env, {"content-type": b"application/vnd.hume.stream+json"}), SETTINGS, 0.0)
    assert e.payload_id == "mine"
    assert "payload_id" not in request_of(e).body


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
    assert request_of(w).body["models"] == {"burst": {}, "prosody": {}}
    assert request_of(w).body["stream_window_ms"] == 2500.0
    assert w.prepared is not None and w.prepared.reset_context
    assert w.payload_id == "call-7/chunk-3"


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
    assert w.rejection is not None
    assert "my-private-words" not in w.rejection.message


def test_record_without_key_is_a_stream_of_its_own() -> None:
    """Unkeyed records never share a stream."""
    a = decode(InputRecord(Source("m", 0, 1, None), None, b"hi", ()), SETTINGS, 0.0)
    b = decode(InputRecord(Source("m", 0, 2, None), None, b"hi", ()), SETTINGS, 0.0)
    assert a.stream != b.stream


def test_unsupported_media_names_every_format_the_bridge_recognises() -> None:
    """Bytes without a content-type that match no format: the message lists every format the sniffer
    recognises, GIF, WebP, FLAC and Ogg included, so a producer knows what it may send."""
    work = decode(rec(b"\x00\x01\x02\xff"), SETTINGS, 0.0)
    assert work.rejection is not None and work.rejection.code == "UNSUPPORTED_MEDIA"
    message = work.rejection.message
    for name in ("WAV", "MP3", "AAC", "FLAC", "Ogg", "AIFF", "MP4", "WebM", "Matroska", "PNG", "JPEG"):
        assert name in message, name
    for name in ("GIF", "WebP", "UTF-8 text"):
        assert name in message, name
