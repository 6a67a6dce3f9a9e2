"""The v0 pool's pure decisions: when each session recycles, and what each close is called."""

from __future__ import annotations

import random

from bridge.upstream.v0.pool import CloseReason, _close_words, recycle_after


def test_sessions_opened_together_recycle_at_distinct_ages_below_the_maximum() -> None:
    """Eight sessions opened at once: whatever the jitter, each recycles in a band of its own between 80%
    and 100% of the maximum age, so no two recycle at the same moment and none waits past the maximum."""
    rnd = random.Random(7)
    for _ in range(200):
        ages = [recycle_after(50.0, sid, 8, rnd.random()) for sid in range(8)]
        assert all(40.0 <= a <= 50.0 for a in ages)
        assert ages == sorted(ages, reverse=True)
        assert len(set(ages)) == 8
    gap = 50.0 * 0.2 / 8
    assert recycle_after(50.0, 0, 8, 0.0) - recycle_after(50.0, 1, 8, 0.0) == gap


def test_each_close_is_named_for_what_it_was() -> None:
    """Ours (recycled, shutdown, reply timeout) and theirs (a close code, a drop) read differently; the
    metric keeps its fixed labels: a close by Hume with nothing in flight is its planned idle close."""
    assert _close_words(CloseReason.CLOSED_BY_HUME, 1001, 0) == "closed by Hume with code 1001"
    assert _close_words(CloseReason.RECYCLED, None, 0) == "recycled before Hume's one-minute limit"
    assert _close_words(CloseReason.SHUTDOWN, None, 3) == (
        "closed for shutdown; 3 requests unanswered, left for the next owner of their partitions"
    )
    assert _close_words(CloseReason.DROPPED, None, 1).endswith("; 1 request to send again")
    assert CloseReason.CLOSED_BY_HUME.metric(inflight=False) == "idle_timeout"
    assert CloseReason.CLOSED_BY_HUME.metric(inflight=True) == "dropped"
    assert CloseReason.SHUTDOWN.metric(inflight=False) == "shutdown"
    assert CloseReason.RECYCLED.metric(inflight=False) == "recycled"
