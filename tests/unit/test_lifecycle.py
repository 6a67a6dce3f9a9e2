"""The whole lifecycle of records as a state machine: router, settlement, offsets and flow control under
replies, errors, session loss and resend, publish failures and refusals, commits and revocations.

The shell is modelled the way app.py carries out what the pure parts decide; the upstream is modelled as
the v0 adapter reports (one output and one settlement per reply). Invariants: every record settles once
and gets exactly one outcome, outcomes in stream order, no commit past a record that is not done, none
for a partition after its revocation, and the buffer accounting equals what is really held.
"""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bridge.core.backoff import Backoff
from bridge.core.flow import FlowControl
from bridge.core.model import ErrorInfo, LossReason, Output, Prepared, Source, Work
from bridge.core.offsets import OffsetTracker
from bridge.core.streams import Router
from bridge.errors import Code

TOPIC = "media"
PARTITIONS = (0, 1)
LANES = (0, 1, 2)
LOST = ErrorInfo("CONNECTION_LOST", "dropped", "bridge", True)
TRANSIENT = ErrorInfo("E0500", "try again", "hume", True)
REFUSED = ErrorInfo(Code.OUTPUT_TOO_LARGE, "too large", "bridge", False)


class Lifecycle(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.now = 0.0
        self.router = Router(
            max_attempts=3, retry_backoff=Backoff(0.1, 1.0), affinity_idle_s=30.0, rnd=random.Random(0)
        )
        self.tracker = OffsetTracker()
        self.flow = FlowControl(max_records=8, max_bytes=10_000, resume_ratio=0.5)
        for p in PARTITIONS:
            self.tracker.assign((TOPIC, p))
        for lane in LANES:
            self.router.lane_up(lane)
        self.next_offset = dict.fromkeys(PARTITIONS, 0)
        self.generation = dict.fromkeys(PARTITIONS, 0)  # bumped on every revocation
        self.records: list[tuple[int, Work]] = []  # (generation, work), every record admitted
        self.at_lane: dict[int, list[Work]] = {lane: [] for lane in LANES}
        self.with_producer: list[Output] = []
        self.outcomes: dict[int, int] = {}  # id(work) -> outcomes acknowledged
        self.acked_order: dict[tuple[object, ...], list[int]] = {}  # stream -> offsets acknowledged
        self.held = 0  # records admitted and neither done nor dropped
        self.held_bytes = 0
        self.dropped: set[int] = set()
        self.done: set[int] = set()

    # -- the shell carrying out the router's decisions -------------------------------------------------
    def _flush(self) -> None:
        self.with_producer.extend(self.router.to_publish)
        self.router.to_publish.clear()
        for work in self.router.done:
            assert id(work) not in self.done, "a record was done twice"
            assert work.settled
            self.done.add(id(work))
            if self.tracker.finish(work.source.tp, work.source.offset):
                self.flow.release(work.size)
                self.held -= 1
                self.held_bytes -= work.size
        self.router.done.clear()

    # -- rules ----------------------------------------------------------------------------------------
    @rule(
        key=st.integers(0, 3),
        partition=st.sampled_from(PARTITIONS),
        bad=st.booleans(),
        size=st.integers(1, 900),
    )
    def admit(self, key: int, partition: int, bad: bool, size: int) -> None:
        offset = self.next_offset[partition]
        self.next_offset[partition] += 1
        k = f"k{key}".encode()
        work = Work(
            source=Source(TOPIC, partition, offset, None),
            stream=(TOPIC, partition, k),
            key=k,
            headers=(),
            payload_id=f"{TOPIC}/{partition}/{offset}",
            size=size,
            consumed_at=self.now,
            prepared=None if bad else Prepared("payload"),
        )
        if bad:
            work.rejection = ErrorInfo(Code.EMPTY_VALUE, "empty", "bridge", False)
        self.tracker.admit((TOPIC, partition), offset)
        self.flow.admit(size)
        self.held += 1
        self.held_bytes += size
        self.records.append((self.generation[partition], work))
        self.router.admit(work, self.now)
        self._flush()

    @rule()
    def dispatch(self) -> None:
        free = {lane: 1 for lane in LANES if not self.at_lane[lane]}
        for d in self.router.dispatch(free, self.now):
            out = [w.stream for ws in self.at_lane.values() for w in ws]
            assert d.work.stream not in out, "two records of one stream at the upstream"
            self.at_lane[d.lane].append(d.work)

    @rule(lane=st.sampled_from(LANES), error=st.booleans())
    def reply(self, lane: int, error: bool) -> None:
        if not self.at_lane[lane]:
            return
        work = self.at_lane[lane].pop(0)
        if error:
            output = Output(work.stream, (work,), error=ErrorInfo("E0203", "too long", "hume", False))
        else:
            output = Output(work.stream, (work,), {"models": {}})
        if self.router.produced(output):
            self.router.settled(work, self.now)
        self._flush()

    @rule(lane=st.sampled_from(LANES))
    def transient_error(self, lane: int) -> None:
        if self.at_lane[lane]:
            self.router.lost([self.at_lane[lane].pop(0)], LossReason.HUME_ERROR, TRANSIENT, self.now)
            self._flush()

    @rule(lane=st.sampled_from(LANES), ours=st.booleans())
    def session_lost(self, lane: int, ours: bool) -> None:
        lost, self.at_lane[lane] = self.at_lane[lane], []
        self.router.lane_down(lane)
        reason = LossReason.CLOSED_BY_US if ours else LossReason.CONNECTION_LOST
        self.router.lost(lost, reason, LOST, self.now)
        self.router.lane_up(lane)
        self._flush()

    @precondition(lambda self: bool(self.with_producer))
    @rule(i=st.integers(0, 7))
    def broker_acks(self, i: int) -> None:
        output = self.with_producer.pop(i % len(self.with_producer))
        if self.router.is_current(output):
            for work in output.records:
                self.outcomes[id(work)] = self.outcomes.get(id(work), 0) + 1
                self.acked_order.setdefault(work.stream, []).append(work.source.offset)
        self.router.acked(output)
        self._flush()

    @precondition(lambda self: bool(self.with_producer))
    @rule(i=st.integers(0, 7), refused=st.booleans())
    def broker_fails(self, i: int, refused: bool) -> None:
        output = self.with_producer.pop(i % len(self.with_producer))
        if refused:
            replacement = self.router.replace(output, REFUSED)
            if replacement is not None:
                self.with_producer.append(replacement)
        elif self.router.is_current(output):
            self.with_producer.append(output)  # published again after its backoff

    @rule(dt=st.floats(0.01, 2.0))
    def time_passes(self, dt: float) -> None:
        self.now += dt

    @rule()
    def commit(self) -> None:
        offsets = self.tracker.to_commit()
        for (_, partition), point in offsets.items():
            gen = self.generation[partition]
            for g, work in self.records:
                if g == gen and work.source.partition == partition and work.source.offset < point:
                    assert id(work) in self.done, f"commit {point} past {work.payload_id}, not done"
        self.tracker.committed(offsets)

    @rule(partition=st.sampled_from(PARTITIONS))
    def revoke_and_reassign(self, partition: int) -> None:
        tp = (TOPIC, partition)
        self.router.freeze([tp])
        self.tracker.revoke(tp)
        assert tp not in self.tracker.to_commit()
        for work in self.router.drop([tp]):
            assert id(work) not in self.done
            self.dropped.add(id(work))
            self.flow.release(work.size)
            self.held -= 1
            self.held_bytes -= work.size
        for ws in self.at_lane.values():
            ws[:] = [w for w in ws if w.source.partition != partition]
        self.generation[partition] += 1
        self.tracker.assign(tp)

    # -- invariants -----------------------------------------------------------------------------------
    @invariant()
    def accounting_matches(self) -> None:
        assert (self.flow.records, self.flow.bytes) == (self.held, self.held_bytes)
        assert self.router.inflight == sum(len(ws) for ws in self.at_lane.values())

    @invariant()
    def one_outcome_each_in_stream_order(self) -> None:
        assert all(n == 1 for n in self.outcomes.values()), "a record got two outcomes"
        for offsets in self.acked_order.values():
            assert offsets == sorted(offsets), f"outcomes out of stream order: {offsets}"

    def teardown(self) -> None:
        """Let everything finish: every record not dropped settles once with exactly one outcome."""
        if not hasattr(self, "router"):
            return
        for _ in range(200):
            self.now += 5.0
            self.dispatch()
            for lane in LANES:
                self.reply(lane, False)
            while self.with_producer:
                self.broker_acks(0)
        for _, work in self.records:
            if id(work) in self.dropped:
                continue
            assert self.outcomes.get(id(work)) == 1, f"{work.payload_id} has no outcome"
            assert id(work) in self.done
        assert self.held == 0 and self.flow.records == 0


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)


