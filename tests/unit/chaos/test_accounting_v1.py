"""The v1 accounting: a measurement covers a window of records, silence settles without output (seen as a
committed record no output names), errors name their record; lost, duplicates (re-measured windows),
order per stream."""

from __future__ import annotations

from bridge.tools.chaos.accounting import Input, Measurement, Outcome, account_v1

T = "media"


def ins(*offsets: int, key: bytes | None = b"k", partition: int = 0) -> list[Input]:
    return [Input(T, partition, o, key) for o in offsets]


def meas(*windows: tuple[int, ...], partition: int = 0, key: bytes | None = b"k") -> list[Measurement]:
    return [
        Measurement("pred", 0, i, key, tuple(f"{T}/{partition}/{o}" for o in w))
        for i, w in enumerate(windows)
    ]


def err(*offsets: int, key: bytes | None = b"k") -> list[Outcome]:
    return [Outcome("err", 0, i, f"{T}/0/{o}", key, "bad_audio") for i, o in enumerate(offsets)]


def test_measured_silent_and_errored_records_are_each_settled_once() -> None:
    """0-1 silent (committed, no output), 2-4 in one measurement, 5 an error, 6-7 silent: all settled."""
    acc = account_v1(ins(*range(8)), meas((2, 3, 4)), err(5), {(T, 0): 8})
    assert (acc.measured, acc.silent, acc.errored) == (3, 4, 1)
    assert (acc.inputs, acc.outcomes, acc.lost, acc.duplicates, acc.order_violations) == (8, 8, 0, 0, 0)
    assert acc.problems() == []


def test_a_record_past_the_commit_that_no_output_names_is_lost() -> None:
    """Commit at 3: 0-2 count as silent, 3 and 4 are neither measured, errored nor committed: lost, and
    the partition is stuck."""
    acc = account_v1(ins(*range(5)), [], [], {(T, 0): 3})
    assert (acc.silent, acc.lost) == (3, 2)
    assert acc.lost_sample == [f"{T}/0/3", f"{T}/0/4"]
    assert acc.stuck_partitions == [f"{T}/0 (committed 3, end 5)"]
    assert len(acc.problems()) == 2


def test_a_measured_record_past_the_commit_is_not_lost() -> None:
    """Measured but not yet committed (a kill -9 before the commit): accounted, the partition stuck."""
    acc = account_v1(ins(0, 1), meas((0, 1)), [], {(T, 0): None})
    assert (acc.measured, acc.lost) == (2, 0)
    assert acc.stuck_partitions


def test_a_window_measured_again_on_a_new_session_is_duplicates_not_reorders() -> None:
    """0-2 measured, the session dies, the new one measures 1-3 again then 4-5: two duplicates."""
    acc = account_v1(ins(*range(6)), meas((0, 1, 2), (1, 2, 3), (4, 5)), [], {(T, 0): 6})
    assert acc.order_violations == 0
    assert (acc.duplicates_below_commit, acc.duplicates_above_commit) == (2, 0)
    assert acc.duplicate_sample == [f"{T}/0/1", f"{T}/0/2"]
    assert acc.measured == 6
    # above the commit: the next owner would measure them again
    above = account_v1(ins(*range(4)), meas((0, 1), (0, 1)), [], {(T, 0): 0})
    assert above.duplicates_above_commit == 2


def test_a_later_window_before_an_earlier_one_on_a_stream_is_an_order_violation() -> None:
    """Window 3-4 published before 0-1 on one stream: one violation per late record; other streams and
    unkeyed records do not count."""
    acc = account_v1(ins(*range(5)), meas((3, 4), (0, 1)), [], {(T, 0): 5})
    assert acc.order_violations == 2
    assert acc.violation_sample == [f"{T}/0/0 after offset 4", f"{T}/0/1 after offset 4"]
    other = ins(0, 1, key=b"a") + ins(2, 3, key=b"b")
    mixed = [*meas((2, 3), key=b"b"), *meas((0, 1), key=b"a")]
    mixed = [Measurement(m.topic, m.partition, i, m.key, m.sources) for i, m in enumerate(mixed)]
    assert account_v1(other, mixed, [], {(T, 0): 4}).order_violations == 0
    unkeyed = account_v1(ins(0, 1, key=None), meas((1,), (0,), key=None), [], {(T, 0): 2})
    assert unkeyed.order_violations == 0


def test_errors_are_ordered_per_stream_and_counted_once() -> None:
    """Errors out of order on their topic are a violation; a second error for one record a duplicate;
    a record both measured and errored counts as measured."""
    acc = account_v1(ins(0, 1, 2), meas((2,)), err(1, 0, 1), {(T, 0): 3})
    assert acc.order_violations == 1
    assert acc.duplicates == 1
    both = account_v1(ins(0), meas((0,)), err(0), {(T, 0): 1})
    assert (both.measured, both.errored, both.outcomes) == (1, 0, 1)


def test_sources_naming_records_not_in_the_input_topic_are_unexpected() -> None:
    """A measurement or an error naming an unknown record fails the scenario."""
    acc = account_v1(ins(0), meas((0, 9)), err(7), {(T, 0): 1})
    assert acc.unexpected == 2
    assert any("not in the input topic" in p for p in acc.problems())
