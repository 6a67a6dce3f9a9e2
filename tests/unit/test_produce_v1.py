"""``hume-bridge produce --api v1``: files become the records of a call, planned without a broker.

Audio is cut into chunks of whole sample frames with ``hume-stream-offset-ms`` on each and
``hume-end-of-stream: true`` on the stream's last; the chunks are read back with the bridge's own v1 media
code, so the content types are checked by the reader that will meet them.
"""

from __future__ import annotations

import array
import io
import wave
from pathlib import PurePath

import pytest

from bridge import cli
from bridge.errors import ConfigError
from bridge.media import MediaKind
from bridge.tools.produce import (
    Api,
    AudioFormat,
    CallOptions,
    CallPlanner,
    Record,
    VideoAs,
    api_of,
    plan_call_records,
)
from bridge.upstream.v1.media import audio_to_pcm16k, video_to_frames
from tests.unit.v1 import samples


def headers_of(record: Record) -> dict[str, bytes]:
    return dict(record.headers)


def offsets(records: list[Record]) -> list[int]:
    return [int(headers_of(r)["hume-stream-offset-ms"]) for r in records]


def ends(records: list[Record]) -> list[bool]:
    return [headers_of(r).get("hume-end-of-stream") == b"true" for r in records]


def swap16(pcm: bytes) -> bytes:
    """16-bit samples with their two bytes swapped: big-endian L16 <-> little-endian s16le."""
    a = array.array("h")
    a.frombytes(pcm)
    a.byteswap()
    return a.tobytes()


def pcm_of_wav(data: bytes) -> tuple[bytes, int, int]:
    with wave.open(io.BytesIO(data), "rb") as w:
        return w.readframes(w.getnframes()), w.getframerate(), w.getnchannels()


def test_wav_becomes_l16_chunks_with_offsets_and_an_end() -> None:
    """2.3 s of 16 kHz mono WAV at the default 500 ms: five audio/L16 chunks at 0, 500, ... 2000 ms, the
    last one 300 ms and marked hume-end-of-stream; the big-endian chunks are exactly the input samples."""
    data = samples.wav(16_000, 2.3)
    plan = plan_call_records([(PurePath("calls/call-7.wav"), data)])
    assert plan.problems == [] and plan.notes == []
    records = plan.records
    assert [r.key for r in records] == [b"call-7.wav"] * 5
    assert {headers_of(r)["content-type"] for r in records} == {b"audio/L16;rate=16000;channels=1"}
    assert offsets(records) == [0, 500, 1000, 1500, 2000]
    assert ends(records) == [False, False, False, False, True]
    assert [len(r.value) for r in records] == [16_000] * 4 + [9_600]
    pcm, _, _ = pcm_of_wav(data)
    assert swap16(b"".join(r.value for r in records)) == pcm
    assert all(r.kind is MediaKind.AUDIO for r in records)
    # The bridge reads each chunk back as the samples it came from (16 kHz mono: no resampling).
    for record, start in zip(records, range(0, len(pcm), 16_000), strict=True):
        content_type = headers_of(record)["content-type"].decode()
        assert audio_to_pcm16k(record.value, content_type).pcm == pcm[start : start + 16_000]


def test_stereo_wav_keeps_its_rate_and_channels() -> None:
    """A 44.1 kHz stereo WAV is cut at whole frames and labelled with its own rate and channels."""
    data = samples.wav(44_100, 1.0, channels=2)
    plan = plan_call_records([(PurePath("s.wav"), data)], CallOptions(chunk_ms=250))
    assert {headers_of(r)["content-type"] for r in plan.records} == {b"audio/L16;rate=44100;channels=2"}
    assert offsets(plan.records) == [0, 250, 500, 750]
    assert swap16(b"".join(r.value for r in plan.records)) == pcm_of_wav(data)[0]


def test_wav_format_sends_complete_wavs_of_the_same_samples() -> None:
    """--format wav: every chunk is a complete WAV with the input's rate and channels, and their samples
    concatenate to the input's exactly."""
    data = samples.wav(44_100, 1.1, channels=2)
    plan = plan_call_records(
        [(PurePath("s.wav"), data)], CallOptions(chunk_ms=300, audio_format=AudioFormat.WAV)
    )
    records = plan.records
    assert {headers_of(r)["content-type"] for r in records} == {b"audio/wav"}
    assert offsets(records) == [0, 300, 600, 900]
    assert ends(records) == [False, False, False, True]
    chunks = [pcm_of_wav(r.value) for r in records]
    assert {(rate, channels) for _, rate, channels in chunks} == {(44_100, 2)}
    assert b"".join(pcm for pcm, _, _ in chunks) == pcm_of_wav(data)[0]


