"""v1 face rule, video session rules, uploads and runs (pure, no sockets)."""

from __future__ import annotations

import pytest

from bridge.tools.emulator.v1.audio import SpeechRules
from bridge.tools.emulator.v1.runs import EventKind, QueryError, Runs, RunStatus
from bridge.tools.emulator.v1.testing import jpeg, silence, tone, wav
from bridge.tools.emulator.v1.uploads import Part, UploadError, audio_upload, decode_audio, video_upload
from bridge.tools.emulator.v1.video import (
    FaceConfig,
    FaceIds,
    VideoSession,
    VideoSessionSettings,
    detect_faces,
    inspect_jpeg,
    measure_faces,
)
from bridge.tools.emulator.v1.vocabulary import Vocabulary


def test_face_rule_uniform_count_bounds_order_and_filters() -> None:
    assert detect_faces(inspect_jpeg(jpeg(uniform=True)), FaceConfig()) == []
    picture = inspect_jpeg(jpeg(640, 480, faces=12, seed=3))
    faces = detect_faces(picture, FaceConfig(threshold=0.0, min_size=1))
    assert len(faces) == 12
    assert faces[0].area >= faces[1].area >= max(f.area for f in faces[2:])
    assert [f.confidence for f in faces[2:]] == sorted((f.confidence for f in faces[2:]), reverse=True)
    for face in faces:
        x0, y0, x1, y1 = face.bbox
        assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480
    strict = detect_faces(picture, FaceConfig(threshold=0.95, min_size=150))
    assert {f.slot for f in strict} == {
        f.slot for f in faces if f.confidence >= 0.95 and f.shorter_side >= 150
    }
    many = detect_faces(inspect_jpeg(jpeg(faces=40, seed=1)), FaceConfig(threshold=0.0, min_size=1))
    assert len(many) == 32


def test_face_ids_follow_slots_and_remember_32() -> None:
    ids = FaceIds()
    assert [ids.id_for(s) for s in (5, 2, 5, 9)] == [0, 1, 0, 2]
    for slot in range(100, 132):
        ids.id_for(slot)
    assert ids.id_for(5) == 35  # forgotten: the 32 slots since pushed it out
    measured = measure_faces(inspect_jpeg(jpeg(faces=3, seed=2)), FaceConfig(0.0, 1), FaceIds(), Vocabulary())
    assert [f["face_id"] for f in measured] == [0, 1, None]
    assert measured[2]["expressions"] is None and len(measured[0]["expressions"]) == 48
    assert all(d["probability"] > 0.1 for d in measured[0]["descriptions"])


def test_video_session_counts_and_five_errors_in_a_row() -> None:
    s = VideoSession("v", VideoSessionSettings(burst_frames=100), Vocabulary(), now=0.0)
    image = jpeg(faces=1, seed=9)
    for _ in range(4):
        assert s.on_binary(image, 0.0, internal_error=True).close_code is None
    assert s.on_binary(image, 0.0).messages[0]["frame_id"] == 0  # a success resets the run of errors
    for _ in range(4):
        s.on_binary(image, 0.0, internal_error=True)
    last = s.on_binary(image, 0.0, internal_error=True)
    assert last.close_code == 1008 and last.messages[-1]["received"] == {"frames": 10}


def test_decode_audio() -> None:
    pcm = tone(100)
    assert decode_audio(wav(pcm)) == pcm == decode_audio(pcm)
    for bad, code in (
        (wav(pcm, channels=2), "audio_decode_failed"),
        (wav(b""), "audio_decode_failed"),
        (b"", "audio_decode_failed"),
        (b"OggS" + bytes(10), "unsupported_media_type"),
        (b"\xff\xfb\x90\x00", "unsupported_media_type"),
    ):
        with pytest.raises(UploadError) as exc:
            decode_audio(bad)
        assert exc.value.code == code
    extensible = bytearray(wav(pcm))
    extensible[20:22] = (0xFFFE).to_bytes(2, "little")
    with pytest.raises(UploadError, match="could not be read"):
        decode_audio(bytes(extensible))


def test_upload_part_rules() -> None:
    vocab, rules = Vocabulary(), SpeechRules()
    good = Part("file", "application/octet-stream", silence(100) + tone(1000))
    body = audio_upload([good], vocab, rules).body
    assert body["utterances"] == [{"utterance_id": 0, "audio_start_ms": 100, "audio_end_ms": 1100}]
    for parts, code in (
        ([good, good], "invalid_request"),
        ([good, Part("other", None, b"")], "invalid_request"),
        ([good, Part("config", None, b"[1]")], "config_invalid"),
    ):
        with pytest.raises(UploadError) as exc:
            audio_upload(parts, vocab, rules)
        assert exc.value.code == code
    with pytest.raises(UploadError) as exc:
        video_upload(
            [Part("file", "image/jpeg", jpeg()), Part("file", "image/jpeg", b"\xff\xd8\xffbad")], vocab, 0.0
        )
    assert exc.value.code == "image_decode_failed"
    state = video_upload(
        [Part("file", None, jpeg(faces=2)), Part("config", None, b'{"face": {"return_face_state": true}}')],
        vocab,
        0.0,
    ).body["face_state"]
    with pytest.raises(UploadError, match="expired"):
        video_upload(
            [Part("file", None, jpeg()), Part("config", None, b'{"face_state": "%s"}' % state.encode())],
            vocab,
            1e9,
        )


def test_runs_metering_events_and_pages() -> None:
    runs = Runs()
    a = runs.new("a", "u1", "audio", "realtime", 100.0, {})
    a.accept(bytes(32_000), 1.0)
    assert a.metered_seconds == 10.0
    a.accept(bytes(32_000 * 11), 11.0)
    assert a.metered_seconds == 12.0
    for _ in range(105):
        a.problem(EventKind.RATE_LIMITED, 100.0)
    page = Runs.events(a, {"page_size": "1000"})
    assert len(page["events"]) == 100 and page["at_cap"] and page["capped_kinds"] == ["rate_limited"]
    b = runs.new("b", "u2", "video", "file", 200.0, {})
    b.failed = True
    b.end(RunStatus.ERRORED, 201.0, None, "image_decode_failed")
    assert b.metered_seconds == 0.0 and b.summary()["ended_at"] == "1970-01-01T00:03:21.000Z"
    assert [r["run_id"] for r in runs.list({})["runs"]] == ["b", "a"]
    assert [r["run_id"] for r in runs.list({"user_id": "u1"})["runs"]] == ["a"]
    assert [r["run_id"] for r in runs.list({"started_after": "1970-01-01T00:02:00Z"})["runs"]] == ["b"]
    first = runs.list({"page_size": "1"})
    assert [r["run_id"] for r in runs.list({"cursor": first["next_cursor"]})["runs"]] == ["a"]
    for bad in (
        {"page_size": "0"},
        {"cursor": "x"},
        {"mode": "batch"},
        {"nope": "1"},
        {"started_before": "x"},
    ):
        with pytest.raises(QueryError):
            runs.list(bad)
