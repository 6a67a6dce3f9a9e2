"""Routing, per-stream order and settlement: driven by plain calls, no event loop."""

from __future__ import annotations

import random

from bridge.core.backoff import Backoff
from bridge.core.model import ErrorInfo, LossReason, Output, Prepared, Source, Work
from bridge.core.streams import Router
from bridge.errors import Code

LOST = ErrorInfo("CONNECTION_LOST", "dropped", "bridge", True)


def router(max_attempts: int = 3, window: int = 1) -> Router:
    return Router(
        max_attempts=max_attempts,
        retry_backoff=Backoff(0.1, 1.0),
        affinity_idle_s=30.0,
        window=window,
        rnd=random.Random(0),
    )


def work(key: bytes, offset: int, *, audio: bool = False, rejected: bool = False, partition: int = 0) -> Work:
    w = Work(
        source=Source("media", partition, offset, None),
        stream=("media", partition, key),
        key=key,
        headers=(),
        payload_id=f"media/{partition}/{offset}",
        size=1,
        consumed_at=0.0,
        prepared=None if rejected else Prepared("payload", sticky=audio),
    )
    if rejected:
        w.rejection = ErrorInfo(Code.EMPTY_VALUE, "empty", "bridge", False)
    return w


def answer(r: Router, w: Work, now: float = 0.0) -> None:
    """What the v0 adapter reports for a reply: one output covering the record, then its settlement."""
    assert r.produced(Output(w.stream, (w,), {"models": {}}))
    r.settled(w, now)


def published(r: Router) -> list[Work]:
    """The records covered by outputs handed to the producer since the last call."""
    out = [w for o in r.to_publish for w in o.records]
    r.to_publish.clear()
    return out


def ack_all(r: Router) -> list[Work]:
    """Acknowledge every output handed out (and the ones that follow), in order; return records done."""
    while r.to_publish:
        for output in list(r.to_publish):
            r.to_publish.remove(output)
            r.acked(output)
    done = list(r.done)
    r.done.clear()
    return done


def test_one_request_per_stream_and_streams_do_not_wait_for_each_other() -> None:
    """A stream's second record waits for its first; another stream goes out meanwhile."""
    r = router()
    r.lane_up(0)
    r.lane_up(1)
    a1, a2, b1 = work(b"a", 0), work(b"a", 1), work(b"b", 2)
    for w in (a1, a2, b1):
        r.admit(w, 0.0)
    sent = r.dispatch({0: 1, 1: 1}, 0.0)
    assert [d.work for d in sent] == [a1, b1]
    assert r.dispatch({0: 1}, 0.0) == []
    answer(r, a1)
    assert [d.work for d in r.dispatch({0: 1}, 0.0)] == [a2]


def test_rejection_behind_inflight_request_is_published_after_it() -> None:
    """An error outcome known at once still waits for the earlier record of its stream."""
    r = router()
    r.lane_up(0)
    first, bad = work(b"s", 0), work(b"s", 1, rejected=True)
    r.admit(first, 0.0)
    r.admit(bad, 0.0)
    assert published(r) == []
    r.dispatch({0: 1}, 0.0)
    answer(r, first)
    (out,) = r.to_publish
    assert out.records == (first,)
    r.to_publish.clear()
    r.acked(out)
    (err,) = r.to_publish
    assert err.records == (bad,) and err.error is not None and err.error.code == Code.EMPTY_VALUE


def test_a_record_is_done_only_when_settled_and_its_output_acknowledged() -> None:
    """Settlement alone does not finish a record; the broker's acknowledgement of its output does."""
    r = router()
    r.lane_up(0)
    w = work(b"s", 0)
    r.admit(w, 0.0)
    r.dispatch({0: 1}, 0.0)
    answer(r, w)
    assert r.done == []
    assert ack_all(r) == [w]


def test_failed_request_backs_off_and_retries_with_same_payload_then_gives_up() -> None:
    """Connection failures retry after a backoff, then become RETRIES_EXHAUSTED."""
    r = router(max_attempts=2)
    r.lane_up(0)
    w = work(b"s", 0)
    r.admit(w, 0.0)
    assert [d.work for d in r.dispatch({0: 1}, 0.0)] == [w]
    r.lost([w], LossReason.CONNECTION_LOST, LOST, 0.0)
    assert published(r) == []
    assert r.dispatch({0: 1}, 0.0) == []  # still backing off
    wake = r.next_wakeup()
    assert wake is not None and 0.05 <= wake <= 0.1
    assert [d.work for d in r.dispatch({0: 1}, wake)] == [w]
    r.lost([w], LossReason.CONNECTION_LOST, LOST, wake)
    (err,) = r.to_publish
    assert err.error is not None and err.error.code == Code.RETRIES_EXHAUSTED
    assert w.attempts == 2


