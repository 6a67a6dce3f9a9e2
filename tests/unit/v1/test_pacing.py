"""The v1 pacer: one heap for all streams, real-time audio frames, rate_limited resends, video at <= 3 fps."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.upstream.v1.pacing import (
    BYTES_PER_SECOND,
    AudioFrame,
    Pacer,
    PacingSettings,
    StreamKind,
    VideoSlot,
)


def audio_frames(items: list[AudioFrame[str] | VideoSlot[str]]) -> list[AudioFrame[str]]:
    out = [f for f in items if isinstance(f, AudioFrame)]
    assert len(out) == len(items)
    return out


def pcm(n: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed) % 256 for i in range(n))


def test_one_second_of_audio_goes_as_ten_frames_at_real_time() -> None:
    pacer: Pacer[str] = Pacer()
    data = pcm(BYTES_PER_SECOND)
    pacer.add_audio("a", data, now=0.0)
    sent: list[tuple[float, AudioFrame[str]]] = []
    now = 0.0
    while (wake := pacer.next_wakeup()) is not None:
        now = wake
        sent.extend((now, f) for f in audio_frames(pacer.due(now)))
    assert [len(f.data) for _, f in sent] == [3200] * 10
    assert b"".join(f.data for _, f in sent) == data
    assert [f.offset for _, f in sent] == [i * 3200 for i in range(10)]
    # The first frame at once (the lead), then one frame per 100 ms.
    assert [round(t, 6) for t, _ in sent] == [round(0.1 * i, 6) for i in range(10)]
    assert all(f.lag_s == 0 for _, f in sent)


def test_due_returns_nothing_early_and_reports_lateness() -> None:
    pacer: Pacer[str] = Pacer()
    pacer.add_audio("a", pcm(6400), now=0.0)
    assert len(pacer.due(0.0)) == 1
    assert pacer.next_wakeup() == pytest.approx(0.1)
    assert pacer.due(0.09) == []
    [late] = audio_frames(pacer.due(0.13))
    assert late.lag_s == pytest.approx(0.03)
    assert pacer.next_wakeup() is None


def test_frames_are_cut_across_records_on_any_sample_boundary() -> None:
    """Chunks of 1,002 bytes are joined into 3,200-byte frames; the tail goes as a shorter frame."""
    pacer: Pacer[str] = Pacer()
    chunks = [pcm(1002, seed=i) for i in range(7)]
    for c in chunks:
        pacer.add_audio("a", c, now=0.0)
    sizes: list[int] = []
    out = b""
    for t in range(10):
        for f in audio_frames(pacer.due(t * 0.1)):
            sizes.append(len(f.data))
            out += f.data
    assert sizes == [3200, 3200, 614]
    assert out == b"".join(chunks)


def test_odd_length_audio_is_refused() -> None:
    with pytest.raises(ValueError, match="even"):
        Pacer[str]().add_audio("a", b"\x00", 0.0)


def test_many_streams_share_one_heap_and_interleave_by_due_time() -> None:
    pacer: Pacer[str] = Pacer()
    for i, name in enumerate("abcd"):
        pacer.add_audio(name, pcm(9600), now=i * 0.025)
    seen: list[tuple[float, str]] = []
    while (wake := pacer.next_wakeup()) is not None:
        seen.extend((wake, f.stream) for f in audio_frames(pacer.due(wake)))
    assert [s for _, s in seen] == list("abcd" * 3)
    assert [t for t, _ in seen] == sorted(t for t, _ in seen)
    assert len(pacer) == 4


def test_idle_time_is_not_banked() -> None:
    """A stream starved for 5 s then fed 1 s of audio sends it at real time, not as a burst."""
    pacer: Pacer[str] = Pacer()
    pacer.add_audio("a", pcm(3200), now=0.0)
    assert len(pacer.due(0.0)) == 1
    pacer.add_audio("a", pcm(BYTES_PER_SECOND), now=5.0)
    times = []
    while (wake := pacer.next_wakeup()) is not None:
        times.extend(wake for _ in pacer.due(wake))
    assert times[0] == 5.0
    assert times[-1] == pytest.approx(5.9)


def test_rate_limited_frame_goes_again_after_the_wait_and_nothing_else_of_the_stream_before_it() -> None:
    pacer: Pacer[str] = Pacer(PacingSettings(rate_limited_wait_s=0.25))
    data = pcm(9600)
    pacer.add_audio("a", data, now=0.0)
    [first] = audio_frames(pacer.due(0.0))
    assert pacer.rate_limited("a", 0.02)
    assert not pacer.rate_limited("a", 0.02)  # no second refusal of the same hand-out
    assert pacer.next_wakeup() == pytest.approx(0.27)
    assert pacer.due(0.26) == []
    [again] = audio_frames(pacer.due(0.27))
    assert (again.data, again.offset, again.resend) == (first.data, first.offset, True)
    rest = []
    while (wake := pacer.next_wakeup()) is not None:
        rest.extend(audio_frames(pacer.due(wake)))
    assert again.data + b"".join(f.data for f in rest) == data
    assert not any(f.resend for f in rest)


def test_rate_limited_for_an_unknown_stream_changes_nothing() -> None:
    pacer: Pacer[str] = Pacer()
    assert not pacer.rate_limited("nobody", 0.0)
    pacer.add_audio("a", pcm(100), 0.0)
    assert not pacer.rate_limited("a", 0.0)  # nothing handed out yet


def test_removed_stream_leaves_no_stale_work_even_when_added_again() -> None:
    pacer: Pacer[str] = Pacer()
    pacer.add_audio("a", pcm(32000), 0.0)
    pacer.due(0.0)
    assert pacer.remove("a") == 32000 - 3200
    assert pacer.next_wakeup() is None
    pacer.add_audio("a", pcm(3200), 10.0)
    assert [f.offset for f in audio_frames(pacer.due(10.0))] == [0]
    assert pacer.due(20.0) == []


def test_video_slots_are_at_most_three_per_second() -> None:
    pacer: Pacer[str] = Pacer()
    pacer.add_video("cam", 4, now=0.0)
    assert pacer.kind("cam") is StreamKind.VIDEO
    times = []
    while (wake := pacer.next_wakeup()) is not None:
        slots = pacer.due(wake)
        assert all(isinstance(s, VideoSlot) for s in slots)
        times.extend(wake for _ in slots)
    assert times == pytest.approx([0, 1 / 3, 2 / 3, 1])


def test_video_rate_limited_gives_the_frame_another_slot_after_the_wait() -> None:
    pacer: Pacer[str] = Pacer(PacingSettings(rate_limited_wait_s=1.0))
    pacer.add_video("cam", 1, now=0.0)
    [slot] = pacer.due(0.0)
    assert isinstance(slot, VideoSlot) and not slot.resend
    assert pacer.rate_limited("cam", 0.1)
    assert pacer.next_wakeup() == pytest.approx(1.1)
    [again] = pacer.due(1.1)
    assert isinstance(again, VideoSlot) and again.resend
    assert pacer.next_wakeup() is None


def test_a_stream_is_audio_or_video() -> None:
    pacer: Pacer[str] = Pacer()
    pacer.add_audio("a", b"", 0.0)
    with pytest.raises(ValueError, match="not both"):
        pacer.add_video("a", 1, 0.0)


def test_settings_problems() -> None:
    assert PacingSettings().problems() == []
    bad = PacingSettings(frame_bytes=3201, lead_s=0.01, rate_limited_wait_s=-1, video_fps=5)
    assert len(bad.problems()) == 4
    with pytest.raises(ValueError, match="FRAME_BYTES"):
        Pacer[str](PacingSettings(frame_bytes=0))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_stream_gets_exactly_its_bytes_in_order_never_faster_than_real_time_plus_the_lead(
    data: st.DataObject,
) -> None:
    """Random feeds at random times, late wake-ups and refused frames: per stream, the accepted bytes are
    exactly the input, in order, and no interval carries more than its length of audio plus the lead."""
    lead_s = data.draw(st.sampled_from([0.1, 0.2, 0.5]))
    frame_bytes = data.draw(st.sampled_from([3200, 1600, 2000]))
    wait_s = data.draw(st.sampled_from([0.0, 0.1, 0.3]))
    pacer: Pacer[int] = Pacer(
        PacingSettings(frame_bytes=frame_bytes, lead_s=lead_s, rate_limited_wait_s=wait_s)
    )
    capacity = lead_s * BYTES_PER_SECOND
    n_streams = data.draw(st.integers(1, 4))
    feeds = sorted(
        data.draw(
            st.lists(
                st.tuples(
                    st.floats(0, 3, allow_nan=False), st.integers(0, n_streams - 1), st.integers(1, 6000)
                ),
                min_size=1,
                max_size=20,
            )
        )
    )
    # Late wake-ups and refusals, drawn once and used in turn (few draws keep the examples small).
    jitter = data.draw(st.lists(st.sampled_from([0.0, 0.004, 0.03]), min_size=1, max_size=8))
    refusals = data.draw(st.lists(st.booleans(), min_size=1, max_size=12))
    turn = 0
    fed: dict[int, bytearray] = defaultdict(bytearray)
    accepted: dict[int, list[tuple[float, bytes]]] = defaultdict(list)
    now = 0.0
    for _ in range(10_000):
        wake = pacer.next_wakeup()
        if wake is None and not feeds:
            break
        next_feed = feeds[0][0] if feeds else math.inf
        if wake is not None and wake <= next_feed:
            turn += 1
            now = max(now, wake + jitter[turn % len(jitter)])
        else:
            now = max(now, next_feed)
        while feeds and feeds[0][0] <= now:
            _, stream, size = feeds.pop(0)
            chunk = pcm(2 * size, seed=len(fed[stream]))
            fed[stream] += chunk
            pacer.add_audio(stream, chunk, now)
        batch = audio_frames(pacer.due(now))  # type: ignore[arg-type]
        last_of: dict[int, AudioFrame[int]] = {f.stream: f for f in batch}
        for frame in batch:
            assert 0 < len(frame.data) <= frame_bytes and len(frame.data) % 2 == 0
            assert frame.lag_s == pytest.approx(max(0.0, now - frame.due))
            turn += 1
            refused = last_of[frame.stream] is frame and refusals[turn % len(refusals)] and turn % 3 == 0
            if refused:
                assert pacer.rate_limited(frame.stream, now)
            else:
                accepted[frame.stream].append((now, frame.data))
    else:
        pytest.fail("the pacer did not finish")
    for stream, chunks in fed.items():
        sent = accepted[stream]
        assert b"".join(d for _, d in sent) == bytes(chunks)
        # Any run of consecutive accepted frames i..j: bytes <= (t_j - t_i) x rate + the lead. With S the
        # running byte total, that is S_j - t_j x rate <= min over i <= j of (S_(i-1) - t_i x rate) + lead.
        before, best = 0, math.inf
        for t, chunk in sent:
            best = min(best, before - t * BYTES_PER_SECOND)
            before += len(chunk)
            assert before - t * BYTES_PER_SECOND <= best + capacity + 1e-6
