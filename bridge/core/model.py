"""The core's vocabulary: what travels through the pipeline, and the words an upstream adapter uses to
tell the core what happened. Every upstream API (v0, v1) speaks in these terms; none of them appears
here.

    InputRecord ─decode─▶ Work (one record, with the adapter's Prepared payload or a rejection)
    Work ─Router─▶ Dispatch (to a lane the adapter offered) ─adapter─▶ upstream
    upstream ─adapter─▶ Output (covers one or more records of a stream) + settled(stream, up to offset)
    Output ─sink─▶ broker ack ─▶ a record is *done* once settled and every Output covering it is acked
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

Headers = tuple[tuple[str, bytes], ...]
# A stream lives in one partition: (topic, partition, key). A record without a key is a stream of its own,
# named by its offset instead of a key.
StreamKey = tuple[str, int, bytes | int]
# A lane is whatever the adapter carries work on (a v0 session; for v1, one lane for all its sessions).
LaneId = int


class Origin(StrEnum):
    HUME = "hume"
    BRIDGE = "bridge"


class OutputKind(StrEnum):
    PREDICTION = "prediction"
    ERROR = "error"


class LossReason(StrEnum):
    """Why work handed to the adapter came back unsettled; decides whether it counts an attempt."""

    CONNECTION_LOST = "connection_lost"  # broken by them (drop, reply timeout): counts an attempt
    HUME_ERROR = "hume_error"  # a transient error for this payload: counts an attempt
    CLOSED_BY_US = "closed_by_us"  # recycle, shutdown: resent at once, no attempt
    OUTAGE = "outage"  # the account as a whole is refused: resent after recovery, no attempt

    @property
    def counts_attempt(self) -> bool:
        return self in (LossReason.CONNECTION_LOST, LossReason.HUME_ERROR)


class OutageReason(StrEnum):
    """An upstream refusal of the account as a whole: pause, probe, resume."""

    KEY_REFUSED = "key_refused"
    UNREACHABLE = "unreachable"
    OUT_OF_CREDITS = "out_of_credits"


class Evidence(StrEnum):
    """What an adapter saw that shows the upstream is healthy again."""

    CONNECTED = "connected"  # a session opened: ends refusals of the key and unreachability
    ANSWERED = "answered"  # a payload was answered: ends an out-of-credits outage


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
class ErrorInfo:
    code: str
    message: str
    origin: str  # an Origin
    retriable: bool


@dataclass(frozen=True, slots=True)
class WarningInfo:
    code: str
    message: str
    model: str | None


@dataclass(slots=True)
class Prepared:
    """A record shaped for one upstream API by its adapter. ``payload`` is the adapter's own and opaque
    to the core; ``sticky`` asks to keep the stream on the lane that holds its context (v0 audio);
    ``reset_context`` says the producer asked for that context to start afresh; ``payload_id`` replaces
    the record's default id when the payload names its own."""

    payload: Any  # never changed once built (not frozen only because it is built for every record)
    sticky: bool = False
    reset_context: bool = False
    payload_id: str | None = None


@dataclass(slots=True, eq=False)
class Work:
    """One input record on its way through the bridge, from admission until it is done."""

    source: Source
    stream: StreamKey
    key: bytes | None
    headers: Headers
    payload_id: str  # the producer's id (or the default ``topic/partition/offset``): what outputs carry
    size: int
    consumed_at: float
    prepared: Prepared | None  # None when rejected
    rejection: ErrorInfo | None = None  # final at once: never sent
    attempts: int = 0
    not_before: float = 0.0
    sent_at: float = 0.0
    settled: bool = False
    refs: int = 0  # outputs covering this record and not yet acknowledged
    kind: OutputKind | None = None  # the outcome counted for it (error wins over prediction)


@dataclass(slots=True, eq=False)
class Output:
    """Something to publish for a stream, covering one or more of its records (in order).

    ``fields`` are the upstream result as the output carries it (v0: ``models`` and ``job_details``);
    an error output carries ``error`` instead. Warnings go with it."""

    stream: StreamKey
    records: tuple[Work, ...]
    fields: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    warnings: tuple[WarningInfo, ...] = ()
    publish_attempts: int = 0
    not_before: float = 0.0

    @property
    def kind(self) -> OutputKind:
        return OutputKind.ERROR if self.error is not None else OutputKind.PREDICTION


@dataclass(frozen=True, slots=True)
class Dispatch:
    """The router's instruction: send ``work`` on ``lane``; ``switched`` when the lane last carried
    another stream's context (or the producer asked for a fresh one)."""

    lane: LaneId
    work: Work
    switched: bool
