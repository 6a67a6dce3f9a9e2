"""The one accounting check at the end of a scenario: pure, from what was read back from the broker.

Inputs are the records of the input topic (read back, so a record the scenario's producer wrote twice
counts twice); outcomes are the records of the predictions and errors topics, each naming its input by
the ``hume-source`` header; committed offsets are the bridge group's, read back from the broker.

- **lost**: an input without any outcome.
- **duplicates**: outcomes beyond the first for one input, split by where the input lies relative to its
  partition's final committed offset (below: replayed although committed later; at or above: would be
  replayed again by the next owner).
- **order violations**: for each stream (input topic, partition, key) and output topic, walking the
  outcomes in output order, an input's *first* outcome that comes after the first outcome of a later
  input of the same stream. Replays after a crash repeat earlier outcomes; they are duplicates, not
  reorders.
- **stuck partitions**: input partitions whose committed offset did not reach their end.
- **unexpected**: outcomes naming an input that is not in the input topic.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Input:
    topic: str
    partition: int
    offset: int
    key: bytes | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One record on the predictions or errors topic."""

    topic: str
    partition: int
    offset: int
    source: str  # "<topic>/<partition>/<offset>" as in the hume-source header
    key: bytes | None
    code: str | None = None  # the error code, for error outcomes


@dataclass(slots=True)
class Accounts:
    inputs: int = 0
    outcomes: int = 0  # inputs with at least one outcome
    lost: int = 0
    duplicates_below_commit: int = 0
    duplicates_above_commit: int = 0
    order_violations: int = 0
    unexpected: int = 0
    stuck_partitions: list[str] = field(default_factory=list)
    lost_sample: list[str] = field(default_factory=list)
    violation_sample: list[str] = field(default_factory=list)
    duplicate_sample: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.duplicates_below_commit + self.duplicates_above_commit

    def problems(self) -> list[str]:
        out = []
        if self.lost:
            out.append(f"{self.lost} input(s) without an outcome, e.g. {', '.join(self.lost_sample)}")
        if self.order_violations:
            out.append(f"{self.order_violations} order violation(s), e.g. {', '.join(self.violation_sample)}")
        if self.stuck_partitions:
            out.append(f"committed offset short of the end on {', '.join(self.stuck_partitions)}")
        if self.unexpected:
            out.append(f"{self.unexpected} outcome(s) for records that are not in the input topic")
        return out


def source_of(record: Input) -> str:
    return f"{record.topic}/{record.partition}/{record.offset}"


def parse_source(source: str) -> tuple[str, int, int] | None:
    topic, _, rest = source.rpartition("/")
    topic, _, partition = topic.rpartition("/")
    if not topic or not partition.isdigit() or not rest.isdigit():
        return None
    return topic, int(partition), int(rest)


def end_offsets(inputs: Iterable[Input]) -> dict[TopicPartition, int]:
    ends: dict[TopicPartition, int] = {}
    for r in inputs:
        tp = (r.topic, r.partition)
        ends[tp] = max(ends.get(tp, 0), r.offset + 1)
    return ends


def account(
    inputs: Iterable[Input],
    outcomes: Iterable[Outcome],
    committed: Mapping[TopicPartition, int | None],
    sample: int = 5,
) -> Accounts:
    ins = {source_of(r): r for r in inputs}
    acc = Accounts(inputs=len(ins))
    ordered = sorted(outcomes, key=lambda o: (o.topic, o.partition, o.offset))
    seen: dict[str, int] = defaultdict(int)
    # (output topic, stream) -> highest input offset whose first outcome was seen
    highest: dict[tuple[str, str, int, bytes | None], int] = {}
    for o in ordered:
        parsed = parse_source(o.source)
        record = ins.get(o.source)
        if parsed is None or record is None:
            acc.unexpected += 1
            continue
        seen[o.source] += 1
        if seen[o.source] > 1:
            if len(acc.duplicate_sample) < sample:
                acc.duplicate_sample.append(o.source)
            commit = committed.get((record.topic, record.partition))
            if commit is not None and record.offset < commit:
                acc.duplicates_below_commit += 1
            else:
                acc.duplicates_above_commit += 1
            continue
        if record.key is None:
            continue  # an unkeyed record is a stream of its own: nothing to be out of order with
        stream = (o.topic, record.topic, record.partition, record.key)
        top = highest.get(stream, -1)
        if record.offset < top:
            acc.order_violations += 1
            if len(acc.violation_sample) < sample:
                acc.violation_sample.append(f"{o.source} after offset {top}")
        else:
            highest[stream] = record.offset
    acc.outcomes = len(seen)
    missing = [s for s in ins if s not in seen]
    acc.lost = len(missing)
    acc.lost_sample = missing[:sample]
    for (topic, partition), end in sorted(end_offsets(ins.values()).items()):
        commit = committed.get((topic, partition))
        if commit is None or commit < end:
            acc.stuck_partitions.append(f"{topic}/{partition} (committed {commit}, end {end})")
    return acc


def slope_per_minute(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) samples, per minute; None with fewer than 3 samples."""
    if len(samples) < 3:
        return None
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return None
    cov = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    return cov / var * 60.0
