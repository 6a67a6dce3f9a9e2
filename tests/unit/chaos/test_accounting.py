"""The chaos suite's accounting check: lost, duplicates either side of the commit, reorders, stuck
partitions, unexpected outcomes; and the RSS slope."""

from __future__ import annotations

from bridge.tools.chaos.accounting import Input, Outcome, account, parse_source, slope_per_minute

T = "media"


def ins(*offsets: int, key: bytes | None = b"k", partition: int = 0) -> list[Input]:
    return [Input(T, partition, o, key) for o in offsets]


def out(*offsets: int, topic: str = "pred", partition: int = 0, key: bytes | None = b"k") -> list[Outcome]:
    return [Outcome(topic, 0, i, f"{T}/{partition}/{o}", key) for i, o in enumerate(offsets)]


def test_every_input_with_one_outcome_in_order_and_committed_is_clean() -> None:
    """Three inputs, three outcomes in order, commit at the end: no problem."""
    acc = account(ins(0, 1, 2), out(0, 1, 2), {(T, 0): 3})
    assert (acc.inputs, acc.outcomes, acc.lost, acc.duplicates, acc.order_violations) == (3, 3, 0, 0, 0)
    assert acc.problems() == []


def test_an_input_without_outcome_is_lost_and_named() -> None:
    """The missing record is counted and named by its source coordinates."""
    acc = account(ins(0, 1, 2), out(0, 2), {(T, 0): 3})
    assert acc.lost == 1
    assert acc.lost_sample == [f"{T}/0/1"]
    assert any("without an outcome" in p for p in acc.problems())


def test_a_replay_after_a_crash_is_duplicates_not_reorders() -> None:
    """0 1 2 3, then a new owner replays 2 3 and goes on with 4: two duplicates, no reorder."""
    acc = account(ins(0, 1, 2, 3, 4), out(0, 1, 2, 3, 2, 3, 4), {(T, 0): 5})
    assert acc.order_violations == 0
    assert acc.duplicates_below_commit == 2
    assert acc.duplicates_above_commit == 0
    assert acc.duplicate_sample == [f"{T}/0/2", f"{T}/0/3"]
    assert acc.problems() == []


def test_duplicates_at_or_above_the_commit_are_counted_apart() -> None:
    """A duplicate of a record the group has not committed past is 'above'."""
    acc = account(ins(0, 1), out(0, 1, 1), {(T, 0): 1})
    assert acc.duplicates_above_commit == 1
    assert acc.duplicates_below_commit == 0


def test_a_first_outcome_after_a_later_records_outcome_is_a_reorder() -> None:
    """1 published before 0 in one stream: one violation."""
    acc = account(ins(0, 1, 2), out(1, 0, 2), {(T, 0): 3})
    assert acc.order_violations == 1
    assert any("order violation" in p for p in acc.problems())


def test_order_is_per_stream_and_per_output_topic() -> None:
    """Different keys may interleave freely; predictions and errors topics are checked apart."""
    inputs = ins(0, key=b"a") + ins(1, key=b"b") + ins(2, key=b"a")
    outcomes = [
        Outcome("pred", 0, 0, f"{T}/0/2", b"a"),
        Outcome("err", 0, 0, f"{T}/0/0", b"a"),
        Outcome("pred", 1, 0, f"{T}/0/1", b"b"),
    ]
    assert account(inputs, outcomes, {(T, 0): 3}).order_violations == 0


def test_unkeyed_records_are_never_out_of_order() -> None:
    """An unkeyed record is a stream of its own."""
    acc = account(ins(0, 1, key=None), out(1, 0, key=None), {(T, 0): 2})
    assert acc.order_violations == 0


def test_a_commit_short_of_the_end_is_a_stuck_partition() -> None:
    """Outcomes for everything but the commit stayed behind (or never happened) on partition 1."""
    inputs = ins(0, 1) + ins(0, 1, partition=1)
    outcomes = out(0, 1) + [Outcome("pred", 0, 9 + o, f"{T}/1/{o}", b"k") for o in (0, 1)]
    acc = account(inputs, outcomes, {(T, 0): 2, (T, 1): 1})
    assert acc.stuck_partitions == [f"{T}/1 (committed 1, end 2)"]
    acc = account(inputs, outcomes, {(T, 0): 2})
    assert acc.stuck_partitions == [f"{T}/1 (committed None, end 2)"]


def test_outcomes_for_unknown_records_are_unexpected() -> None:
    """An outcome naming a record that is not in the input topic, or naming nothing readable."""
    outcomes = [*out(0), Outcome("pred", 0, 5, f"{T}/0/77", b"k"), Outcome("pred", 0, 6, "garbage", b"k")]
    acc = account(ins(0), outcomes, {(T, 0): 1})
    assert acc.unexpected == 2


def test_parse_source_takes_topics_with_slashes() -> None:
    """The topic is everything before the last two fields."""
    assert parse_source("a/b/3/17") == ("a/b", 3, 17)
    assert parse_source("media/x/1") is None
    assert parse_source("1/2") is None


def test_rss_slope_is_per_minute_and_needs_three_samples() -> None:
    """1 MiB every 10 s is 6 MiB/min; flat is zero; too few samples is no figure."""
    rising = [(t, 50.0 + t / 10.0) for t in range(0, 60, 5)]
    slope = slope_per_minute([(float(t), v) for t, v in rising])
    assert slope is not None and abs(slope - 6.0) < 1e-9
    assert slope_per_minute([(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)]) == 0.0
    assert slope_per_minute([(0.0, 1.0), (1.0, 2.0)]) is None
