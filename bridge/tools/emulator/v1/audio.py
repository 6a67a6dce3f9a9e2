"""Audio: speech detection, utterances and measurements (pure), and the realtime session's rules.

Speech detection works on the accepted audio in consecutive **20 ms windows** (320 samples, from the start of
the session). A window is **voiced** when its RMS reaches ``threshold_dbfs`` (default −40 dBFS, an RMS of
327.68 on the s16 scale): digital silence never is, a loud tone always is. A trailing part shorter than a
window waits for more audio.

- An utterance starts at the start of a voiced window when none is open: ``utterance.start``.
- Speech time counts the voiced windows of the utterance. Each time it reaches the next multiple of
  ``measurement_timer_ms``, an ``interval`` measurement ends at the end of that window.
- The utterance ends after ``hangover_ms`` (default 500) of unvoiced windows in a row; its end is the end of
  its last voiced window. Then one ``speech_ended`` measurement ending there, unless the previous measurement
  of the utterance ended less than 1000 ms earlier (an utterance without one always gets it), then
  ``utterance.end``.
- The end of input (``session.close``, the end of an upload) ends an open utterance the same way at once.
- A measurement covers ``[max(utterance start, end − 10000), end]``; its scores are those of exactly the
  samples in that span (see :mod:`.scores`). Times are ms of accepted audio since the session began.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Final

import numpy as np
import orjson

from bridge.tools.emulator.v1 import limits as L
from bridge.tools.emulator.v1.scores import AUDIO_EXPRESSION_FLOOR, VOICE_ATTRIBUTE_FLOOR, scores, seed_of
from bridge.tools.emulator.v1.vocabulary import Vocabulary, VocabularyKind

Json = dict[str, Any]
DETECTION_WINDOW_MS: Final = 20
_WINDOW_BYTES: Final = DETECTION_WINDOW_MS * L.BYTES_PER_MS
_KEEP_BYTES: Final = L.WINDOW_MS * L.BYTES_PER_MS


class CloseReason(StrEnum):
    CLIENT_REQUEST = "client_request"
    SERVER_SHUTDOWN = "server_shutdown"
    IDLE_TIMEOUT = "idle_timeout"
    ERROR = "error"


@dataclass(slots=True)
class SpeechRules:
    threshold_dbfs: float = -40.0
    hangover_ms: int = 500

    @property
    def mean_square_floor(self) -> float:
        return (32768.0 * 10 ** (self.threshold_dbfs / 20)) ** 2


class SpeechTracker:
    """Accepted audio in, ``utterance.start`` / ``measurement.result`` / ``utterance.end`` messages out."""

    def __init__(self, timer_ms: int, rules: SpeechRules, vocabulary: Vocabulary) -> None:
        self.timer_ms = timer_ms
        self._floor = rules.mean_square_floor
        self._hangover_windows = max(1, math.ceil(rules.hangover_ms / DETECTION_WINDOW_MS))
        self._vocabulary = vocabulary
        self._audio = bytearray()  # the most recent accepted audio (at least the last 10 s)
        self._audio_base = 0  # byte offset of _audio[0] in the session's accepted audio
        self._next_window = 0  # index of the next 20 ms window to classify
        self.accepted_bytes = 0
        self.utterances = 0
        self.measurements = 0
        self._open: int | None = None  # start ms of the open utterance
        self._speech_ms = 0
        self._due_ms = 0
        self._last_voiced_end = 0
        self._silent_windows = 0
        self._last_result_end: int | None = None

    def feed(self, pcm: bytes) -> list[Json]:
        self._audio += pcm
        self.accepted_bytes += len(pcm)
        out: list[Json] = []
        start = self._next_window * _WINDOW_BYTES - self._audio_base
        whole = (len(self._audio) - start) // _WINDOW_BYTES
        if whole > 0:
            for voiced in self._voiced(start, whole):
                self._window(voiced, out)
        if len(self._audio) > 2 * _KEEP_BYTES:
            cut = len(self._audio) - _KEEP_BYTES - _WINDOW_BYTES
            cut -= cut % 2
            del self._audio[:cut]
            self._audio_base += cut
        return out

    def _voiced(self, start: int, whole: int) -> list[bool]:
        """Whether each of ``whole`` windows from byte ``start`` of the buffer is voiced. The numpy view of
        the buffer lives only inside this call, so the buffer can be trimmed afterwards."""
        samples = np.frombuffer(self._audio, dtype="<i2", count=whole * _WINDOW_BYTES // 2, offset=start)
        windows = samples.reshape(whole, _WINDOW_BYTES // 2).astype(np.float32)
        power = np.einsum("ij,ij->i", windows, windows) / (_WINDOW_BYTES // 2)
        return [bool(v) for v in (power >= self._floor).tolist()]

    def finish(self) -> list[Json]:
        """End of input: an open utterance ends at its last voiced window."""
        out: list[Json] = []
        if self._open is not None:
            self._end(out)
        return out

    def _window(self, voiced: bool, out: list[Json]) -> None:
        index = self._next_window
        self._next_window += 1
        if voiced:
            if self._open is None:
                self._open = index * DETECTION_WINDOW_MS
                self._speech_ms = 0
                self._due_ms = self.timer_ms
                self._last_result_end = None
                out.append(
                    {"type": "utterance.start", "utterance_id": self.utterances, "audio_start_ms": self._open}
                )
                self.utterances += 1
            self._speech_ms += DETECTION_WINDOW_MS
            self._last_voiced_end = (index + 1) * DETECTION_WINDOW_MS
            self._silent_windows = 0
            if self._speech_ms >= self._due_ms:
                self._due_ms += self.timer_ms
                out.append(self._measure(self._last_voiced_end, "interval"))
        elif self._open is not None:
            self._silent_windows += 1
            if self._silent_windows >= self._hangover_windows:
                self._end(out)

    def _end(self, out: list[Json]) -> None:
        assert self._open is not None
        end = self._last_voiced_end
        last = self._last_result_end
        if last is None or end - last >= L.MIN_GAP_FOR_SPEECH_ENDED_MS:
            out.append(self._measure(end, "speech_ended"))
        out.append(
            {
                "type": "utterance.end",
                "utterance_id": self.utterances - 1,
                "audio_start_ms": self._open,
                "audio_end_ms": end,
            }
        )
        self._open = None
        self._silent_windows = 0

    def _measure(self, end_ms: int, trigger: str) -> Json:
        assert self._open is not None
        start_ms = max(self._open, end_ms - L.WINDOW_MS)
        lo = start_ms * L.BYTES_PER_MS - self._audio_base
        hi = end_ms * L.BYTES_PER_MS - self._audio_base
        seed = seed_of(bytes(self._audio[lo:hi]))
        vocab = self._vocabulary
        message = {
            "type": "measurement.result",
            "measurement_id": self.measurements,
            "utterance_id": self.utterances - 1,
            "audio_start_ms": start_ms,
            "audio_end_ms": end_ms,
            "trigger": trigger,
            "expressions": scores(
                seed, vocab.names(VocabularyKind.AUDIO_EXPRESSIONS), AUDIO_EXPRESSION_FLOOR
            ),
            "voice_attributes": scores(
                seed, vocab.names(VocabularyKind.VOICE_ATTRIBUTES), VOICE_ATTRIBUTE_FLOOR
            ),
        }
        self.measurements += 1
        self._last_result_end = end_ms
        return message


class TokenBucket:
    """Pacing: ``rate`` units per second, holding at most ``burst``; starts full. A request is granted when
    the bucket holds at least that much, or when it is full (so a request bigger than the burst can pass,
    leaving the bucket in debt)."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = now

    def take(self, amount: float, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= amount or self.tokens >= self.burst:
            self.tokens -= amount
            return True
        return False


@dataclass(slots=True)
class Outcome:
    """What one client message caused: messages to send, in order, and whether the session then closes."""

    messages: list[Json] = field(default_factory=list)
    close_code: int | None = None
    reason: CloseReason | None = None
    accepted: bytes | None = None  # the audio accepted from this frame, if any


def _size(data: str | bytes) -> int:
    return len(data.encode()) if isinstance(data, str) else len(data)


def error(code: str, message: str, *, retryable: bool) -> Json:
    return {"type": "error", "code": code, "message": message, "retryable": retryable}


def parse_text(data: str | bytes) -> Json | Outcome:
    """A client text message as a JSON object with a string ``type``, or a ``message_invalid`` outcome."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return Outcome([error("message_invalid", "The message is not valid JSON.", retryable=True)])
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        return Outcome(
            [
                error(
                    "message_invalid", "The message must be a JSON object with a string type.", retryable=True
                )
            ]
        )
    return obj


def check_timer(value: Any, problems: list[str], where: str = "measurement_timer_ms") -> int:
    if value is None:
        return L.DEFAULT_TIMER_MS
    if isinstance(value, bool) or not isinstance(value, int) or not L.MIN_TIMER_MS <= value <= L.MAX_TIMER_MS:
        problems.append(f"{where} must be an integer from {L.MIN_TIMER_MS} to {L.MAX_TIMER_MS}")
        return L.DEFAULT_TIMER_MS
    return value


class RealtimeCore(ABC):
    """What the audio and the video session share: ``session.created``, the run's configuration, how a
    session fails, and the head of every text message (size, JSON, ``session.close``, unknown types, an
    update after media). Each subclass names its limit and its media and validates its own update."""

    MAX_TEXT_BYTES: ClassVar[int]
    MEDIA: ClassVar[str]  # "audio frame", "image frame"
    session_id: str
    media_seen: bool
    closed: bool

    @abstractmethod
    def config(self) -> Json:
        """The session's configuration as Hume reports it."""

    @abstractmethod
    def close(self, reason: CloseReason, close_code: int = L.CLOSE_NORMAL) -> Outcome:
        """End the session for ``reason``."""

    @abstractmethod
    def closed_message(self, reason: CloseReason) -> Json:
        """The ``session.closed`` message, with the endpoint's counts."""

    def run_config(self) -> Json:
        return {"schema": "v4", **self.config()}

    def created(self) -> Json:
        return {"type": "session.created", "session_id": self.session_id, **self.config()}

    def update_message(self, data: str | bytes) -> Json | Outcome:
        """A text message: the ``session.update`` object to validate, or what to answer instead."""
        if _size(data) > self.MAX_TEXT_BYTES:
            return self._fail("message_too_large", f"Messages are limited to {self.MAX_TEXT_BYTES} bytes.")
        obj = parse_text(data)
        if isinstance(obj, Outcome):
            return obj
        kind = obj["type"]
        if kind == "session.close":
            return self.close(CloseReason.CLIENT_REQUEST)
        if kind != "session.update":
            return Outcome([error("message_invalid", f"Unknown message type: {kind}.", retryable=True)])
        if self.media_seen:
            return self._fail(
                "config_invalid", f"session.update is allowed only before the first {self.MEDIA}."
            )
        return obj

    def _fail(self, code: str, message: str) -> Outcome:
        self.closed = True
        return Outcome(
            [error(code, message, retryable=False), self.closed_message(CloseReason.ERROR)],
            L.CLOSE_POLICY,
            CloseReason.ERROR,
        )


@dataclass(slots=True)
class AudioSessionSettings:
    speech: SpeechRules = field(default_factory=SpeechRules)
    burst_ms: float = 1000.0
    pace_factor: float = 1.0


class AudioSession(RealtimeCore):
    """One realtime audio session, sans I/O: messages in (with the time), messages out."""

    MAX_TEXT_BYTES = L.MAX_AUDIO_MESSAGE_BYTES
    MEDIA = "audio frame"

    def __init__(self, session_id: str, settings: AudioSessionSettings, vocabulary: Vocabulary, now: float):
        self.session_id = session_id
        self.settings = settings
        self.vocabulary = vocabulary
        self.timer_ms = L.DEFAULT_TIMER_MS
        self.tracker = SpeechTracker(self.timer_ms, settings.speech, vocabulary)
        self.bucket = TokenBucket(1000.0 * settings.pace_factor, settings.burst_ms, now)
        self.media_seen = False
        self.frames = 0
        self.rate_limited = 0
        self.invalid = 0
        self.closed = False

    def config(self) -> Json:
        return {"audio": dict(L.AUDIO_CONFIG), "measurement_timer_ms": self.timer_ms}

    def on_text(self, data: str | bytes) -> Outcome:
        obj = self.update_message(data)
        if isinstance(obj, Outcome):
            return obj
        problems: list[str] = [
            f"{key}: unknown field" for key in obj if key not in ("type", "audio", "measurement_timer_ms")
        ]
        audio = obj.get("audio")
        if audio is not None:
            if not isinstance(audio, dict):
                problems.append("audio must be an object")
            else:
                for key, value in audio.items():
                    if key not in L.AUDIO_CONFIG:
                        problems.append(f"audio.{key}: unknown field")
                    elif value is not None and value != L.AUDIO_CONFIG[key]:
                        problems.append(f"audio.{key} must be {L.AUDIO_CONFIG[key]!r}")
        timer = check_timer(obj.get("measurement_timer_ms"), problems)
        if problems:
            return self._fail("config_invalid", "Invalid configuration: " + "; ".join(problems) + ".")
        self.timer_ms = timer
        self.tracker.timer_ms = timer
        return Outcome([{"type": "session.updated", **self.config()}])

    def on_binary(self, data: bytes, now: float, *, internal_error: bool = False) -> Outcome:
        self.media_seen = True
        if _size(data) > L.MAX_AUDIO_MESSAGE_BYTES:
            return self._fail(
                "message_too_large", f"Messages are limited to {L.MAX_AUDIO_MESSAGE_BYTES} bytes."
            )
        if not data or len(data) % 2 or len(data) > L.MAX_AUDIO_FRAME_BYTES:
            self.invalid += 1
            what = "empty" if not data else "odd-length" if len(data) % 2 else "over 10 s (320000 bytes)"
            return Outcome(
                [
                    error(
                        "invalid_audio_frame", f"The audio frame is {what}; it was discarded.", retryable=True
                    )
                ]
            )
        if not self.bucket.take(len(data) / L.BYTES_PER_MS, now):
            self.rate_limited += 1
            return Outcome(
                [
                    error(
                        "rate_limited",
                        "Audio is arriving faster than real time; resend this frame later.",
                        retryable=True,
                    )
                ]
            )
        if internal_error:
            return self._fail("internal_error", "The audio could not be processed.")
        self.frames += 1
        return Outcome(self.tracker.feed(data), accepted=data)

    def close(self, reason: CloseReason, close_code: int = L.CLOSE_NORMAL) -> Outcome:
        """End the session: on a client's request the due results first, then ``session.closed``."""
        messages = self.tracker.finish() if reason is CloseReason.CLIENT_REQUEST else []
        messages.append(self.closed_message(reason))
        self.closed = True
        return Outcome(messages, close_code, reason)

    def closed_message(self, reason: CloseReason) -> Json:
        return {
            "type": "session.closed",
            "session_id": self.session_id,
            "reason": reason.value,
            "received": {
                "audio_duration_ms": self.tracker.accepted_bytes // L.BYTES_PER_MS,
                "frames": self.frames,
            },
            "produced": {"utterances": self.tracker.utterances, "measurements": self.tracker.measurements},
        }
