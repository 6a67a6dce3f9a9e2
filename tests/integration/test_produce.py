"""``hume-bridge produce``: how files become records, then the command itself against a real broker.

The planning tests are pure (no broker is started for them); those of ``--api v1`` are in
tests/unit/test_produce_v1.py.
"""

from __future__ import annotations

import array
import asyncio
import io
import wave
from pathlib import Path, PurePath

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from PIL import Image

from bridge import cli
from bridge.errors import ConfigError
from bridge.media import FACEMESH_LANDMARKS, MediaKind, inspect_audio
from bridge.tools.produce import default_key, expand_paths, kafka_settings, plan_records
from bridge.upstream.v1.media import audio_to_pcm16k
from tests.conftest import TopicFactory
from tests.unit.v1 import samples as v1_samples

# --------------------------------------------------------------------------------------------------------
# Sample files


def make_wav(seconds: float, rate: int = 16000, channels: int = 1) -> bytes:
    pcm = bytes(i % 251 for i in range(round(rate * seconds) * channels * 2))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def pcm_of(data: bytes) -> bytes:
    with wave.open(io.BytesIO(data), "rb") as w:
        return w.readframes(w.getnframes())


def make_png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


def facemesh(faces: int) -> bytes:
    return orjson.dumps([[[0.1, 0.2, 0.3]] * FACEMESH_LANDMARKS for _ in range(faces)])


def headers_of(headers: object) -> dict[str, bytes]:
    assert isinstance(headers, tuple | list)
    return {name: value for name, value in headers}


# --------------------------------------------------------------------------------------------------------
# plan_records: pure, no broker


def test_long_wav_is_split_into_chunks_under_the_limit() -> None:
    """12 s of WAV at the default 4000 ms gives 3 complete WAVs, in order, one key, content-type audio/wav."""
    data = make_wav(12.0)
    plan = plan_records([(PurePath("calls/call-17.wav"), data)])
    assert plan.problems == []
    assert [inspect_audio(r.value).duration_ms for r in plan.records] == [4000.0, 4000.0, 4000.0]
    assert {r.key for r in plan.records} == {b"call-17.wav"}
    assert all(headers_of(r.headers) == {"content-type": b"audio/wav"} for r in plan.records)
    assert b"".join(pcm_of(r.value) for r in plan.records) == pcm_of(data)


def test_chunk_length_is_configurable() -> None:
    """--chunk-ms sets the longest chunk: 3 s at 1000 ms gives 3 records."""
    plan = plan_records([(PurePath("a.wav"), make_wav(3.0))], chunk_ms=1000)
    assert [inspect_audio(r.value).duration_ms for r in plan.records] == [1000.0, 1000.0, 1000.0]


def test_short_wav_is_one_record_as_it_is() -> None:
    """A WAV under the chunk length is sent unchanged."""
    data = make_wav(2.5)
    assert [r.value for r in plan_records([(PurePath("short.wav"), data)]).records] == [data]


def test_text_is_one_record_per_non_empty_line() -> None:
    """Each non-empty line is a record (CRLF and blank lines handled), UTF-8, content-type text/plain."""
    data = "\ufeffI love this!\r\n\n   \nThis is awful.\nMeh — fine\n".encode()
    plan = plan_records([(PurePath("chat.txt"), data)])
    assert [r.value.decode() for r in plan.records] == ["I love this!", "This is awful.", "Meh — fine"]
    assert all(r.kind is MediaKind.TEXT and r.key == b"chat.txt" for r in plan.records)
    assert headers_of(plan.records[0].headers) == {"content-type": b"text/plain"}


def test_image_is_one_record() -> None:
    """An image is one record with its sniffed content type."""
    data = make_png(64, 48)
    plan = plan_records([(PurePath("face.png"), data)])
    assert [(r.value, r.kind, headers_of(r.headers)) for r in plan.records] == [
        (data, MediaKind.IMAGE, {"content-type": b"image/png"})
    ]


def test_facemesh_and_envelope_files() -> None:
    """*.facemesh.json and *.hume.json become one record each with the Hume content types."""
    envelope = orjson.dumps({"data": "hello", "models": {"language": {}}, "raw_text": True})
    plan = plan_records(
        [(PurePath("mesh.facemesh.json"), facemesh(2)), (PurePath("req.hume.json"), envelope)]
    )
    assert [(r.key, r.kind, headers_of(r.headers)["content-type"]) for r in plan.records] == [
        (b"mesh.facemesh.json", MediaKind.FACEMESH, b"application/vnd.hume.facemesh+json"),
        (b"req.hume.json", MediaKind.ENVELOPE, b"application/vnd.hume.stream+json"),
    ]
    assert plan.records[1].value == envelope


