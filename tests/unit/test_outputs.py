"""Output records built from outputs: the v0 shape for one record, sources for several, stream ids."""

from __future__ import annotations

import orjson

from bridge.core.model import ErrorInfo, Output, Prepared, Source, WarningInfo, Work
from bridge.core.outputs import Topics, render, stream_id

TOPICS = Topics("pred", "err", "warn")


def work(offset: int, key: bytes | None = b"call-1") -> Work:
    return Work(
        source=Source("media", 2, offset, 7),
        stream=("media", 2, key if key is not None else offset),
        key=key,
        headers=(("trace", b"t1"), ("hume-source", b"forged")),
        payload_id="mine",
        size=1,
        consumed_at=1.0,
        prepared=Prepared("payload"),
        attempts=2,
    )


def test_one_record_prediction_has_the_v0_shape_with_warnings_first() -> None:
    """Warnings, then the prediction; headers carried with hume-source set by the bridge."""
    w = work(5)
    warning = WarningInfo("W0103", "No faces detected.", "face")
    out = render(Output(w.stream, (w,), {"models": {"face": {}}}, warnings=(warning,)), TOPICS, 1.25)
    assert [r.topic for r in out] == ["warn", "pred"]
    body = orjson.loads(out[1].value)
    assert body == {
        "stream_id": "call-1",
        "payload_id": "mine",
        "source": {"topic": "media", "partition": 2, "offset": 5, "timestamp_ms": 7},
        "models": {"face": {}},
        "latency_ms": 250.0,
        "attempts": 2,
    }
    assert out[1].headers == [("trace", b"t1"), ("hume-source", b"media/2/5")]


def test_error_output_and_an_output_covering_several_records() -> None:
    """An error carries its code and origin; an output over several records lists their sources."""
    a, b = work(1), work(2)
    err = render(Output(a.stream, (a,), error=ErrorInfo("E0203", "long", "hume", False)), TOPICS, 2.0)
    assert orjson.loads(err[0].value)["error"] == {
        "code": "E0203",
        "message": "long",
        "origin": "hume",
        "retriable": False,
    }
    (many,) = render(Output(a.stream, (a, b), {"measurement": {}}), TOPICS, 2.0)
    body = orjson.loads(many.value)
    assert [s["offset"] for s in body["sources"]] == [1, 2]
    assert "payload_id" not in body


def test_stream_id_is_unambiguous_for_keys_that_are_not_utf8() -> None:
    """A UTF-8 key is its text; any other key is an object no UTF-8 key can equal."""
    assert stream_id(b"\\xff") == "\\xff"
    assert stream_id(b"\xff") == {"base64": "/w=="}
    assert stream_id(None) is None
