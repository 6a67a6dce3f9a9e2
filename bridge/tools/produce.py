"""``hume-bridge produce``: feed media files into the input topic the way a producer of the bridge would.

Two halves. :func:`plan_records` is pure: file names and bytes in, Kafka records (key, value, headers) out,
plus the problems and notes to report. :func:`main` is the shell: it walks the paths, reads each file,
plans it, sends its records with acks=all and waits for the broker's acknowledgement before the next
file, so at most one file is held in memory. A file that cannot be read, recognised or parsed is reported
on stderr and skipped; the exit code is then 1, but every other file is still sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath
from typing import Any

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

DEFAULT_CHUNK_MS = 4000.0
DEFAULT_BOOTSTRAP = "localhost:9092"
DEFAULT_TOPIC = "hume.media"
DEFAULT_TIMEOUT_S = 30.0

# Compound suffixes that name a payload kind.
FACEMESH_SUFFIX = ".facemesh.json"
ENVELOPE_SUFFIX = ".hume.json"

Header = tuple[str, bytes]


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


def _headers(content_type: str, models: bytes | None, extra: Sequence[tuple[str, str]]) -> tuple[Header, ...]:
    """``content-type`` and ``hume-models`` first, then the extra headers; an extra header of the same name
    (case-insensitive) replaces the one the command would set."""
    overridden = {name.lower() for name, _ in extra}
    own: list[Header] = [("content-type", content_type.encode())]
    if models is not None:
        own.append(("hume-models", models))
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
# The command: arguments, file walking and sending.

# ``--samples``: what a first run needs to see every kind of outcome (name -> bytes, made on demand).
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
how files become records (the content type is sniffed from the bytes):
  WAV audio        split into complete WAV files of at most --chunk-ms each (whole sample frames), in order
  other audio,     one record per file: MP3, MP4/M4A, WebM, FLAC and Ogg cannot be split without decoding,
  and video        so keep audio under Hume's {AUDIO_LIMIT_MS} ms limit yourself
  images           one record per file (PNG, JPEG, GIF, WebP)
  text             one record per non-empty line (UTF-8)
  *{FACEMESH_SUFFIX}  one {FACEMESH_CONTENT_TYPE} record
  *{ENVELOPE_SUFFIX}      one {ENVELOPE_CONTENT_TYPE} record (a complete Hume request, forwarded as given)

All records of a file share one key (one file = one stream): --key, or the file's whole name, so
speech.wav and speech.mp3 are two streams. Kafka connection and security come from the same environment
as `hume-bridge run` (BRIDGE_KAFKA_BOOTSTRAP, BRIDGE_KAFKA_SECURITY_PROTOCOL, the SASL and SSL settings).
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
        raise argparse.ArgumentTypeError(f"must be above 0 and at most {AUDIO_LIMIT_MS} (Hume's audio limit)")
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
        "--chunk-ms",
        type=_chunk_ms_arg,
        default=DEFAULT_CHUNK_MS,
        metavar="MS",
        help=f"longest WAV chunk in milliseconds (default: {DEFAULT_CHUNK_MS:g}, at most {AUDIO_LIMIT_MS})",
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


async def _produce(args: argparse.Namespace, kafka: KafkaConfig) -> int:
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
            plan = plan_records(
                [(path, data)], chunk_ms=args.chunk_ms, key=args.key, models=args.models, headers=args.headers
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


def main(args: argparse.Namespace) -> int:
    try:
        kafka = kafka_settings(os.environ, args.bootstrap)
    except ConfigError as exc:
        print(f"hume-bridge produce: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_produce(args, kafka))
    except KeyboardInterrupt:
        return 130
