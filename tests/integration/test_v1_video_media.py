"""Hume v1 camera streams and bad media, end to end through the broker and the v1 emulator: one prediction
per frame in order, PNG re-encoded as JPEG, text refused at once (NOT_OFFERED_BY_API), and each bad record
of the corpus a coded error outcome with the bridge going on."""

from __future__ import annotations

import pytest

from bridge.metrics import Metrics
from bridge.tools import samples as tool_samples
from bridge.tools.emulator import Emulator, Faults
from bridge.tools.emulator.v1 import testing as v1t
from tests.integration.harness import (
    API_KEY,
    V1_FAULTS,
    Collector,
    Record,
    Topics,
    call_audio,
    interleave,
    make_topics,
    outcomes,
    produce,
    running_bridge,
    v1_config,
    wait_for,
)
from tests.unit.v1 import samples

pytestmark = pytest.mark.asyncio


def _camera(key: str, seed: int) -> list[Record]:
    """Two JPEG frames, two PNG frames, then a chat line that v1 cannot measure."""
    k = key.encode()
    return [
        (k, v1t.jpeg(160, 120, faces=1, seed=seed), [("content-type", b"image/jpeg"), ("seq", b"0")]),
        (k, samples.image("PNG", (160, 120)), [("content-type", b"image/png"), ("seq", b"1")]),
        (k, v1t.jpeg(160, 120, faces=2, seed=seed + 1), [("content-type", b"image/jpeg"), ("seq", b"2")]),
        (k, samples.image("PNG", (96, 64)), [("seq", b"3")]),  # sniffed
        (k, b"hello there, how are you?", [("content-type", b"text/plain"), ("seq", b"4")]),
    ]


async def test_camera_streams_get_one_prediction_per_frame_in_order(
    kafka_bootstrap: str, new_topic: object
) -> None:
    """Each frame of a camera stream gets exactly one v1 prediction, in the stream's order (frame ids 0..3
    on its session), PNG frames included (re-encoded: the emulator takes only JPEG); the text record is a
    NOT_OFFERED_BY_API error with "api": "v1" and no Hume call."""
    topics: Topics = await make_topics(new_topic)  # type: ignore[arg-type]
    streams = [_camera(f"cam-{i}", i * 10) for i in range(4)]
    metrics = Metrics()
    async with Emulator(api_key=API_KEY, faults=Faults(**V1_FAULTS)) as emu:
        # A long idle close keeps each camera stream on one session (frame ids 0..3) even when its records
        # reach the bridge in several fetches on a loaded machine.
        config = v1_config(kafka_bootstrap, emu.http_url, topics, BRIDGE_V1_IDLE_CLOSE_S="10")
        async with Collector(kafka_bootstrap, topics.outputs) as col, running_bridge(config, metrics):
            await produce(kafka_bootstrap, topics.media, interleave(streams))
            await col.until(lambda rs: len(outcomes(rs, topics)) >= 20, 60, "every camera record's outcome")
        assert emu.stats.v1.snapshot()["frames_received"]["video"] == 16
    for i in range(4):
        key = f"cam-{i}".encode()
        preds = sorted((r for r in col.on(topics.predictions) if r.key == key), key=lambda r: r.offset)
        assert len(preds) == 4
        assert [p.headers["seq"] for p in preds] == [b"0", b"1", b"2", b"3"]
        assert [p.value["measurement"]["frame_id"] for p in preds] == [0, 1, 2, 3]
        assert len({p.value["session_id"] for p in preds}) == 1
        for p in preds:
            assert p.value["api"] == "v1"
            assert p.value["endpoint"] == "video"
            assert len(p.value["sources"]) == 1
            assert p.value["sources"][0]["begin_ms"] == 0
        errors = [r for r in col.on(topics.errors) if r.key == key]
        assert len(errors) == 1
        assert errors[0].headers["seq"] == b"4"
        assert errors[0].value["api"] == "v1"
        assert errors[0].value["error"]["code"] == "NOT_OFFERED_BY_API"


