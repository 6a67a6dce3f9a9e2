"""v1 speech detection, utterances and measurements, pacing and the session's message rules (pure)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bridge.tools.emulator.v1.audio import (
    AudioSession,
    AudioSessionSettings,
    CloseReason,
    SpeechRules,
    SpeechTracker,
    TokenBucket,
)
from bridge.tools.emulator.v1.testing import silence, tone
from bridge.tools.emulator.v1.vocabulary import Vocabulary, VocabularyError, VocabularyKind


def run(
    audio: bytes, frame: int = 3200, timer: int = 3000, rules: SpeechRules | None = None
) -> list[dict[str, Any]]:
    tracker = SpeechTracker(timer, rules or SpeechRules(), Vocabulary())
    out: list[dict[str, Any]] = []
    for i in range(0, len(audio), frame):
        out += tracker.feed(audio[i : i + frame])
    return out + tracker.finish()


def spans(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(m["type"], m.get("audio_start_ms"), m.get("audio_end_ms"), m.get("trigger")) for m in messages]


def test_silence_is_never_speech_and_a_quiet_hum_under_the_threshold_neither() -> None:
    assert run(silence(5000)) == []
    assert run(tone(5000, amplitude=300)) == []  # RMS 212 < 327.68 (−40 dBFS)
    assert spans(run(tone(500, amplitude=500))) == [  # RMS 354: speech
        ("utterance.start", 0, None, None),
        ("measurement.result", 0, 500, "speech_ended"),
        ("utterance.end", 0, 500, None),
    ]


def test_the_hangover_joins_short_pauses_and_ends_on_long_ones() -> None:
    joined = run(tone(1000) + silence(480) + tone(1000, start_ms=1480))
    assert spans(joined) == [
        ("utterance.start", 0, None, None),
        ("measurement.result", 0, 2480, "speech_ended"),
        ("utterance.end", 0, 2480, None),
    ]
    split = run(tone(1000) + silence(500) + tone(1000, start_ms=1500))
    assert [m["type"] for m in split] == ["utterance.start", "measurement.result", "utterance.end"] * 2
    assert spans(split)[3] == ("utterance.start", 1500, None, None)


def test_interval_counts_speech_time_and_windows_keep_the_last_ten_seconds() -> None:
    # pauses inside the utterance (under the hangover) do not count as speech time
    audio = tone(2000) + silence(400) + tone(1000, start_ms=2400)
    assert [(m["audio_start_ms"], m["audio_end_ms"]) for m in run(audio) if "trigger" in m] == [(0, 3400)]
    long = [
        (m["audio_start_ms"], m["audio_end_ms"], m["trigger"]) for m in run(tone(25_000)) if "trigger" in m
    ]
    assert long == [
        (0, 3000, "interval"),
        (0, 6000, "interval"),
        (0, 9000, "interval"),
        (2000, 12000, "interval"),
        (5000, 15000, "interval"),
        (8000, 18000, "interval"),
        (11000, 21000, "interval"),
        (14000, 24000, "interval"),
        (15000, 25000, "speech_ended"),
    ]


@pytest.mark.parametrize("frame", [34, 641, 3200, 320_000])
def test_any_cut_points_give_the_same_messages(frame: int) -> None:
    """The server joins frames: results do not depend on where the audio was cut (also after the buffer
    of a long session is trimmed)."""
    audio = silence(700) + tone(23_000) + silence(2000) + tone(1200)
    assert run(audio, frame=frame) == run(audio, frame=len(audio))


def test_scores_are_lowercase_four_decimals_sorted_and_floored() -> None:
    results = [
        m for m in run(tone(3000) + silence(1000) + tone(4000, hz=300, start_ms=4000)) if "trigger" in m
    ]
    assert len(results) == 3
    for m in results:
        for key, floor in (("expressions", 0.5), ("voice_attributes", 0.725)):
            probs = [s["probability"] for s in m[key]]
            assert probs == sorted(probs, reverse=True) and all(floor <= p <= 1 for p in probs)
            assert all(round(p, 4) == p for p in probs)
            assert all(s["name"] == s["name"].lower() for s in m[key])
    assert results[0]["expressions"] != results[2]["expressions"]


def test_vocabulary_extends_without_changing_other_scores() -> None:
    vocab = Vocabulary()
    tracker = SpeechTracker(3000, SpeechRules(), vocab)
    before = tracker.feed(tone(3000))[1]
    vocab.add({"audio_expressions": ["brand-new feeling"], "voice_attributes": ["x"]})
    assert vocab.names(VocabularyKind.AUDIO_EXPRESSIONS)[-1] == "brand-new feeling"
    after = SpeechTracker(3000, SpeechRules(), vocab).feed(tone(3000))[1]
    old = {s["name"] for s in before["expressions"]}
    assert [s for s in after["expressions"] if s["name"] in old] == before["expressions"]
    with pytest.raises(
        VocabularyError, match=r"nope: unknown vocabulary \(one of .*\); audio_expressions: 'Caps' is not"
    ):
        vocab.add({"nope": ["a"], "audio_expressions": ["Caps"]})


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=1000.0, burst=1000.0, now=0.0)
    assert [bucket.take(100, 0.0) for _ in range(11)] == [True] * 10 + [False]
    assert bucket.take(100, 0.1) and not bucket.take(100, 0.1)
    big = TokenBucket(rate=1000.0, burst=1000.0, now=0.0)
    assert big.take(5000, 0.0)  # a full bucket lets a frame longer than the burst through, into debt
    assert not big.take(100, 4.0) and big.take(100, 4.2)


def session(**settings: Any) -> AudioSession:
    return AudioSession("s", AudioSessionSettings(**settings), Vocabulary(), now=0.0)


def test_session_close_reasons_and_shapes() -> None:
    s = session()
    s.on_binary(tone(1000), 0.0)
    outcome = s.close(CloseReason.CLIENT_REQUEST)
    assert [m["type"] for m in outcome.messages] == ["measurement.result", "utterance.end", "session.closed"]
    assert outcome.close_code == 1000
    shut = session()
    shut.on_binary(tone(1000), 0.0)
    outcome = shut.close(CloseReason.SERVER_SHUTDOWN, 1012)
    assert outcome.messages == [
        {
            "type": "session.closed",
            "session_id": "s",
            "reason": "server_shutdown",
            "received": {"audio_duration_ms": 1000, "frames": 1},
            "produced": {"utterances": 1, "measurements": 0},
        }
    ]


def test_unknown_fields_in_session_update_are_config_invalid() -> None:
    outcome = session().on_text(orjson.dumps({"type": "session.update", "extra": 1, "audio": {"rate": 1}}))
    assert (
        outcome.messages[0]["message"]
        == "Invalid configuration: extra: unknown field; audio.rate: unknown field."
    )
    assert outcome.close_code == 1008


def test_a_text_message_over_one_mib_ends_the_session() -> None:
    outcome = session().on_text(b'{"type": "session.update", "x": "' + b"a" * (1 << 20) + b'"}')
    assert outcome.messages[0]["code"] == "message_too_large" and outcome.close_code == 1008
