"""Offset tracking: commit only past records whose outcome is acknowledged."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bridge.core.offsets import OffsetTracker

TP = ("media", 0)


def test_commit_point_stops_at_first_unfinished_record() -> None:
    """Records finished out of order only advance the commit point past a contiguous done prefix."""
    t = OffsetTracker()
    t.assign(TP)
    for off in (10, 11, 12, 13):
        t.admit(TP, off)
    t.finish(TP, 12)
    t.finish(TP, 10)
    assert t.to_commit() == {TP: 11}
    t.committed({TP: 11})
    assert t.to_commit() == {}
    t.finish(TP, 11)
    t.finish(TP, 13)
    assert t.to_commit() == {TP: 14}


def test_revoked_partition_never_commits_again() -> None:
    """After revocation a late acknowledgement is ignored and nothing is offered for commit."""
    t = OffsetTracker()
    t.assign(TP)
    t.admit(TP, 0)
    t.revoke(TP)
    assert t.finish(TP, 0) is False
    assert t.to_commit() == {}


@given(st.lists(st.booleans(), min_size=1, max_size=200), st.randoms())
def test_commit_point_is_lowest_unfinished_offset(done_flags: list[bool], rnd: object) -> None:
    """Property: for any finishing order, the commit point is the lowest unfinished offset (or the end)."""
    t = OffsetTracker()
    t.assign(TP)
    for off in range(len(done_flags)):
        t.admit(TP, 100 + off)
    finished = [100 + i for i, d in enumerate(done_flags) if d]
    rnd.shuffle(finished)  # type: ignore[attr-defined]
    for off in finished:
        t.finish(TP, off)
    expected = next((100 + i for i, d in enumerate(done_flags) if not d), 100 + len(done_flags))
    assert t.to_commit() == {TP: expected}
