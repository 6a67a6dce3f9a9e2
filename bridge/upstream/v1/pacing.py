"""One scheduler for every v1 stream: audio frames at real time, video frames at no more than 3 per second.

Boundary: PCM bytes, "a frame is ready" and "rate_limited" in, with ``now`` passed in; the frames due at
``now`` and the next wake-up time out. No sockets, no clock, no tasks: one heap ordered by due time holds
one entry per stream with work, so the shell needs a single loop (sleep until :meth:`Pacer.next_wakeup`,
send what :meth:`Pacer.due` returns), however many streams there are.

Audio: each stream's PCM (16 kHz mono s16le) is cut into frames of up to ``frame_bytes`` (3,200 bytes =
100 ms), cut anywhere on a sample boundary, and paced by a token bucket that fills at real time (32,000
bytes per second) and holds at most ``lead_s`` of audio: in any interval a stream sends at most the
interval's length of audio plus the lead, idle time is never banked beyond the lead, and the first frames
of a stream go at once. ``rate_limited`` puts the frame last handed out for that stream back at the front,
to go again after ``rate_limited_wait_s`` (its tokens are refunded: Hume did not take it), so Hume receives
each stream's bytes exactly once, in order, without a gap.

Video: a stream tells the pacer how many frames it has ready; the pacer hands out send slots at least
``1 / video_fps`` apart per stream (which frame to send is the ledger's business).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

BYTES_PER_SECOND = 32_000  # 16 kHz s16le mono
FRAME_BYTES = 3_200  # 100 ms
MAX_FRAME_BYTES = 320_000  # Hume refuses frames over 10 s


@dataclass(frozen=True, slots=True)
class PacingSettings:
    frame_bytes: int = FRAME_BYTES
    lead_s: float = 0.1  # how far ahead of real time a stream may run (at least one frame)
    rate_limited_wait_s: float = 0.25
    video_fps: float = 3.0

    def problems(self, prefix: str = "BRIDGE_V1_") -> list[str]:
        """What is wrong with these settings (for the start-up ConfigError), empty if nothing."""
        out: list[str] = []
        if self.frame_bytes <= 0 or self.frame_bytes % 2 or self.frame_bytes > MAX_FRAME_BYTES:
            out.append(f"{prefix}FRAME_BYTES={self.frame_bytes}: must be even, 2..{MAX_FRAME_BYTES}")
        if self.lead_s * BYTES_PER_SECOND < self.frame_bytes:
            out.append(f"{prefix}PACING_LEAD_S={self.lead_s}: must hold at least one frame")
        if self.rate_limited_wait_s < 0:
            out.append(f"{prefix}RATE_LIMITED_WAIT_S={self.rate_limited_wait_s}: must be >= 0")
        if not 0 < self.video_fps <= 3:
            out.append(f"{prefix}VIDEO_FPS={self.video_fps}: must be above 0 and at most 3")
        return out


class StreamKind(StrEnum):
    AUDIO = "audio"
    VIDEO = "video"


@dataclass(frozen=True, slots=True)
class AudioFrame(Generic[K]):
    """Send ``data`` as one binary message on ``stream``'s session."""

    stream: K
    data: bytes
    offset: int  # bytes of this stream handed out before it (a resent frame keeps its offset)
    due: float
    lag_s: float  # how late it goes out: now - due, for the pacing lag histogram
    resend: bool


@dataclass(frozen=True, slots=True)
class VideoSlot(Generic[K]):
    """Send ``stream``'s next frame now."""

    stream: K
    due: float
    lag_s: float
    resend: bool


class _Audio:
    __slots__ = (
        "buffer",
        "capacity",
        "held",
        "last",
        "last_offset",
        "not_before",
        "offset",
        "tokens",
        "updated",
        "version",
    )

    def __init__(self, capacity: float, now: float) -> None:
        self.buffer: deque[bytes] = deque()  # fed chunks, not yet cut
        self.capacity = capacity
        self.tokens = capacity  # a new stream may send its first frames at once
        self.updated = now
        self.held: tuple[bytes, int] | None = None  # a refused frame to resend first, with its offset
        self.last: tuple[bytes, int] | None = None  # the frame handed out last, with its offset
        self.last_offset = 0
        self.offset = 0  # bytes cut so far
        self.not_before = now
        self.version = 0

    def buffered(self) -> int:
        return sum(len(c) for c in self.buffer) + (len(self.held[0]) if self.held else 0)

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * BYTES_PER_SECOND)
            self.updated = now

    def next_size(self, frame_bytes: int) -> int:
        if self.held is not None:
            return len(self.held[0])
        return min(frame_bytes, sum(len(c) for c in self.buffer))

    def due(self, frame_bytes: int) -> float | None:
        size = self.next_size(frame_bytes)
        if size == 0:
            return None
        wait = max(0.0, size - self.tokens) / BYTES_PER_SECOND
        return max(self.not_before, self.updated + wait)

    def cut(self, frame_bytes: int) -> tuple[bytes, int, bool]:
        if self.held is not None:
            data, offset = self.held
            self.held = None
            return data, offset, True
        parts: list[bytes] = []
        size = 0
        while self.buffer and size < frame_bytes:
            chunk = self.buffer.popleft()
            take = min(len(chunk), frame_bytes - size)
            parts.append(chunk[:take])
            if take < len(chunk):
                self.buffer.appendleft(chunk[take:])
            size += take
        offset = self.offset
        self.offset += size
        return b"".join(parts), offset, False