def test_key_models_and_extra_headers() -> None:
    """--key sets every key; --models adds hume-models; --header adds headers and replaces same-named ones."""
    plan = plan_records(
        [(PurePath("a.txt"), b"one\ntwo"), (PurePath("b.png"), make_png(4, 4))],
        key="session-9",
        models={"language": {"granularity": "sentence"}},
        headers=[("tenant", "acme"), ("Content-Type", "text/plain; charset=utf-8")],
    )
    assert {r.key for r in plan.records} == {b"session-9"}
    assert plan.records[0].headers == (
        ("hume-models", b'{"language":{"granularity":"sentence"}}'),
        ("tenant", b"acme"),
        ("Content-Type", b"text/plain; charset=utf-8"),
    )


def test_other_audio_is_one_record_and_over_limit_is_noted() -> None:
    """MP3 cannot be split without decoding: one record, with a note when it is over 5 s."""
    frame = bytes([0xFF, 0xFB, 0x90, 0x00]) + bytes(144 * 128_000 // 44_100 - 4)
    mp3 = frame * 300  # about 7.8 s
    plan = plan_records([(PurePath("long.mp3"), mp3)])
    assert [(r.value, headers_of(r.headers)["content-type"]) for r in plan.records] == [(mp3, b"audio/mpeg")]
    assert len(plan.notes) == 1
    assert "cannot be split without decoding" in plan.notes[0]
    assert plan.problems == []


def test_over_limit_media_is_sent_and_noted() -> None:
    """Images over 3000 px and meshes over 10 faces are still sent (the bridge decides), with a note."""
    plan = plan_records(
        [(PurePath("big.png"), make_png(3001, 2)), (PurePath("m.facemesh.json"), facemesh(11))]
    )
    assert len(plan.records) == 2
    assert plan.problems == []
    assert plan.notes == [
        "big.png: 3001 x 2 px is over the 3000 x 3000 limit; sent, the bridge will reject it",
        "m.facemesh.json: facemesh has 11 faces, at most 10 are accepted per payload; sent, the bridge will "
        "reject it",
    ]


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("empty.wav", b"", "the file is empty"),
        ("blob.bin", b"\x00\x01\x02\xff", "not a recognised media type"),
        (
            "cut.wav",
            make_wav(3.0)[:1000],
            "WAV data chunk claims 96000 bytes but only 956 follow (truncated)",
        ),
        ("latin1.txt", b"caf\xe9 au lait", None),  # not UTF-8: not recognised as text at all
        ("blank.txt", b"  \n\n", "text is only whitespace (4 characters)"),
        ("bad.facemesh.json", b"[[1, 2]]", "facemesh face 0 has 2 landmarks, expected 478"),
        ("bad.hume.json", b"[1, 2]", "a Hume request envelope must be a JSON object"),
        ("broken.hume.json", b"{", "not valid JSON"),
        ("cut.png", make_png(8, 8)[:20], "PNG truncated"),
        (
            "pic.avif",
            b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf",
            "image/avif is not an image format",
        ),
    ],
)
def test_unusable_files_are_problems_and_others_still_planned(
    name: str, data: bytes, problem: str | None
) -> None:
    """A file that cannot be recognised or parsed is a problem naming the file; the other files still plan."""
    plan = plan_records([(PurePath(name), data), (PurePath("ok.txt"), b"fine")])
    assert [r.value for r in plan.records] == [b"fine"]
    assert len(plan.problems) == 1
    assert plan.problems[0].startswith(f"{name}: ")
    assert problem is None or problem in plan.problems[0]


def test_default_keys() -> None:
    """The key is the whole file name (no directory), so files differing only in extension are two streams."""
    assert default_key(PurePath("dir/call-17.wav")) == "call-17.wav"
    assert default_key(PurePath("x.tar.gz")) == "x.tar.gz"
    assert default_key(PurePath("README")) == "README"
    assert default_key(PurePath("a.facemesh.json")) == "a.facemesh.json"


def test_same_name_other_extension_is_another_stream() -> None:
    """speech.wav and speech.mp3 become two streams, not one."""
    plan = plan_records([(PurePath("speech.wav"), make_wav(1.0)), (PurePath("speech.txt"), b"hello")])
    assert [r.key for r in plan.records] == [b"speech.wav", b"speech.txt"]


