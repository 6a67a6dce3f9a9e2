"""Per-stream ordering and routing to sessions.

Each stream (records sharing a key in one partition) is a FIFO of work items. At most one request per
stream is at Hume at a time, and a stream's outcomes are handed to the producer one at a time, in input
order, each only after the previous one was acknowledged; so a stream's outcomes land in input order
through retries, reconnects and rebalances. Streams never wait for each other: a slow or failing stream
holds back only itself.

Routing: a stream whose head needs audio context keeps *affinity* to the session it last used while it
stays active, so Hume's per-connection audio window keeps its own audio. A session that is handed audio
of a different stream than the one whose audio it last carried gets ``reset_stream`` with it, so no
stream ever hears another's audio. Other streams go to any free session, oldest-ready first.

Retries: a request that failed on the connection (dropped, timed out) is retried after a jittered
backoff, with the same ``payload_id``, at the head of its stream; after ``max_attempts`` it becomes an
error outcome. Pure: no I/O, no clock; ``now`` comes from the caller.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from bridge.core.backoff import Backoff
from bridge.core.model import ErrorInfo, Outcome, StreamKey, Work
from bridge.errors import Code

SessionId = int


@dataclass(slots=True, eq=False)
class _Stream:
    key: StreamKey
    unacked: deque[Work] = field(default_factory=deque)  # every work not yet acknowledged, in order
    pending: deque[Work] = field(default_factory=deque)  # works that still need Hume, in order
    inflight: Work | None = None
    publishing: bool = False  # unacked[0] was handed out for publishing and is not acknowledged yet
    scheduled: bool = False  # in the ready queues or the delay heap
    frozen: bool = False  # its partition is being revoked: dispatch nothing more


@dataclass(frozen=True, slots=True)
class Dispatch:
    session: SessionId
    work: Work
    reset_stream: bool


class Router:
    """Streams, their order, their retries and their sessions."""

    def __init__(
        self,
        *,
        max_attempts: int,
        retry_backoff: Backoff,
        affinity_idle_s: float,
        rnd: random.Random | None = None,
    ) -> None:
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.affinity_idle_s = affinity_idle_s
        self.rnd = rnd or random.Random()
        self._streams: dict[StreamKey, _Stream] = {}
        self._ready: deque[_Stream] = deque()
        self._ready_on: dict[SessionId, deque[_Stream]] = {}
        self._delayed: list[tuple[float, int, _Stream]] = []
        self._seq = 0
        self._alive: set[SessionId] = set()
        self._owner: dict[SessionId, StreamKey] = {}  # whose audio each session's window holds
        self._affinity: dict[StreamKey, tuple[SessionId, float]] = {}  # stream -> (session, last used)
        self.inflight = 0
        self._next_prune = 0.0

    # -- sessions -------------------------------------------------------------------------------------
    def session_up(self, sid: SessionId) -> None:
        """A fresh connection: no audio window yet."""
        self._alive.add(sid)
        self._owner.pop(sid, None)

    def session_down(self, sid: SessionId) -> None:
        """The connection is gone with its audio window; streams waiting for it may go elsewhere."""
        self._alive.discard(sid)
        self._owner.pop(sid, None)
        waiting = self._ready_on.pop(sid, None)
        if waiting:
            self._ready.extend(waiting)

    # -- admission and outcomes -----------------------------------------------------------------------
    def admit(self, work: Work, now: float) -> list[Work]:
        """Queue a work item; returns works whose outcome may be published now."""
        stream = self._streams.get(work.stream)
        if stream is None:
            stream = self._streams[work.stream] = _Stream(work.stream)
        stream.unacked.append(work)
        if work.outcome is None:
            stream.pending.append(work)
            self._schedule(stream, now)
        return self._publishable(stream)

    def complete(self, work: Work, outcome: Outcome, now: float) -> list[Work]:
        """Hume answered for ``work`` (predictions or a final error)."""
        stream = self._release(work)
        work.outcome = outcome
        if stream is None:
            return []
        stream.pending.popleft()
        self._schedule(stream, now)
        return self._publishable(stream)

    def fail(self, work: Work, error: ErrorInfo, now: float, *, count_attempt: bool = True) -> list[Work]:
        """The request was lost (connection dropped, reply timed out, session recycled).

        Counted failures back off and retry, up to ``max_attempts``; uncounted ones (a session we closed
        ourselves, an upstream outage) go back to the head of the stream at once."""
        stream = self._release(work)
        if stream is None:
            return []
        if count_attempt:
            if work.attempts >= self.max_attempts:
                stream.pending.popleft()
                work.outcome = Outcome(
                    error=ErrorInfo(
                        Code.RETRIES_EXHAUSTED,
                        f"gave up after {work.attempts} attempts; last error {error.code}: {error.message}",
                        "bridge",
                        True,
                    )
                )
                self._schedule(stream, now)
                return self._publishable(stream)
            work.not_before = now + self.retry_backoff.delay(work.attempts - 1, self.rnd)
        else:
            work.attempts = max(0, work.attempts - 1)
            work.not_before = now
        self._schedule(stream, now)
        return []

    def acked(self, work: Work, now: float) -> list[Work]:
        """The broker acknowledged ``work``'s outcome; returns the stream's next publishable work."""
        stream = self._streams.get(work.stream)
        if stream is None or not stream.unacked or stream.unacked[0] is not work:
            return []
        stream.unacked.popleft()
        stream.publishing = False
        out = self._publishable(stream)
        self._forget_if_empty(stream)
        return out

    def publish_failed(self, work: Work) -> list[Work]:
        """The producer gave up on ``work``'s outcome: hand it back to be published again."""
        stream = self._streams.get(work.stream)
        if stream is None or not stream.unacked or stream.unacked[0] is not work:
            return []
        stream.publishing = False
        return self._publishable(stream)

    # -- dispatch -------------------------------------------------------------------------------------
    def dispatch(self, free: dict[SessionId, int], now: float, limit: int | None = None) -> list[Dispatch]:
        """Assign ready streams to free session capacity (``free``: session -> free request slots)."""
        self._promote(now)
        out: list[Dispatch] = []
        budget = limit if limit is not None else 1 << 30
        for sid, slots in free.items():
            if sid not in self._alive:
                continue
            while slots > 0 and budget > 0:
                stream = self._pop_ready(sid)
                if stream is None:
                    break
                work = stream.pending[0]
                out.append(self._send(stream, work, sid, now))
                slots -= 1
                budget -= 1
            if budget <= 0:
                break
        return out

    def _pop_ready(self, sid: SessionId) -> _Stream | None:
        own = self._ready_on.get(sid)
        while own:
            stream = own.popleft()
            stream.scheduled = False
            if self._dispatchable(stream):
                return stream
        while self._ready:
            stream = self._ready.popleft()
            stream.scheduled = False
            if self._dispatchable(stream):
                return stream
        return None

    def _send(self, stream: _Stream, work: Work, sid: SessionId, now: float) -> Dispatch:
        stream.inflight = work
        work.attempts += 1
        work.sent_at = now
        self.inflight += 1
        reset = False
        request = work.request
        if request is not None and request.audio_context:
            owner = self._owner.get(sid)
            reset = request.reset_stream or (owner is not None and owner != stream.key)
            self._owner[sid] = stream.key
            self._affinity[stream.key] = (sid, now)
        return Dispatch(sid, work, reset)

    def next_wakeup(self) -> float | None:
        """When the earliest backed-off request becomes ready again, if any."""
        return self._delayed[0][0] if self._delayed else None

    # -- revocation -----------------------------------------------------------------------------------
    def freeze(self, tps: Iterable[tuple[str, int]]) -> list[Work]:
        """Stop dispatching the streams of revoked partitions; drop their queued (not in-flight) work.
        Returns the works still at Hume or with the producer, which the shell may wait for."""
        wanted = set(tps)
        busy: list[Work] = []
        for stream in list(self._streams.values()):
            if stream.key[:2] not in wanted:
                continue
            stream.frozen = True
            if stream.inflight is not None:
                busy.append(stream.inflight)
            if stream.publishing and stream.unacked:
                busy.append(stream.unacked[0])
        return busy

    def is_busy(self, work: Work) -> bool:
        """True while ``work`` is at Hume or its outcome is with the producer."""
        stream = self._streams.get(work.stream)
        if stream is None:
            return False
        return stream.inflight is work or (
            stream.publishing and bool(stream.unacked) and stream.unacked[0] is work
        )

    def drop(self, tps: Iterable[tuple[str, int]]) -> list[Work]:
        """Forget every stream of the given partitions; returns the works dropped unacknowledged."""
        wanted = set(tps)
        dropped: list[Work] = []
        for key in [k for k in self._streams if k[:2] in wanted]:
            stream = self._streams.pop(key)
            dropped.extend(stream.unacked)
            if stream.inflight is not None:
                self.inflight -= 1
                stream.inflight = None
            self._affinity.pop(key, None)
        return dropped

    def prune_affinity(self, now: float) -> None:
        """Forget affinities of streams idle for longer than ``affinity_idle_s`` (at most once a second)."""
        if now < self._next_prune:
            return
        self._next_prune = now + 1.0
        stale = [k for k, (_, t) in self._affinity.items() if now - t > self.affinity_idle_s]
        for key in stale:
            del self._affinity[key]

    # -- introspection --------------------------------------------------------------------------------
    # -- internals ------------------------------------------------------------------------------------
    def _release(self, work: Work) -> _Stream | None:
        stream = self._streams.get(work.stream)
        if stream is None or stream.inflight is not work:
            return None
        stream.inflight = None
        self.inflight -= 1
        return stream

    def _dispatchable(self, stream: _Stream) -> bool:
        return (
            not stream.frozen
            and stream.inflight is None
            and bool(stream.pending)
            and self._streams.get(stream.key) is stream
        )

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
        if head.request is not None and head.request.audio_context:
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

    def _publishable(self, stream: _Stream) -> list[Work]:
        if stream.publishing or not stream.unacked:
            return []
        head = stream.unacked[0]
        if head.outcome is None:
            return []
        stream.publishing = True
        return [head]

    def _forget_if_empty(self, stream: _Stream) -> None:
        if not stream.unacked and stream.inflight is None and not stream.scheduled:
            self._streams.pop(stream.key, None)
