"""The pure core: request validation, every error code, reply shapes and the audio window."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.tools import samples as S
from bridge.tools.emulator.labels import DESCRIPTIONS, EMOTIONS, FACS, LANGUAGE_EMOTIONS, SENTIMENT, TOXICITY
from bridge.tools.emulator.protocol import Engine, Session, parse_request

from .conftest import Asker

AUDIO = {"prosody": {}, "burst": {}}


def req(data: str, models: dict[str, Any], **fields: Any) -> bytes:
    return S.v0_request(data, models, **fields)


def names(scores: list[dict[str, Any]]) -> list[str]:
    return [s["name"] for s in scores]


# --- E0100 / E0101 --------------------------------------------------------------------------------------


def test_not_json_is_e0100(ask: Asker) -> None:
    """A frame that is not JSON gets E0100 and no payload id."""
    assert ask(b"{nope") == {"error": "The WebSocket payload must be a valid JSON object.", "code": "E0100"}


def bad(models: Any = None, **fields: Any) -> dict[str, Any]:
    """A request with data "a" and ``models`` (default face) plus ``fields``."""
    return {"data": "YQ==", "models": {"face": {}} if models is None else models, **fields}


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (bad(payloadId="x"), "payloadId: extra inputs are not permitted"),
        ({"models": {"face": {}}}, "data: field required"),
        ({"data": "YQ=="}, "models: field required"),
        ({"data": 5, "models": {"face": {}}}, "data: input should be a valid string"),
        (bad([]), "models: input should be an object"),
        (bad({}), "models: at least one model is required"),
        (bad({"ner": {}}), "models.ner: extra inputs are not permitted"),
        (bad({"face": 1}), "models.face: input should be an object"),
        (bad({"prosody": {"granularity": "word"}}), "models.prosody.granularity: extra"),
        (bad({"face": {"fpsPred": 3}}), "models.face.fpsPred: extra inputs"),
        (bad({"face": {"fps_pred": 0}}), "models.face.fps_pred: input should be a number"),
        (bad({"face": {"prob_threshold": 2}}), "prob_threshold: input should be between"),
        (bad({"face": {"identify_faces": "yes"}}), "identify_faces: input should be a valid"),
        (bad({"face": {"facs": True}}), "models.face.facs: input should be an object"),
        (bad({"face": {"facs": {"x": 1}}}), "models.face.facs.x: extra"),
        (bad({"language": {"granularity": "page"}}), "granularity: input should be one of"),
        (bad({"language": {"sentiment": []}}), "sentiment: input should be an object"),
        (bad(raw_text="true"), "raw_text: input should be a valid boolean"),
        (bad(stream_window_ms=499), "stream_window_ms: input should be between 500 and 10000"),
        (bad(stream_window_ms=10000.5), "stream_window_ms: input should be between"),
        (bad(stream_window_ms="600"), "stream_window_ms: input should be a number"),
        (bad(stream_window_ms=True), "stream_window_ms: input should be a number"),
        (bad(payload_id=7), "payload_id: input should be a valid string"),
        ([1, 2], "the payload must be a JSON object"),
    ],
)
def test_bad_fields_are_e0101(ask: Asker, frame: Any, problem: str) -> None:
    """Unknown, missing or wrongly typed fields (snake_case only) are E0101 naming the field."""
    reply = ask(frame)
    assert set(reply) == {"error", "code"}
    assert reply["code"] == "E0101"
    assert problem in reply["error"]


def test_e0101_lists_every_problem_and_echoes_payload_id(ask: Asker) -> None:
    """All problems are reported at once; a valid payload_id is echoed."""
    reply = ask({"payload_id": "p1", "models": {"face": {"x": 1}}, "extra": 1})
    assert reply == {
        "error": "Invalid request: extra: extra inputs are not permitted; data: field required;"
        " models.face.x: extra inputs are not permitted.",
        "code": "E0101",
        "payload_id": "p1",
    }


@pytest.mark.parametrize("window", [500, 500.0, 2500.5, 10000])
def test_stream_window_ms_in_range_is_accepted_as_float(window: float) -> None:
    """500 to 10000 inclusive, integer or float."""
    parsed = parse_request(req(S.b64(S.wav(1)), AUDIO, stream_window_ms=window))
    assert getattr(parsed, "stream_window_ms", None) == float(window)


def test_null_optional_fields_count_as_absent(ask: Asker) -> None:
    """null for payload_id, flags, options or a model means "not given"."""
    frame = {
        "data": S.b64(S.png()),
        "models": {"face": {"fps_pred": None, "facs": None}, "language": None},
        "payload_id": None,
        "reset_stream": None,
        "stream_window_ms": None,
    }
    reply = ask(frame)
    assert list(reply) == ["face"]


# --- media errors ----------------------------------------------------------------------------------------


def test_bad_base64_is_e0201(ask: Asker) -> None:
    assert ask(req("not base64!", {"face": {}}, payload_id="p")) == {
        "error": "Media could not be decoded as a base64 encoded string.",
        "code": "E0201",
        "payload_id": "p",
    }


def test_unknown_media_is_e0200(ask: Asker) -> None:
    reply = ask(req(S.b64(b"\x00\x01binary"), {"face": {}}, payload_id="p"))
    assert reply == {
        "error": "Media could not be parsed into a known file format: unknown binary data.",
        "code": "E0200",
        "payload_id": "p",
    }


@pytest.mark.parametrize(
    ("data", "raw_text", "models", "detected"),
    [
        (S.b64(S.wav(1)), False, {"face": {}}, "audio (wav)"),
        (S.b64(S.wav(1)), False, {"language": {}, "prosody": {}}, "audio (wav)"),
        (S.b64(S.png()), False, {"prosody": {}}, "image (png)"),
        ("hello", True, {"face": {}}, "text (text)"),
        (S.b64(b"hello"), False, {"burst": {}}, "text (text)"),
        (S.b64(S.facemesh(1)), False, {"face": {}}, "facemesh (facemesh)"),
        (S.b64(S.mp4(1, video=True)), False, {"language": {}}, "video (mp4)"),
    ],
)
def test_model_incompatible_with_media_is_e0102(
    ask: Asker, data: str, raw_text: bool, models: dict[str, Any], detected: str
) -> None:
    """Each model runs only on its media kinds, sniffed from the bytes."""
    reply = ask(req(data, models, raw_text=raw_text, payload_id="p"))
    assert reply["code"] == "E0102" and reply["payload_id"] == "p"
    assert reply["error"].endswith(f"detected {detected}.")


@pytest.mark.parametrize(
    "data", [S.wav(0.0), S.mp4(1, video=True, audio=False), S.webm(1, video=True, audio=False)]
)
def test_audio_models_without_audio_are_e0202(ask: Asker, data: bytes) -> None:
    assert ask(req(S.b64(data), {"prosody": {}}, payload_id="p")) == {
        "error": "No audio signal could be inferred from the media provided.",
        "code": "E0202",
        "payload_id": "p",
    }


def test_audio_over_5000_ms_is_e0203_stating_limit_and_length(ask: Asker) -> None:
    assert ask(req(S.b64(S.wav(5.25)), AUDIO, payload_id="p")) == {
        "error": "Audio is too long: the streaming limit is 5000 ms, received 5250 ms. Split it into shorter"
        " payloads.",
        "code": "E0203",
        "payload_id": "p",
    }
    assert "received 6000 ms" in ask(req(S.b64(S.webm(6)), AUDIO))["error"]
    assert ask(req(S.b64(S.wav(5.0)), AUDIO))["prosody"]["predictions"]  # exactly 5000 ms is fine


def test_video_over_5000_ms_is_e0204(ask: Asker) -> None:
    assert ask(req(S.b64(S.mp4(7.5, video=True)), {"face": {}}, payload_id="p")) == {
        "error": "Video is too long: the streaming limit is 5000 ms, received 7500 ms. Send frames as images"
        " instead.",
        "code": "E0204",
        "payload_id": "p",
    }


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (S.jpeg_claiming(3001, 3000), "3001x3000"),
        (S.png_claiming(3000, 3001), "3000x3001"),
        (S.jpeg_claiming(8000, 10), "8000x10"),
    ],
)
def test_image_over_3000_px_is_e0205(ask: Asker, data: bytes, size: str) -> None:
    assert ask(req(S.b64(data), {"face": {}}, payload_id="p")) == {
        "error": f"Image is too large: streaming supports images up to 3000x3000 px, received {size} px.",
        "code": "E0205",
        "payload_id": "p",
    }


def test_text_over_10000_characters_is_e0206(ask: Asker) -> None:
    assert ask(req("é" * 10_001, {"language": {}}, raw_text=True, payload_id="p")) == {
        "error": "Text is too long: the streaming limit is 10000 characters, received 10001.",
        "code": "E0206",
        "payload_id": "p",
    }
    assert "language" in ask(req("é" * 10_000, {"language": {"granularity": "passage"}}, raw_text=True))


def test_facemesh_over_10_faces_is_e0207(ask: Asker) -> None:
    assert ask(req(S.b64(S.facemesh(11)), {"facemesh": {}}, payload_id="p")) == {
        "error": "Too many facemeshes: the streaming limit is 10 faces, received 11.",
        "code": "E0207",
        "payload_id": "p",
    }


def test_out_of_credits_is_e0300_for_payloads_only(ask: Asker) -> None:
    """E0300 for every payload, valid or not in its media; a bare reset is still answered."""
    expected = {
        "error": "Out of credits: add credits to your account to continue using the API.",
        "code": "E0300",
        "payload_id": "p",
    }
    assert ask(req(S.b64(S.png()), {"face": {}}, payload_id="p"), out_of_credits=True) == expected
    assert ask(req("!!", {"face": {}}, payload_id="p"), out_of_credits=True) == expected
    assert ask(b'{"reset_stream": true}', out_of_credits=True) == {}
    assert ask(b"{", out_of_credits=True)["code"] == "E0100"


# --- shapes ---------------------------------------------------------------------------------------------


def test_face_prediction_shape(ask: Asker) -> None:
    """A still image: frame 0, time null, bbox inside the picture, prob, face_id, 48 emotions."""
    reply = ask(req(S.b64(S.png(200, 100)), {"face": {}}, payload_id="img"))
    assert list(reply) == ["payload_id", "face"]
    (face,) = reply["face"]["predictions"]
    assert list(face) == ["frame", "time", "bbox", "prob", "face_id", "emotions", "facs", "descriptions"]
    assert (face["frame"], face["time"], face["face_id"], face["facs"], face["descriptions"]) == (
        0,
        None,
        "unknown",
        None,
        None,
    )
    box = face["bbox"]
    assert list(box) == ["x", "y", "w", "h"]
    assert box["x"] >= 0 and box["x"] + box["w"] <= 200 and box["y"] >= 0 and box["y"] + box["h"] <= 100
    assert 0.99 <= face["prob"] < 0.9999
    assert sorted(names(face["emotions"])) == sorted(EMOTIONS)
    assert names(face["emotions"]) != list(EMOTIONS)


def test_face_facs_descriptions_and_identities(ask: Asker) -> None:
    """facs {} and descriptions {} add their full label sets; identify_faces numbers faces per connection."""
    models = {"face": {"facs": {}, "descriptions": {}, "identify_faces": True}}
    first = ask(req(S.b64(S.png(seed=1)), models))["face"]["predictions"][0]
    assert sorted(names(first["facs"])) == sorted(FACS) and len(FACS) == 36
    assert sorted(names(first["descriptions"])) == sorted(DESCRIPTIONS) and len(DESCRIPTIONS) == 27
    assert first["face_id"] == "face_0"
    assert ask(req(S.b64(S.png(seed=2)), models))["face"]["predictions"][0]["face_id"] == "face_1"
    assert ask(req(S.b64(S.png(seed=1)), models))["face"]["predictions"][0]["face_id"] == "face_0"


def test_face_thresholds_filter_faces(ask: Asker) -> None:
    """A face under prob_threshold or min_face_size is not reported: W0103."""
    data = S.b64(S.png(64, 64))
    nothing = {"payload_id": "p", "face": {"warning": "No faces detected.", "code": "W0103"}}
    assert ask(req(data, {"face": {"prob_threshold": 0.99999}}, payload_id="p")) == nothing
    assert ask(req(data, {"face": {"min_face_size": 60}}, payload_id="p")) == nothing
    assert ask(req(data, {"face": {"prob_threshold": 0.5, "min_face_size": 10}}))["face"]["predictions"]


def test_uniform_image_has_no_face_w0103(ask: Asker) -> None:
    assert ask(req(S.b64(S.jpeg(uniform=True)), {"face": {}}, payload_id="p", job_details=True)) == {
        "payload_id": "p",
        "face": {"warning": "No faces detected.", "code": "W0103"},
        "job_details": {"job_id": "0" * 32},
    }
    assert ask.last is not None and (ask.last.kind, ask.last.code) == ("warning", "W0103")


def test_video_faces_are_sampled_at_fps_pred(ask: Asker) -> None:
    """A 2 s video at fps_pred 2: frames at 0, 0.5, 1.0, 1.5 s, numbered at 30 fps."""
    reply = ask(req(S.b64(S.mp4(2.0, video=True)), {"face": {"fps_pred": 2}, "prosody": {}}))
    faces = reply["face"]["predictions"]
    assert [(f["frame"], f["time"]) for f in faces] == [(0, 0.0), (15, 0.5), (30, 1.0), (45, 1.5)]
    assert reply["prosody"]["predictions"][0]["time"] == {"begin": 0.0, "end": 2.0}


def test_prosody_and_burst_shapes(ask: Asker) -> None:
    reply = ask(req(S.b64(S.wav(1.5)), AUDIO, payload_id="a"))
    assert list(reply) == ["payload_id", "prosody", "burst"]
    for model in ("prosody", "burst"):
        (pred,) = reply[model]["predictions"]
        assert list(pred) == ["time", "emotions"]
        assert pred["time"] == {"begin": 0.0, "end": 1.5}
        assert sorted(names(pred["emotions"])) == sorted(EMOTIONS)
    assert reply["prosody"] != reply["burst"]


def test_silence_has_no_burst_w0101_but_prosody(ask: Asker) -> None:
    reply = ask(req(S.b64(S.wav(1.0, amplitude=0)), AUDIO, payload_id="s"))
    assert reply["burst"] == {"warning": "No vocal bursts detected.", "code": "W0101"}
    assert reply["prosody"]["predictions"][0]["time"] == {"begin": 0.0, "end": 1.0}
    assert ask.last is not None and (ask.last.kind, ask.last.code) == ("predictions", "W0101")


def test_top_level_warning_form(ask: Asker) -> None:
    """With top_level_warnings, a reply where every model found nothing is one top-level warning."""
    frame = req(S.b64(S.wav(1.0, amplitude=0)), {"burst": {}}, payload_id="s")
    assert ask(frame, top_level_warnings=True) == {
        "warning": "No vocal bursts detected.",
        "code": "W0101",
        "payload_id": "s",
    }


@pytest.mark.parametrize(
    ("granularity", "units"),
    [
        (
            "word",
            [
                ("Hi", 2, 4),
                ("there.", 5, 11),
                ("How", 13, 16),
                ("are", 17, 20),
                ("you?", 21, 25),
                ("Fine", 27, 31),
            ],
        ),
        ("sentence", [("Hi there.", 2, 11), ("How are you?", 13, 25), ("Fine", 27, 31)]),
        ("utterance", [("Hi there.  How are you?", 2, 25), ("Fine", 27, 31)]),
        ("passage", [("Hi there.  How are you?\n\nFine", 2, 31)]),
    ],
)
def test_language_units_and_positions(
    ask: Asker, granularity: str, units: list[tuple[str, int, int]]
) -> None:
    """Character positions, end exclusive, leading and trailing space excluded."""
    text = "  Hi there.  How are you?\n\nFine\n"
    reply = ask(req(text, {"language": {"granularity": granularity}}, raw_text=True))
    preds = reply["language"]["predictions"]
    assert [(p["text"], p["position"]["begin"], p["position"]["end"]) for p in preds] == units
    assert all(text[p["position"]["begin"] : p["position"]["end"]] == p["text"] for p in preds)
    assert list(preds[0]) == ["text", "position", "emotions", "sentiment", "toxicity"]
    assert sorted(names(preds[0]["emotions"])) == sorted(LANGUAGE_EMOTIONS) and len(LANGUAGE_EMOTIONS) == 53


def test_language_sentiment_and_toxicity(ask: Asker) -> None:
    models = {"language": {"sentiment": {}, "toxicity": {}}}
    (pred,) = ask(req("wonderful", models, raw_text=True))["language"]["predictions"]
    assert sorted(names(pred["sentiment"])) == list(SENTIMENT) == [str(n) for n in range(1, 10)]
    assert sorted(names(pred["toxicity"])) == sorted(TOXICITY)


def test_language_on_base64_text_and_empty_text(ask: Asker) -> None:
    """Text may come base64-encoded too; empty text has no units."""
    assert ask(req(S.b64(b"one two"), {"language": {}}))["language"]["predictions"][1]["text"] == "two"
    assert ask(req("   ", {"language": {}}, raw_text=True)) == {"language": {"predictions": []}}


def test_facemesh_shape_and_w0102(ask: Asker) -> None:
    preds = ask(req(S.b64(S.facemesh(3)), {"facemesh": {}}))["facemesh"]["predictions"]
    assert len(preds) == 3 and all(list(p) == ["emotions"] for p in preds)
    assert ask(req(S.b64(b"[]"), {"facemesh": {}}, payload_id="f")) == {
        "payload_id": "f",
        "facemesh": {"warning": "No facemeshes detected.", "code": "W0102"},
    }


def test_scores_are_deterministic_and_shuffled_per_prediction() -> None:
    """Same payload, same reply on another connection; label order differs between predictions."""
    frame = req(S.b64(S.png()), {"face": {}}, payload_id="x")
    one = Session(Engine(), "a" * 32).handle(frame).body
    two = Session(Engine(), "b" * 32).handle(frame).body
    assert one == two
    words = orjson.loads(Session(Engine(), "c" * 32).handle(req("a b", {"language": {}}, raw_text=True)).body)
    first, second = words["language"]["predictions"]
    assert names(first["emotions"]) != names(second["emotions"])


def test_job_details_and_bare_reset(ask: Asker) -> None:
    """job_details adds the connection's job id; reset_stream alone is answered."""
    reply = ask(req("x", {"language": {}}, raw_text=True, job_details=True, payload_id="j"))
    assert reply["job_details"] == {"job_id": "0" * 32}
    assert ask({"reset_stream": True}) == {}
    assert ask({"reset_stream": True, "payload_id": "r", "job_details": True}) == {
        "payload_id": "r",
        "job_details": {"job_id": "0" * 32},
    }
    assert ask.last is not None and (ask.last.kind, ask.last.reset_stream) == ("reset", True)


