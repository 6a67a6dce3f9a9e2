"""Which records Hume v1 has finished with: the span ledger (audio) and the frame ledger (video) of a stream.

Boundary: typed protocol events in (:mod:`bridge.upstream.v1.protocol`), settled records and measurement
sources out; no I/O, no clock, no Kafka. The items the caller appends are opaque (type parameter ``R``:
whatever the caller needs to resend or commit a record); the ledger only reads their :class:`Source` and
length. Publishing, acknowledgements and offsets stay with the caller: a settled record counts as done once
the measurements listed in its ``awaiting`` are acknowledged.

Audio (DESIGN.md, "Settlement instead of replies"): records appended in order occupy consecutive spans
``[begin_ms, end_ms)`` of the session's accepted audio (16 samples per ms). Hume's events advance the
settled watermark: ``utterance.start`` to its ``audio_start_ms`` (the silence before it),
``measurement.result`` and ``utterance.end`` to their ``audio_end_ms``, ``session.closed`` with reason
``client_request`` to everything received. A record is settled when the watermark reaches its end.

``session.closed`` for any other reason (server_shutdown, idle_timeout, error) does **not** settle the rest:
Hume delivers due results only on a client's close, and results for audio a session received but had not
measured never arrive; settling those records would count unmeasured speech as silence. They stay
unsettled and go again on the next session (:meth:`AudioLedger.restart`, times from 0 again).

Video: each record brings its frames; frames are sent in order, every sent frame gets exactly one reply in
send order. A record settles when each of its frames has a final reply; replies are released in frame order
so that outputs keep the stream's order even when a frame has to be resent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

from bridge.upstream.v1.protocol import (
    AudioMeasurement,
    AudioReceived,
    CloseReason,
    ErrorAction,
    ServerError,
    SessionClosed,
    UtteranceEnd,
    UtteranceStart,
    VideoMeasurement,
)

R = TypeVar("R")

SAMPLES_PER_MS = 16  # 16 kHz
BYTES_PER_SAMPLE = 2
# A measurement window covers at most the last 10 s of its utterance: settled records further back than
# that behind the watermark can never be a measurement's source again and are forgotten.
WINDOW_MS = 10_000


class RecordOutcome(StrEnum):
    MEASURED = "measured"  # covered by at least one published measurement
    SILENT = "silent"  # settled with no speech (audio) or no face (video)
    ERROR = "error"  # failed: an error outcome is published for it


@dataclass(frozen=True, slots=True)
class Source:
    """Where a record came from, as the outputs name it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    stream_offset_ms: int | None = None  # the hume-stream-offset-ms header: the record's start in the call


@dataclass(frozen=True, slots=True)
class SourceSpan:
    """One entry of a measurement's ``sources``: the record and the span of it the measurement covers,
    in ms from the record's own start."""

    source: Source
    begin_ms: int
    end_ms: int

    def as_json(self) -> dict[str, int | str]:
        s = self.source
        return {
            "topic": s.topic,
            "partition": s.partition,
            "offset": s.offset,
            "timestamp_ms": s.timestamp_ms,
            "begin_ms": self.begin_ms,
            "end_ms": self.end_ms,
        }


@dataclass(frozen=True, slots=True)
class Settled(Generic[R]):
    """A record Hume has finished with. Done once the measurements in ``awaiting`` are acknowledged."""

    item: R
    source: Source
    outcome: RecordOutcome
    awaiting: tuple[int, ...]  # sequence numbers of the measurements covering it (audio) / its frames (video)


@dataclass(frozen=True, slots=True)
class Measured:
    """A measurement to publish: ``seq`` numbers measurements of this stream, across sessions."""

    seq: int
    sources: tuple[SourceSpan, ...]
    stream_ms: tuple[int, int] | None  # {"begin", "end"} when the producers set hume-stream-offset-ms


@dataclass(frozen=True, slots=True)
class AudioUpdate(Generic[R]):
    settled: tuple[Settled[R], ...] = ()
    measured: Measured | None = None