def _bad_corpus(key: bytes) -> list[tuple[str, Record]]:
    mp3 = samples.encoded("mp3", "libmp3lame", 44_100, 1.0)
    jpeg = samples.image("JPEG", (200, 150))
    return [
        ("AUDIO_DECODE_FAILED", (key, b"\x01\x02\x03", [("content-type", b"audio/pcm;rate=16000")])),
        ("INVALID_MEDIA_PARAMETERS", (key, b"\x00" * 3200, [("content-type", b"audio/L16;rate=fast")])),
        ("AUDIO_DECODE_FAILED", (key, mp3[: len(mp3) // 2 + 3], [("content-type", b"audio/mpeg")])),
        ("IMAGE_DECODE_FAILED", (key, jpeg[: len(jpeg) // 2], [("content-type", b"image/jpeg")])),
        (
            "IMAGE_TOO_LARGE",
            (key, tool_samples.png_claiming(10_000, 5_000), [("content-type", b"image/png")]),
        ),
        ("EMPTY_VALUE", (key, b"", [("content-type", b"audio/wav")])),
    ]


async def test_bad_media_gets_coded_errors_and_the_bridge_goes_on(
    kafka_bootstrap: str, new_topic: object
) -> None:
    """Odd-length PCM, wrong rate parameters, truncated MP3, corrupt JPEG, a 50 MP image and zero-length
    audio: each a coded error outcome with its source, in order with the good call after them, whose audio
    is still measured."""
    topics: Topics = await make_topics(new_topic)  # type: ignore[arg-type]
    bad = _bad_corpus(b"bad")
    call = call_audio("good", [("silence", 500), ("speech", 1500), ("silence", 1000)])
    async with Emulator(api_key=API_KEY, faults=Faults(**V1_FAULTS)) as emu:
        config = v1_config(kafka_bootstrap, emu.http_url, topics)
        async with Collector(kafka_bootstrap, topics.outputs) as col, running_bridge(config):
            await produce(kafka_bootstrap, topics.media, [r for _, r in bad])
            await produce(kafka_bootstrap, topics.media, call.records)
            await col.until(
                lambda rs: len(col.on(topics.errors)) >= len(bad) and len(col.on(topics.predictions)) >= 1,
                60,
                "an error per bad record and the good call measured",
            )
        assert emu.stats.v1.snapshot()["sessions_opened"].get("video", 0) == 0
    errors = sorted(col.on(topics.errors), key=lambda r: r.offset)
    assert [e.value["error"]["code"] for e in errors] == [code for code, _ in bad]
    for e in errors:
        assert e.value["api"] == "v1"
        assert e.value["error"]["origin"] == "bridge"
        assert e.value["source"]["topic"] == topics.media
    preds = col.on(topics.predictions)
    assert len(preds) == 1
    assert preds[0].key == b"good"


async def test_a_stream_that_switches_between_audio_and_video_keeps_its_order(
    kafka_bootstrap: str, new_topic: object
) -> None:
    """One stream carries a call, then two camera frames, then more of the call: each change of media
    closes the session and opens one on the other endpoint, and the stream's outputs keep its order
    (audio measurements, the two frames' predictions, then the second part's measurement); every
    record is settled, none is an error."""
    topics: Topics = await make_topics(new_topic)  # type: ignore[arg-type]
    first = call_audio("switch", [("silence", 300), ("speech", 1000), ("silence", 700)], end=False)
    frames: list[Record] = [
        (b"switch", v1t.jpeg(160, 120, faces=1, seed=s), [("content-type", b"image/jpeg")]) for s in (1, 2)
    ]
    second = call_audio("switch", [("speech", 1000), ("silence", 700)], hz=520.0)
    records = first.records + frames + second.records
    metrics = Metrics()
    async with Emulator(api_key=API_KEY, faults=Faults(**V1_FAULTS)) as emu:
        config = v1_config(kafka_bootstrap, emu.http_url, topics, BRIDGE_V1_IDLE_CLOSE_S="10")
        async with (
            Collector(kafka_bootstrap, topics.outputs) as col,
            running_bridge(config, metrics) as bridge,
        ):
            await produce(kafka_bootstrap, topics.media, records)
            await col.until(lambda rs: len(col.on(topics.predictions)) >= 4, 60, "the four predictions")
            await wait_for(lambda: bridge.tracker.outstanding() == 0, 30, "every record done")
        opened = emu.stats.v1.snapshot()["sessions_opened"]
    assert opened == {"audio": 2, "video": 1}
    assert not col.on(topics.errors)
    preds = sorted(col.on(topics.predictions), key=lambda r: r.offset)
    assert [p.value["endpoint"] for p in preds] == ["audio", "video", "video", "audio"]
    firsts = [min(s["offset"] for s in p.value["sources"]) for p in preds]
    assert firsts == sorted(firsts)
    n = len(first.records)
    assert [p.value["sources"][0]["offset"] for p in preds[1:3]] == [n, n + 1]
