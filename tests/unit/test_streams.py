"""Routing and per-stream order: driven by plain calls, no event loop."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.backoff import Backoff
from bridge.core.model import ErrorInfo, Outcome, Request, Source, Usage, Work
from bridge.core.streams import Router
from bridge.errors import Code

LOST = ErrorInfo("CONNECTION_LOST", "dropped", "bridge", True)


def router(max_attempts: int = 3) -> Router:
    return Router(
        max_attempts=max_attempts,
        retry_backoff=Backoff(0.1, 1.0),
        affinity_idle_s=30.0,
        rnd=random.Random(0),
    )


def work(key: bytes, offset: int, *, audio: bool = False, rejected: bool = False, partition: int = 0) -> Work:
    request = Request({"data": "x"}, ("prosody",) if audio else ("face",), audio, False, Usage("image"))
    w = Work(
        source=Source("media", partition, offset, None),
        stream=("media", partition, key),
        key=key,
        headers=(),
        payload_id=f"media/{partition}/{offset}",
        size=1,
        consumed_at=0.0,
        request=None if rejected else request,
    )
    if rejected:
        w.outcome = Outcome(error=ErrorInfo(Code.EMPTY_VALUE, "empty", "bridge", False))
    return w


def test_one_request_per_stream_and_streams_do_not_wait_for_each_other() -> None:
    """A stream's second record waits for its first; another stream goes out meanwhile."""
    r = router()
    r.session_up(0)
    r.session_up(1)
    a1, a2, b1 = work(b"a", 0), work(b"a", 1), work(b"b", 2)
    for w in (a1, a2, b1):
        r.admit(w, 0.0)
    sent = r.dispatch({0: 1, 1: 1}, 0.0)
    assert [d.work for d in sent] == [a1, b1]
    assert r.dispatch({0: 1}, 0.0) == []
    r.complete(a1, Outcome(models={}), 0.0)
    assert [d.work for d in r.dispatch({0: 1}, 0.0)] == [a2]


def test_rejection_behind_inflight_request_is_published_after_it() -> None:
    """An error outcome known at once still waits for the earlier record of its stream."""
    r = router()
    r.session_up(0)
    first, bad = work(b"s", 0), work(b"s", 1, rejected=True)
    assert r.admit(first, 0.0) == []
    assert r.admit(bad, 0.0) == []
    r.dispatch({0: 1}, 0.0)
    assert r.complete(first, Outcome(models={}), 0.0) == [first]
    assert r.acked(first, 0.0) == [bad]


def test_failed_request_backs_off_and_retries_with_same_payload_then_gives_up() -> None:
    """Connection failures retry after a backoff, then become RETRIES_EXHAUSTED."""
    r = router(max_attempts=2)
    r.session_up(0)
    w = work(b"s", 0)
    r.admit(w, 0.0)
    assert [d.work for d in r.dispatch({0: 1}, 0.0)] == [w]
    assert r.fail(w, LOST, 0.0) == []
    assert r.dispatch({0: 1}, 0.0) == []  # still backing off
    wake = r.next_wakeup()
    assert wake is not None and 0.05 <= wake <= 0.1
    assert [d.work for d in r.dispatch({0: 1}, wake)] == [w]
    assert r.fail(w, LOST, wake) == [w]
    assert w.outcome is not None and w.outcome.error is not None
    assert w.outcome.error.code == Code.RETRIES_EXHAUSTED
    assert w.attempts == 2


def test_uncounted_failure_retries_at_once_without_burning_an_attempt() -> None:
    """A session closed by us sends the request again immediately, attempts unchanged."""
    r = router(max_attempts=1)
    r.session_up(0)
    w = work(b"s", 0)
    r.admit(w, 0.0)
    r.dispatch({0: 1}, 0.0)
    r.fail(w, LOST, 0.0, count_attempt=False)
    assert [d.work for d in r.dispatch({0: 1}, 0.0)] == [w]
    assert w.attempts == 1


def test_audio_stream_keeps_affinity_and_switch_sends_reset() -> None:
    """Audio stays on its session; another stream's audio on that session resets the window."""
    r = router()
    r.session_up(0)
    r.session_up(1)
    a1, a2 = work(b"a", 0, audio=True), work(b"a", 1, audio=True)
    b1 = work(b"b", 2, audio=True)
    r.admit(a1, 0.0)
    (d,) = r.dispatch({0: 1}, 0.0)
    assert (d.session, d.reset_stream) == (0, False)
    r.complete(a1, Outcome(models={}), 0.0)
    r.admit(a2, 1.0)
    assert r.dispatch({1: 1}, 1.0) == []  # waits for its own session
    (d,) = r.dispatch({0: 1}, 1.0)
    assert (d.work, d.session, d.reset_stream) == (a2, 0, False)
    r.complete(a2, Outcome(models={}), 1.0)
    r.session_down(1)
    r.admit(b1, 2.0)
    (d,) = r.dispatch({0: 1}, 2.0)
    assert (d.work, d.session, d.reset_stream) == (b1, 0, True)