class _Video:
    __slots__ = ("interval", "last_slot", "not_before", "ready", "resends", "version")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.ready = 0
        self.resends = 0
        self.last_slot: float | None = None
        self.not_before = float("-inf")
        self.version = 0

    def due(self, now: float) -> float | None:
        if self.ready <= 0:
            return None
        earliest = now if self.last_slot is None else self.last_slot + self.interval
        return max(earliest, self.not_before)


class Pacer(Generic[K]):
    """The scheduler of all streams of one process (or of one event loop)."""

    def __init__(self, settings: PacingSettings | None = None) -> None:
        self.settings = settings or PacingSettings()
        problems = self.settings.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self._audio: dict[K, _Audio] = {}
        self._video: dict[K, _Video] = {}
        self._heap: list[tuple[float, int, K]] = []  # (due, ticket, stream)
        self._tickets = itertools.count(1)

    # -- feeding -----------------------------------------------------------------------------------------

    def add_audio(self, stream: K, pcm: bytes, now: float) -> None:
        """Queue 16 kHz mono s16le for ``stream`` (a whole number of samples)."""
        if len(pcm) % 2:
            raise ValueError("16-bit PCM must have an even number of bytes")
        if stream in self._video:
            raise ValueError("a stream is audio or video, not both")
        state = self._audio.get(stream)
        if state is None:
            state = self._audio[stream] = _Audio(self.settings.lead_s * BYTES_PER_SECOND, now)
        if pcm:
            state.buffer.append(pcm)
            self._schedule_audio(stream, state, now)

    def add_video(self, stream: K, frames: int, now: float) -> None:
        """``frames`` more frames of ``stream`` are ready to send."""
        if stream in self._audio:
            raise ValueError("a stream is audio or video, not both")
        state = self._video.get(stream)
        if state is None:
            state = self._video[stream] = _Video(1.0 / self.settings.video_fps)
        state.ready += frames
        self._schedule_video(stream, state, now)

    def rate_limited(self, stream: K, now: float) -> bool:
        """Hume refused the frame last handed out for ``stream``: send the same one again after a wait.

        Returns False (and changes nothing) when there is no such frame (already requeued, or unknown).
        """
        wait = self.settings.rate_limited_wait_s
        audio = self._audio.get(stream)
        if audio is not None:
            if audio.last is None:
                return False
            audio.refill(now)
            audio.tokens = min(audio.capacity, audio.tokens + len(audio.last[0]))
            audio.held, audio.last = audio.last, None
            audio.not_before = now + wait
            self._schedule_audio(stream, audio, now)
            return True
        video = self._video.get(stream)
        if video is None or video.last_slot is None:
            return False
        video.ready += 1
        video.resends += 1
        video.not_before = now + wait
        self._schedule_video(stream, video, now)
        return True

    def remove(self, stream: K) -> int:
        """Forget ``stream`` (session lost, stream closed); returns the audio bytes it still held, unsent."""
        self._video.pop(stream, None)
        audio = self._audio.pop(stream, None)
        # Heap entries of a removed stream are stale: they are skipped when popped.
        return audio.buffered() if audio is not None else 0

    # -- reading -----------------------------------------------------------------------------------------

    def due(self, now: float) -> list[AudioFrame[K] | VideoSlot[K]]:
        """Every frame due at ``now``, earliest first; each stream's next one is scheduled."""
        out: list[AudioFrame[K] | VideoSlot[K]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, version, stream = heapq.heappop(heap)
            audio = self._audio.get(stream)
            if audio is not None:
                if audio.version != version:
                    continue
                audio.refill(now)
                data, offset, resend = audio.cut(self.settings.frame_bytes)
                audio.tokens -= len(data)
                audio.last = (data, offset)
                out.append(AudioFrame(stream, data, offset, due, max(0.0, now - due), resend))
                self._schedule_audio(stream, audio, now)
                continue
            video = self._video.get(stream)
            if video is None or video.version != version:
                continue
            video.ready -= 1
            resend = video.resends > 0
            if resend:
                video.resends -= 1
            video.last_slot = now
            out.append(VideoSlot(stream, due, max(0.0, now - due), resend))
            self._schedule_video(stream, video, now)
        return out

    def next_wakeup(self) -> float | None:
        """When :meth:`due` will next have something, or None when no stream has work."""
        heap = self._heap
        while heap:
            due, version, stream = heap[0]
            state: _Audio | _Video | None = self._audio.get(stream) or self._video.get(stream)
            if state is not None and state.version == version:
                return due
            heapq.heappop(heap)
        return None

    def buffered_bytes(self, stream: K) -> int:
        """Audio of ``stream`` fed but not yet handed out (0 for video and unknown streams)."""
        audio = self._audio.get(stream)
        return audio.buffered() if audio is not None else 0

    def kind(self, stream: K) -> StreamKind | None:
        if stream in self._audio:
            return StreamKind.AUDIO
        if stream in self._video:
            return StreamKind.VIDEO
        return None

    def __len__(self) -> int:
        return len(self._audio) + len(self._video)

    # -- scheduling --------------------------------------------------------------------------------------

    # A stream's heap entry is valid while its ``version`` equals the entry's ticket; tickets are unique
    # across streams and time, so a removed and re-added stream never revives a stale entry.

    def _schedule_audio(self, stream: K, state: _Audio, now: float) -> None:
        state.refill(now)
        state.version = ticket = next(self._tickets)
        due = state.due(self.settings.frame_bytes)
        if due is not None:
            heapq.heappush(self._heap, (due, ticket, stream))

    def _schedule_video(self, stream: K, state: _Video, now: float) -> None:
        state.version = ticket = next(self._tickets)
        due = state.due(now)
        if due is not None:
            heapq.heappush(self._heap, (due, ticket, stream))