def test_bare_job_details_gets_the_job_id(ask: Asker) -> None:
    """``{"job_details": true}`` alone (with or without a payload id) is answered with the job id, not E0101,
    and leaves the audio window alone."""
    assert ask({"job_details": True}) == {"job_details": {"job_id": "0" * 32}}
    assert ask.last is not None and (ask.last.kind, ask.last.reset_stream) == ("job_details", False)
    assert ask({"job_details": True, "payload_id": "q"}) == {
        "payload_id": "q",
        "job_details": {"job_id": "0" * 32},
    }
    assert ask({"job_details": False})["code"] == "E0101"


# --- the audio window -----------------------------------------------------------------------------------


def prosody_ranges(reply: dict[str, Any]) -> list[tuple[float, float]]:
    return [(p["time"]["begin"], p["time"]["end"]) for p in reply["prosody"]["predictions"]]


def test_window_prepends_earlier_audio(ask: Asker) -> None:
    """Earlier audio on the connection is analysed with the current payload, within stream_window_ms."""
    ask(req(S.b64(S.wav(1.0, seed=1)), AUDIO, payload_id="a"))
    ask(req(S.b64(S.wav(2.0, seed=2)), AUDIO, payload_id="b"))
    reply = ask(req(S.b64(S.wav(1.5, seed=3)), AUDIO, payload_id="c"))
    assert prosody_ranges(reply) == [(0.0, 1.0), (1.0, 3.0), (3.0, 4.5)]
    assert ask.last is not None and ask.last.window_payload_ids == ("a", "b")
    # the earlier payloads keep their own scores in the window
    a_alone = Session(Engine(), "x" * 32).handle(req(S.b64(S.wav(1.0, seed=1)), AUDIO))
    assert (
        orjson.loads(a_alone.body)["prosody"]["predictions"][0]["emotions"]
        == reply["prosody"]["predictions"][0]["emotions"]
    )