def test_affinity_released_when_its_session_goes_down() -> None:
    """A stream whose session died may continue on another one (its context is gone anyway)."""
    r = router()
    r.session_up(0)
    r.session_up(1)
    a1, a2 = work(b"a", 0, audio=True), work(b"a", 1, audio=True)
    r.admit(a1, 0.0)
    r.dispatch({0: 1}, 0.0)
    r.complete(a1, Outcome(models={}), 0.0)
    r.admit(a2, 0.0)
    r.session_down(0)
    (d,) = r.dispatch({1: 1}, 0.0)
    assert (d.work, d.session) == (a2, 1)


def test_frozen_partition_dispatches_nothing_and_drop_returns_its_work() -> None:
    """Revocation: queued work of the partition stops; drop hands back what was unacknowledged."""
    r = router()
    r.session_up(0)
    w0, w1, other = work(b"a", 0), work(b"b", 1), work(b"c", 0, partition=1)
    for w in (w0, w1, other):
        r.admit(w, 0.0)
    (d,) = r.dispatch({0: 1}, 0.0)
    assert d.work is w0
    busy = r.freeze([("media", 0)])
    assert busy == [w0]
    r.complete(w0, Outcome(models={}), 0.0)
    assert [x.work for x in r.dispatch({0: 5}, 0.0)] == [other]
    assert set(r.drop([("media", 0)])) == {w0, w1}


@settings(max_examples=80, deadline=None)
@given(
    plan=st.lists(st.tuples(st.integers(0, 4), st.booleans(), st.booleans()), min_size=1, max_size=60),
    actions=st.lists(st.integers(0, 99), min_size=300, max_size=300),
)
def test_every_record_gets_one_outcome_in_stream_order(
    plan: list[tuple[int, bool, bool]], actions: list[int]
) -> None:
    """Property: under random replies, failures, session drops and ack timing, every admitted record is
    acknowledged exactly once, each stream's acknowledgements follow input order, a stream never has two
    requests out, and no session carries a second stream's audio without a reset."""
    r = router(max_attempts=3)
    sessions = [0, 1, 2]
    for s in sessions:
        r.session_up(s)
    works = [work(f"k{k}".encode(), i, audio=audio, rejected=bad) for i, (k, audio, bad) in enumerate(plan)]
    inflight: dict[int, list] = {s: [] for s in sessions}
    publishable: list[Work] = []
    publishing: list[Work] = []
    acked: list[Work] = []
    audio_owner: dict[int, bytes | None] = {s: None for s in sessions}
    now = 0.0
    for w in works:
        publishable += r.admit(w, now)
    for step in actions + [0, 1, 4, 5] * 600:
        now += 0.05
        if len(acked) == len(works):
            break
        choice = step % 6
        free = {s: 1 - len(inflight[s]) for s in sessions if len(inflight[s]) < 1}
        if choice == 0:
            for d in r.dispatch(free, now):
                streams_out = [x.stream for lst in inflight.values() for x in lst]
                assert d.work.stream not in streams_out
                if d.work.request is not None and d.work.request.audio_context:
                    owner = audio_owner[d.session]
                    assert owner in (None, d.work.key) or d.reset_stream
                    audio_owner[d.session] = d.work.key
                inflight[d.session].append(d.work)
        elif choice in (1, 2):
            for s in sessions:
                if inflight[s]:
                    publishable += r.complete(inflight[s].pop(), Outcome(models={}), now)
                    break
        elif choice == 3:
            s = step % 3
            for w in inflight[s]:
                publishable += r.fail(w, LOST, now)
            inflight[s] = []
            r.session_down(s)
            r.session_up(s)
            audio_owner[s] = None
        elif choice == 4 and publishable:
            w = publishable.pop(0)
            publishing.append(w)
        elif choice == 5 and publishing:
            w = publishing.pop(0)
            acked.append(w)
            publishable += r.acked(w, now)
    assert sorted(w.source.offset for w in acked) == list(range(len(works)))
    by_stream: dict[bytes, list[int]] = {}
    for w in acked:
        by_stream.setdefault(w.key or b"", []).append(w.source.offset)
    for offsets in by_stream.values():
        assert offsets == sorted(offsets)
