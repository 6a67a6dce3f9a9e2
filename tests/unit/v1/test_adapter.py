"""The v1 adapter's pure edges: how records are prepared (routing, per-stream headers) and how its outputs
are rendered (one predictions record per measurement, errors saying "api": "v1")."""

from __future__ import annotations

import orjson
import pytest

from bridge.config import load
from bridge.core.decode import Decoded
from bridge.core.model import ErrorInfo, Output, Source, Work
from bridge.core.outputs import Topics, render
from bridge.errors import Code, MediaError
from bridge.media import MediaKind
from bridge.metrics import Metrics
from bridge.upstream.v1.adapter import V1Payload, V1Upstream
from bridge.upstream.v1.protocol import Endpoint

TOPICS = Topics("pred", "err", "warn", "v1")


class _Events:
    def lane_up(self, lane: int) -> None: ...
    def lane_down(self, lane: int) -> None: ...
    def produced(self, output: Output) -> None: ...
    def settled(self, last: Work) -> None: ...
    def lost(self, works: object, reason: object, error: object) -> None: ...
    def outage_began(self, reason: object, detail: str) -> None: ...
    def recovered(self, evidence: object) -> None: ...


def _adapter() -> V1Upstream:
    return V1Upstream(load({"HUME_API_KEY": "k"}), _Events(), Metrics())


def _decoded(value: bytes, content_type: str, **headers: bytes) -> Decoded:
    hs = {"content-type": content_type.encode(), **{k.replace("_", "-"): v for k, v in headers.items()}}
    return Decoded(value, hs, content_type.split(";")[0], MediaKind.AUDIO)


def _work(offset: int, key: bytes = b"call-1") -> Work:
    return Work(
        Source("media", 2, offset, 1000 + offset),
        ("media", 2, key),
        key,
        (),
        f"media/2/{offset}",
        10,
        0.0,
        None,
    )


def test_text_is_not_offered_by_v1_at_once() -> None:
    """A chat line is refused in prepare (no decoding, no session): NOT_OFFERED_BY_API."""
    with pytest.raises(MediaError) as exc:
        _adapter().prepare(Decoded(b"hello", {"content-type": b"text/plain"}, "text/plain", MediaKind.TEXT))
    assert exc.value.code is Code.NOT_OFFERED_BY_API


def test_prepare_reads_the_per_stream_headers() -> None:
    """The raw content type keeps its parameters; end of stream, stream offset and timer come from headers."""
    payload = (
        _adapter()
        .prepare(
            _decoded(
                b"\x00" * 3200,
                "audio/L16;rate=8000",
                hume_end_of_stream=b"true",
                hume_stream_offset_ms=b"1500",
                hume_measurement_timer_ms=b"5000",
            )
        )
        .payload
    )
    assert isinstance(payload, V1Payload)
    assert payload.content_type == "audio/L16;rate=8000"
    assert payload.endpoint is Endpoint.AUDIO
    assert payload.end_of_stream
    assert payload.stream_offset_ms == 1500
    assert payload.audio.measurement_timer_ms == 5000


@pytest.mark.parametrize(
    "headers",
    [
        {"hume_measurement_timer_ms": b"100"},
        {"hume_stream_offset_ms": b"soon"},
        {"hume_stream_offset_ms": b"-5"},
    ],
)
def test_bad_per_stream_headers_are_invalid_header(headers: dict[str, bytes]) -> None:
    with pytest.raises(MediaError) as exc:
        _adapter().prepare(_decoded(b"\x00" * 3200, "audio/pcm", **headers))
    assert exc.value.code is Code.INVALID_HEADER


def test_a_measurement_renders_as_one_v1_predictions_record() -> None:
    """api, stream_id, endpoint, mode, session_id, the measurement verbatim, sources with spans, stream_ms,
    latency from the last covered record's consumption; no payload_id or attempts (v0's fields)."""
    a, b = _work(7), _work(8)
    b.consumed_at = 1.0
    measurement = {"type": "measurement.result", "audio_start_ms": 0, "expressions": [], "new_field": 1}
    sources = [
        {"topic": "media", "partition": 2, "offset": 7, "timestamp_ms": 1007, "begin_ms": 100, "end_ms": 250},
        {"topic": "media", "partition": 2, "offset": 8, "timestamp_ms": 1008, "begin_ms": 0, "end_ms": 90},
    ]
    fields = {
        "api": "v1",
        "endpoint": "audio",
        "mode": "realtime",
        "session_id": "s-1",
        "measurement": measurement,
        "sources": sources,
        "stream_ms": {"begin": 1100, "end": 1340},
    }
    [record] = render(Output(a.stream, (a, b), fields), TOPICS, now=1.5)
    assert record.topic == "pred"
    assert record.key == b"call-1"
    value = orjson.loads(record.value)
    assert list(value) == [
        "api",
        "stream_id",
        "endpoint",
        "mode",
        "session_id",
        "measurement",
        "sources",
        "stream_ms",
        "latency_ms",
    ]
    assert value["measurement"] == measurement
    assert value["sources"] == sources
    assert value["latency_ms"] == 500.0
    assert ("hume-source", b"media/2/7") in record.headers


def test_v1_error_records_say_api_v1() -> None:
    work = _work(3)
    [record] = render(
        Output(work.stream, (work,), error=ErrorInfo("AUDIO_DECODE_FAILED", "x", "bridge", False)),
        TOPICS,
        0.0,
    )
    value = orjson.loads(record.value)
    assert record.topic == "err"
    assert value["api"] == "v1"
    assert value["error"]["code"] == "AUDIO_DECODE_FAILED"
    assert value["source"]["offset"] == 3


def test_native_pcm_is_taken_as_it_is() -> None:
    """16 kHz mono s16le labelled audio/pcm is already Hume's form: the same bytes, no decoder, no thread;
    any other rate, encoding, channel count or a WAV inside is decoded."""
    from bridge.upstream.v1 import media

    pcm = bytes(range(256)) * 25
    assert media.is_native_pcm(pcm, "audio/pcm")
    assert media.is_native_pcm(pcm, "audio/pcm;rate=16000;channels=1;encoding=s16le")
    assert not media.is_native_pcm(pcm, "audio/pcm;rate=8000")
    assert not media.is_native_pcm(pcm, "audio/pcm;channels=2")
    assert not media.is_native_pcm(pcm, "audio/L16;rate=16000")
    assert not media.is_native_pcm(b"RIFF" + pcm, "audio/pcm")
    out = media.prepare(pcm, "audio/pcm;rate=16000")
    assert isinstance(out, media.Pcm16k)
    assert out.pcm == pcm
