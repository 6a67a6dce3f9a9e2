"""``hume-bridge tail``: each kind of output record becomes one readable line (pure, no broker)."""

from __future__ import annotations

import orjson

from bridge.tools.tail import as_json, describe, describe_bytes

SOURCE = {"topic": "hume.media", "partition": 3, "offset": 1187, "timestamp_ms": 1}


def test_v0_prediction_shows_the_strongest_expressions_per_model() -> None:
    """Stream, source, each model's top three emotions (highest score over its predictions) and latency."""
    value = {
        "stream_id": "call-42",
        "payload_id": "hume.media/3/1187",
        "source": SOURCE,
        "models": {
            "prosody": {
                "predictions": [
                    {"emotions": [{"name": "Calmness", "score": 0.2}, {"name": "Joy", "score": 0.7}]},
                    {"emotions": [{"name": "Calmness", "score": 0.41}, {"name": "Anger", "score": 0.1}]},
                ]
            },
            "burst": {"predictions": []},
            "face": {"warning": "No faces detected.", "code": "W0103"},
        },
        "latency_ms": 212.4,
        "attempts": 1,
    }
    line = describe(value)
    assert (line.kind, line.stream, line.source) == ("prediction", "call-42", "hume.media/3/1187")
    assert line.text == (
        "prosody: Joy 0.70, Calmness 0.41, Anger 0.10; burst: no predictions; face: W0103 No faces detected."
        " (212 ms)"
    )


def test_v1_audio_measurement_shows_span_and_top_expressions() -> None:
    """A v1 record (api v1, measurement with expressions) reads as endpoint/mode, span and top three."""
    value = {
        "api": "v1",
        "stream_id": "call-7",
        "endpoint": "audio",
        "mode": "realtime",
        "session_id": "s-1",
        "measurement": {
            "type": "measurement.result",
            "audio_start_ms": 1200,
            "audio_end_ms": 3400,
            "expressions": [
                {"name": "interest", "probability": 0.81},
                {"name": "calmness", "probability": 0.4},
                {"name": "amusement", "probability": 0.35},
                {"name": "doubt", "probability": 0.1},
            ],
        },
        "sources": [
            {"topic": "hume.media", "partition": 0, "offset": 12, "begin_ms": 0, "end_ms": 100},
            {"topic": "hume.media", "partition": 0, "offset": 15, "begin_ms": 0, "end_ms": 100},
        ],
        "latency_ms": 90,
    }
    line = describe(value)
    assert (line.kind, line.stream, line.source) == ("prediction", "call-7", "hume.media/0/12..15")
    assert line.text == "audio/realtime 1.2-3.4 s interest 0.81, calmness 0.40, amusement 0.35 (90 ms)"


def test_v1_video_measurement_shows_each_measured_face() -> None:
    """Faces with expressions are listed by face id; unmeasured faces are counted."""
    value = {
        "api": "v1",
        "stream_id": "cam-1",
        "endpoint": "video",
        "mode": "file",
        "run_id": "r-1",
        "measurement": {
            "frame_id": 4,
            "faces": [
                {"face_id": 0, "expressions": [{"name": "Joy", "score": 0.6}, {"name": "Awe", "score": 0.2}]},
                {"face_id": None, "expressions": None, "descriptions": None},
            ],
        },
        "sources": [{"topic": "hume.media", "partition": 1, "offset": 9}],
    }
    line = describe(value)
    assert line.source == "hume.media/1/9"
    assert line.text == "video/file frame 4 face 0: Joy 0.60, Awe 0.20; 1 face not measured"


def test_error_and_warning_records() -> None:
    """Errors show code, origin and message; warnings show code, model and message."""
    error = describe(
        {
            "stream_id": "call-42",
            "source": SOURCE,
            "error": {"code": "AUDIO_TOO_LONG", "message": "audio lasts 6000 ms", "origin": "bridge"},
        }
    )
    assert (error.kind, error.text) == ("error", "AUDIO_TOO_LONG (bridge) audio lasts 6000 ms")
    warning = describe(
        {
            "stream_id": "cam-1",
            "source": SOURCE,
            "warning": {"code": "W0103", "message": "No faces.", "model": "face"},
        }
    )
    assert (warning.kind, warning.text) == ("warning", "W0103 face: No faces.")


def test_rendered_line_has_time_kind_stream_and_source_in_columns() -> None:
    """The rendered line starts with the record's UTC time, then kind, stream and source."""
    line = describe({"stream_id": "chat-7", "source": SOURCE, "models": {"language": {"predictions": []}}})
    assert line.render(0) == (
        "00:00:00.000 prediction chat-7           hume.media/3/1187      language: no predictions"
    )


def test_values_that_are_not_outputs_are_still_shown() -> None:
    """Non-JSON, empty and unknown values get an 'other' line instead of crashing the view."""
    assert describe_bytes(b"\xff\x00").text == "not JSON (2 bytes)"
    assert describe_bytes(None).kind == "other"
    assert describe([1, 2]).kind == "other"
    assert describe({"hello": 1}).kind == "other"


def test_json_form_carries_position_key_and_parsed_value() -> None:
    """--json prints where the record is, its key and its value parsed."""
    out = orjson.loads(as_json("hume.errors", 2, 5, 1000, b"k\xff", b'{"a": 1}'))
    assert out == {
        "topic": "hume.errors",
        "partition": 2,
        "offset": 5,
        "timestamp_ms": 1000,
        "key": "k\ufffd",
        "value": {"a": 1},
    }
    assert orjson.loads(as_json("t", 0, 0, 0, None, b"plain"))["value"] == "plain"
