"""v1 realtime protocol, sans I/O: client messages, server events by shape, error/close/handshake verdicts."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.errors import Code
from bridge.upstream.v1.protocol import (
    SESSION_CLOSE,
    AudioConfig,
    AudioMeasurement,
    AudioProduced,
    AudioReceived,
    AudioSettings,
    CloseReason,
    CloseVerdict,
    Endpoint,
    ErrorAction,
    ErrorScope,
    HandshakeVerdict,
    HeaderError,
    ServerError,
    ServerMessages,
    SessionClosed,
    SessionCreated,
    SessionUpdated,
    Skip,
    UtteranceEnd,
    UtteranceStart,
    VideoConfig,
    VideoMeasurement,
    VideoProduced,
    VideoReceived,
    VideoSettings,
    audio_session_update,
    audio_settings_problems,
    judge_close,
    judge_handshake,
    realtime_url,
    stream_audio_settings,
    video_session_update,
    video_settings_problems,
)


def _msg(obj: dict[str, Any]) -> str:
    return orjson.dumps(obj).decode()


AUDIO_RESULT: dict[str, Any] = {
    "type": "measurement.result",
    "measurement_id": 3,
    "utterance_id": 1,
    "audio_start_ms": 1200,
    "audio_end_ms": 4200,
    "trigger": "interval",
    "expressions": [{"name": "calm", "probability": 0.9}],
    "voice_attributes": [],
    "future_field": {"kept": True},
}
VIDEO_RESULT: dict[str, Any] = {
    "type": "measurement.result",
    "frame_id": 0,
    "faces": [
        {
            "face_id": 0,
            "bbox": [1.0, 2.0, 30.0, 40.0],
            "confidence": 0.99,
            "expressions": [],
            "descriptions": [],
        }
    ],
}


def test_realtime_urls() -> None:
    assert (
        realtime_url("https://api.cloud.hume.ai", Endpoint.AUDIO)
        == "wss://api.cloud.hume.ai/v1/expression/audio/realtime"
    )
    assert (
        realtime_url("http://127.0.0.1:5/", Endpoint.VIDEO) == "ws://127.0.0.1:5/v1/expression/video/realtime"
    )
    assert realtime_url("ws://h:1", Endpoint.AUDIO) == "ws://h:1/v1/expression/audio/realtime"


def test_audio_session_update_is_the_whole_configuration() -> None:
    assert orjson.loads(audio_session_update(AudioSettings(5000))) == {
        "type": "session.update",
        "audio": {"type": "audio/pcm", "encoding": "s16le", "sample_rate": 16000, "channels": 1},
        "measurement_timer_ms": 5000,
    }


def test_video_session_update() -> None:
    assert orjson.loads(video_session_update(VideoSettings(0.8, 40))) == {
        "type": "session.update",
        "image": {"type": "image/jpeg"},
        "face": {"threshold": 0.8, "min_size": 40},
    }
    assert orjson.loads(SESSION_CLOSE) == {"type": "session.close"}


@pytest.mark.parametrize(
    ("timer", "ok"), [(2999, False), (3000, True), (10000, True), (10001, False), (0, False)]
)
def test_configured_measurement_timer_range(timer: int, ok: bool) -> None:
    problems = audio_settings_problems(AudioSettings(timer))
    assert (problems == []) is ok
    if not ok:
        assert "BRIDGE_V1_MEASUREMENT_TIMER_MS" in problems[0] and str(timer) in problems[0]


def test_video_settings_problems_name_each_setting() -> None:
    problems = video_settings_problems(VideoSettings(1.5, 0))
    assert len(problems) == 2
    assert video_settings_problems(VideoSettings()) == []


def test_stream_header_overrides_the_configured_timer() -> None:
    default = AudioSettings(3000)
    assert stream_audio_settings(default, None) is default
    assert stream_audio_settings(default, b"7000") == AudioSettings(7000)
    assert stream_audio_settings(default, " 10000 ") == AudioSettings(10000)


@pytest.mark.parametrize("value", [b"fast", b"2000", b"10001", b"", b"3e3"])
def test_bad_stream_timer_header_is_an_invalid_header(value: bytes) -> None:
    with pytest.raises(HeaderError) as exc:
        stream_audio_settings(AudioSettings(), value)
    assert exc.value.code is Code.INVALID_HEADER
    assert "hume-measurement-timer-ms" in exc.value.message


# ---------------------------------------------------------------------------------------------- events


def test_audio_session_messages() -> None:
    p = ServerMessages(Endpoint.AUDIO)
    created = p.parse(
        _msg({"type": "session.created", "session_id": "s1", "audio": {}, "measurement_timer_ms": 3000})
    )
    assert isinstance(created, SessionCreated)
    assert (created.session_id, created.config) == ("s1", AudioConfig(3000))
    updated = p.parse(_msg({"type": "session.updated", "measurement_timer_ms": 5000}))
    assert updated == SessionUpdated(
        AudioConfig(5000), {"type": "session.updated", "measurement_timer_ms": 5000}
    )
    closed = p.parse(
        _msg(
            {
                "type": "session.closed",
                "session_id": "s1",
                "reason": "server_shutdown",
                "received": {"audio_duration_ms": 12000, "frames": 120},
                "produced": {"utterances": 2, "measurements": 5},
            }
        )
    )
    assert closed == SessionClosed(
        "s1", CloseReason.SERVER_SHUTDOWN, "server_shutdown", AudioReceived(12000, 120), AudioProduced(2, 5)
    )


def test_video_session_messages_have_the_video_shapes() -> None:
    p = ServerMessages(Endpoint.VIDEO)
    created = p.parse(
        _msg(
            {
                "type": "session.created",
                "session_id": "v",
                "image": {},
                "face": {"threshold": 0.9, "min_size": 60},
            }
        )
    )
    assert isinstance(created, SessionCreated) and created.config == VideoConfig(0.9, 60)
    closed = p.parse(
        _msg(
            {
                "type": "session.closed",
                "session_id": "v",
                "reason": "client_request",
                "received": {"frames": 9},
                "produced": {"measurements": 4},
            }
        )
    )
    assert isinstance(closed, SessionClosed)
    assert (closed.received, closed.produced) == (VideoReceived(9), VideoProduced(4))
    result = p.parse(_msg(VIDEO_RESULT))
    assert isinstance(result, VideoMeasurement)
    assert (result.frame_id, result.faces, result.raw) == (0, 1, VIDEO_RESULT)


def test_utterances_and_measurements() -> None:
    p = ServerMessages(Endpoint.AUDIO)
    assert p.parse(
        _msg({"type": "utterance.start", "utterance_id": 1, "audio_start_ms": 1200})
    ) == UtteranceStart(1, 1200)
    assert p.parse(
        _msg({"type": "utterance.end", "utterance_id": 1, "audio_start_ms": 1200, "audio_end_ms": 5000})
    ) == UtteranceEnd(1, 1200, 5000)
    result = p.parse(_msg(AUDIO_RESULT))
    assert isinstance(result, AudioMeasurement)
    assert (
        result.measurement_id,
        result.utterance_id,
        result.audio_start_ms,
        result.audio_end_ms,
        result.trigger,
    ) == (3, 1, 1200, 4200, "interval")
    assert result.raw == AUDIO_RESULT  # verbatim, unknown fields included


def test_closed_with_an_unknown_reason_or_malformed_counts_still_ends_the_session() -> None:
    p = ServerMessages(Endpoint.AUDIO)
    closed = p.parse(
        _msg(
            {
                "type": "session.closed",
                "session_id": "s",
                "reason": "maintenance",
                "received": {"frames": "x"},
            }
        )
    )
    assert isinstance(closed, SessionClosed)
    assert (closed.reason, closed.reason_text, closed.received, closed.produced) == (
        CloseReason.OTHER,
        "maintenance",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("not json", Skip.NOT_JSON),
        ("[1, 2]", Skip.NOT_OBJECT),
        ('{"session_id": "s"}', Skip.NO_TYPE),
        ('{"type": "session.resumed", "session_id": "s"}', Skip.UNKNOWN_TYPE),
        ('{"type": "session.created"}', Skip.MISSING_FIELDS),
        ('{"type": "utterance.start", "utterance_id": 1}', Skip.MISSING_FIELDS),
        ('{"type": "utterance.start", "utterance_id": true, "audio_start_ms": 1}', Skip.MISSING_FIELDS),
        ('{"type": "utterance.start", "utterance_id": 1, "audio_start_ms": -5}', Skip.MISSING_FIELDS),
        ('{"type": "utterance.end", "utterance_id": 1, "audio_start_ms": 1}', Skip.MISSING_FIELDS),
        ('{"type": "error", "code": "rate_limited", "message": "slow down"}', Skip.MISSING_FIELDS),
        ('{"type": "session.closed", "session_id": "s"}', Skip.MISSING_FIELDS),
    ],
)
def test_messages_without_their_required_fields_are_skipped_and_counted(data: str, why: Skip) -> None:
    p = ServerMessages(Endpoint.AUDIO)
    assert p.parse(data) is None
    assert p.skipped == {why: 1}


def test_measurement_shapes_are_per_endpoint() -> None:
    """An audio result on a video session lacks frame_id/faces, and the other way round: skipped."""
    audio, video = ServerMessages(Endpoint.AUDIO), ServerMessages(Endpoint.VIDEO)
    assert audio.parse(_msg(VIDEO_RESULT)) is None
    assert video.parse(_msg(AUDIO_RESULT)) is None
    assert audio.skipped[Skip.MISSING_FIELDS] == video.skipped[Skip.MISSING_FIELDS] == 1
    assert video.parse(_msg({"type": "utterance.start", "utterance_id": 1, "audio_start_ms": 0})) is None
    assert video.skipped[Skip.WRONG_ENDPOINT] == 1


def test_audio_result_missing_a_list_is_skipped() -> None:
    p = ServerMessages(Endpoint.AUDIO)
    assert p.parse(_msg({k: v for k, v in AUDIO_RESULT.items() if k != "voice_attributes"})) is None
    assert p.parse(_msg({**AUDIO_RESULT, "audio_end_ms": 100})) is None  # ends before it starts


@settings(max_examples=200, deadline=None)
@given(
    obj=st.dictionaries(
        st.sampled_from(
            [
                "type",
                "session_id",
                "reason",
                "utterance_id",
                "audio_start_ms",
                "audio_end_ms",
                "code",
                "message",
                "retryable",
                "frame_id",
                "faces",
                "measurement_id",
                "trigger",
                "expressions",
                "voice_attributes",
                "received",
            ]
        ),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-5, 10**6),
            st.floats(allow_nan=True),
            st.text(max_size=5),
            st.lists(st.integers(), max_size=2),
            st.sampled_from(
                [
                    "session.closed",
                    "error",
                    "utterance.start",
                    "utterance.end",
                    "measurement.result",
                    "session.created",
                ]
            ),
        ),
    ),
    endpoint=st.sampled_from(list(Endpoint)),
)
def test_any_object_parses_to_an_event_or_a_counted_skip(obj: dict[str, Any], endpoint: Endpoint) -> None:
    """Never an exception: unreadable JSON (NaN, 65-bit ints) and wrong shapes are skipped and counted."""
    p = ServerMessages(endpoint)
    event = p.parse(json.dumps(obj))
    assert (event is None) == (sum(p.skipped.values()) == 1)


# ---------------------------------------------------------------------------------------------- errors


def _error(endpoint: Endpoint, code: str, retryable: bool) -> ServerError:
    event = ServerMessages(endpoint).parse(
        _msg({"type": "error", "code": code, "message": "m", "retryable": retryable})
    )
    assert isinstance(event, ServerError)
    return event


@pytest.mark.parametrize(
    ("endpoint", "code", "retryable", "scope", "action"),
    [
        (Endpoint.AUDIO, "rate_limited", True, ErrorScope.FRAME, ErrorAction.RESEND_LATER),
        (Endpoint.VIDEO, "rate_limited", True, ErrorScope.FRAME, ErrorAction.RESEND_LATER),
        (Endpoint.AUDIO, "invalid_audio_frame", True, ErrorScope.FRAME, ErrorAction.FAIL_FRAME),
        (Endpoint.VIDEO, "invalid_image_frame", True, ErrorScope.FRAME, ErrorAction.FAIL_FRAME),
        (Endpoint.AUDIO, "internal_error", False, ErrorScope.SESSION, ErrorAction.END_SESSION),
        (Endpoint.VIDEO, "internal_error", True, ErrorScope.FRAME, ErrorAction.RESEND),
        (Endpoint.VIDEO, "internal_error", False, ErrorScope.FRAME, ErrorAction.FAIL_FRAME),
        (Endpoint.AUDIO, "config_invalid", False, ErrorScope.SESSION, ErrorAction.END_SESSION),
        (Endpoint.VIDEO, "message_too_large", False, ErrorScope.SESSION, ErrorAction.END_SESSION),
        (Endpoint.AUDIO, "message_invalid", True, ErrorScope.MESSAGE, ErrorAction.IGNORE),
        (Endpoint.AUDIO, "brand_new_code", False, ErrorScope.SESSION, ErrorAction.END_SESSION),
        (Endpoint.AUDIO, "brand_new_notice", True, ErrorScope.MESSAGE, ErrorAction.IGNORE),
    ],
)
def test_error_classification(
    endpoint: Endpoint, code: str, retryable: bool, scope: ErrorScope, action: ErrorAction
) -> None:
    err = _error(endpoint, code, retryable)
    assert (err.code, err.retryable, err.scope, err.action) == (code, retryable, scope, action)


def _closed(reason: str) -> SessionClosed:
    event = ServerMessages(Endpoint.AUDIO).parse(
        _msg({"type": "session.closed", "session_id": "s", "reason": reason})
    )
    assert isinstance(event, SessionClosed)
    return event


@pytest.mark.parametrize(
    ("code", "closed", "error", "verdict"),
    [
        (1000, "client_request", None, CloseVerdict.DONE),
        (1000, "server_shutdown", None, CloseVerdict.RECONNECT),
        (1000, "idle_timeout", None, CloseVerdict.RECONNECT),
        (1008, "error", ("internal_error", False), CloseVerdict.RECONNECT),
        (1008, "error", ("config_invalid", False), CloseVerdict.FINAL),
        (1008, "error", ("message_too_large", False), CloseVerdict.FINAL),
        (1008, None, ("config_invalid", False), CloseVerdict.FINAL),
        (1008, "error", ("rate_limited", True), CloseVerdict.RECONNECT),  # a frame error is not the cause
        (None, None, None, CloseVerdict.RECONNECT),  # connection lost
        (1006, None, None, CloseVerdict.RECONNECT),
        (1001, None, None, CloseVerdict.RECONNECT),
        (1011, None, None, CloseVerdict.RECONNECT),
        (1012, None, None, CloseVerdict.RECONNECT),
        (1013, None, None, CloseVerdict.RECONNECT),
        (1000, None, None, CloseVerdict.RECONNECT),  # closed without session.closed: work remains
        (1002, None, None, CloseVerdict.FINAL),
        (1003, None, None, CloseVerdict.FINAL),
        (1009, None, None, CloseVerdict.FINAL),
        (4000, None, None, CloseVerdict.FINAL),
    ],
)
def test_close_verdicts(
    code: int | None, closed: str | None, error: tuple[str, bool] | None, verdict: CloseVerdict
) -> None:
    last = _error(Endpoint.AUDIO, *error) if error else None
    assert judge_close(code, _closed(closed) if closed else None, last) is verdict


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (401, HandshakeVerdict.KEY_REFUSED),
        (403, HandshakeVerdict.KEY_REFUSED),
        (408, HandshakeVerdict.TRANSIENT),
        (429, HandshakeVerdict.TRANSIENT),
        (500, HandshakeVerdict.TRANSIENT),
        (503, HandshakeVerdict.TRANSIENT),
        (400, HandshakeVerdict.FINAL),
        (404, HandshakeVerdict.FINAL),
        (301, HandshakeVerdict.FINAL),
    ],
)
def test_handshake_verdicts(status: int, verdict: HandshakeVerdict) -> None:
    assert judge_handshake(status) is verdict