def test_offsets_are_rounded_from_the_exact_start_and_never_drift() -> None:
    """100.5 ms at 44.1 kHz is 4,432 frames (100.4989 ms): each offset is its chunk's exact start rounded to
    a millisecond, so rounding does not add up over a long call (rounding each chunk's length would put
    the 200th chunk at 19,900 ms instead of 19,999)."""
    data = samples.wav(44_100, 20.0)
    plan = plan_call_records([(PurePath("long.wav"), data)], CallOptions(chunk_ms=100.5))
    expected = [round(i * 4_432 * 1000 / 44_100) for i in range(len(plan.records))]
    assert offsets(plan.records) == expected
    assert len(expected) == 200 and expected[:3] == [0, 100, 201] and expected[-1] == 19_999
    assert swap16(b"".join(r.value for r in plan.records)) == pcm_of_wav(data)[0]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("speech.mp3", samples.encoded("mp3", "libmp3lame", 44_100, 1.2, channels=2)),
        ("speech.flac", samples.encoded("flac", "flac", 22_050, 1.2)),
        ("speech.webm", samples.encoded("webm", "libopus", 48_000, 1.2)),
        ("speech24.wav", samples.wav(48_000, 1.2, bits=24)),
    ],
)
def test_other_audio_is_decoded_to_16k_mono_by_the_bridges_decoder(name: str, data: bytes) -> None:
    """MP3, FLAC, audio-only WebM and a 24-bit WAV are decoded (PyAV, as the bridge decodes them) to 16 kHz
    mono and cut like any call: the chunks are exactly the bridge's own decoding of the file."""
    plan = plan_call_records([(PurePath(name), data)])
    assert plan.problems == []
    records = plan.records
    assert {headers_of(r)["content-type"] for r in records} == {b"audio/L16;rate=16000;channels=1"}
    assert swap16(b"".join(r.value for r in records)) == audio_to_pcm16k(data, None).pcm
    assert offsets(records) == [500 * i for i in range(len(records))]
    assert ends(records)[-1] and not any(ends(records)[:-1])


def test_one_key_makes_the_files_one_stream() -> None:
    """With --key, two files are one call: offsets continue across them and only the last record of the
    last file ends the stream."""
    files = [(PurePath("a.wav"), samples.wav(16_000, 1.0)), (PurePath("b.wav"), samples.wav(16_000, 0.75))]
    plan = plan_call_records(files, CallOptions(key="call-9"))
    assert {r.key for r in plan.records} == {b"call-9"}
    assert offsets(plan.records) == [0, 500, 1000, 1500]
    assert ends(plan.records) == [False, False, False, True]


def test_files_with_their_own_keys_are_streams_of_their_own() -> None:
    """Without --key each file is a stream: its offsets start at 0 and its last record ends it."""
    files = [(PurePath("a.wav"), samples.wav(16_000, 1.0)), (PurePath("b.wav"), samples.wav(16_000, 1.0))]
    plan = plan_call_records(files)
    assert [r.key for r in plan.records] == [b"a.wav"] * 2 + [b"b.wav"] * 2
    assert offsets(plan.records) == [0, 500, 0, 500]
    assert ends(plan.records) == [False, True, False, True]


def test_the_planner_keeps_the_clock_when_files_come_one_at_a_time() -> None:
    """The command plans one file at a time; the planner carries each stream's clock between files."""
    names = [PurePath("x/call.wav"), PurePath("y/call.wav")]  # one name: one stream
    planner = CallPlanner(names)
    first = planner.plan(0, names[0], samples.wav(8_000, 0.5))
    second = planner.plan(1, names[1], samples.wav(8_000, 0.5))
    assert offsets(first.records) + offsets(second.records) == [0, 500]
    assert ends(first.records) + ends(second.records) == [False, True]


def test_video_becomes_jpeg_frames_at_most_three_a_second() -> None:
    """A 2 s video at 10 fps becomes JPEG records at the times the bridge's decoder keeps (<= 3 fps),
    each with its offset, the last one ending the stream."""
    data = samples.video("mp4", "libx264", 10, 2.0)
    plan = plan_call_records([(PurePath("cam.mp4"), data)])
    records = plan.records
    expected = video_to_frames(data).frames
    assert len(records) == len(expected) == 5  # 10 fps: every 4th frame keeps to <= 3 a second
    assert offsets(records) == [frame.time_ms for frame in expected] == [0, 400, 800, 1200, 1600]
    assert all(headers_of(r)["content-type"] == b"image/jpeg" and r.value[:2] == b"\xff\xd8" for r in records)
    assert all(r.kind is MediaKind.IMAGE for r in records)
    assert ends(records) == [False] * 4 + [True]


