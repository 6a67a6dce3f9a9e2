"""``hume-bridge produce``: feed media files into the input topic the way a producer of the bridge would.

Two halves. The planners are pure: file names and bytes in, Kafka records (key, value, headers) out, plus
the problems and notes to report. :func:`plan_records` plans for Hume v0 (WAV cut under v0's 5 s limit,
everything else one record); :class:`CallPlanner` plans for Hume v1 (``--api v1``, the default), where a
stream is a call: audio in short chunks of raw PCM or WAV with ``hume-stream-offset-ms`` on each and
``hume-end-of-stream: true`` on the stream's last, video as JPEG frames at most 3 a second or whole.
Decoding (MP3, FLAC, Ogg, MP4, WebM; video frames) is the bridge's own v1 media code
(:mod:`bridge.upstream.v1.media`, PyAV), so a file is cut the way the bridge would read it.

:func:`main` is the shell: it walks the paths, reads each file, plans it, sends its records with acks=all
and waits for the broker's acknowledgement before the next file, so at most one file is held in memory. A
file that cannot be read, recognised or parsed is reported on stderr and skipped; the exit code is then 1,
but every other file is still sent.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import io
import math
import os
import sys
import wave
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from fractions import Fraction
from pathlib import Path, PurePath
from typing import Any

import av
import av.error
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from bridge.config import KafkaConfig, load_kafka
from bridge.errors import Code, ConfigError, MediaError
from bridge.media import (
    ENVELOPE_CONTENT_TYPE,
    FACEMESH_CONTENT_TYPE,
    MediaKind,
    check_facemesh,
    decode_text,
    inspect_audio,
    inspect_image,
    kind_of,
    sniff,
    split_wav,
)
from bridge.source import client_options
from bridge.tools import samples
from bridge.upstream.v0.limits import AUDIO_LIMIT_MS, FACEMESH_LIMIT_FACES, IMAGE_LIMIT_PX, TEXT_LIMIT_CHARS
from bridge.upstream.v1 import media as v1_media

DEFAULT_CHUNK_MS = 4000.0  # v0: whole WAVs under Hume v0's 5 s limit
DEFAULT_CALL_CHUNK_MS = 500.0  # v1: what a call's producer sends, a few per second
DEFAULT_BOOTSTRAP = "localhost:9092"
DEFAULT_TOPIC = "hume.media"
DEFAULT_TIMEOUT_S = 30.0

# Compound suffixes that name a payload kind.
FACEMESH_SUFFIX = ".facemesh.json"
ENVELOPE_SUFFIX = ".hume.json"

Header = tuple[str, bytes]

# The headers of a v1 stream (DESIGN.md, "Hume v1"): the record's start within the call, and the end.
STREAM_OFFSET_HEADER = "hume-stream-offset-ms"
END_OF_STREAM_HEADER = "hume-end-of-stream"
# What produce decodes at most from one file (the whole file is held in memory as 16 kHz PCM or frames).
CALL_LIMITS = v1_media.MediaLimits(max_audio_s=3600.0, max_video_s=600.0)


class Api(StrEnum):
    """Which Hume API the records are shaped for (the bridge's BRIDGE_HUME_API)."""

    V1 = "v1"
    V0 = "v0"


class AudioFormat(StrEnum):
    """How v1 audio chunks are sent."""

    PCM = "pcm"  # headerless, audio/L16;rate=R;channels=C (RFC 2586: 16-bit big-endian)
    WAV = "wav"  # each chunk a complete WAV file


class VideoAs(StrEnum):
    """How v1 video files are sent."""

    FRAMES = "frames"  # one image/jpeg record per frame, at most 3 a second
    WHOLE = "whole"  # the file as one record


@dataclass(frozen=True, slots=True)
class Record:
    """One record to produce: Kafka key, value and headers, with the file it came from and its kind."""

    key: bytes
    value: bytes
    headers: tuple[Header, ...]
    kind: MediaKind
    source: str


@dataclass(slots=True)
class Plan:
    """What to send, what cannot be sent (``problems``: exit code 1) and what to point out (``notes``)."""

    records: list[Record] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Skip(Exception):
    """This file yields no records; the message says why."""


def default_key(path: PurePath) -> str:
    """The stream key of a file: its whole name (``call-17.wav``), so one file is one stream, and
    ``speech.wav`` and ``speech.mp3`` are two."""
    return path.name


def _headers(
    content_type: str,
    models: bytes | None,
    extra: Sequence[tuple[str, str]],
    stream: Sequence[Header] = (),
) -> tuple[Header, ...]:
    """``content-type``, ``hume-models`` and the ``stream`` headers first, then the extra headers; an extra
    header of the same name (case-insensitive) replaces the one the command would set."""
    overridden = {name.lower() for name, _ in extra}
    own: list[Header] = [("content-type", content_type.encode())]
    if models is not None:
        own.append(("hume-models", models))
    own.extend(stream)
    kept = [h for h in own if h[0] not in overridden]
    return (*kept, *((name, value.encode()) for name, value in extra))


def _plan_file(
    path: PurePath, data: bytes, chunk_ms: float, notes: list[str]
) -> list[tuple[bytes, str, MediaKind]]:
    """(value, content type, kind) for each record one file becomes; raises _Skip or MediaError."""
    if not data:
        raise _Skip("the file is empty")
    lower = path.name.lower()
    if lower.endswith(FACEMESH_SUFFIX):
        try:
            check_facemesh(data, FACEMESH_LIMIT_FACES)
        except MediaError as exc:
            if exc.code != Code.FACEMESH_TOO_LARGE:
                raise
            notes.append(f"{exc.message}; sent, the bridge will reject it")
        return [(data, FACEMESH_CONTENT_TYPE, MediaKind.FACEMESH)]
    if lower.endswith(ENVELOPE_SUFFIX):
        try:
            envelope: Any = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _Skip(f"not valid JSON: {exc.msg} at char {exc.pos}") from None
        if not isinstance(envelope, dict):
            raise _Skip("a Hume request envelope must be a JSON object")
        return [(data, ENVELOPE_CONTENT_TYPE, MediaKind.ENVELOPE)]

    content_type = sniff(data)
    kind = kind_of(content_type) if content_type else None
    if content_type is None or kind is None:
        raise _Skip(
            "not a recognised media type (expected WAV, MP3, MP4, WebM, PNG, JPEG, GIF, WebP or text)"
        )
    if kind is MediaKind.TEXT:
        text = decode_text(data)
        lines = [line.removesuffix("\r") for line in text.split("\n")]
        values = [line for line in lines if line.strip()]
        long_lines = sum(1 for line in values if len(line) > TEXT_LIMIT_CHARS)
        if long_lines:
            notes.append(
                f"{long_lines} line(s) over the {TEXT_LIMIT_CHARS:,}-character limit; sent, the bridge will "
                "reject them"
            )
        return [(line.encode(), content_type, kind) for line in values]
    if kind is MediaKind.IMAGE:
        image = inspect_image(data)
        if max(image.width, image.height) > IMAGE_LIMIT_PX:
            notes.append(
                f"{image.width} x {image.height} px is over the {IMAGE_LIMIT_PX} x {IMAGE_LIMIT_PX} limit; "
                "sent, the bridge will reject it"
            )
        return [(data, content_type, kind)]
    if content_type == "audio/wav":
        chunks = split_wav(data, chunk_ms)
        if not chunks:
            raise _Skip("the WAV holds no audio frames")
        return [(chunk, content_type, kind) for chunk in chunks]
    # Other audio and video: one record each; they cannot be cut without decoding.
    info = inspect_audio(data, content_type)
    if kind is MediaKind.AUDIO and info.duration_ms is not None and info.duration_ms > AUDIO_LIMIT_MS:
        notes.append(
            f"{info.duration_ms / 1000:.1f} s of {info.container.upper()} is over the {AUDIO_LIMIT_MS} ms "
            "limit and cannot be split without decoding; sent as one record, the bridge will reject it"
        )
    return [(data, content_type, kind)]


def plan_records(
    files: Iterable[tuple[PurePath, bytes]],
    *,
    chunk_ms: float = DEFAULT_CHUNK_MS,
    key: str | None = None,
    models: Mapping[str, Any] | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> Plan:
    """Turn files (name and bytes) into the records a producer of the bridge would send.

    - WAV audio: cut into complete WAVs of at most ``chunk_ms`` (whole sample frames), in order;
    - other audio and video: one record each (they cannot be cut without decoding);
    - images: one record each; text: one record per non-empty line (UTF-8);
    - ``*.facemesh.json``: one facemesh record; ``*.hume.json``: one Hume request envelope, as given.

    Every record of a file has the same key: ``key`` if given, else :func:`default_key`. Headers:
    ``content-type`` (sniffed, or the facemesh/envelope type), ``hume-models`` when ``models`` is given,
    then ``headers`` (which replace the first two by name). A file that yields nothing is a problem;
    anything over a Hume limit is still planned (the bridge decides) and noted.
    """
    models_header = orjson.dumps(models) if models is not None else None
    plan = Plan()
    for path, data in files:
        notes: list[str] = []
        try:
            planned = _plan_file(path, data, chunk_ms, notes)
        except (_Skip, MediaError) as exc:
            reason = exc.message if isinstance(exc, MediaError) else str(exc)
            plan.problems.append(f"{path}: {reason}")
            continue
        stream_key = (key if key is not None else default_key(path)).encode()
        for value, content_type, kind in planned:
            record_headers = _headers(content_type, models_header, headers)
            plan.records.append(Record(stream_key, value, record_headers, kind, str(path)))
        plan.notes.extend(f"{path}: {note}" for note in notes)
    return plan


# --------------------------------------------------------------------------------------------------------
# Hume v1: a stream is a call.

# Sniffed video containers and the FFmpeg demuxer that reads them, to tell video from audio-only files.
_VIDEO_DEMUXERS = {
    "video/mp4": "mp4",
    "video/webm": "matroska",
    "video/x-matroska": "matroska",
    "video/ogg": "ogg",
}


@dataclass(frozen=True, slots=True)
class CallOptions:
    """How files become the records of a v1 stream (the options of ``produce --api v1``)."""

    chunk_ms: float = DEFAULT_CALL_CHUNK_MS
    audio_format: AudioFormat = AudioFormat.PCM
    video_as: VideoAs = VideoAs.FRAMES
    key: str | None = None
    models: Mapping[str, Any] | None = None
    headers: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True, slots=True)
class _Piece:
    """One record of a file before its stream headers: ``begin_ms`` within the file, None when the record
    has no place in time (text, images, facemesh)."""

    value: bytes
    content_type: str
    kind: MediaKind
    begin_ms: Fraction | None


class CallPlanner:
    """Plans files for Hume v1, one file at a time, keeping each stream's clock from file to file.

    Built with the names of every file in the order they will be planned. Files with the same key (``--key``,
    or two files of the same name) are one stream: their offsets continue from file to file, and only the
    last record of the stream's last file carries ``hume-end-of-stream: true``. Audio chunks and video
    frames carry ``hume-stream-offset-ms``, their start within the stream in whole milliseconds (rounded;
    the next chunk starts where the previous ended, so rounding never accumulates). If the stream's last
    file yields no records, the stream ends without the header and the bridge closes its session once it
    is idle.
    """

    def __init__(self, names: Sequence[PurePath], options: CallOptions = CallOptions()) -> None:
        self.options = options
        self._keys = [self.key_of(name) for name in names]
        self._last = {key: index for index, key in enumerate(self._keys)}
        self._clock: dict[str, Fraction] = {}
        self._models = orjson.dumps(options.models) if options.models is not None else None

    def key_of(self, path: PurePath) -> str:
        return self.options.key if self.options.key is not None else default_key(path)

    def plan(self, index: int, path: PurePath, data: bytes) -> Plan:
        """The records of the ``index``-th file; pure but for the stream clocks it advances."""
        plan = Plan()
        notes: list[str] = []
        try:
            pieces, duration_ms = _plan_call_file(path, data, self.options, notes)
        except (_Skip, MediaError) as exc:
            reason = exc.message if isinstance(exc, MediaError) else str(exc)
            plan.problems.append(f"{path}: {reason}")
            return plan
        key = self._keys[index]
        start = self._clock.get(key, Fraction(0))
        ends = self._last[key] == index
        for n, piece in enumerate(pieces):
            stream: list[Header] = []
            if piece.begin_ms is not None:
                stream.append((STREAM_OFFSET_HEADER, str(_whole_ms(start + piece.begin_ms)).encode()))
            if ends and n == len(pieces) - 1:
                stream.append((END_OF_STREAM_HEADER, b"true"))
            headers = _headers(piece.content_type, self._models, self.options.headers, stream)
            plan.records.append(Record(key.encode(), piece.value, headers, piece.kind, str(path)))
        self._clock[key] = start + duration_ms
        plan.notes.extend(f"{path}: {note}" for note in notes)
        return plan


def plan_call_records(files: Sequence[tuple[PurePath, bytes]], options: CallOptions = CallOptions()) -> Plan:
    """Every file planned for Hume v1 by one :class:`CallPlanner`, in order."""
    planner = CallPlanner([path for path, _ in files], options)
    plan = Plan()
    for index, (path, data) in enumerate(files):
        one = planner.plan(index, path, data)
        plan.records.extend(one.records)
        plan.problems.extend(one.problems)
        plan.notes.extend(one.notes)
    return plan


def _whole_ms(ms: Fraction) -> int:
    return math.floor(ms + Fraction(1, 2))


def _plan_call_file(
    path: PurePath, data: bytes, options: CallOptions, notes: list[str]
) -> tuple[list[_Piece], Fraction]:
    """The records of one file for v1 and how long the file lasts in its stream (ms); raises _Skip or
    MediaError."""
    if not data:
        raise _Skip("the file is empty")
    lower = path.name.lower()
    typed = lower.endswith((FACEMESH_SUFFIX, ENVELOPE_SUFFIX))
    content_type = None if typed else sniff(data)
    kind = kind_of(content_type) if content_type else None
    if content_type is None or kind not in (MediaKind.AUDIO, MediaKind.VIDEO):
        # Text, images, facemesh and envelopes are one record each, as for v0; v0's limits do not apply.
        planned = _plan_file(path, data, AUDIO_LIMIT_MS, [])
        not_offered = {k for _, _, k in planned} - {MediaKind.IMAGE}
        for other in sorted(not_offered):
            notes.append(
                f"Hume v1 offers no model for {other} records; sent, the bridge answers NOT_OFFERED_BY_API "
                "(--api v0 sends them for Hume v0)"
            )
        return [_Piece(value, ct, k, None) for value, ct, k in planned], Fraction(0)
    if kind is MediaKind.AUDIO or not _has_video(data, content_type):
        return _audio_pieces(data, content_type, options)
    if options.video_as is VideoAs.WHOLE:
        return [_Piece(data, content_type, MediaKind.VIDEO, Fraction(0))], _declared_ms(data, content_type)
    frames = v1_media.video_to_frames(data, CALL_LIMITS)
    pieces = [
        _Piece(frame.jpeg.data, "image/jpeg", MediaKind.IMAGE, Fraction(frame.time_ms))
        for frame in frames.frames
    ]
    return pieces, max(_declared_ms(data, content_type), Fraction(frames.duration_ms))


def _has_video(data: bytes, content_type: str) -> bool:
    """Whether a video container holds a video stream (an audio-only WebM or MP4 is sent as audio)."""
    demuxer = _VIDEO_DEMUXERS.get(content_type)
    if demuxer is None:
        return True
    try:
        with av.open(io.BytesIO(data), mode="r", format=demuxer) as container:
            return bool(container.streams.video)
    except (av.error.FFmpegError, ValueError, OSError, EOFError):
        return True  # unreadable: the video decoder names the problem


def _declared_ms(data: bytes, content_type: str) -> Fraction:
    """A container's duration from its headers, 0 when they do not say."""
    try:
        duration = inspect_audio(data, content_type).duration_ms
    except MediaError:
        return Fraction(0)
    return Fraction(duration).limit_denominator(1000) if duration else Fraction(0)


def _audio_pieces(data: bytes, content_type: str, options: CallOptions) -> tuple[list[_Piece], Fraction]:
    """Audio as a call sends it: chunks of at most ``chunk_ms``, whole sample frames, in order.

    A 16-bit PCM WAV keeps its rate and channels and its samples unchanged (``pcm``: the same samples
    big-endian, as audio/L16 wants them; ``wav``: the file cut with its own fmt chunk); any other WAV and
    every other container is decoded by the bridge's v1 media code to 16 kHz mono first.
    """
    if content_type == "audio/wav":
        inspect_audio(data, "audio/wav")  # a truncated or incomplete WAV is named here, before any cutting
        if options.audio_format is AudioFormat.WAV:
            return _wav_pieces(data, options.chunk_ms)
        s16 = _s16_wav(data)
        if s16 is not None:
            return _pcm_pieces(*s16, options)
    decoded = v1_media.audio_to_pcm16k(data, content_type, CALL_LIMITS)
    return _pcm_pieces(decoded.pcm, v1_media.TARGET_RATE, 1, options)


def _wav_pieces(data: bytes, chunk_ms: float) -> tuple[list[_Piece], Fraction]:
    try:
        chunks = split_wav(data, chunk_ms)
    except ValueError as exc:
        raise _Skip(str(exc)) from None
    if not chunks:
        raise _Skip("the WAV holds no audio frames")
    pieces: list[_Piece] = []
    at = Fraction(0)
    for chunk in chunks:
        pieces.append(_Piece(chunk, "audio/wav", MediaKind.AUDIO, at))
        at += Fraction(inspect_audio(chunk, "audio/wav").duration_ms or 0).limit_denominator(10**6)
    return pieces, at


def _s16_wav(data: bytes) -> tuple[bytes, int, int] | None:
    """(little-endian samples, rate, channels) of a 16-bit integer PCM WAV, else None."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            if w.getsampwidth() != 2 or w.getcomptype() != "NONE":
                return None
            return w.readframes(w.getnframes()), w.getframerate(), w.getnchannels()
    except (wave.Error, EOFError):
        return None


def _pcm_pieces(pcm: bytes, rate: int, channels: int, options: CallOptions) -> tuple[list[_Piece], Fraction]:
    """Little-endian 16-bit samples cut into chunks of whole sample frames, as L16 or as WAV files."""
    frame_bytes = 2 * channels
    frames_per_chunk = int(Fraction(options.chunk_ms) * rate / 1000)
    if frames_per_chunk == 0:
        raise _Skip(f"--chunk-ms {options.chunk_ms:g} is shorter than one sample frame at {rate} Hz")
    total = len(pcm) // frame_bytes
    if total == 0:
        raise _Skip("the audio holds no samples")
    step = frames_per_chunk * frame_bytes
    pieces: list[_Piece] = []
    for start in range(0, total * frame_bytes, step):
        body = pcm[start : min(start + step, total * frame_bytes)]
        begin = Fraction(start // frame_bytes * 1000, rate)
        if options.audio_format is AudioFormat.PCM:
            value, content_type = _big_endian(body), f"audio/L16;rate={rate};channels={channels}"
        else:
            value, content_type = samples.wav_of(body, sample_rate=rate, channels=channels), "audio/wav"
        pieces.append(_Piece(value, content_type, MediaKind.AUDIO, begin))
    return pieces, Fraction(total * 1000, rate)


def _big_endian(pcm_le: bytes) -> bytes:
    samples = array.array("h")
    samples.frombytes(pcm_le)
    if sys.byteorder == "little":
        samples.byteswap()
    return samples.tobytes()


# --------------------------------------------------------------------------------------------------------
# The command: arguments, file walking and sending.

# ``--samples``: what a first run needs to see every kind of outcome (name -> bytes, made on demand). The
# comments say what v0 answers; for v1 the call is 12 chunks of 500 ms and the text lines NOT_OFFERED_BY_API.
SAMPLE_FILES: tuple[tuple[str, Callable[[], bytes]], ...] = (
    ("call.wav", lambda: samples.wav(6.0, freq_hz=220.0)),  # two chunks: two prosody predictions
    ("face.jpg", lambda: samples.jpeg(96, 96, seed=1)),  # a face prediction
    (
        "chat.txt",
        lambda: b"I can't believe it worked!\nWhy is this still broken?\n",
    ),  # two language predictions
    ("blank.png", lambda: samples.png(64, 64, uniform=True)),  # a prediction and a "no faces" warning
    ("long.txt", lambda: b"word " * 2_001),  # over Hume's 10,000 characters: a TEXT_TOO_LONG error outcome
)

DESCRIPTION = "Feed media files into the bridge's input topic as a producer would."

EPILOG = f"""\
how files become records for Hume v1 (--api v1, the default; the content type is sniffed from the bytes):
  audio            a call: chunks of --chunk-ms (default {DEFAULT_CALL_CHUNK_MS:g}) of whole sample frames;
                   --format pcm (default): audio/L16;rate=R;channels=C, 16-bit big-endian samples;
                   --format wav: each chunk a complete WAV. A 16-bit WAV keeps its rate, channels and
                   samples; other audio (MP3, FLAC, Ogg, MP4/M4A, WebM, other WAVs) is decoded to 16 kHz mono
  video            --video-as frames (default): one image/jpeg record per frame, at most 3 a second;
                   --video-as whole: the file as one record
  every chunk and frame carries {STREAM_OFFSET_HEADER} (its start within the stream, ms); the stream's
  last record carries {END_OF_STREAM_HEADER}: true
  images, text and the rest as for v0 (Hume v1 offers no model for text or facemesh: the bridge answers
  NOT_OFFERED_BY_API)

how files become records for Hume v0 (--api v0):
  WAV audio        cut into complete WAVs of at most --chunk-ms (default {DEFAULT_CHUNK_MS:g}), in order
  other audio,     one record per file: MP3, MP4/M4A, WebM, FLAC and Ogg cannot be split without decoding,
  and video        so keep audio under Hume's {AUDIO_LIMIT_MS} ms limit yourself
  images           one record per file (PNG, JPEG, GIF, WebP)
  text             one record per non-empty line (UTF-8)
  *{FACEMESH_SUFFIX}  one {FACEMESH_CONTENT_TYPE} record
  *{ENVELOPE_SUFFIX}      one {ENVELOPE_CONTENT_TYPE} record (a complete Hume request, forwarded as given)

All records of a file share one key (one file = one stream): --key, or the file's whole name, so
speech.wav and speech.mp3 are two streams; with --key the files are one stream, in order. Kafka
connection and security come from the same environment as `hume-bridge run` (BRIDGE_KAFKA_BOOTSTRAP,
BRIDGE_KAFKA_SECURITY_PROTOCOL, the SASL and SSL settings).
Directories are walked recursively, hidden files skipped. A file that cannot be read, recognised or sent is
reported on stderr and the exit code is 1; every other file is still sent.
"""


def kafka_settings(env: Mapping[str, str], bootstrap: str | None = None) -> KafkaConfig:
    """The Kafka settings of ``run`` (connection, security, topics) read from ``env`` by the same table,
    with ``--bootstrap`` over ``BRIDGE_KAFKA_BOOTSTRAP``; raises ConfigError naming every bad variable."""
    kafka = load_kafka(env)
    return replace(kafka, bootstrap=bootstrap) if bootstrap else kafka


def _models_arg(text: str) -> dict[str, Any]:
    try:
        value: Any = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc.msg} at char {exc.pos}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object such as '{\"prosody\": {}}'")
    return value


def _header_arg(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not name.strip():
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    return name.strip(), value


def _chunk_ms_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= AUDIO_LIMIT_MS:
        raise argparse.ArgumentTypeError(
            f"must be above 0 and at most {AUDIO_LIMIT_MS} (Hume v0's limit per record)"
        )
    return value


def _timeout_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="media files or directories")
    parser.add_argument(
        "--samples",
        action="store_true",
        help="also send generated sample media: " + ", ".join(name for name, _ in SAMPLE_FILES),
    )
    parser.add_argument(
        "--bootstrap",
        help=f"Kafka bootstrap servers (default: $BRIDGE_KAFKA_BOOTSTRAP or {DEFAULT_BOOTSTRAP}); security "
        "settings as for run (BRIDGE_KAFKA_SECURITY_PROTOCOL, SASL, SSL)",
    )
    parser.add_argument(
        "--topic", help=f"input topic (default: the first of $BRIDGE_INPUT_TOPICS, or {DEFAULT_TOPIC})"
    )
    parser.add_argument(
        "--key", help="stream key for every record (default: each file's whole name, e.g. call-17.wav)"
    )
    parser.add_argument(
        "--models",
        type=_models_arg,
        metavar="JSON",
        help="hume-models header, a JSON object such as '{\"prosody\": {}}' "
        "(default: the bridge's per media kind)",
    )
    parser.add_argument(
        "--header",
        dest="headers",
        type=_header_arg,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra header, repeatable; replaces content-type or hume-models if it names them",
    )
    parser.add_argument(
        "--api",
        choices=[api.value for api in Api],
        default=None,
        help="the Hume API the bridge speaks (default: $BRIDGE_HUME_API, else v1)",
    )
    parser.add_argument(
        "--chunk-ms",
        type=_chunk_ms_arg,
        default=None,
        metavar="MS",
        help=f"longest audio chunk in milliseconds (default: {DEFAULT_CALL_CHUNK_MS:g} for v1, "
        f"{DEFAULT_CHUNK_MS:g} for v0; at most {AUDIO_LIMIT_MS})",
    )
    parser.add_argument(
        "--format",
        dest="audio_format",
        choices=[f.value for f in AudioFormat],
        default=AudioFormat.PCM.value,
        help="v1 audio chunks: raw PCM as audio/L16 (default) or complete WAV files",
    )
    parser.add_argument(
        "--video-as",
        choices=[v.value for v in VideoAs],
        default=VideoAs.FRAMES.value,
        help="v1 video files: JPEG frames at most 3 a second (default) or the file as one record",
    )
    parser.add_argument(
        "--timeout-s",
        type=_timeout_arg,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"deadline to connect, and for each file's records to be acknowledged "
        f"(default: {DEFAULT_TIMEOUT_S:g})",
    )


def _is_hidden(relative: PurePath) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def expand_paths(paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
    """The files named, directories walked recursively in sorted order (hidden entries skipped), and a
    problem for each path that does not exist."""
    files: list[Path] = []
    problems: list[str] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(f for f in path.rglob("*") if f.is_file() and not _is_hidden(f.relative_to(path)))
            )
        elif path.exists():
            files.append(path)
        else:
            problems.append(f"{path}: no such file or directory")
    return files, problems


def _summary(counts: Counter[MediaKind], sent_bytes: int, topic: str, failed: int) -> str:
    records = sum(counts.values())
    kinds = ", ".join(f"{kind} {counts[kind]}" for kind in MediaKind if counts[kind])
    line = f"sent {records} record{'' if records == 1 else 's'} ({sent_bytes:,} bytes) to {topic}"
    if kinds:
        line += f": {kinds}"
    if failed:
        line += f"; {failed} file{'' if failed == 1 else 's'} not sent (see above)"
    return line


async def _deliver(
    producer: AIOKafkaProducer, topic: str, records: Sequence[Record]
) -> tuple[list[Record], str | None]:
    """Send one file's records in order and wait for the broker to acknowledge them (acks=all).

    Returns the acknowledged records and the first failure. Sending stops at a record the producer refuses
    outright (e.g. too large): the stream's later records would otherwise arrive with a gap before them.
    """
    pending: list[asyncio.Future[Any]] = []
    refused: KafkaError | None = None
    try:
        for record in records:
            pending.append(
                await producer.send(topic, record.value, key=record.key, headers=list(record.headers))
            )
    except KafkaError as exc:
        refused = exc
    results = await asyncio.gather(*pending, return_exceptions=True)
    # results line up with the first len(results) records: those that were handed to the producer.
    sent = zip(records[: len(results)], results, strict=True)
    acked = [record for record, result in sent if not isinstance(result, BaseException)]
    failure = next((r for r in results if isinstance(r, BaseException)), refused)
    return acked, ((str(failure) or type(failure).__name__) if failure is not None else None)


async def _produce(args: argparse.Namespace, kafka: KafkaConfig, api: Api) -> int:
    bootstrap = kafka.bootstrap
    topic: str = args.topic or kafka.input_topics[0]
    timeout_s: float = args.timeout_s

    def report(level: str, message: str) -> None:
        print(f"{level}: {message}", file=sys.stderr)

    if not args.paths and not args.samples:
        report("error", "name at least one file or directory, or --samples")
        return 2
    files, problems = expand_paths(args.paths)
    sources: list[tuple[PurePath, bytes | None]] = [(path, None) for path in files]
    if args.samples:
        sources += [(PurePath(name), make()) for name, make in SAMPLE_FILES]
    for problem in problems:
        report("error", problem)
    failed = len(problems)
    planner: CallPlanner | None = None
    if api is Api.V1:
        options = CallOptions(
            chunk_ms=args.chunk_ms or DEFAULT_CALL_CHUNK_MS,
            audio_format=AudioFormat(args.audio_format),
            video_as=VideoAs(args.video_as),
            key=args.key,
            models=args.models,
            headers=args.headers,
        )
        planner = CallPlanner([path for path, _ in sources], options)

    producer = AIOKafkaProducer(**client_options(kafka), acks="all", client_id="hume-bridge-produce")
    try:
        async with asyncio.timeout(timeout_s):
            await producer.start()
    except (KafkaError, OSError, TimeoutError) as exc:
        report("error", f"cannot connect to Kafka at {bootstrap}: {str(exc) or type(exc).__name__}")
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout_s):
                await producer.stop()
        return 1

    counts: Counter[MediaKind] = Counter()
    sent_bytes = 0
    try:
        for index, (path, given) in enumerate(sources):
            try:
                data = given if given is not None else await asyncio.to_thread(Path(path).read_bytes)
            except OSError as exc:
                report("error", f"{path}: cannot read: {exc.strerror or exc}")
                failed += 1
                continue
            if planner is not None:  # decoding is CPU work: off the loop that runs the producer
                plan = await asyncio.to_thread(planner.plan, index, path, data)
            else:
                plan = plan_records(
                    [(path, data)],
                    chunk_ms=args.chunk_ms or DEFAULT_CHUNK_MS,
                    key=args.key,
                    models=args.models,
                    headers=args.headers,
                )
            del data
            for note in plan.notes:
                report("note", note)
            for problem in plan.problems:
                report("error", problem)
            failed += len(plan.problems)
            try:
                async with asyncio.timeout(timeout_s):
                    acked, error = await _deliver(producer, topic, plan.records)
            except TimeoutError:
                left = len(sources) - index - 1
                report(
                    "error",
                    f"{path}: not acknowledged by {bootstrap} within {timeout_s:g} s; stopping with "
                    f"{left} more file{'' if left == 1 else 's'} unsent",
                )
                failed += 1 + left
                break
            counts.update(record.kind for record in acked)
            sent_bytes += sum(len(record.value) for record in acked)
            if error is not None:
                report("error", f"{path}: {len(acked)} of {len(plan.records)} records sent; {error}")
                failed += 1
    finally:
        try:
            async with asyncio.timeout(timeout_s):
                await producer.stop()
        except TimeoutError:
            report("error", f"the producer did not close within {timeout_s:g} s")
    print(_summary(counts, sent_bytes, topic, failed))
    return 1 if failed else 0


def api_of(given: Api | None, env: Mapping[str, str]) -> Api:
    """``--api``, else ``BRIDGE_HUME_API`` (as for ``run``), else v1; ConfigError for a bad value."""
    if given is not None:
        return given
    raw = env.get("BRIDGE_HUME_API", "").strip().lower()
    if not raw:
        return Api.V1
    try:
        return Api(raw)
    except ValueError:
        raise ConfigError([f"BRIDGE_HUME_API must be v1 or v0, got {raw!r}"]) from None


def main(args: argparse.Namespace) -> int:
    problems: list[str] = []
    try:
        kafka = kafka_settings(os.environ, args.bootstrap)
    except ConfigError as exc:
        problems += exc.problems
    try:
        api = api_of(Api(args.api) if args.api else None, os.environ)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        print(f"hume-bridge produce: {ConfigError(problems)}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_produce(args, kafka, api))
    except KeyboardInterrupt:
        return 130