def test_window_is_cut_to_stream_window_ms(ask: Asker) -> None:
    """Only the most recent earlier audio that fits: 3000 - 1500 leaves 1500 ms of b's 2000."""
    ask(req(S.b64(S.wav(1.0)), AUDIO, payload_id="a"))
    ask(req(S.b64(S.wav(2.0, seed=2)), AUDIO, payload_id="b"))
    reply = ask(req(S.b64(S.wav(1.5, seed=3)), AUDIO, payload_id="c", stream_window_ms=3000))
    assert prosody_ranges(reply) == [(0.0, 1.5), (1.5, 3.0)]
    assert ask.last is not None and ask.last.window_payload_ids == ("b",)


def test_window_default_is_5000_ms(ask: Asker) -> None:
    for i in range(4):
        ask(req(S.b64(S.wav(2.0, seed=i)), AUDIO, payload_id=f"p{i}"))
    assert ask.last is not None and ask.last.window_payload_ids == ("p1", "p2")
    reply = ask(req(S.b64(S.wav(1.0, seed=9)), AUDIO, payload_id="last"))
    assert prosody_ranges(reply) == [(0.0, 2.0), (2.0, 4.0), (4.0, 5.0)]


def test_window_keeps_up_to_10_s(ask: Asker) -> None:
    for i in range(8):
        ask(req(S.b64(S.wav(2.0, seed=i)), AUDIO, payload_id=f"p{i}"))
    ask(req(S.b64(S.wav(0.5, seed=9)), AUDIO, payload_id="last", stream_window_ms=10000))
    assert ask.last is not None and ask.last.window_payload_ids == ("p3", "p4", "p5", "p6", "p7")


