"""v0 replies told apart by their keys, and request frames."""

from __future__ import annotations

import orjson

from bridge.upstream.v0 import protocol as v0


def test_request_frame_carries_payload_id_and_reset_only_when_asked() -> None:
    """The body is sent as is, plus payload_id, plus reset_stream when needed."""
    body = {"data": "aGk=", "models": {"prosody": {}}}
    assert orjson.loads(v0.encode_request(body, "p1", False)) == {**body, "payload_id": "p1"}
    assert orjson.loads(v0.encode_request(body, "p1", True))["reset_stream"] is True
    assert "payload_id" not in body


def test_predictions_with_nested_warning_are_final_with_both() -> None:
    """A model object is kept verbatim; its nested warning becomes a warning too."""
    reply = {"payload_id": "p", "face": {"warning": "No faces detected.", "code": "W0103"}}
    verdict = v0.judge(reply)
    assert isinstance(verdict, v0.Final)
    assert verdict.outcome.models == {"face": {"warning": "No faces detected.", "code": "W0103"}}
    (w,) = verdict.outcome.warnings
    assert (w.code, w.model) == ("W0103", "face")


def test_top_level_warning_alone_is_a_final_outcome_with_no_models() -> None:
    """A reply that is only a warning still completes the payload."""
    verdict = v0.judge({"payload_id": "p", "warning": "nothing", "code": "W0101"})
    assert isinstance(verdict, v0.Final)
    assert verdict.outcome.models == {}
    assert verdict.outcome.warnings[0].model is None


def test_error_codes_map_to_final_retry_or_outage() -> None:
    """E01xx/E02xx are final, E0300 is an outage, anything else is retried."""
    assert isinstance(v0.judge({"error": "bad", "code": "E0203"}), v0.Final)
    assert isinstance(v0.judge({"error": "bad", "code": "E0101"}), v0.Final)
    out = v0.judge({"error": "no credits", "code": "E0300"})
    assert isinstance(out, v0.Outage) and out.reason == "out_of_credits"
    assert isinstance(v0.judge({"error": "oops", "code": "E0500"}), v0.Retry)


def test_unreadable_frames_are_none() -> None:
    assert v0.parse_frame(b"not json") is None
    assert v0.parse_frame(b"[1,2]") is None
    assert v0.reply_payload_id({"payload_id": 3}) is None
