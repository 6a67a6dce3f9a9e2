"""Deterministic scores and the prediction builders."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bridge.tools.emulator import predictions as P
from bridge.tools.emulator.labels import EMOTIONS, LANGUAGE_EMOTIONS


@given(st.binary(max_size=64))
def test_scores_cover_every_label_once_deterministically(seed: bytes) -> None:
    """Every label exactly once, same seed same list, scores within [0, 1.03]."""
    first = P.scores(seed, EMOTIONS)
    assert first == P.scores(seed, EMOTIONS)
    assert sorted(s["name"] for s in first) == sorted(EMOTIONS)
    assert all(0.0 <= s["score"] <= 1.03 for s in first)


def test_scores_are_not_in_documented_order_and_some_exceed_one() -> None:
    lists = [P.scores(bytes([i]), EMOTIONS) for i in range(200)]
    assert all([s["name"] for s in scored] != list(EMOTIONS) for scored in lists)
    assert any(s["score"] > 1.0 for scored in lists for s in scored)


@given(st.text(max_size=200), st.sampled_from(["word", "sentence", "utterance", "passage"]))
def test_language_units_point_into_the_text(text: str, granularity: str) -> None:
    """Each unit is the slice its position names, non-empty, without surrounding space, in order."""
    units = P.language_units(text, granularity)
    previous_end = 0
    for unit, begin, end in units:
        assert unit and text[begin:end] == unit == unit.strip()
        assert begin >= previous_end
        previous_end = end


def test_language_scores_depend_on_the_unit_text_only() -> None:
    a = P.language("hello world", P.LanguageOptions())
    b = P.language("world hello", P.LanguageOptions())
    assert a[0]["emotions"] == b[1]["emotions"]
    assert sorted(s["name"] for s in a[0]["emotions"]) == sorted(LANGUAGE_EMOTIONS)


def test_video_frames_every_step_numbered_at_30_fps() -> None:
    assert P.video_frames(1000, 3) == ((0, 0.0), (10, 0.333333), (20, 0.666667))
    assert P.video_frames(0, 3) == ((0, 0.0),)


def test_fragment_cache_is_bounded_and_maps_empty_to_none() -> None:
    cache = P.FragmentCache(maxsize=2)
    calls: list[int] = []

    def build() -> list[P.Json]:
        calls.append(1)
        return [{"a": 1}]

    assert cache.get("k", build) is cache.get("k", build)
    assert len(calls) == 1
    assert cache.get("empty", list) is None
    cache.get("other", build)
    assert len(cache) == 2
    cache.get("k", build)
    assert len(calls) == 3