@dataclass(slots=True)
class _AudioEntry(Generic[R]):
    item: R
    source: Source
    samples: int
    begin: int  # in samples of the current session
    end: int
    covering: list[int] = field(default_factory=list)  # measurement seqs, across sessions
    settled: bool = False


def _ms_floor(samples: int) -> int:
    return samples // SAMPLES_PER_MS


def _ms_ceil(samples: int) -> int:
    return -(-samples // SAMPLES_PER_MS)


class AudioLedger(Generic[R]):
    """The span ledger of one audio stream across its sessions."""

    def __init__(self) -> None:
        self._pending: deque[_AudioEntry[R]] = deque()  # unsettled, in order
        self._recent: deque[_AudioEntry[R]] = deque()  # settled, still within a window of the watermark
        self._total = 0  # samples appended in this session
        self._watermark = 0  # samples settled in this session
        self._seq = 0

    # -- feeding -----------------------------------------------------------------------------------------

    def append(self, item: R, source: Source, samples: int) -> tuple[int, int]:
        """Add a record of ``samples`` samples (16 kHz mono); returns its span in ms of this session."""
        if samples < 0:
            raise ValueError("a record cannot have a negative length")
        entry = _AudioEntry(item, source, samples, self._total, self._total + samples)
        self._total += samples
        self._pending.append(entry)
        return _ms_floor(entry.begin), _ms_ceil(entry.end)

    def append_bytes(self, item: R, source: Source, pcm_bytes: int) -> tuple[int, int]:
        """:meth:`append` with the length of 16 kHz s16le mono audio in bytes (must be even)."""
        if pcm_bytes % BYTES_PER_SAMPLE:
            raise ValueError("16-bit audio must have an even number of bytes")
        return self.append(item, source, pcm_bytes // BYTES_PER_SAMPLE)

    # -- Hume's events -----------------------------------------------------------------------------------

    def on_event(self, event: object) -> AudioUpdate[R]:
        """Advance the watermark for one protocol event; other events change nothing."""
        if isinstance(event, UtteranceStart):
            return AudioUpdate(self._advance(event.audio_start_ms * SAMPLES_PER_MS))
        if isinstance(event, UtteranceEnd):
            return AudioUpdate(self._advance(event.audio_end_ms * SAMPLES_PER_MS))
        if isinstance(event, AudioMeasurement):
            measured = self._cover(event.audio_start_ms, event.audio_end_ms)
            return AudioUpdate(self._advance(event.audio_end_ms * SAMPLES_PER_MS), measured)
        if isinstance(event, SessionClosed) and event.reason is CloseReason.CLIENT_REQUEST:
            target = self._total
            if isinstance(event.received, AudioReceived):
                # Hume says how much it took in; anything past that (plus rounding) was never received.
                target = min(target, (event.received.audio_duration_ms + 1) * SAMPLES_PER_MS)
            return AudioUpdate(self._advance(target))
        return AudioUpdate()

    def _cover(self, start_ms: int, end_ms: int) -> Measured:
        self._seq += 1
        seq = self._seq
        lo, hi = start_ms * SAMPLES_PER_MS, min(end_ms * SAMPLES_PER_MS, self._total)
        spans: list[SourceSpan] = []
        stream_begin: int | None = None
        stream_end: int | None = None
        has_stream_times = True
        for entry in (*self._recent, *self._pending):
            a, b = max(lo, entry.begin), min(hi, entry.end)
            if a >= b:
                continue
            entry.covering.append(seq)
            span = SourceSpan(entry.source, _ms_floor(a - entry.begin), _ms_ceil(b - entry.begin))
            spans.append(span)
            offset = entry.source.stream_offset_ms
            if offset is None:
                has_stream_times = False
            else:
                stream_begin = offset + span.begin_ms if stream_begin is None else stream_begin
                stream_end = offset + span.end_ms
        stream_ms = (
            (stream_begin, stream_end)
            if has_stream_times and stream_begin is not None and stream_end is not None
            else None
        )
        return Measured(seq, tuple(spans), stream_ms)

    def _advance(self, target: int) -> tuple[Settled[R], ...]:
        target = min(target, self._total)
        if target > self._watermark:
            self._watermark = target
        settled: list[Settled[R]] = []
        while self._pending and self._pending[0].end <= self._watermark:
            entry = self._pending.popleft()
            entry.settled = True
            outcome = RecordOutcome.MEASURED if entry.covering else RecordOutcome.SILENT
            settled.append(Settled(entry.item, entry.source, outcome, tuple(entry.covering)))
            self._recent.append(entry)
        horizon = self._watermark - WINDOW_MS * SAMPLES_PER_MS
        while self._recent and self._recent[0].end <= horizon:
            self._recent.popleft()
        return tuple(settled)

    # -- lost sessions and failures ----------------------------------------------------------------------

    def restart(self) -> list[R]:
        """A new session: times start at 0 again; the unsettled records, in order, are re-appended at the
        start of the new session's time, and returned for the caller to send again (whole, in this order).

        Measurements that covered them on the lost session still count (outcome MEASURED if settled later).
        """
        again = list(self._pending)
        self._recent.clear()
        self._total = self._watermark = 0
        for entry in again:
            entry.begin, entry.end = self._total, self._total + entry.samples
            self._total = entry.end
        return [entry.item for entry in again]

    def fail_unsettled(self) -> list[Settled[R]]:
        """Give up on every unsettled record (retries exhausted, a final close): outcome ERROR, in order.

        Call it between sessions: the next session's times start at 0, as after :meth:`restart`.
        """
        failed = [Settled(e.item, e.source, RecordOutcome.ERROR, ()) for e in self._pending]
        self._pending.clear()
        self._recent.clear()
        self._total = self._watermark = 0
        return failed

    # -- reading -----------------------------------------------------------------------------------------

    @property
    def unsettled_ms(self) -> float:
        """Audio appended but not settled (for BRIDGE_V1_MAX_UNSETTLED_S and the unsettled-seconds gauge)."""
        return (self._total - self._watermark) / SAMPLES_PER_MS

    @property
    def unsettled_count(self) -> int:
        return len(self._pending)

    @property
    def session_ms(self) -> float:
        """Audio appended to the current session."""
        return self._total / SAMPLES_PER_MS

    @property
    def watermark_ms(self) -> float:
        return self._watermark / SAMPLES_PER_MS

    def unsettled(self) -> list[R]:
        return [entry.item for entry in self._pending]


# --------------------------------------------------------------------------------------------------------
# Video


@dataclass(frozen=True, slots=True)
class FrameRef:
    """One frame to send: the record's position in the ledger and the frame's index within the record."""

    record: int
    frame: int


@dataclass(frozen=True, slots=True)
class FrameResult(Generic[R]):
    """A final reply for one frame, released in frame order: a measurement to publish, or a refusal."""

    item: R
    source: Source
    frame: int
    time_ms: int
    seq: int  # numbers the stream's frame results across sessions
    measurement: VideoMeasurement | None
    error: ServerError | None


@dataclass(frozen=True, slots=True)
class VideoUpdate(Generic[R]):
    results: tuple[FrameResult[R], ...] = ()
    settled: tuple[Settled[R], ...] = ()
    resend: FrameRef | None = None  # send this frame again (at the front), after a wait if rate-limited
    wait: bool = False  # the resend is for rate_limited: wait before it
    unexpected: bool = False  # a reply with no frame in flight (counted by the caller, otherwise ignored)


@dataclass(slots=True)
class _VideoEntry(Generic[R]):
    item: R
    source: Source
    times_ms: tuple[int, ...]
    replies: dict[int, VideoMeasurement | ServerError] = field(default_factory=dict)
    released: int = 0  # frames whose results went out
    seqs: list[int] = field(default_factory=list)  # result seqs of its measured frames


class VideoLedger(Generic[R]):
    """Frames of one video stream: what to send next, which reply is for which frame, what is settled."""

    def __init__(self) -> None:
        self._records: deque[_VideoEntry[R]] = deque()
        self._first = 0  # ledger index of _records[0]
        self._to_send: deque[FrameRef] = deque()
        self._in_flight: deque[FrameRef] = deque()
        self._seq = 0

    def append(self, item: R, source: Source, frame_times_ms: Sequence[int]) -> int:
        """Add a record with its frames (an image is one frame at 0 ms); returns its ledger index."""
        if not frame_times_ms:
            raise ValueError("a video record needs at least one frame")
        index = self._first + len(self._records)
        self._records.append(_VideoEntry(item, source, tuple(frame_times_ms)))
        self._to_send.extend(FrameRef(index, i) for i in range(len(frame_times_ms)))
        return index

    def next_frame(self) -> FrameRef | None:
        """The frame to send next, if any; call :meth:`sent` when it is on its way."""
        return self._to_send[0] if self._to_send else None

    def sent(self, frame: FrameRef) -> None:
        if not self._to_send or self._to_send[0] != frame:
            raise ValueError("frames are sent in the order next_frame gives them")
        self._in_flight.append(self._to_send.popleft())

    def frame_time_ms(self, frame: FrameRef) -> int:
        return self._records[frame.record - self._first].times_ms[frame.frame]

    def on_reply(self, reply: VideoMeasurement | ServerError) -> VideoUpdate[R]:
        """One reply: a measurement, or an error that takes a frame's slot (scope FRAME)."""
        if not self._in_flight:
            return VideoUpdate(unexpected=True)
        frame = self._in_flight.popleft()
        if isinstance(reply, ServerError) and reply.action in (ErrorAction.RESEND_LATER, ErrorAction.RESEND):
            # The frame must go again before anything not yet sent; frames already in flight behind it keep
            # their replies, which are held back until this one is final (results leave in frame order).
            self._to_send.appendleft(frame)
            return VideoUpdate(resend=frame, wait=reply.action is ErrorAction.RESEND_LATER)
        self._records[frame.record - self._first].replies[frame.frame] = reply
        return self._release()

    def _release(self) -> VideoUpdate[R]:
        results: list[FrameResult[R]] = []
        settled: list[Settled[R]] = []
        while self._records:
            entry = self._records[0]
            while entry.released in entry.replies:
                i = entry.released
                reply = entry.replies[i]
                self._seq += 1
                measurement = reply if isinstance(reply, VideoMeasurement) else None
                error = reply if isinstance(reply, ServerError) else None
                results.append(
                    FrameResult(entry.item, entry.source, i, entry.times_ms[i], self._seq, measurement, error)
                )
                if measurement is not None:
                    entry.seqs.append(self._seq)
                entry.released += 1
            if entry.released < len(entry.times_ms):
                break
            self._records.popleft()
            self._first += 1
            settled.append(self._settle(entry))
        return VideoUpdate(tuple(results), tuple(settled))

    @staticmethod
    def _settle(entry: _VideoEntry[R]) -> Settled[R]:
        """Measured if a frame shows a face, silent if frames were measured but none shows one, error if no
        frame could be measured at all."""
        measurements = [r for r in entry.replies.values() if isinstance(r, VideoMeasurement)]
        if not measurements:
            outcome = RecordOutcome.ERROR
        elif any(m.faces for m in measurements):
            outcome = RecordOutcome.MEASURED
        else:
            outcome = RecordOutcome.SILENT
        return Settled(entry.item, entry.source, outcome, tuple(entry.seqs))

    def restart(self) -> list[R]:
        """A new session: frames without a final reply go again, in order (replies of the old session that
        were final are kept). Returns the unsettled records, in order."""
        pending: list[FrameRef] = []
        for k, entry in enumerate(self._records):
            index = self._first + k
            pending.extend(FrameRef(index, i) for i in range(len(entry.times_ms)) if i not in entry.replies)
        self._in_flight.clear()
        self._to_send = deque(pending)
        return [entry.item for entry in self._records]

    def fail_unsettled(self) -> list[Settled[R]]:
        failed = [Settled(e.item, e.source, RecordOutcome.ERROR, ()) for e in self._records]
        self._first += len(self._records)
        self._records.clear()
        self._to_send.clear()
        self._in_flight.clear()
        return failed

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def unsettled_count(self) -> int:
        return len(self._records)
