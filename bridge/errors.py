"""The bridge's errors and outcome codes.

Exceptions, one hierarchy under one base; the type says whose side failed and whether a retry can help::

    BridgeError
    ├── ConfigError                 bad configuration: start-up fails with every bad setting named
    ├── MediaError                  bad input record; never escapes: becomes an error outcome (code below)
    └── UpstreamError               a request was lost on Hume's side of the wire
        ├── ConnectionLost          broken by them: drop, reply timeout      retried, counts an attempt
        └── SessionClosed           closed by us: recycle, shutdown          retried at once, no attempt

What a *reply* means (a final outcome, a transient error, an account-wide outage such as refused keys or
E0300) is decided without exceptions, by :func:`bridge.hume.v0_protocol.judge`.

Bridge-side outcome codes (the ``error.code`` of records the bridge rejects without calling Hume, and of
records it gives up on) are the members of :class:`Code`; the README lists each with its cause.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """Codes of error outcomes with ``origin: "bridge"``."""

    EMPTY_VALUE = "EMPTY_VALUE"  # value is null or zero bytes
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
    EMPTY_MEDIA = "EMPTY_MEDIA"  # a readable container with no audio samples or no video frames
    VIDEO_TOO_LONG = "VIDEO_TOO_LONG"  # video record over the bridge's decode limit


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


class UpstreamError(BridgeError):
    """Something on Hume's side failed."""

    retriable: bool = True


class ConnectionLost(UpstreamError):
    """The connection broke (drop, reply timeout, handshake 429/5xx): retry elsewhere with backoff."""


class SessionClosed(UpstreamError):
    """We closed the session ourselves (recycle, shutdown): retry without counting an attempt."""