class WindowedLifecycle(RuleBasedStateMachine):
    """The same core driven the way a v1 adapter drives it: several records of a stream at the
    upstream at once, outputs covering several records, settlement by a watermark, silent records, and
    a lost session sending every unsettled record of its stream again. Every record settles and is done
    once; outputs of a stream reach the broker in order; commits stay behind records not done."""

    @initialize()
    def start(self) -> None:
        self.now = 0.0
        self.router = Router(
            max_attempts=3,
            retry_backoff=Backoff(0.1, 1.0),
            affinity_idle_s=30.0,
            window=3,
            rnd=random.Random(0),
        )
        self.tracker = OffsetTracker()
        self.tracker.assign((TOPIC, 0))
        self.router.lane_up(0)
        self.next_offset = 0
        self.records: list[Work] = []
        self.sessions: dict[object, list[Work]] = {}  # stream -> records at its session, in order
        self.with_producer: list[Output] = []
        self.acked_last: dict[object, list[int]] = {}
        self.done: set[int] = set()

    def _flush(self) -> None:
        self.with_producer.extend(self.router.to_publish)
        self.router.to_publish.clear()
        for work in self.router.done:
            assert id(work) not in self.done, "a record was done twice"
            self.done.add(id(work))
            self.tracker.finish(work.source.tp, work.source.offset)
        self.router.done.clear()

    @rule(key=st.integers(0, 2), bad=st.booleans())
    def admit(self, key: int, bad: bool) -> None:
        offset = self.next_offset
        self.next_offset += 1
        k = f"k{key}".encode()
        work = Work(
            Source(TOPIC, 0, offset, None), (TOPIC, 0, k), k, (), str(offset), 1, self.now, Prepared("pcm")
        )
        if bad:
            work.prepared = None
            work.rejection = ErrorInfo(Code.EMPTY_MEDIA, "empty", "bridge", False)
        self.tracker.admit((TOPIC, 0), offset)
        self.records.append(work)
        self.router.admit(work, self.now)
        self._flush()

    @rule()
    def dispatch(self) -> None:
        for d in self.router.dispatch({0: 6}, self.now):
            at = self.sessions.setdefault(d.work.stream, [])
            assert len(at) < 3, "more than the window at the upstream"
            assert all(w.source.offset < d.work.source.offset for w in at), "sent out of order"
            at.append(d.work)

    @rule(key=st.integers(0, 2), cover=st.integers(1, 3), silent=st.booleans())
    def measurement(self, key: int, cover: int, silent: bool) -> None:
        at = self.sessions.get((TOPIC, 0, f"k{key}".encode()), [])
        if not at:
            return
        covered, rest = at[:cover], at[cover:]
        if not silent:
            assert self.router.produced(Output(covered[0].stream, tuple(covered), {"measurement": {}}))
        self.router.settled(covered[-1], self.now)
        self.sessions[covered[0].stream] = rest
        self._flush()

    @rule(key=st.integers(0, 2))
    def session_lost(self, key: int) -> None:
        lost = self.sessions.pop((TOPIC, 0, f"k{key}".encode()), [])
        self.router.lost(lost, LossReason.CONNECTION_LOST, LOST, self.now)
        self._flush()

    @precondition(lambda self: bool(self.with_producer))
    @rule()
    def broker_acks(self) -> None:
        output = self.with_producer.pop(0)
        if self.router.is_current(output):
            self.acked_last.setdefault(output.stream, []).append(output.records[-1].source.offset)
        self.router.acked(output)
        self._flush()

    @rule(dt=st.floats(0.01, 2.0))
    def time_passes(self, dt: float) -> None:
        self.now += dt

    @rule()
    def commit(self) -> None:
        offsets = self.tracker.to_commit()
        for point in offsets.values():
            for work in self.records:
                if work.source.offset < point:
                    assert id(work) in self.done, f"commit {point} past {work.payload_id}, not done"
        self.tracker.committed(offsets)

    @invariant()
    def outputs_in_stream_order(self) -> None:
        for offsets in self.acked_last.values():
            assert offsets == sorted(offsets), f"outputs out of stream order: {offsets}"
        assert self.router.inflight == sum(len(ws) for ws in self.sessions.values())

    def teardown(self) -> None:
        if not hasattr(self, "router"):
            return
        for _ in range(200):
            self.now += 5.0
            self.dispatch()
            for key in range(3):
                self.measurement(key, 3, False)
            while self.with_producer:
                self.broker_acks()
        assert all(id(w) in self.done for w in self.records), "a record never settled"
        assert all(w.settled for w in self.records)


TestWindowedLifecycle = WindowedLifecycle.TestCase
TestWindowedLifecycle.settings = settings(max_examples=50, stateful_step_count=60, deadline=None)