def test_uncounted_failure_retries_at_once_without_burning_an_attempt() -> None:
    """A session closed by us sends the request again immediately, attempts unchanged."""
    r = router(max_attempts=1)
    r.lane_up(0)
    w = work(b"s", 0)
    r.admit(w, 0.0)
    r.dispatch({0: 1}, 0.0)
    r.lost([w], LossReason.CLOSED_BY_US, LOST, 0.0)
    assert [d.work for d in r.dispatch({0: 1}, 0.0)] == [w]
    assert w.attempts == 1


def test_audio_stream_keeps_affinity_and_switch_sends_reset() -> None:
    """Audio stays on its session; another stream's audio on that session resets the window."""
    r = router()
    r.lane_up(0)
    r.lane_up(1)
    a1, a2 = work(b"a", 0, audio=True), work(b"a", 1, audio=True)
    b1 = work(b"b", 2, audio=True)
    r.admit(a1, 0.0)
    (d,) = r.dispatch({0: 1}, 0.0)
    assert (d.lane, d.switched) == (0, False)
    answer(r, a1)
    r.admit(a2, 1.0)
    assert r.dispatch({1: 1}, 1.0) == []  # waits for its own session
    (d,) = r.dispatch({0: 1}, 1.0)
    assert (d.work, d.lane, d.switched) == (a2, 0, False)
    answer(r, a2, 1.0)
    r.lane_down(1)
    r.admit(b1, 2.0)
    (d,) = r.dispatch({0: 1}, 2.0)
    assert (d.work, d.lane, d.switched) == (b1, 0, True)


def test_affinity_released_when_its_session_goes_down() -> None:
    """A stream whose session died may continue on another one (its context is gone anyway)."""
    r = router()
    r.lane_up(0)
    r.lane_up(1)
    a1, a2 = work(b"a", 0, audio=True), work(b"a", 1, audio=True)
    r.admit(a1, 0.0)
    r.dispatch({0: 1}, 0.0)
    answer(r, a1)
    r.admit(a2, 0.0)
    r.lane_down(0)
    (d,) = r.dispatch({1: 1}, 0.0)
    assert (d.work, d.lane) == (a2, 1)


def test_frozen_partition_dispatches_nothing_and_drop_returns_its_work() -> None:
    """Revocation: queued work of the partition stops; drop hands back what was not done."""
    r = router()
    r.lane_up(0)
    w0, w1, other = work(b"a", 0), work(b"b", 1), work(b"c", 0, partition=1)
    for w in (w0, w1, other):
        r.admit(w, 0.0)
    (d,) = r.dispatch({0: 1}, 0.0)
    assert d.work is w0
    r.freeze([("media", 0)])
    assert r.busy([("media", 0)]) == 1
    assert r.unacknowledged([("media", 0)]) == 0  # at the upstream, nothing produced yet
    answer(r, w0)
    assert r.unacknowledged([("media", 0)]) == 1 and r.unacknowledged([("media", 1)]) == 0
    ack_all(r)
    assert r.unacknowledged([("media", 0)]) == 0
    assert [x.work for x in r.dispatch({0: 5}, 0.0)] == [other]
    assert set(r.drop([("media", 0)])) == {w1}  # w0 is done: settled and acknowledged
    assert not r.produced(Output(w1.stream, (w1,), {}))  # late news for a dropped stream is ignored


def test_window_of_several_records_settles_by_watermark_and_resends_in_order() -> None:
    """With a window (as v1 uses), several records of a stream are out at once; one output may cover
    several; a loss sends everything unsettled again in order; a watermark settles a prefix."""
    r = router(window=3)
    r.lane_up(0)
    ws = [work(b"s", i) for i in range(4)]
    for w in ws:
        r.admit(w, 0.0)
    assert [d.work for d in r.dispatch({0: 10}, 0.0)] == ws[:3]
    r.lost([ws[1], ws[2]], LossReason.CLOSED_BY_US, LOST, 0.0)
    assert r.inflight == 1
    assert [d.work for d in r.dispatch({0: 10}, 0.0)] == [ws[1], ws[2]]
    assert r.produced(Output(ws[0].stream, (ws[0], ws[1]), {"measurement": 1}))
    r.settled(ws[1], 0.0)
    assert r.done == []
    assert ack_all(r) == [ws[0], ws[1]]
    assert [d.work for d in r.dispatch({0: 10}, 0.0)] == [ws[3]]
    r.settled(ws[3], 0.0)  # silent: settled without any output
    assert r.done == [ws[2], ws[3]]
