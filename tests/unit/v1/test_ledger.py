"""The v1 ledgers: audio spans settled by Hume's events, measurement sources, resend after a lost session;
video frames settled by their replies, in order."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.upstream.v1.ledger import (
    AudioLedger,
    FrameRef,
    RecordOutcome,
    Source,
    SourceSpan,
    VideoLedger,
)
from bridge.upstream.v1.protocol import (
    AudioMeasurement,
    AudioReceived,
    CloseReason,
    Endpoint,
    ServerError,
    SessionClosed,
    UtteranceEnd,
    UtteranceStart,
    VideoMeasurement,
    classify_error,
)


def src(offset: int, stream_offset_ms: int | None = None) -> Source:
    return Source("hume.media", 0, offset, 1_700_000_000_000 + offset, stream_offset_ms)


def ms(n: float) -> int:
    """Samples in ``n`` ms of 16 kHz audio."""
    return round(n * 16)


def measurement(start: int, end: int, mid: int = 0) -> AudioMeasurement:
    return AudioMeasurement(
        mid, 0, start, end, "interval", {"type": "measurement.result", "measurement_id": mid}
    )


def closed(reason: CloseReason, received_ms: int | None = None) -> SessionClosed:
    received = AudioReceived(received_ms, 1) if received_ms is not None else None
    return SessionClosed("s", reason, str(reason), received, None)


def three_records(ledger: AudioLedger[str], offsets: tuple[int | None, ...] = (None, None, None)) -> None:
    """Records a, b, c of 1000, 2000 and 1000 ms: spans [0, 1000), [1000, 3000), [3000, 4000)."""
    for name, offset, length, stream in zip("abc", (10, 11, 12), (1000, 2000, 1000), offsets, strict=True):
        ledger.append(name, src(offset, stream), ms(length))


def test_records_get_consecutive_spans() -> None:
    ledger: AudioLedger[str] = AudioLedger()
    assert ledger.append("a", src(1), ms(100)) == (0, 100)
    assert ledger.append_bytes("b", src(2), 3200 * 3) == (100, 400)
    assert ledger.append("c", src(3), 1) == (400, 401)  # a part of a ms counts as the ms it touches
    assert ledger.session_ms == 400 + 1 / 16
    assert ledger.unsettled_count == 3


def test_utterance_start_settles_the_silence_before_it() -> None:
    ledger: AudioLedger[str] = AudioLedger()
    three_records(ledger)
    update = ledger.on_event(UtteranceStart(0, 2999))
    assert [(s.item, s.outcome, s.awaiting) for s in update.settled] == [("a", RecordOutcome.SILENT, ())]
    assert ledger.on_event(UtteranceStart(1, 3000)).settled[0].item == "b"
    assert ledger.unsettled() == ["c"]


def test_measurement_names_its_sources_with_the_span_within_each_and_settles_up_to_its_end() -> None:
    ledger: AudioLedger[str] = AudioLedger()
    three_records(ledger)
    update = ledger.on_event(measurement(500, 3500))
    assert update.measured is not None
    assert update.measured.sources == (
        SourceSpan(src(10), 500, 1000),
        SourceSpan(src(11), 0, 2000),
        SourceSpan(src(12), 0, 500),
    )
    assert update.measured.sources[0].as_json() == {
        "topic": "hume.media",
        "partition": 0,
        "offset": 10,
        "timestamp_ms": 1_700_000_000_010,
        "begin_ms": 500,
        "end_ms": 1000,
    }
    assert update.measured.stream_ms is None
    seq = update.measured.seq
    assert [(s.item, s.outcome, s.awaiting) for s in update.settled] == [
        ("a", RecordOutcome.MEASURED, (seq,)),
        ("b", RecordOutcome.MEASURED, (seq,)),
    ]
    end = ledger.on_event(UtteranceEnd(0, 500, 4000))
    assert [(s.item, s.outcome) for s in end.settled] == [("c", RecordOutcome.MEASURED)]


def test_stream_ms_from_the_producers_offsets() -> None:
    ledger: AudioLedger[str] = AudioLedger()
    three_records(ledger, (60_000, 61_000, 63_000))
    update = ledger.on_event(measurement(500, 3500))
    assert update.measured is not None and update.measured.stream_ms == (60_500, 63_500)


def test_stream_ms_is_absent_when_a_source_lacks_the_offset() -> None:
    ledger: AudioLedger[str] = AudioLedger()
    three_records(ledger, (60_000, None, 63_000))
    update = ledger.on_event(measurement(500, 3500))
    assert update.measured is not None and update.measured.stream_ms is None


def test_a_later_window_still_names_settled_records_within_ten_seconds() -> None:
    """Windows overlap (the last 10 s of the utterance): settled records remain sources, older ones do not."""
    ledger: AudioLedger[int] = AudioLedger()
    for i in range(20):
        ledger.append(i, src(i), ms(1000))  # 20 s, one record per second
    first = ledger.on_event(measurement(0, 3000, 0))
    assert first.measured is not None and len(first.measured.sources) == 3
    later = ledger.on_event(measurement(1000, 11_000, 1))
    assert later.measured is not None
    assert [s.source.offset for s in later.measured.sources] == list(range(1, 11))
    last = ledger.on_event(measurement(9000, 19_000, 2))
    assert last.measured is not None
    assert [s.source.offset for s in last.measured.sources] == list(range(9, 19))


def test_client_close_settles_everything_received() -> None:
    ledger: AudioLedger[str] = AudioLedger()
    three_records(ledger)
    update = ledger.on_event(closed(CloseReason.CLIENT_REQUEST, received_ms=4000))
    assert [s.item for s in update.settled] == ["a", "b", "c"]
    assert ledger.unsettled_ms == 0


def test_client_close_does_not_settle_what_hume_did_not_receive() -> None:
    ledger: AudioLedger[str] = AudioLedger()
    three_records(ledger)
    update = ledger.on_event(closed(CloseReason.CLIENT_REQUEST, received_ms=3000))
    assert [s.item for s in update.settled] == ["a", "b"]
    assert ledger.unsettled() == ["c"]


def test_other_closes_settle_nothing_more() -> None:
    """After server_shutdown, idle_timeout or error, unmeasured audio gets no results: it is resent."""
    for reason in (
        CloseReason.SERVER_SHUTDOWN,
        CloseReason.IDLE_TIMEOUT,
        CloseReason.ERROR,
        CloseReason.OTHER,
    ):
        ledger: AudioLedger[str] = AudioLedger()
        three_records(ledger)
        ledger.on_event(UtteranceStart(0, 1000))
        assert ledger.on_event(closed(reason, received_ms=4000)).settled == ()
        assert ledger.unsettled() == ["b", "c"]


def test_restart_resends_unsettled_records_in_order_with_times_from_zero() -> None:
    ledger: AudioLedger[str] = AudioLedger()
    three_records(ledger)
    first = ledger.on_event(measurement(1500, 2500, 7))
    assert first.settled[0].item == "a"
    assert ledger.restart() == ["b", "c"]
    assert (ledger.session_ms, ledger.watermark_ms) == (3000, 0)
    ledger.append("d", src(13), ms(500))
    again = ledger.on_event(measurement(0, 500, 0))  # the new session's first measurement
    assert again.measured is not None
    assert again.measured.sources == (SourceSpan(src(11), 0, 500),)
    done = ledger.on_event(UtteranceStart(1, 3500))
    # b was covered by a measurement on the lost session and on this one; c by neither; d follows c.
    assert [(s.item, s.outcome) for s in (*again.settled, *done.settled)] == [
        ("b", RecordOutcome.MEASURED),
        ("c", RecordOutcome.SILENT),
        ("d", RecordOutcome.SILENT),
    ]
    # b waits for both measurements that covered it before its offset may count as done.
    assert first.measured is not None
    assert done.settled[0].awaiting == (first.measured.seq, again.measured.seq)
    assert done.settled[1].awaiting == ()


def test_fail_unsettled() -> None:
    ledger: AudioLedger[str] = AudioLedger()
    three_records(ledger)
    ledger.on_event(UtteranceStart(0, 1000))
    failed = ledger.fail_unsettled()
    assert [(s.item, s.outcome) for s in failed] == [("b", RecordOutcome.ERROR), ("c", RecordOutcome.ERROR)]
    assert ledger.unsettled() == [] and ledger.unsettled_ms == 0
    assert ledger.append("d", src(13), ms(10)) == (0, 10)


def test_events_past_the_audio_sent_cannot_settle_records_not_yet_appended() -> None:
    ledger: AudioLedger[str] = AudioLedger()
    ledger.append("a", src(1), ms(100))
    assert [s.item for s in ledger.on_event(UtteranceStart(0, 5000)).settled] == ["a"]
    ledger.append("b", src(2), ms(100))
    assert ledger.unsettled() == ["b"]
    assert ledger.watermark_ms == 100


def test_other_events_change_nothing() -> None:
    ledger: AudioLedger[str] = AudioLedger()
    three_records(ledger)
    assert ledger.on_event(object()).settled == ()
    assert (
        ledger.on_event(
            ServerError("rate_limited", "m", True, *classify_error(Endpoint.AUDIO, "rate_limited", True))
        ).settled
        == ()
    )


_events = st.lists(
    st.tuples(
        st.sampled_from(["start", "result", "end", "client_close", "other_close", "restart"]),
        st.integers(0, 400),
        st.integers(0, 400),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 80), min_size=1, max_size=15), events=_events, split=st.integers(0, 15)
)
def test_ledger_invariants(lengths: list[int], events: list[tuple[str, int, int]], split: int) -> None:
    """Whatever Hume sends: each record settles at most once, in append order, only once the watermark
    passes its end; sources lie within their records; settled + unsettled = everything appended."""
    ledger: AudioLedger[int] = AudioLedger()
    settled: list[int] = []
    length_of = {i: ms(n) for i, n in enumerate(lengths)}

    def feed(i: int) -> None:
        ledger.append(i, src(i), length_of[i])

    for i in range(min(split, len(lengths))):
        feed(i)
    for kind, a, b in events:
        t = ledger.watermark_ms
        event: Any
        if kind == "start":
            event = UtteranceStart(0, int(t) + a)
        elif kind == "result":
            event = measurement(int(t) + a, int(t) + a + b)
        elif kind == "end":
            event = UtteranceEnd(0, int(t), int(t) + a)
        elif kind == "client_close":
            event = closed(CloseReason.CLIENT_REQUEST, int(ledger.session_ms) + a - 200)
        elif kind == "other_close":
            event = closed(CloseReason.SERVER_SHUTDOWN, a)
        else:
            resent = ledger.restart()
            assert resent == sorted(set(resent)) and not set(resent) & set(settled)
            continue
        update = ledger.on_event(event)
        if update.measured is not None:
            for span in update.measured.sources:
                assert 0 <= span.begin_ms < span.end_ms <= -(-length_of[span.source.offset] // 16)
        settled.extend(s.item for s in update.settled)
        assert ledger.watermark_ms <= ledger.session_ms
    for i in range(min(split, len(lengths)), len(lengths)):
        feed(i)
    settled.extend(s.item for s in ledger.on_event(closed(CloseReason.CLIENT_REQUEST)).settled)
    assert settled == list(range(len(lengths)))
    assert ledger.unsettled() == []


# ---------------------------------------------------------------------------------------------- video


def vm(faces: int) -> VideoMeasurement:
    return VideoMeasurement(0, faces, {"type": "measurement.result", "frame_id": 0, "faces": [{}] * faces})


def verr(code: str, retryable: bool = True) -> ServerError:
    return ServerError(code, "m", retryable, *classify_error(Endpoint.VIDEO, code, retryable))


def send_all(ledger: VideoLedger[str]) -> list[FrameRef]:
    out = []
    while (frame := ledger.next_frame()) is not None:
        ledger.sent(frame)
        out.append(frame)
    return out


def test_one_reply_per_frame_in_order_settles_records() -> None:
    ledger: VideoLedger[str] = VideoLedger()
    ledger.append("img", src(1), [0])
    ledger.append("vid", src(2), [0, 333, 666])
    assert send_all(ledger) == [FrameRef(0, 0), FrameRef(1, 0), FrameRef(1, 1), FrameRef(1, 2)]
    first = ledger.on_reply(vm(1))
    assert [(r.item, r.frame, r.time_ms) for r in first.results] == [("img", 0, 0)]
    assert [(s.item, s.outcome, s.awaiting) for s in first.settled] == [("img", RecordOutcome.MEASURED, (1,))]
    assert ledger.on_reply(vm(0)).settled == ()
    assert ledger.on_reply(vm(0)).settled == ()
    last = ledger.on_reply(vm(0))
    assert [(s.item, s.outcome, s.awaiting) for s in last.settled] == [
        ("vid", RecordOutcome.SILENT, (2, 3, 4))
    ]
    assert ledger.unsettled_count == 0


def test_rate_limited_frame_is_resent_first_and_results_stay_in_frame_order() -> None:
    ledger: VideoLedger[str] = VideoLedger()
    for i, name in enumerate("abc"):
        ledger.append(name, src(i), [0])
    send_all(ledger)
    limited = ledger.on_reply(verr("rate_limited"))
    assert (limited.resend, limited.wait) == (FrameRef(0, 0), True)
    held = ledger.on_reply(vm(1))  # b's reply: held until a's is final
    assert held.results == () and held.settled == ()
    assert ledger.next_frame() == FrameRef(0, 0)
    ledger.sent(FrameRef(0, 0))
    assert ledger.on_reply(vm(1)).results == ()  # c's reply, still behind a
    done = ledger.on_reply(vm(2))  # a's, resent
    assert [r.item for r in done.results] == ["a", "b", "c"]
    assert [s.item for s in done.settled] == ["a", "b", "c"]


def test_retryable_internal_error_resends_without_waiting() -> None:
    ledger: VideoLedger[str] = VideoLedger()
    ledger.append("a", src(0), [0])
    send_all(ledger)
    update = ledger.on_reply(verr("internal_error", retryable=True))
    assert (update.resend, update.wait) == (FrameRef(0, 0), False)


def test_refused_frames_are_final_and_a_record_without_any_measurement_is_an_error() -> None:
    ledger: VideoLedger[str] = VideoLedger()
    ledger.append("bad", src(0), [0])
    ledger.append("half", src(1), [0, 500])
    send_all(ledger)
    bad = ledger.on_reply(verr("invalid_image_frame"))
    assert bad.results[0].error is not None and bad.results[0].measurement is None
    assert bad.settled[0].outcome is RecordOutcome.ERROR
    ledger.on_reply(verr("internal_error", retryable=False))
    half = ledger.on_reply(vm(2))
    assert half.settled[0].outcome is RecordOutcome.MEASURED


def test_video_restart_resends_frames_without_a_final_reply() -> None:
    ledger: VideoLedger[str] = VideoLedger()
    ledger.append("a", src(0), [0, 333])
    ledger.append("b", src(1), [0])
    send_all(ledger)
    ledger.on_reply(vm(1))
    assert ledger.restart() == ["a", "b"]
    assert ledger.in_flight == 0
    assert send_all(ledger) == [FrameRef(0, 1), FrameRef(1, 0)]
    ledger.on_reply(vm(0))
    assert [s.item for s in ledger.on_reply(vm(0)).settled] == ["b"]


def test_a_reply_with_nothing_in_flight_is_flagged() -> None:
    ledger: VideoLedger[str] = VideoLedger()
    assert ledger.on_reply(vm(1)).unexpected


def test_video_fail_unsettled() -> None:
    ledger: VideoLedger[str] = VideoLedger()
    ledger.append("a", src(0), [0])
    ledger.append("b", src(1), [0])
    send_all(ledger)
    ledger.on_reply(vm(1))
    assert [(s.item, s.outcome) for s in ledger.fail_unsettled()] == [("b", RecordOutcome.ERROR)]
    ledger.append("c", src(2), [0])
    assert ledger.next_frame() == FrameRef(2, 0)