def test_video_whole_is_one_record() -> None:
    """--video-as whole: the file as it is, at offset 0, ending its stream."""
    data = samples.video("mp4", "libx264", 10, 1.0)
    plan = plan_call_records([(PurePath("cam.mp4"), data)], CallOptions(video_as=VideoAs.WHOLE))
    assert [(r.value, headers_of(r)) for r in plan.records] == [
        (data, {"content-type": b"video/mp4", "hume-stream-offset-ms": b"0", "hume-end-of-stream": b"true"})
    ]


def test_text_is_sent_with_a_note_and_images_as_they_are() -> None:
    """Text and images have no place in time: no offsets. Text gets a note (no v1 model); the stream's
    last record still ends it."""
    plan = plan_call_records(
        [(PurePath("chat.txt"), b"hello\nthere\n"), (PurePath("face.png"), samples.image("PNG"))]
    )
    assert [(r.key, headers_of(r)) for r in plan.records] == [
        (b"chat.txt", {"content-type": b"text/plain"}),
        (b"chat.txt", {"content-type": b"text/plain", "hume-end-of-stream": b"true"}),
        (b"face.png", {"content-type": b"image/png", "hume-end-of-stream": b"true"}),
    ]
    assert plan.notes == [
        "chat.txt: Hume v1 offers no model for text records; sent, the bridge answers NOT_OFFERED_BY_API "
        "(--api v0 sends them for Hume v0)"
    ]


def test_extra_headers_ride_on_every_record_and_replace_by_name() -> None:
    """--header hume-measurement-timer-ms=5000 goes on every chunk; a --header of the same name replaces
    the one produce sets."""
    plan = plan_call_records(
        [(PurePath("a.wav"), samples.wav(16_000, 1.0))],
        CallOptions(headers=[("hume-measurement-timer-ms", "5000"), ("Hume-End-Of-Stream", "false")]),
    )
    assert [headers_of(r) for r in plan.records] == [
        {
            "content-type": b"audio/L16;rate=16000;channels=1",
            "hume-stream-offset-ms": str(offset).encode(),
            "hume-measurement-timer-ms": b"5000",
            "Hume-End-Of-Stream": b"false",
        }
        for offset in (0, 500)
    ]


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("empty.wav", b"", "the file is empty"),
        ("cut.wav", samples.wav(16_000, 1.0)[:1000], "WAV data chunk claims 32000 bytes but only 956 follow"),
        ("cut.mp3", samples.encoded("mp3", "libmp3lame", 44_100, 3.0)[:3000], "mp3 audio is truncated"),
        ("cut.mp4", samples.video("mp4", "libx264", 10, 1.0)[:400], "video cannot be decoded"),
        ("blob.bin", b"\x00\x01\x02\xff", "not a recognised media type"),
    ],
)
def test_unusable_files_are_problems_and_the_others_still_planned(
    name: str, data: bytes, problem: str
) -> None:
    """A file that cannot be read as media is a problem naming the file and why; the next file is planned."""
    plan = plan_call_records([(PurePath(name), data), (PurePath("ok.wav"), samples.wav(16_000, 0.5))])
    assert [r.key for r in plan.records] == [b"ok.wav"]
    assert len(plan.problems) == 1
    assert plan.problems[0].startswith(f"{name}: ")
    assert problem in plan.problems[0], plan.problems[0]


def test_a_chunk_shorter_than_a_sample_frame_is_a_problem() -> None:
    """--chunk-ms below one frame cannot be cut: the file is a problem, not an endless loop."""
    plan = plan_call_records([(PurePath("a.wav"), samples.wav(8_000, 0.1))], CallOptions(chunk_ms=0.1))
    assert plan.records == []
    assert plan.problems == ["a.wav: --chunk-ms 0.1 is shorter than one sample frame at 8000 Hz"]


def test_the_api_comes_from_the_flag_then_the_environment() -> None:
    """--api wins; else BRIDGE_HUME_API, as run reads it; else v1. A bad value is a configuration error."""
    assert api_of(None, {}) is Api.V1
    assert api_of(None, {"BRIDGE_HUME_API": " V0 "}) is Api.V0
    assert api_of(Api.V1, {"BRIDGE_HUME_API": "v0"}) is Api.V1
    with pytest.raises(ConfigError, match="BRIDGE_HUME_API must be v1 or v0, got 'v2'"):
        api_of(None, {"BRIDGE_HUME_API": "v2"})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "mp3"], "argument --format: invalid choice"),
        (["--video-as", "gif"], "argument --video-as: invalid choice"),
        (["--api", "v2"], "argument --api: invalid choice"),
    ],
)
def test_bad_v1_options_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad --format, --video-as or --api stop the command with a usage error before anything is sent."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["produce", *argv, "file.wav"])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
