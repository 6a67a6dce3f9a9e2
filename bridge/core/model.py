"""Value objects that travel through the pipeline: an input record, its work item, its outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Headers = tuple[tuple[str, bytes], ...]
# A stream lives in one partition: (topic, partition, key). A record without a key is a stream of its own,
# named by its offset instead of a key.
StreamKey = tuple[str, int, bytes | int]


@dataclass(frozen=True, slots=True)
class Source:
    """Where an input record came from."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None

    @property
    def ref(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)

    def as_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp_ms": self.timestamp_ms,
        }


@dataclass(frozen=True, slots=True)
class InputRecord:
    """A consumed Kafka record, as the core sees it."""

    source: Source
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Usage:
    """What one request costs at Hume, for the usage counters."""

    kind: str
    audio_s: float = 0.0
    images: int = 0
    text_chars: int = 0


@dataclass(frozen=True, slots=True)
class Request:
    """A payload ready for Hume: the v0 request fields except ``payload_id`` and ``reset_stream`` (and
    ``data`` when it is binary media, kept raw in ``media`` until the frame is built).

    ``audio_context`` is true when Hume keeps audio context for it (audio models on audio or video), which
    is what ties its stream to one session.
    """

    body: dict[str, Any]
    models: tuple[str, ...]
    audio_context: bool
    reset_stream: bool
    usage: Usage
    media: bytes | None = None  # raw media for ``data``, base64-encoded into the frame at send time


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    code: str
    message: str
    origin: str  # "hume" | "bridge"
    retriable: bool


@dataclass(frozen=True, slots=True)
class WarningInfo:
    code: str
    message: str
    model: str | None


@dataclass(slots=True)
class Outcome:
    """The one final result of a record: predictions (``models``) or an error; plus warnings."""

    models: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    warnings: list[WarningInfo] = field(default_factory=list)
    job_details: Any = None

    @property
    def kind(self) -> str:
        return "error" if self.error is not None else "prediction"


@dataclass(slots=True, eq=False)
class Work:
    """One input record on its way through the bridge."""

    source: Source
    stream: StreamKey
    key: bytes | None
    headers: Headers
    payload_id: str
    size: int
    consumed_at: float
    request: Request | None
    outcome: Outcome | None = None  # set once final (a rejection is final at once)
    attempts: int = 0
    not_before: float = 0.0
    sent_at: float = 0.0
