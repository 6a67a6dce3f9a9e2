"""Decode: an input record becomes a :class:`Work` item, prepared for the upstream API by its adapter or
rejected with a precise code and no upstream call.

What holds for every API is checked here: the payload id header, an empty or oversized value, the
content type (from the header, else sniffed) and the media kind. The rest (models, limits, the API's own
headers) is the adapter's ``prepare``, which raises :class:`~bridge.errors.MediaError` to reject.
Pure: no I/O, no clock (``now`` is passed in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bridge import media
from bridge.core.model import ErrorInfo, Headers, InputRecord, Origin, Prepared, StreamKey, Work
from bridge.errors import Code, MediaError
from bridge.media import MediaKind

MAX_PAYLOAD_ID_CHARS = 256
HEADER_CONTENT_TYPE = "content-type"
HEADER_PAYLOAD_ID = "hume-payload-id"


@dataclass(frozen=True, slots=True)
class DecodeSettings:
    max_record_bytes: int = 10 * 1024 * 1024


@dataclass(slots=True)
class Decoded:
    """A record the bridge can read, handed to the adapter's ``prepare`` (which does not change it).
    Not frozen: built for every record, and a frozen dataclass costs more to build."""

    value: bytes  # never empty
    headers: dict[str, bytes]  # ``hume-*`` and ``content-*`` headers, names lower-cased
    content_type: str  # the essence, lower-cased
    kind: MediaKind


Prepare = Callable[[Decoded], Prepared]


def stream_key(record: InputRecord) -> StreamKey:
    s = record.source
    return (s.topic, s.partition, record.key if record.key is not None else s.offset)


def decode(record: InputRecord, settings: DecodeSettings, prepare: Prepare, now: float) -> Work:
    """Turn ``record`` into work: prepared for the upstream, or rejected."""
    headers = header_map(record.headers)
    payload_id, pid_problem = _payload_id(record, headers)
    work = Work(
        source=record.source,
        stream=stream_key(record),
        key=record.key,
        headers=record.headers,
        payload_id=payload_id,
        size=len(record.value or b""),
        consumed_at=now,
        prepared=None,
    )
    try:
        if pid_problem:
            raise MediaError(Code.INVALID_HEADER, pid_problem)
        value = record.value
        if not value:
            raise MediaError(Code.EMPTY_VALUE, "the record has no value (null or zero bytes)")
        if len(value) > settings.max_record_bytes:
            raise MediaError(
                Code.RECORD_TOO_LARGE,
                f"value is {len(value)} bytes, over the limit of {settings.max_record_bytes} bytes "
                "(BRIDGE_MAX_RECORD_BYTES)",
            )
        content_type = _content_type(value, headers)
        kind = media.kind_of(content_type)
        if kind is None:
            raise MediaError(Code.UNSUPPORTED_MEDIA, f"content type {content_type!r} is not supported")
        prepared = prepare(Decoded(value, headers, content_type, kind))
        if prepared.payload_id is not None and HEADER_PAYLOAD_ID not in headers:
            work.payload_id = prepared.payload_id
        work.prepared = prepared
    except MediaError as exc:
        work.rejection = ErrorInfo(exc.code, exc.message, Origin.BRIDGE, False)
    return work


def header_map(headers: Headers) -> dict[str, bytes]:
    # Later duplicates win, as in most Kafka header readers; names are matched case-insensitively.
    return {name.lower(): value for name, value in headers if name.lower().startswith(("hume-", "content-"))}


def check_payload_id(text: str, what: str) -> str | None:
    """Why ``text`` cannot be a payload id (the same rule for the header and a payload's own field)."""
    if not text or len(text) > MAX_PAYLOAD_ID_CHARS:
        return f"{what} must be 1 to {MAX_PAYLOAD_ID_CHARS} characters"
    return None


def _payload_id(record: InputRecord, headers: dict[str, bytes]) -> tuple[str, str | None]:
    default = record.source.ref
    raw = headers.get(HEADER_PAYLOAD_ID)
    if raw is None:
        return default, None
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return default, f"{HEADER_PAYLOAD_ID} is not UTF-8"
    problem = check_payload_id(text, HEADER_PAYLOAD_ID)
    return (default, problem) if problem else (text, None)


def _content_type(value: bytes, headers: dict[str, bytes]) -> str:
    raw = headers.get(HEADER_CONTENT_TYPE)
    if raw is not None:
        try:
            text = raw.decode("ascii").strip().lower()
        except UnicodeDecodeError:
            raise MediaError(Code.INVALID_HEADER, "content-type header is not ASCII") from None
        if text:
            return text.split(";", 1)[0].strip()
    sniffed = media.sniff(value)
    if sniffed is None:
        raise MediaError(
            Code.UNSUPPORTED_MEDIA,
            "no content-type header and the bytes are not a recognised format (recognised: "
            f"{', '.join(media.SNIFFED_FORMATS)})",
        )
    return str(sniffed)
