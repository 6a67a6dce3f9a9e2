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

Hume v1 (:func:`account_v1`) has no one outcome per record: a measurement covers a window of records (its
``sources``), a record of silence is settled without any output, and a bad record gets an error outcome.
There, an input is

- **measured** when some measurement's ``sources`` name it, **errored** when an error outcome names it,
- **silent** when neither, but the group's final committed offset of its partition is past it: the
  bridge commits only behind settled records, so a committed record that no output names is one the
  bridge settled as silence. (Read from the broker like everything else here; the bridge's own
  ``hume_bridge_records_total{outcome}`` is per process and starts again at zero after a restart or a
  ``kill -9``, so it cannot account across the processes of a scenario.)
- **lost** when none of these: no measurement, no error, and at or past its partition's commit.

**duplicates** are coverings beyond the first (a record in two measurements: a window measured again on a
new session) and errors beyond the first; **order violations** are walked per stream and output topic as
for v0, over each measurement's sources in output order (a re-measured window repeats sources already
seen: a duplicate, not a reorder).
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
    measured: int | None = None  # v1 only: inputs covered by a measurement's sources
    silent: int | None = None  # v1 only: committed inputs that no output names
    errored: int | None = None  # v1 only: inputs with an error outcome
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


@dataclass(slots=True)
class _Checks:
    """The duplicate and order checks both accountings make, writing into ``acc``: a repeat is a duplicate
    below or above its partition's committed offset; a record's first outcome arriving after a later
    record's of the same stream (per output topic) is an order violation."""

    acc: Accounts
    committed: Mapping[TopicPartition, int | None]
    sample: int
    # (output topic, stream) -> highest input offset whose first outcome was seen
    highest: dict[tuple[str, str, int, bytes | None], int] = field(default_factory=dict)

    def duplicate(self, source: str, record: Input) -> None:
        acc = self.acc
        if len(acc.duplicate_sample) < self.sample:
            acc.duplicate_sample.append(source)
        commit = self.committed.get((record.topic, record.partition))
        if commit is not None and record.offset < commit:
            acc.duplicates_below_commit += 1
        else:
            acc.duplicates_above_commit += 1

    def first(self, out_topic: str, source: str, record: Input) -> None:
        if record.key is None:
            return  # an unkeyed record is a stream of its own: nothing to be out of order with
        stream = (out_topic, record.topic, record.partition, record.key)
        top = self.highest.get(stream, -1)
        if record.offset < top:
            self.acc.order_violations += 1
            if len(self.acc.violation_sample) < self.sample:
                self.acc.violation_sample.append(f"{source} after offset {top}")
        else:
            self.highest[stream] = record.offset


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
    checks = _Checks(acc, committed, sample)
    for o in ordered:
        parsed = parse_source(o.source)
        record = ins.get(o.source)
        if parsed is None or record is None:
            acc.unexpected += 1
            continue
        seen[o.source] += 1
        if seen[o.source] > 1:
            checks.duplicate(o.source, record)
        else:
            checks.first(o.topic, o.source, record)
    acc.outcomes = len(seen)
    missing = [s for s in ins if s not in seen]
    acc.lost = len(missing)
    acc.lost_sample = missing[:sample]
    acc.stuck_partitions = stuck(ins.values(), committed)
    return acc


@dataclass(frozen=True, slots=True)
class Measurement:
    """One v1 measurement on the predictions topic: the records its ``sources`` name."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    sources: tuple[str, ...]  # "<topic>/<partition>/<offset>" of each covered input, in the value's order


def account_v1(
    inputs: Iterable[Input],
    measurements: Iterable[Measurement],
    errors: Iterable[Outcome],
    committed: Mapping[TopicPartition, int | None],
    sample: int = 5,
) -> Accounts:
    """The v1 accounts (see the module's docstring): measured, silent, errored, lost, duplicates and
    order per stream; ``outcomes`` is every input accounted for (measured, silent or errored)."""
    ins = {source_of(r): r for r in inputs}
    acc = Accounts(inputs=len(ins))
    covered: dict[str, int] = defaultdict(int)
    errored: dict[str, int] = defaultdict(int)
    checks = _Checks(acc, committed, sample)
    duplicate, first = checks.duplicate, checks.first

    for m in sorted(measurements, key=lambda m: (m.topic, m.partition, m.offset)):
        for source in m.sources:
            record = ins.get(source)
            if record is None:
                acc.unexpected += 1
                continue
            covered[source] += 1
            if covered[source] > 1:
                duplicate(source, record)
            else:
                first(m.topic, source, record)
    for o in sorted(errors, key=lambda o: (o.topic, o.partition, o.offset)):
        record = ins.get(o.source)
        if record is None:
            acc.unexpected += 1
            continue
        errored[o.source] += 1
        if errored[o.source] > 1:
            duplicate(o.source, record)
        else:
            first(o.topic, o.source, record)

    silent: list[str] = []
    missing: list[str] = []
    for source, record in ins.items():
        if source in covered or source in errored:
            continue
        commit = committed.get((record.topic, record.partition))
        (silent if commit is not None and record.offset < commit else missing).append(source)
    acc.measured = len(covered)
    acc.errored = len([s for s in errored if s not in covered])
    acc.silent = len(silent)
    acc.outcomes = acc.measured + acc.errored + acc.silent
    acc.lost = len(missing)
    acc.lost_sample = missing[:sample]
    acc.stuck_partitions = stuck(ins.values(), committed)
    return acc


def stuck(ins: Iterable[Input], committed: Mapping[TopicPartition, int | None]) -> list[str]:
    """Input partitions whose committed offset did not reach their end, in words."""
    out = []
    for (topic, partition), end in sorted(end_offsets(ins).items()):
        commit = committed.get((topic, partition))
        if commit is None or commit < end:
            out.append(f"{topic}/{partition} (committed {commit}, end {end})")
    return out


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
