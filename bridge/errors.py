"""The bridge's errors and outcome codes.

Exceptions, one hierarchy under one base; the type says whose side failed and whether a retry can help::

    BridgeError
    ├── ConfigError                 bad configuration: start-up fails with every bad setting named
    ├── MediaError                  bad input record; never escapes: becomes an error outcome (code below)
    ├── KafkaUnavailable            the brokers cannot be reached at start-up: waited for with backoff
    ├── PublishError                the broker did not take an output record
    │   ├── PublishRetriable        transient: published again after a per-stream backoff
    │   └── PublishRefused          for good (too large, invalid): replaced by an error outcome
    └── UpstreamError               a request was lost on Hume's side of the wire
        ├── ConnectionLost          broken by them: drop, reply timeout      retried, counts an attempt
        └── SessionClosed           closed by us: recycle, shutdown          retried at once, no attempt

What a *reply* means (a final outcome, a transient error, an account-wide outage such as refused keys or
E0300) is decided without exceptions, by each upstream adapter (v0:
:func:`bridge.upstream.v0.protocol.judge`).
A publish failure is mapped once, in :mod:`bridge.sink`, to a :class:`PublishError` whose type says whether
retrying can help.

Bridge-side outcome codes (the ``error.code`` of records the bridge rejects without calling Hume, and of
records it gives up on) are the members of :class:`Code`; the README lists each with its cause.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """Codes of error outcomes with ``origin: "bridge"``."""

    EMPTY_VALUE = "EMPTY_VALUE"  # value is null or zero bytes
    EMPTY_MEDIA = "EMPTY_MEDIA"  # a container with no media in it: a WAV whose data chunk is empty
    RECORD_TOO_LARGE = "RECORD_TOO_LARGE"  # value over BRIDGE_MAX_RECORD_BYTES
    INVALID_HEADER = "INVALID_HEADER"  # a hume-* header that cannot be read (bad JSON, number, flag)
    INVALID_MODELS = "INVALID_MODELS"  # hume-models names an unknown model or badly typed config
    UNSUPPORTED_MEDIA = "UNSUPPORTED_MEDIA"  # content type not handled, or bytes not recognised
    MODEL_MEDIA_MISMATCH = "MODEL_MEDIA_MISMATCH"  # e.g. language requested for audio (Hume: E0102)
    MALFORMED_MEDIA = "MALFORMED_MEDIA"  # truncated or corrupt WAV/PNG/JPEG headers (Hume: E0200)
    INVALID_TEXT = "INVALID_TEXT"  # text/plain that is not UTF-8, or empty
    INVALID_ENVELOPE = "INVALID_ENVELOPE"  # vnd.hume.stream+json that is not a valid v0 request object
    INVALID_FACEMESH = "INVALID_FACEMESH"  # facemesh JSON of the wrong shape
    AUDIO_TOO_LONG = "AUDIO_TOO_LONG"  # over 5000 ms (Hume: E0203)
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"  # over 3000 x 3000 px (Hume: E0205)
    TEXT_TOO_LONG = "TEXT_TOO_LONG"  # over 10,000 characters
    FACEMESH_TOO_LARGE = "FACEMESH_TOO_LARGE"  # over 10 faces
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"  # failed max_attempts times while Hume was healthy
    # Hume v1 (bridge/upstream/v1/media.py)
    NOT_OFFERED_BY_API = "NOT_OFFERED_BY_API"  # text or facemesh: the selected Hume API has no such model
    AUDIO_DECODE_FAILED = "AUDIO_DECODE_FAILED"  # audio bytes the decoder cannot read (corrupt, truncated)
    IMAGE_DECODE_FAILED = "IMAGE_DECODE_FAILED"  # image bytes the decoder cannot read (corrupt, truncated)
    VIDEO_DECODE_FAILED = "VIDEO_DECODE_FAILED"  # video bytes the decoder cannot read, or no video stream
    INVALID_MEDIA_PARAMETERS = "INVALID_MEDIA_PARAMETERS"  # content-type parameters (rate, channels) invalid
    VIDEO_TOO_LONG = "VIDEO_TOO_LONG"  # video record over the bridge's decode limit
    OUTPUT_TOO_LARGE = "OUTPUT_TOO_LARGE"  # the outcome is over the producer's or broker's size limit
    OUTPUT_REFUSED = "OUTPUT_REFUSED"  # the broker refused the outcome for good (not a size problem)


class BridgeError(Exception):
    """Base of every error the bridge raises."""


class ConfigError(BridgeError):
    """Invalid configuration; the message names every bad setting at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


class MediaError(BridgeError):
    """An input record the bridge will not send; becomes an error outcome with ``code``."""

    def __init__(self, code: Code, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class KafkaUnavailable(BridgeError):
    """The Kafka client could not connect; ``text`` says where and why, in words."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(text)


class PublishError(BridgeError):
    """The broker did not take an output record."""

    retriable: bool = True

    def __init__(self, reason: str, size: int | None = None) -> None:
        self.reason = reason
        self.size = size
        super().__init__(reason)


class PublishRetriable(PublishError):
    """A transient failure (timeout, leader moved, broker away): publish again after a backoff."""


class PublishRefused(PublishError):
    """Refused for good (over a size limit, invalid record): retrying cannot help."""

    retriable = False

    def __init__(self, reason: str, size: int | None = None, *, too_large: bool = False) -> None:
        super().__init__(reason, size)
        self.too_large = too_large


class UpstreamError(BridgeError):
    """Something on Hume's side failed."""

    retriable: bool = True


class ConnectionLost(UpstreamError):
    """The connection broke (drop, reply timeout, handshake 429/5xx): retry elsewhere with backoff."""


class SessionClosed(UpstreamError):
    """We closed the session ourselves (recycle, shutdown): retry without counting an attempt."""
