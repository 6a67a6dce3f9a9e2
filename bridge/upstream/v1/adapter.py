"""The v1 adapter: the core's :class:`~bridge.upstream.adapter.Upstream` over one Hume realtime session per
active stream (topic, partition, key).

    send(work) ─▶ _Stream.queue ─decode (worker threads)─▶ fed to the stream's _Session, in order:
        audio: AudioLedger.append + Pacer.add_audio      video: VideoLedger.append + Pacer.add_video
    one pacing task: Pacer.due(now) ─▶ RealtimeSession.send_media (no task or timer per frame)
    one reader task per session: events ─▶ ledger ─▶ produced(measurement) ─▶ settled(last record)
    session ended: unsettled records ─▶ lost(...) ─▶ the core sends them again, in order, to a new session

The core sends a stream's records in order, at most ``window`` unsettled; the adapter offers one lane whose
capacity bounds the records it holds. Sessions are capped (``BRIDGE_V1_MAX_SESSIONS``): streams beyond the
cap wait, oldest first. A session is closed with ``session.close`` after a ``hume-end-of-stream`` record,
after ``idle_close_s`` without records, when its unsettled audio passes ``max_unsettled_s``, when the
stream changes endpoint, and on drain or revocation; the stream goes on on a new session.

How a session ended decides what becomes of its unsettled records (:func:`protocol.judge_close`):
our close → settled by ``session.closed`` (anything Hume did not receive is sent again, no attempt);
``server_shutdown`` / ``idle_timeout`` → sent again after a jittered reconnect delay, no attempt; a drop
or an error → sent again with the core's jittered backoff, counting an attempt (``RETRIES_EXHAUSTED``
after ``BRIDGE_MAX_ATTEMPTS``). A refused handshake (401/403, 429, 5xx, unreachable) is an outage: the
stream keeps its records (no attempt, no error outcome) and tries again with backoff; the first session
that opens ends the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog

from bridge.config import Config
from bridge.core.backoff import Backoff
from bridge.core.decode import Decoded
from bridge.core.model import (
    Dispatch,
    ErrorInfo,
    Evidence,
    LaneId,
    LossReason,
    OutageReason,
    Output,
    Prepared,
    StreamKey,
    Work,
)
from bridge.errors import Code, ConnectionLost, MediaError
from bridge.metrics import Metrics
from bridge.upstream.adapter import UpstreamEvents
from bridge.upstream.v1 import media
from bridge.upstream.v1.ledger import AudioLedger, RecordOutcome, Settled, Source, VideoLedger
from bridge.upstream.v1.media import Jpeg, MediaLimits, Pcm16k, V1Route, VideoFrames
from bridge.upstream.v1.pacing import BYTES_PER_SECOND, AudioFrame, Pacer, PacingSettings, VideoSlot
from bridge.upstream.v1.protocol import (
    AudioMeasurement,
    AudioSettings,
    CloseReason,
    CloseVerdict,
    Endpoint,
    ErrorAction,
    ErrorScope,
    HandshakeVerdict,
    ServerError,
    VideoMeasurement,
    VideoSettings,
    audio_session_update,
    realtime_url,
    stream_audio_settings,
    video_session_update,
)
from bridge.upstream.v1.session import HandshakeRefused, RealtimeSession, SessionEnded

log = structlog.get_logger("bridge.upstream.v1")

LANE: LaneId = 0
END_OF_STREAM_HEADER = "hume-end-of-stream"
STREAM_OFFSET_HEADER = "hume-stream-offset-ms"
MEASUREMENT_TIMER_HEADER = "hume-measurement-timer-ms"
HOUSEKEEPING_S = 0.25
SEND_TIMEOUT_S = 5.0
MIN_BILLED_S = 10.0
VIDEO_FRAME_BILLED_S = 1.0 / 3.0
_TRUE = (b"1", b"true", b"yes", b"on")


@dataclass(slots=True, eq=False)
class V1Payload:
    """What ``prepare`` makes of a record; the decoded media is cached here so that a record sent again
    after a lost session is not decoded twice."""

    value: bytes
    content_type: str | None
    endpoint: Endpoint
    audio: AudioSettings
    end_of_stream: bool
    stream_offset_ms: int | None
    media: Pcm16k | Jpeg | VideoFrames | None = None
    error: ErrorInfo | None = None


@dataclass(slots=True, eq=False)
class _Entry:
    work: Work
    payload: V1Payload
    source: Source
    fed_at: float = 0.0
    settled: bool = False
    frame_error: ServerError | None = None  # video: the last refusal of one of its frames

    @property
    def ready(self) -> bool:
        return self.payload.media is not None or self.payload.error is not None


class SessionState(StrEnum):
    BACKOFF = "backoff"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    ENDED = "ended"


@dataclass(slots=True, eq=False)
class _Session:
    stream: _Stream
    endpoint: Endpoint
    update: str
    state: SessionState = SessionState.BACKOFF
    rt: RealtimeSession | None = None
    audio: AudioLedger[_Entry] | None = None
    video: VideoLedger[_Entry] | None = None
    order: deque[_Entry] = field(default_factory=deque)  # fed, not yet reported settled, in order
    by_offset: dict[int, _Entry] = field(default_factory=dict)
    jpegs: dict[tuple[int, int], bytes] = field(default_factory=dict)  # (ledger record, frame) -> JPEG
    close_wanted: bool = False
    close_sent: bool = False
    billed_s: float = 0.0
    unsent: int = 0  # frames handed out by the pacer and not yet written to the socket
    done: asyncio.Event = field(default_factory=asyncio.Event)
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # ends a reconnect backoff early

    @property
    def session_id(self) -> str:
        return self.rt.session_id if self.rt is not None else ""

    def unsettled_ms(self) -> float:
        return self.audio.unsettled_ms if self.audio is not None else 0.0


@dataclass(slots=True, eq=False)
class _Stream:
    key: StreamKey
    queue: deque[_Entry] = field(default_factory=deque)  # sent to us, not yet fed to a session, in order
    session: _Session | None = None
    waiting: bool = False
    released: bool = False
    failures: int = 0  # sessions in a row that ended without settling anything, or did not open
    not_before: float = 0.0
    last_record_at: float = 0.0


def _header_int(headers: dict[str, bytes], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = int(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise MediaError(Code.INVALID_HEADER, f"{name} is not an integer") from None
    if value < 0:
        raise MediaError(Code.INVALID_HEADER, f"{name} must not be negative")
    return value


def _decode(payload: V1Payload, limits: MediaLimits) -> Pcm16k | Jpeg | VideoFrames | ErrorInfo:
    """Runs in a worker thread: the record in v1 form, or its error outcome."""
    try:
        return media.prepare(payload.value, payload.content_type, limits)
    except MediaError as exc:
        return ErrorInfo(exc.code, exc.message, "bridge", False)


class V1Upstream:
    """Hume v1 realtime sessions behind the seam."""

    def __init__(
        self,
        config: Config,
        events: UpstreamEvents,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        rnd: random.Random | None = None,
    ) -> None:
        v1 = config.v1
        self.v1 = v1
        self.window = v1.window_records
        self.events = events
        self.metrics = metrics
        self.clock = clock
        self.rnd = rnd or random.Random()
        self.api_key = config.hume.api_key.reveal()
        self.connect_timeout_s = config.hume.connect_timeout_s
        self.urls = {e: realtime_url(config.hume.url, e) for e in Endpoint}
        self.audio_settings = AudioSettings(v1.measurement_timer_ms)
        self.video_update = video_session_update(VideoSettings(v1.face_threshold, v1.face_min_size))
        self.reconnect = Backoff(config.retry.reconnect_initial_s, config.retry.reconnect_max_s)
        self.limits = MediaLimits()
        self.capacity = max(1, config.limits.max_buffered_records)
        self.pacer: Pacer[_Session] = Pacer(PacingSettings(lead_s=v1.pacing_lead_s))
        self.feed_ahead_bytes = int(v1.pacing_lead_s * BYTES_PER_SECOND) + 2 * 3200
        self._streams: dict[StreamKey, _Stream] = {}
        self._waiting: deque[_Stream] = deque()
        self._sessions: set[_Session] = set()
        self._held = 0  # records at the adapter
        self._refused = False
        self._draining = False
        self._stopped = asyncio.Event()
        self._kick = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(v1.decode_workers, thread_name_prefix="v1-decode")
        self._gauged_partitions: set[tuple[str, int]] = set()

    # -- Upstream -------------------------------------------------------------------------------------
    def prepare(self, record: Decoded) -> Prepared:
        headers = record.headers
        raw_type = headers.get("content-type")
        content_type = raw_type.decode("ascii", "replace").strip() if raw_type else None
        route = media.route(record.value, content_type)  # text, facemesh: NOT_OFFERED_BY_API at once
        endpoint = Endpoint.AUDIO if route is V1Route.AUDIO else Endpoint.VIDEO
        audio = stream_audio_settings(self.audio_settings, headers.get(MEASUREMENT_TIMER_HEADER))
        eos = headers.get(END_OF_STREAM_HEADER, b"").strip().lower() in _TRUE
        offset = _header_int(headers, STREAM_OFFSET_HEADER)
        return Prepared(V1Payload(record.value, content_type, endpoint, audio, eos, offset))

    def lanes(self) -> dict[LaneId, int]:
        free = self.capacity - self._held
        busy = self._stopped.is_set() or self._draining  # draining: nothing more is fed
        return {LANE: free} if free > 0 and not busy else {}

    def usable(self) -> int:
        return 0 if self._refused else max(1, self.v1.max_sessions - len(self._sessions))

    def send(self, dispatch: Dispatch, now: float) -> None:
        work = dispatch.work
        assert work.prepared is not None
        payload: V1Payload = work.prepared.payload
        stream = self._streams.get(work.stream)
        if stream is None:
            stream = self._streams[work.stream] = _Stream(work.stream)
        s = work.source
        entry = _Entry(
            work,
            payload,
            Source(s.topic, s.partition, s.offset, s.timestamp_ms or 0, payload.stream_offset_ms),
        )
        stream.queue.append(entry)
        stream.last_record_at = now
        self._held += 1
        if not entry.ready and media.is_native_pcm(payload.value, payload.content_type):
            result = _decode(payload, self.limits)  # no decoding to do: a length check
            if isinstance(result, ErrorInfo):
                payload.error = result
            else:
                payload.media = result
        if not entry.ready:
            fut = asyncio.get_running_loop().run_in_executor(self._executor, _decode, payload, self.limits)
            fut.add_done_callback(lambda f: self._decoded(stream, payload, f))
        self._advance(stream, now)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            self._spawn(self._pace_loop())
            self.events.lane_up(LANE)
            await self._stopped.wait()
            for task in list(self._tasks):
                task.cancel()

    async def close(self) -> None:
        self._stopped.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def drain(self) -> None:
        """Stop feeding every stream and close its session so that due results arrive."""
        self._draining = True
        for stream in list(self._streams.values()):
            self._release(stream)

    def drained(self) -> bool:
        return self._draining and not self._sessions

    def release(self, tps: Iterable[tuple[str, int]]) -> None:
        """Partitions are being revoked: stop feeding their streams and close their sessions."""
        wanted = set(tps)
        for stream in [s for k, s in self._streams.items() if k[:2] in wanted]:
            self._release(stream)

    def released(self, tps: Iterable[tuple[str, int]]) -> bool:
        """No session of these partitions' streams is left (each was closed, so what it received has
        settled or never will); their queued records were not fed and stay for the next owner."""
        wanted = set(tps)
        return not any(s.stream.key[:2] in wanted for s in self._sessions)

    # -- streams --------------------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        assert self._tg is not None
        task = self._tg.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _decoded(self, stream: _Stream, payload: V1Payload, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            return
        result = fut.result()
        if isinstance(result, ErrorInfo):
            payload.error = result
        else:
            payload.media = result
        self._advance(stream, self.clock())

    def _release(self, stream: _Stream) -> None:
        stream.released = True
        if self._streams.get(stream.key) is stream:
            del self._streams[stream.key]
        self._held -= len(stream.queue)
        stream.queue.clear()
        if stream.waiting:
            stream.waiting = False
            with contextlib.suppress(ValueError):
                self._waiting.remove(stream)
        s = stream.session
        if s is not None:
            self._want_close(s)
            if s.state is SessionState.BACKOFF:
                s.wake.set()  # nothing to close: do not sit out the backoff before letting go
        self._gauges()

    def _advance(self, stream: _Stream, now: float) -> None:
        """Carry the stream forward: emit head errors, feed its session, open or close one."""
        s = stream.session
        queue = stream.queue
        while queue and queue[0].payload.error is not None and (s is None or not s.order):
            entry = queue.popleft()
            self._held -= 1
            assert entry.payload.error is not None
            self._emit_error(stream, entry, entry.payload.error)
        if s is None:
            if queue and not stream.waiting and not stream.released:
                self._want_session(stream, now)
            return
        if s.state is SessionState.OPEN and not s.close_wanted:
            self._feed(stream, s, now)
        if s.state is SessionState.OPEN and s.close_wanted and not s.close_sent and self._flushed(s):
            s.close_sent = True
            s.state = SessionState.CLOSING
            self._spawn(self._close_session(s))

    def _feed(self, stream: _Stream, s: _Session, now: float) -> None:
        queue = stream.queue
        max_unsettled_ms = self.v1.max_unsettled_s * 1000
        while queue and queue[0].ready:
            if s.audio is not None and (
                self.pacer.buffered_bytes(s) > self.feed_ahead_bytes or s.unsettled_ms() >= max_unsettled_ms
            ):
                break
            head = queue[0]
            if head.payload.error is None and head.payload.endpoint is not s.endpoint:
                self._want_close(s)  # the stream changed endpoint: go on on a new session
                return
            queue.popleft()
            self._held -= 1
            self._feed_one(s, head, now)
            if head.payload.end_of_stream:
                self._want_close(s)
                return
        if s.unsettled_ms() >= max_unsettled_ms:
            self._want_close(s)

    def _feed_one(self, s: _Session, entry: _Entry, now: float) -> None:
        entry.fed_at = now
        s.order.append(entry)
        s.by_offset[entry.source.offset] = entry
        m = entry.payload.media
        if entry.payload.error is not None:
            self._release_settled(s)
            return
        if isinstance(m, Pcm16k):
            assert s.audio is not None
            s.audio.append_bytes(entry, entry.source, len(m.pcm))
            self.pacer.add_audio(s, m.pcm, now)
        else:
            assert s.video is not None
            assert m is not None
            frames = [m] if isinstance(m, Jpeg) else [f.jpeg for f in m.frames]
            times = [0] if isinstance(m, Jpeg) else [f.time_ms for f in m.frames]
            index = s.video.append(entry, entry.source, times)
            for i, jpeg in enumerate(frames):
                s.jpegs[(index, i)] = jpeg.data
            self.pacer.add_video(s, len(frames), now)
        self._kick.set()

    def _flushed(self, s: _Session) -> bool:
        if s.unsent:
            return False
        if s.audio is not None:
            return self.pacer.buffered_bytes(s) == 0
        return s.video is None or s.video.next_frame() is None

    def _want_close(self, s: _Session) -> None:
        s.close_wanted = True
        if s.state is SessionState.OPEN and not s.close_sent and self._flushed(s):
            s.close_sent = True
            s.state = SessionState.CLOSING
            self._spawn(self._close_session(s))

    def _want_session(self, stream: _Stream, now: float) -> None:
        if len(self._sessions) < self.v1.max_sessions and not self._waiting:
            self._start_session(stream, now)
        else:
            stream.waiting = True
            self._waiting.append(stream)
            self._gauges()

    def _start_session(self, stream: _Stream, now: float) -> None:
        head = next((e for e in stream.queue if e.payload.error is None), None)
        if head is None:
            return
        endpoint = head.payload.endpoint
        update = audio_session_update(head.payload.audio) if endpoint is Endpoint.AUDIO else self.video_update
        s = _Session(stream, endpoint, update)
        stream.session = s
        self._sessions.add(s)
        self._spawn(self._session_task(s, max(0.0, stream.not_before - now)))
        self._gauges()

    def _next_waiting(self) -> None:
        now = self.clock()
        while self._waiting and len(self._sessions) < self.v1.max_sessions:
            stream = self._waiting.popleft()
            stream.waiting = False
            if stream.released or stream.session is not None:
                continue
            if stream.queue:
                self._start_session(stream, now)
        self._gauges()

    # -- one session ----------------------------------------------------------------------------------
    async def _session_task(self, s: _Session, delay_s: float) -> None:
        stream = s.stream
        try:
            if delay_s > 0:  # the jittered reconnect delay, cut short if the stream is released
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay_s):
                        await s.wake.wait()
            if stream.released:
                return
            s.state = SessionState.CONNECTING
            self._gauges()
            try:
                s.rt = await RealtimeSession.open(
                    self.urls[s.endpoint],
                    self.api_key,
                    s.endpoint,
                    s.update,
                    timeout_s=self.connect_timeout_s,
                    keepalive_s=self.v1.keepalive_s,
                )
            except (HandshakeRefused, ConnectionLost) as exc:
                self._open_failed(s, exc)
                return
            if s.endpoint is Endpoint.AUDIO:
                s.audio = AudioLedger()
            else:
                s.video = VideoLedger()
            s.state = SessionState.OPEN
            stream.last_record_at = max(stream.last_record_at, self.clock())
            if self._refused:
                self._refused = False
            self.events.recovered(Evidence.CONNECTED)
            log.debug("v1_session_opened", endpoint=s.endpoint, session_id=s.session_id)
            if stream.released:
                self._want_close(s)
            self._advance(stream, self.clock())
            async for event in s.rt.events():
                self._on_event(s, event)
            assert s.rt.ended is not None
            self._ended(s, s.rt.ended)
        finally:
            s.done.set()
            if s.state is not SessionState.ENDED:
                self._forget_session(s)
                if s.rt is not None:
                    await s.rt.abort()

    def _forget_session(self, s: _Session) -> None:
        s.state = SessionState.ENDED
        self._sessions.discard(s)
        self.pacer.remove(s)
        if s.stream.session is s:
            s.stream.session = None
        if s.billed_s > 0:
            self.metrics.usage_seconds_total.labels(endpoint=s.endpoint, mode="realtime").inc(
                max(0.0, MIN_BILLED_S - s.billed_s)
            )
        self._next_waiting()

    async def _close_session(self, s: _Session) -> None:
        """session.close, then wait for Hume to finish under the close deadline (else drop it)."""
        if s.rt is None:
            return
        await s.rt.close(timeout_s=SEND_TIMEOUT_S)
        try:
            async with asyncio.timeout(self.v1.close_timeout_s):
                await s.done.wait()
        except TimeoutError:
            log.warning("v1_session_close_timeout", session_id=s.session_id)
            await s.rt.abort()

    def _open_failed(self, s: _Session, exc: HandshakeRefused | ConnectionLost) -> None:
        stream = s.stream
        self._forget_session(s)
        stream.failures += 1
        now = self.clock()
        stream.not_before = now + self.reconnect.delay(stream.failures - 1, self.rnd)
        self.metrics.reconnects_total.labels(
            reason="refused" if isinstance(exc, HandshakeRefused) else "handshake_failed"
        ).inc()
        if isinstance(exc, HandshakeRefused) and exc.verdict is HandshakeVerdict.KEY_REFUSED:
            self._refused = True
            self.events.outage_began(OutageReason.KEY_REFUSED, f"Hume refused the key: HTTP {exc.status}")
        elif isinstance(exc, HandshakeRefused):
            self.events.outage_began(OutageReason.UNREACHABLE, f"Hume refused a session: HTTP {exc.status}")
        else:
            self.events.outage_began(OutageReason.UNREACHABLE, str(exc))
        log.info("v1_session_refused", error=str(exc), retry_in_s=round(stream.not_before - now, 3))
        self._advance(stream, now)

    def _ended(self, s: _Session, ended: SessionEnded) -> None:
        stream = s.stream
        now = self.clock()
        # session.closed, if it came, was an event already: what it settled is settled.
        unsettled = [e for e in s.order if not e.settled]
        self._forget_session(s)
        reason_text = ended.closed.reason if ended.closed is not None else None
        verdict = ended.verdict
        log.info(
            "v1_session_ended",
            endpoint=s.endpoint,
            session_id=s.session_id,
            verdict=verdict,
            reason=reason_text,
            close_code=ended.close_code,
            unsettled=len(unsettled),
        )
        if stream.released:
            return
        if not unsettled:
            stream.failures = 0
            self._advance(stream, now)
            return
        if verdict is CloseVerdict.DONE:
            loss = LossReason.CLOSED_BY_US
        elif reason_text in (CloseReason.SERVER_SHUTDOWN, CloseReason.IDLE_TIMEOUT):
            loss = LossReason.CLOSED_BY_US
            self.metrics.reconnects_total.labels(
                reason="idle_timeout" if reason_text is CloseReason.IDLE_TIMEOUT else "recycled"
            ).inc()
        elif verdict is CloseVerdict.FINAL:
            loss = LossReason.HUME_ERROR
        else:
            loss = LossReason.CONNECTION_LOST
            self.metrics.reconnects_total.labels(reason="dropped").inc()
        if verdict is not CloseVerdict.DONE:
            stream.failures += 1
            stream.not_before = now + self.reconnect.delay(stream.failures - 1, self.rnd)
        code = ended.last_error.code if ended.last_error is not None else "SESSION_ENDED"
        detail = f"session ended ({reason_text or f'close code {ended.close_code}'}) with records unsettled"
        works = [e.work for e in unsettled] + [e.work for e in stream.queue]
        self._held -= len(stream.queue)
        stream.queue.clear()
        self.events.lost(works, loss, ErrorInfo(code, detail, "hume", True))

    # -- Hume's events --------------------------------------------------------------------------------
    def _on_event(self, s: _Session, event: object) -> None:
        now = self.clock()
        if isinstance(event, ServerError):
            self.metrics.hume_errors_total.labels(code=event.code).inc()
            if event.action is ErrorAction.RESEND_LATER and s.audio is not None:
                self.metrics.v1_rate_limited_total.labels(endpoint=s.endpoint).inc()
                self.pacer.rate_limited(s, now)
                self._kick.set()
                return
            if s.video is not None and event.scope is ErrorScope.FRAME:
                self._video_reply(s, event, now)
            elif event.scope is not ErrorScope.MESSAGE or event.code != "rate_limited":
                log.info("v1_hume_error", code=event.code, session_id=s.session_id, scope=event.scope)
            return
        if s.audio is not None:
            update = s.audio.on_event(event)
            if update.measured is not None and isinstance(event, AudioMeasurement):
                self._produce_audio(s, update.measured, event)
            self._mark(s, update.settled, now)
            self._release_settled(s)
        elif isinstance(event, VideoMeasurement) and s.video is not None:
            self._video_reply(s, event, now)

    def _produce_audio(self, s: _Session, measured: Any, event: AudioMeasurement) -> None:
        records: list[Work] = []
        for span in measured.sources:
            entry = s.by_offset.get(span.source.offset)
            if entry is not None and not entry.settled:
                records.append(entry.work)
        if not records:
            log.warning("v1_measurement_without_unsettled_record", session_id=s.session_id)
            return
        fields: dict[str, Any] = {
            "api": "v1",
            "endpoint": "audio",
            "mode": "realtime",
            "session_id": s.session_id,
            "measurement": dict(event.raw),
            "sources": [span.as_json() for span in measured.sources],
        }
        if measured.stream_ms is not None:
            fields["stream_ms"] = {"begin": measured.stream_ms[0], "end": measured.stream_ms[1]}
        self.events.produced(Output(s.stream.key, tuple(records), fields))

    def _video_reply(self, s: _Session, reply: VideoMeasurement | ServerError, now: float) -> None:
        assert s.video is not None
        update = s.video.on_reply(reply)
        if update.resend is not None:
            if update.wait:
                self.metrics.v1_rate_limited_total.labels(endpoint=s.endpoint).inc()
                self.pacer.rate_limited(s, now)
            else:
                self.pacer.add_video(s, 1, now)
            self._kick.set()
        for result in update.results:
            entry = result.item
            if result.measurement is None:
                entry.frame_error = result.error
                continue
            src = result.source
            fields: dict[str, Any] = {
                "api": "v1",
                "endpoint": "video",
                "mode": "realtime",
                "session_id": s.session_id,
                "measurement": dict(result.measurement.raw),
                "sources": [
                    {
                        "topic": src.topic,
                        "partition": src.partition,
                        "offset": src.offset,
                        "timestamp_ms": src.timestamp_ms,
                        "begin_ms": result.time_ms,
                        "end_ms": result.time_ms,
                    }
                ],
            }
            if src.stream_offset_ms is not None:
                t = src.stream_offset_ms + result.time_ms
                fields["stream_ms"] = {"begin": t, "end": t}
            self.events.produced(Output(s.stream.key, (entry.work,), fields))
        for settled in update.settled:
            if settled.outcome is RecordOutcome.ERROR:
                err = settled.item.frame_error
                code = err.code if err is not None else "invalid_image_frame"
                message = err.message if err is not None else "no frame of the record could be measured"
                settled.item.payload.error = ErrorInfo(code, message, "hume", False)
        self._mark(s, update.settled, now)
        self._release_settled(s)

    def _mark(self, s: _Session, settled: tuple[Settled[_Entry], ...], now: float) -> None:
        for item in settled:
            entry = item.item
            entry.settled = True
            self.metrics.v1_settlement_seconds.observe(max(0.0, now - entry.fed_at))
        if settled:
            s.stream.failures = 0

    def _release_settled(self, s: _Session) -> None:
        """Report settled the records at the head of the session's order (errors emitted in their turn)."""
        last: Work | None = None
        order = s.order
        while order and (order[0].settled or order[0].payload.error is not None):
            entry = order.popleft()
            s.by_offset.pop(entry.source.offset, None)
            error = entry.payload.error
            if error is not None:
                if last is not None:
                    self.events.settled(last)
                    last = None
                self._emit_error(s.stream, entry, error)
                continue
            last = entry.work
        if last is not None:
            self.events.settled(last)

    def _emit_error(self, stream: _Stream, entry: _Entry, error: ErrorInfo) -> None:
        self.events.produced(Output(stream.key, (entry.work,), error=error))
        self.events.settled(entry.work)

    # -- pacing ---------------------------------------------------------------------------------------
    async def _pace_loop(self) -> None:
        pacer = self.pacer
        next_tick = 0.0
        while True:
            now = self.clock()
            wake = pacer.next_wakeup()
            until = next_tick if wake is None else min(wake, next_tick)
            if until > now:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(until - now):
                        await self._kick.wait()
            self._kick.clear()
            now = self.clock()
            touched: set[_Session] = set()
            due = pacer.due(now)
            for item in due:
                item.stream.unsent += 1
            for item in due:
                await self._send_frame(item, now)
                item.stream.unsent -= 1
                touched.add(item.stream)
            for s in touched:
                if s.state is not SessionState.ENDED:
                    self._advance(s.stream, self.clock())
            if now >= next_tick:
                next_tick = now + HOUSEKEEPING_S
                self._housekeeping(now)

    async def _send_frame(self, item: AudioFrame[_Session] | VideoSlot[_Session], now: float) -> None:
        s = item.stream
        rt = s.rt
        if rt is None or s.state not in (SessionState.OPEN, SessionState.CLOSING):
            return
        if isinstance(item, AudioFrame):
            data = item.data
            if not item.resend:
                s.billed_s += len(data) / BYTES_PER_SECOND
                self.metrics.usage_seconds_total.labels(endpoint="audio", mode="realtime").inc(
                    len(data) / BYTES_PER_SECOND
                )
        else:
            assert s.video is not None
            frame = s.video.next_frame()
            if frame is None:
                return
            s.video.sent(frame)
            data = s.jpegs[(frame.record, frame.frame)]
            if not item.resend:
                s.billed_s += VIDEO_FRAME_BILLED_S
                self.metrics.usage_seconds_total.labels(endpoint="video", mode="realtime").inc(
                    VIDEO_FRAME_BILLED_S
                )
        self.metrics.v1_frames_sent_total.labels(endpoint=s.endpoint).inc()
        self.metrics.v1_pacing_lag_seconds.observe(item.lag_s)
        with contextlib.suppress(ConnectionLost):
            await rt.send_media(data, timeout_s=SEND_TIMEOUT_S)  # a lost session ends its reader

    def _housekeeping(self, now: float) -> None:
        idle = self.v1.idle_close_s
        for s in list(self._sessions):
            stream = s.stream
            if s.state is not SessionState.OPEN or s.close_wanted:
                continue
            if not stream.queue and self._flushed(s) and now - stream.last_record_at >= idle:
                self._want_close(s)
        self._gauges()

    def _gauges(self) -> None:
        m = self.metrics
        counts = dict.fromkeys(("connecting", "idle", "busy", "backoff", "closed"), 0)
        unsettled: dict[tuple[str, int], float] = {}
        for s in self._sessions:
            if s.state is SessionState.CONNECTING:
                counts["connecting"] += 1
            elif s.state is SessionState.BACKOFF:
                counts["backoff"] += 1
            elif s.state in (SessionState.OPEN, SessionState.CLOSING):
                counts["busy" if s.order else "idle"] += 1
            tp = (s.stream.key[0], s.stream.key[1])
            unsettled[tp] = unsettled.get(tp, 0.0) + s.unsettled_ms() / 1000
        for state, n in counts.items():
            m.sessions_by_state[state].set(n)
        m.v1_streams_waiting.set(len(self._waiting))
        for tp in self._gauged_partitions - set(unsettled):
            m.v1_unsettled_audio_seconds.labels(topic=tp[0], partition=str(tp[1])).set(0)
        for tp, seconds in unsettled.items():
            m.v1_unsettled_audio_seconds.labels(topic=tp[0], partition=str(tp[1])).set(seconds)
        self._gauged_partitions = set(unsettled)