def test_defaults_from_the_environment() -> None:
    """Bootstrap, security and topics are read by the bridge's own settings table, with its defaults."""
    assert kafka_settings({}).bootstrap == "localhost:9092"
    assert kafka_settings({"BRIDGE_KAFKA_BOOTSTRAP": "k1:9093,k2:9093"}).bootstrap == "k1:9093,k2:9093"
    assert kafka_settings({"BRIDGE_KAFKA_BOOTSTRAP": "k1:9093"}, "k9:9092").bootstrap == "k9:9092"
    assert kafka_settings({}).input_topics[0] == "hume.media"
    assert kafka_settings({"BRIDGE_INPUT_TOPICS": " calls , chats"}).input_topics[0] == "calls"
    sasl = kafka_settings(
        {
            "BRIDGE_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "BRIDGE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "BRIDGE_KAFKA_SASL_USERNAME": "producer",
            "BRIDGE_KAFKA_SASL_PASSWORD": "pw",
        }
    )
    assert (sasl.security_protocol, sasl.sasl_mechanism, sasl.sasl_username) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
        "producer",
    )
    assert sasl.sasl_password.reveal() == "pw"


def test_bad_kafka_settings_are_named_like_run_names_them() -> None:
    """The same problems as run: every bad variable in one error, SASL without credentials included."""
    with pytest.raises(ConfigError) as exc:
        kafka_settings({"BRIDGE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "BRIDGE_INPUT_TOPICS": ","})
    text = str(exc.value)
    assert "BRIDGE_INPUT_TOPICS" in text
    assert "BRIDGE_KAFKA_SASL_USERNAME and BRIDGE_KAFKA_SASL_PASSWORD" in text


def test_directories_are_walked_recursively(tmp_path: Path) -> None:
    """Directories expand to their files, sorted, hidden entries skipped; missing paths are problems."""
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    for name in ("b/2.txt", "a.txt", ".hidden.txt", ".git/config"):
        (tmp_path / name).write_text("x")
    files, problems = expand_paths([tmp_path, tmp_path / "missing.wav"])
    assert files == [tmp_path / "a.txt", tmp_path / "b" / "2.txt"]
    assert problems == [f"{tmp_path / 'missing.wav'}: no such file or directory"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--models", "[1]"], "argument --models: must be a JSON object"),
        (["--models", "{oops"], "argument --models: not valid JSON"),
        (["--header", "novalue"], "argument --header: expected name=value"),
        (["--chunk-ms", "6000"], "argument --chunk-ms: must be above 0 and at most 5000"),
        (["--chunk-ms", "0"], "argument --chunk-ms: must be above 0"),
    ],
)
def test_bad_options_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad --models, --header or --chunk-ms stop the command with a usage error before anything is sent."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["produce", *argv, "file.wav"])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------
# Against a real broker


async def read_topic(
    bootstrap: str, topic: str, deadline_s: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of partition 0 of ``topic``, read until its end offset, within a deadline."""
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        records: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(deadline_s):
            end = (await consumer.end_offsets([tp]))[tp]
            while len(records) < end:
                batch = await consumer.getmany(tp, timeout_ms=500)
                records.extend(batch.get(tp, []))
        return records
    finally:
        await consumer.stop()


async def produce(*argv: str) -> int:
    """Run ``hume-bridge produce`` as the command line would, off the test's event loop."""
    return await asyncio.to_thread(cli.main, ["produce", *argv])


async def test_wav_arrives_as_ordered_chunks(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """For Hume v0, a 12 s WAV is produced as 3 records in order, each at most 4000 ms, one key, with the
    given headers."""
    topic = await new_topic("produce-wav")
    data = make_wav(12.0)
    (tmp_path / "call-17.wav").write_bytes(data)
    code = await produce(
        "--api",
        "v0",
        "--bootstrap",
        kafka_bootstrap,
        "--topic",
        topic,
        "--models",
        '{"prosody": {}, "burst": {}}',
        "--header",
        "tenant=acme",
        str(tmp_path / "call-17.wav"),
    )
    assert code == 0
    assert (
        capsys.readouterr().out.strip()
        == f"sent 3 records ({len(data) + 2 * 44:,} bytes) to {topic}: audio 3"
    )

    records = await read_topic(kafka_bootstrap, topic)
    assert len(records) == 3
    assert [r.key for r in records] == [b"call-17.wav"] * 3
    durations = [inspect_audio(r.value).duration_ms for r in records]
    assert durations == [4000.0, 4000.0, 4000.0]
    assert b"".join(pcm_of(r.value) for r in records) == pcm_of(data)
    for r in records:
        assert headers_of(r.headers) == {
            "content-type": b"audio/wav",
            "hume-models": b'{"prosody":{},"burst":{}}',
            "tenant": b"acme",
        }


async def test_text_and_image_files(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory with a 3-line text file and an image gives 3 text records and 1 image record."""
    topic = await new_topic("produce-text")
    (tmp_path / "chat.txt").write_text("Thanks, that helped a lot!\nWhy is this still broken?\n\nOk.\n")
    png = make_png(320, 240)
    (tmp_path / "face.png").write_bytes(png)
    assert await produce("--bootstrap", kafka_bootstrap, "--topic", topic, str(tmp_path)) == 0
    assert capsys.readouterr().out.strip().endswith(f"to {topic}: image 1, text 3")

    records = await read_topic(kafka_bootstrap, topic)
    assert [(r.key, r.value) for r in records] == [
        (b"chat.txt", b"Thanks, that helped a lot!"),
        (b"chat.txt", b"Why is this still broken?"),
        (b"chat.txt", b"Ok."),
        (b"face.png", png),
    ]
    assert [headers_of(r.headers)["content-type"] for r in records] == [b"text/plain"] * 3 + [b"image/png"]


async def test_a_bad_file_fails_the_command_but_not_the_others(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unrecognised file and a missing one are reported on stderr with exit code 1; good files are sent."""
    topic = await new_topic("produce-bad")
    (tmp_path / "blob.bin").write_bytes(b"\x00\xff\x00\xff")
    (tmp_path / "ok.png").write_bytes(make_png(8, 8))
    code = await produce(
        "--bootstrap",
        kafka_bootstrap,
        "--topic",
        topic,
        str(tmp_path / "blob.bin"),
        str(tmp_path / "nope.wav"),
        str(tmp_path / "ok.png"),
    )
    assert code == 1
    out, err = capsys.readouterr()
    assert f"error: {tmp_path / 'blob.bin'}: not a recognised media type" in err
    assert f"error: {tmp_path / 'nope.wav'}: no such file or directory" in err
    assert out.strip().endswith(f"to {topic}: image 1; 2 files not sent (see above)")
    assert [r.key for r in await read_topic(kafka_bootstrap, topic)] == [b"ok.png"]


async def test_unreachable_broker_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With no broker at the address, the command says so within its deadline and exits 1."""
    from bridge.tools.embedded import free_port

    (tmp_path / "a.txt").write_text("hello")
    code = await produce(
        "--bootstrap", f"127.0.0.1:{free_port()}", "--timeout-s", "5", str(tmp_path / "a.txt")
    )
    assert code == 1
    assert "cannot connect to Kafka at 127.0.0.1:" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------
# Hume v1 (the default): a file is a call


def header(record: ConsumerRecord[bytes, bytes], name: str) -> bytes | None:
    return headers_of(record.headers).get(name)


def l16_to_s16le(value: bytes) -> bytes:
    """audio/L16 is big-endian (RFC 2586): swap each sample's bytes to compare with WAV's little-endian."""
    samples = array.array("h")
    samples.frombytes(value)
    samples.byteswap()
    return samples.tobytes()


async def test_a_call_arrives_as_pcm_chunks_with_offsets_and_an_end(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """By default (v1) a 3.2 s WAV arrives as 7 raw PCM records of 500 ms (the last 200 ms), in order, one
    key, each with hume-stream-offset-ms, the last with hume-end-of-stream: true; the records' samples
    concatenate to the file's exactly."""
    topic = await new_topic("produce-call")
    data = make_wav(3.2)
    (tmp_path / "call-3.wav").write_bytes(data)
    code = await produce(
        "--bootstrap",
        kafka_bootstrap,
        "--topic",
        topic,
        "--header",
        "hume-measurement-timer-ms=4000",
        str(tmp_path / "call-3.wav"),
    )
    assert code == 0
    assert (
        capsys.readouterr().out.strip() == f"sent 7 records ({len(pcm_of(data)):,} bytes) to {topic}: audio 7"
    )

    records = await read_topic(kafka_bootstrap, topic)
    assert [r.key for r in records] == [b"call-3.wav"] * 7
    assert [header(r, "hume-stream-offset-ms") for r in records] == [
        str(ms).encode() for ms in range(0, 3500, 500)
    ]
    assert [header(r, "hume-end-of-stream") for r in records] == [None] * 6 + [b"true"]
    for r in records:
        assert header(r, "content-type") == b"audio/L16;rate=16000;channels=1"
        assert header(r, "hume-measurement-timer-ms") == b"4000"
    assert [len(r.value) for r in records] == [16_000] * 6 + [6_400]
    assert l16_to_s16le(b"".join(r.value for r in records)) == pcm_of(data)


async def test_wav_chunks_and_one_stream_across_files(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """--format wav --chunk-ms 250 --key: two stereo 44.1 kHz files are one stream of complete WAVs whose
    offsets continue from the first file into the second, ending once; the samples are the files'."""
    topic = await new_topic("produce-call-wav")
    first, second = make_wav(0.5, rate=44_100, channels=2), make_wav(0.6, rate=44_100, channels=2)
    (tmp_path / "part-1.wav").write_bytes(first)
    (tmp_path / "part-2.wav").write_bytes(second)
    code = await produce(
        "--bootstrap",
        kafka_bootstrap,
        "--topic",
        topic,
        "--format",
        "wav",
        "--chunk-ms",
        "250",
        "--key",
        "call-44",
        str(tmp_path / "part-1.wav"),
        str(tmp_path / "part-2.wav"),
    )
    assert code == 0
    records = await read_topic(kafka_bootstrap, topic)
    assert [r.key for r in records] == [b"call-44"] * 5
    assert [header(r, "hume-stream-offset-ms") for r in records] == [b"0", b"250", b"500", b"750", b"1000"]
    assert [header(r, "hume-end-of-stream") for r in records] == [None] * 4 + [b"true"]
    assert {header(r, "content-type") for r in records} == {b"audio/wav"}
    for r in records:
        with wave.open(io.BytesIO(r.value), "rb") as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (44_100, 2, 2)
    assert b"".join(pcm_of(r.value) for r in records) == pcm_of(first) + pcm_of(second)


async def test_compressed_audio_arrives_as_the_bridges_16k_decoding(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """An MP3 is decoded by the bridge's own v1 decoder (PyAV) and produced as 16 kHz mono L16 chunks: read
    back, they are exactly that decoding."""
    topic = await new_topic("produce-call-mp3")
    mp3 = v1_samples.encoded("mp3", "libmp3lame", 44_100, 1.3, channels=2)
    (tmp_path / "speech.mp3").write_bytes(mp3)
    assert await produce("--bootstrap", kafka_bootstrap, "--topic", topic, str(tmp_path / "speech.mp3")) == 0
    records = await read_topic(kafka_bootstrap, topic)
    assert {header(r, "content-type") for r in records} == {b"audio/L16;rate=16000;channels=1"}
    assert [header(r, "hume-stream-offset-ms") for r in records] == [
        str(500 * i).encode() for i in range(len(records))
    ]
    assert header(records[-1], "hume-end-of-stream") == b"true"
    assert l16_to_s16le(b"".join(r.value for r in records)) == audio_to_pcm16k(mp3, "audio/mpeg").pcm


async def test_video_arrives_as_frames_or_whole(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """A video file arrives as JPEG frames at most 3 a second with their offsets (default), or with
    --video-as whole as the file itself."""
    topic = await new_topic("produce-video")
    video = v1_samples.video("mp4", "libx264", 10, 2.0)
    (tmp_path / "cam.mp4").write_bytes(video)
    assert await produce("--bootstrap", kafka_bootstrap, "--topic", topic, str(tmp_path / "cam.mp4")) == 0
    frames = await read_topic(kafka_bootstrap, topic)
    assert [header(r, "hume-stream-offset-ms") for r in frames] == [b"0", b"400", b"800", b"1200", b"1600"]
    assert [header(r, "hume-end-of-stream") for r in frames] == [None] * 4 + [b"true"]
    for r in frames:
        assert header(r, "content-type") == b"image/jpeg"
        assert Image.open(io.BytesIO(r.value)).format == "JPEG"

    whole_topic = await new_topic("produce-video-whole")
    code = await produce(
        "--bootstrap",
        kafka_bootstrap,
        "--topic",
        whole_topic,
        "--video-as",
        "whole",
        str(tmp_path / "cam.mp4"),
    )
    assert code == 0
    (whole,) = await read_topic(kafka_bootstrap, whole_topic)
    assert whole.value == video
    assert headers_of(whole.headers) == {
        "content-type": b"video/mp4",
        "hume-stream-offset-ms": b"0",
        "hume-end-of-stream": b"true",
    }
