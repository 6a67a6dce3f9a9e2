"""Per-stream order, settlement and routing to lanes.

Each stream (records sharing a key in one partition) keeps its records in order in four places:

    pending ─dispatch─▶ window ──settled──▶ (done once every output covering it is acknowledged)
       ▲                  │ lost: back to pending, in order (after a backoff when it counts an attempt)
       └──────────────────┘
    held: rejected or given-up records, waiting for every earlier record to settle
    outq: outputs produced for the stream, handed to the producer one at a time, in order

At most ``window`` records of a stream are at the upstream at once (v0: one). A stream's outputs go to
the producer one at a time, each only after the previous one was acknowledged, so they land in order
through retries, reconnects and rebalances. A record is *done* once it is settled and every output
covering it is acknowledged: only then may its offset be committed. Streams never wait for each other.

Routing: a record that is ``sticky`` (v0: audio with context) keeps its stream on the lane it last used
while the stream stays active; a lane handed sticky work of another stream than the one whose context
it holds is told so (``switched``: v0 sends ``reset_stream``). Other streams go to any free lane,
oldest-ready first.

Retries: lost work that counts an attempt is sent again after a jittered backoff, at the head of its
stream; after ``max_attempts`` it becomes a RETRIES_EXHAUSTED error output. Pure: no I/O, no clock;
``now`` comes from the caller. Outputs to publish and records done collect in :attr:`Router.to_publish`
and :attr:`Router.done`, which the shell empties after each call.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bridge.core.backoff import Backoff
from bridge.core.model import (
    Dispatch,
    ErrorInfo,
    LaneId,
    LossReason,
    Origin,
    Output,
    OutputKind,
    StreamKey,
    Work,
)
from bridge.errors import Code


@dataclass(slots=True, eq=False)
class _Stream:
    key: StreamKey
    pending: deque[Work] = field(default_factory=deque)  # need the upstream, not sent, in order
    window: deque[Work] = field(default_factory=deque)  # at the upstream, not settled, in order
    held: deque[Work] = field(default_factory=deque)  # final without the upstream, waiting their turn
    outq: deque[Output] = field(default_factory=deque)  # produced, not acknowledged, in order
    publishing: bool = False  # outq[0] is with the producer
    scheduled: bool = False  # in the ready queues or the delay heap
    frozen: bool = False  # its partition is being revoked: dispatch nothing more


class Router:
    """Streams, their order, their settlement, their retries and their lanes."""

    def __init__(
        self,
        *,
        max_attempts: int,
        retry_backoff: Backoff,
        affinity_idle_s: float,
        window: int = 1,
        rnd: random.Random | None = None,
    ) -> None:
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.affinity_idle_s = affinity_idle_s
        self.window = window
        self.rnd = rnd or random.Random()
        self.to_publish: list[Output] = []  # outputs to hand to the producer, in order per stream
        self.done: list[Work] = []  # records settled with every output acknowledged
        self.inflight = 0  # records at the upstream
        self._streams: dict[StreamKey, _Stream] = {}
        self._ready: deque[_Stream] = deque()
        self._ready_on: dict[LaneId, deque[_Stream]] = {}
        self._delayed: list[tuple[float, int, _Stream]] = []
        self._seq = 0
        self._alive: set[LaneId] = set()
        self._owner: dict[LaneId, StreamKey] = {}  # whose context each lane holds
        self._affinity: dict[StreamKey, tuple[LaneId, float]] = {}  # stream -> (lane, last used)
        self._next_prune = 0.0

    # -- lanes ----------------------------------------------------------------------------------------
    def lane_up(self, lane: LaneId) -> None:
        """A fresh lane: it holds no stream's context yet."""
        self._alive.add(lane)
        self._owner.pop(lane, None)

    def lane_down(self, lane: LaneId) -> None:
        """The lane is gone with its context; streams waiting for it may go elsewhere."""
        self._alive.discard(lane)
        self._owner.pop(lane, None)
        waiting = self._ready_on.pop(lane, None)
        if waiting:
            self._ready.extend(waiting)

    # -- admission ------------------------------------------------------------------------------------
    def admit(self, work: Work, now: float) -> None:
        """Queue a decoded record at the tail of its stream."""
        stream = self._streams.get(work.stream)
        if stream is None:
            stream = self._streams[work.stream] = _Stream(work.stream)
        if work.rejection is not None:
            stream.held.append(work)
            self._emit_held(stream)
        else:
            stream.pending.append(work)
            self._schedule(stream, now)

    # -- what the upstream reports ---------------------------------------------------------------------
    def produced(self, output: Output) -> bool:
        """An output for records at the upstream; False (and ignored) when they are no longer ours."""
        stream = self._streams.get(output.stream)
        if stream is None or not output.records or output.records[0] not in stream.window:
            return False
        last = output.records[-1].source.offset
        while stream.held and stream.held[0].source.offset < last:
            self._emit(stream, stream.held.popleft())
        self._add_output(stream, output)
        return True

    def settled(self, last: Work, now: float) -> None:
        """Every record of ``last``'s stream at the upstream, up to and including ``last``, is settled:
        no more outputs will come for them."""
        stream = self._streams.get(last.stream)
        if stream is None or last not in stream.window:
            return
        window = stream.window
        while window:
            work = window.popleft()
            self.inflight -= 1
            work.settled = True
            if work.refs == 0:
                self.done.append(work)
            if work is last:
                break
        if stream.held:
            self._emit_held(stream)
        self._schedule(stream, now)
        if not stream.outq:  # settled with no output (silent): nothing else will forget it
            self._forget_if_empty(stream)

    def lost(self, works: Sequence[Work], reason: LossReason, error: ErrorInfo, now: float) -> None:
        """Work at the upstream came back unsettled: it goes back to the head of its stream, in order,
        with every later record of the stream at the upstream. Losses that count an attempt back off,
        and give up after ``max_attempts``; the others are resent at once."""
        for work in works:
            stream = self._streams.get(work.stream)
            if stream is None:
                continue
            window = stream.window
            if work in window:
                moved: list[Work] = []
                while window:
                    moved.append(window.pop())
                    if moved[-1] is work:
                        break
                self.inflight -= len(moved)
                stream.pending.extendleft(moved)  # ``moved`` is newest first: the head ends up oldest
            elif work not in stream.pending:
                continue  # no longer ours
            if reason.counts_attempt:
                if work.attempts >= self.max_attempts:
                    stream.pending.remove(work)
                    work.rejection = ErrorInfo(
                        Code.RETRIES_EXHAUSTED,
                        f"gave up after {work.attempts} attempts; last error {error.code}: {error.message}",
                        Origin.BRIDGE,
                        True,
                    )
                    self._hold(stream, work)
                else:
                    work.not_before = now + self.retry_backoff.delay(work.attempts - 1, self.rnd)
            else:
                work.attempts = max(0, work.attempts - 1)
                work.not_before = now
            self._schedule(stream, now)

    # -- what the producer reports --------------------------------------------------------------------
    def acked(self, output: Output) -> None:
        """The broker acknowledged ``output``; the stream's next output may go."""
        stream = self._streams.get(output.stream)
        if stream is None or not stream.outq or stream.outq[0] is not output:
            return
        stream.outq.popleft()
        stream.publishing = False
        for work in output.records:
            work.refs -= 1
            if work.refs == 0 and work.settled:
                self.done.append(work)
        self._publishable(stream)
        self._forget_if_empty(stream)

    def replace(self, output: Output, error: ErrorInfo) -> Output | None:
        """The broker refused ``output`` for good: an error output for the same records takes its
        place (still with the producer). None when the output is no longer ours."""
        stream = self._streams.get(output.stream)
        if stream is None or not stream.outq or stream.outq[0] is not output:
            return None
        replacement = Output(output.stream, output.records, error=error)
        for work in output.records:
            work.kind = OutputKind.ERROR
        stream.outq[0] = replacement
        return replacement

    def is_current(self, output: Output) -> bool:
        """True while ``output`` is its stream's output with the producer."""
        stream = self._streams.get(output.stream)
        return stream is not None and bool(stream.outq) and stream.outq[0] is output

    # -- dispatch -------------------------------------------------------------------------------------
    def dispatch(self, free: dict[LaneId, int], now: float, limit: int | None = None) -> list[Dispatch]:
        """Assign ready streams to free lane capacity (``free``: lane -> free slots)."""
        self._promote(now)
        out: list[Dispatch] = []
        budget = limit if limit is not None else 1 << 30
        for lane, slots in free.items():
            if lane not in self._alive:
                continue
            while slots > 0 and budget > 0:
                stream = self._pop_ready(lane, now)
                if stream is None:
                    break
                out.append(self._send(stream, lane, now))
                slots -= 1
                budget -= 1
            if budget <= 0:
                break
        return out

    def next_wakeup(self) -> float | None:
        """When the earliest backed-off record becomes ready again, if any."""
        return self._delayed[0][0] if self._delayed else None

    # -- revocation -----------------------------------------------------------------------------------
    def freeze(self, tps: Iterable[tuple[str, int]]) -> None:
        """Stop dispatching the streams of revoked partitions (work at the upstream may still settle)."""
        wanted = set(tps)
        for stream in self._streams.values():
            if stream.key[:2] in wanted:
                stream.frozen = True

    def busy(self, tps: Iterable[tuple[str, int]]) -> int:
        """Streams of these partitions with work at the upstream or an output with the producer."""
        wanted = set(tps)
        return sum(1 for s in self._streams.values() if s.key[:2] in wanted and (s.window or s.publishing))

    def unacknowledged(self, tps: Iterable[tuple[str, int]]) -> int:
        """Streams of these partitions with an output produced and not yet acknowledged."""
        wanted = set(tps)
        return sum(1 for s in self._streams.values() if s.key[:2] in wanted and s.outq)

    def drop(self, tps: Iterable[tuple[str, int]]) -> list[Work]:
        """Forget every stream of the given partitions; returns their records that were not done."""
        wanted = set(tps)
        dropped: dict[int, Work] = {}
        for key in [k for k in self._streams if k[:2] in wanted]:
            stream = self._streams.pop(key)
            for work in (*stream.window, *stream.pending, *stream.held):
                dropped[id(work)] = work
            for output in stream.outq:
                for work in output.records:
                    dropped[id(work)] = work
            self.inflight -= len(stream.window)
            self._affinity.pop(key, None)
        return list(dropped.values())

    def prune_affinity(self, now: float) -> None:
        """Forget affinities of streams idle for longer than ``affinity_idle_s`` (at most once a second)."""
        if now < self._next_prune:
            return
        self._next_prune = now + 1.0
        stale = [k for k, (_, t) in self._affinity.items() if now - t > self.affinity_idle_s]
        for key in stale:
            del self._affinity[key]

    # -- internals ------------------------------------------------------------------------------------
    def _send(self, stream: _Stream, lane: LaneId, now: float) -> Dispatch:
        work = stream.pending.popleft()
        stream.window.append(work)
        work.attempts += 1
        work.sent_at = now
        self.inflight += 1
        switched = False
        prepared = work.prepared
        if prepared is not None and prepared.sticky:
            owner = self._owner.get(lane)
            switched = prepared.reset_context or (owner is not None and owner != stream.key)
            self._owner[lane] = stream.key
            self._affinity[stream.key] = (lane, now)
        if self.window > 1:
            self._schedule(stream, now)
        return Dispatch(lane, work, switched)

    def _add_output(self, stream: _Stream, output: Output) -> None:
        error = output.error is not None
        for work in output.records:
            work.refs += 1
            if error:
                work.kind = OutputKind.ERROR
            elif work.kind is None:
                work.kind = OutputKind.PREDICTION
        stream.outq.append(output)
        self._publishable(stream)

    def _emit(self, stream: _Stream, work: Work) -> None:
        """Publish the error output of a held record and settle it."""
        assert work.rejection is not None
        work.settled = True
        self._add_output(stream, Output(stream.key, (work,), error=work.rejection))

    def _hold(self, stream: _Stream, work: Work) -> None:
        held = stream.held
        offset = work.source.offset
        i = len(held)
        while i > 0 and held[i - 1].source.offset > offset:
            i -= 1
        held.insert(i, work)
        self._emit_held(stream)

    def _emit_held(self, stream: _Stream) -> None:
        held = stream.held
        while held:
            offset = held[0].source.offset
            if (stream.window and stream.window[0].source.offset < offset) or (
                stream.pending and stream.pending[0].source.offset < offset
            ):
                return
            self._emit(stream, held.popleft())

    def _pop_ready(self, lane: LaneId, now: float) -> _Stream | None:
        for queue in (self._ready_on.get(lane), self._ready):
            while queue:
                stream = queue.popleft()
                stream.scheduled = False
                if not self._dispatchable(stream):
                    continue
                if stream.pending[0].not_before > now:  # its head was lost meanwhile: back off first
                    self._schedule(stream, now)
                    continue
                return stream
        return None

    def _dispatchable(self, stream: _Stream) -> bool:
        if stream.frozen or not stream.pending or len(stream.window) >= self.window:
            return False
        return self._streams.get(stream.key) is stream

    def _schedule(self, stream: _Stream, now: float) -> None:
        if stream.scheduled or not self._dispatchable(stream):
            return
        head = stream.pending[0]
        stream.scheduled = True
        if head.not_before > now:
            self._seq += 1
            heapq.heappush(self._delayed, (head.not_before, self._seq, stream))
            return
        self._enqueue_ready(stream, head, now)

    def _enqueue_ready(self, stream: _Stream, head: Work, now: float) -> None:
        if head.prepared is not None and head.prepared.sticky:
            aff = self._affinity.get(stream.key)
            if aff is not None and aff[0] in self._alive and now - aff[1] <= self.affinity_idle_s:
                self._ready_on.setdefault(aff[0], deque()).append(stream)
                return
        self._ready.append(stream)

    def _promote(self, now: float) -> None:
        delayed = self._delayed
        while delayed and delayed[0][0] <= now:
            _, _, stream = heapq.heappop(delayed)
            stream.scheduled = False
            if self._dispatchable(stream):
                stream.scheduled = True
                self._enqueue_ready(stream, stream.pending[0], now)

    def _publishable(self, stream: _Stream) -> None:
        if stream.publishing or not stream.outq:
            return
        stream.publishing = True
        self.to_publish.append(stream.outq[0])

    def _forget_if_empty(self, stream: _Stream) -> None:
        empty = not (stream.outq or stream.window or stream.pending or stream.held or stream.scheduled)
        if empty and self._streams.get(stream.key) is stream:
            del self._streams[stream.key]