def test_reset_stream_clears_the_window(ask: Asker) -> None:
    ask(req(S.b64(S.wav(1.0)), AUDIO, payload_id="a"))
    reply = ask(req(S.b64(S.wav(1.0, seed=1)), AUDIO, payload_id="b", reset_stream=True))
    assert prosody_ranges(reply) == [(0.0, 1.0)]
    assert ask.last is not None and ask.last.window_payload_ids == () and ask.last.reset_stream
    ask({"reset_stream": True})
    reply = ask(req(S.b64(S.wav(1.0, seed=2)), AUDIO, payload_id="c"))
    assert prosody_ranges(reply) == [(0.0, 1.0)]


def test_burst_in_the_window_reports_voiced_payloads_only(ask: Asker) -> None:
    """A silent payload after a loud one still shows the loud one's burst, at its window position."""
    ask(req(S.b64(S.wav(1.0)), AUDIO, payload_id="loud"))
    reply = ask(req(S.b64(S.wav(1.0, amplitude=0)), AUDIO, payload_id="quiet"))
    assert [p["time"] for p in reply["burst"]["predictions"]] == [{"begin": 0.0, "end": 1.0}]
    assert prosody_ranges(reply) == [(0.0, 1.0), (1.0, 2.0)]


def test_errors_and_other_media_leave_the_window_alone(ask: Asker) -> None:
    ask(req(S.b64(S.wav(1.0)), AUDIO, payload_id="a"))
    ask(req(S.b64(S.wav(6.0)), AUDIO, payload_id="too-long"))
    ask(req(S.b64(S.png()), {"face": {}}, payload_id="img"))
    ask(req(S.b64(S.wav(1.0, seed=1)), AUDIO, payload_id="b"))
    assert ask.last is not None and ask.last.window_payload_ids == ("a",)
    assert ask.session.window_payload_ids == ("a", "b")


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
FIELD = st.sampled_from(
    ["data", "models", "stream_window_ms", "reset_stream", "raw_text", "job_details", "payload_id", "other"]
)
MODELS = st.dictionaries(st.sampled_from(["face", "language", "prosody", "burst", "facemesh", "ner"]), JSON)


@given(st.binary(max_size=64))
def test_any_bytes_get_exactly_one_reply(frame: bytes) -> None:
    """Whatever arrives, the session answers with one well-formed reply and never raises."""
    reply = Session(Engine(), "0" * 32).handle(frame)
    assert reply.kind in {"predictions", "warning", "error", "reset"}
    assert isinstance(orjson.loads(reply.body), dict)


@settings(max_examples=60)
@given(st.dictionaries(FIELD, JSON | MODELS, max_size=6))
def test_any_request_object_gets_a_coded_reply(obj: dict[str, Any]) -> None:
    """Arbitrary request objects: errors carry a code, and a string payload_id is echoed when valid."""
    reply = Session(Engine(), "0" * 32).handle(orjson.dumps(obj))
    body = orjson.loads(reply.body)
    if reply.kind == "error":
        assert body["code"].startswith("E0") and body["error"]
    if isinstance(obj.get("payload_id"), str) and "payload_id" in body:
        assert body["payload_id"] == obj["payload_id"]
