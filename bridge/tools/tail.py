"""``hume-bridge tail``: a readable live view of the bridge's output topics.

One line per output record: time, kind (prediction, error, warning), stream, the input record it answers
(``topic/partition/offset``), then the strongest expressions of each model (v0) or of the measurement (v1),
or the error's code, origin and message, or the warning's code, model and message. ``--json`` prints one JSON
object per record instead. It reads with an assign-based consumer (no consumer group, nothing committed), so
it works against the embedded broker, where kcat does not, and never disturbs the bridge's group.

:func:`describe` is pure (a record's value in, a line out); :func:`main` is the shell.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from bridge.config import KafkaConfig, load_kafka
from bridge.errors import ConfigError
from bridge.source import client_options

TOP = 3  # expressions shown per model, face or measurement


@dataclass(frozen=True, slots=True)
class Line:
    """What one output record says, in words: its kind, stream, source and the rest."""

    kind: str  # prediction | error | warning | other
    stream: str
    source: str
    text: str

    def render(self, timestamp_ms: int | None = None) -> str:
        when = ""
        if timestamp_ms is not None:
            when = datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3] + " "
        return f"{when}{self.kind:<10} {self.stream:<16} {self.source:<22} {self.text}".rstrip()


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _top(items: Iterable[Any], score_keys: Sequence[str] = ("score", "probability")) -> str:
    """``name 0.81, name 0.40`` for the strongest ``TOP`` of a list of ``{"name", "score"|"probability"}``."""
    scored: list[tuple[float, str]] = []
    for item in items:
        if isinstance(item, Mapping) and "name" in item:
            key = next((k for k in score_keys if k in item), None)
            scored.append((_num(item[key]) if key else 0.0, str(item["name"])))
    best: dict[str, float] = {}
    for score, name in scored:
        best[name] = max(score, best.get(name, score))
    ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    return ", ".join(f"{name} {score:.2f}" for name, score in ranked)


def _source(value: Mapping[str, Any]) -> str:
    src = value.get("source")
    if isinstance(src, Mapping):
        return f"{src.get('topic', '?')}/{src.get('partition', '?')}/{src.get('offset', '?')}"
    sources = value.get("sources")
    if isinstance(sources, list) and sources and isinstance(sources[0], Mapping):
        first, last = sources[0], sources[-1]
        ref = f"{first.get('topic', '?')}/{first.get('partition', '?')}/{first.get('offset', '?')}"
        if len(sources) > 1:
            ref += f"..{last.get('offset', '?')}"
        return ref
    return "-"


def _v0_models(models: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for name, obj in models.items():
        if not isinstance(obj, Mapping):
            continue
        if "warning" in obj:
            parts.append(f"{name}: {obj.get('code', '')} {obj['warning']}".replace("  ", " "))
            continue
        emotions = [
            e for p in obj.get("predictions") or [] if isinstance(p, Mapping) for e in p.get("emotions") or []
        ]
        parts.append(f"{name}: {_top(emotions) or 'no predictions'}")
    return "; ".join(parts) or "no models"


def _v1_measurement(value: Mapping[str, Any]) -> str:
    m = value.get("measurement")
    if not isinstance(m, Mapping):
        return "no measurement"
    head = f"{value.get('endpoint', '?')}/{value.get('mode', '?')}"
    if isinstance(m.get("faces"), list):
        faces = [f for f in m["faces"] if isinstance(f, Mapping)]
        measured = [f for f in faces if isinstance(f.get("expressions"), list)]
        shown = [f"face {f.get('face_id', '?')}: {_top(f['expressions']) or '-'}" for f in measured]
        rest = len(faces) - len(measured)
        if rest:
            shown.append(f"{rest} face{'s' if rest > 1 else ''} not measured")
        frame = f" frame {m['frame_id']}" if "frame_id" in m else ""
        return f"{head}{frame} " + ("; ".join(shown) if shown else "no faces")
    span = ""
    if "audio_start_ms" in m or "audio_end_ms" in m:
        span = f" {_num(m.get('audio_start_ms')) / 1000:.1f}-{_num(m.get('audio_end_ms')) / 1000:.1f} s"
    top = _top(m.get("expressions") or [])
    return f"{head}{span} {top or 'no expressions'}"


def describe(value: Any) -> Line:
    """The line for one output record's decoded JSON value (v0 or v1 prediction, error, warning)."""
    if not isinstance(value, Mapping):
        return Line("other", "-", "-", f"not a JSON object: {str(value)[:80]}")
    stream = str(value.get("stream_id", "-"))
    source = _source(value)
    error, warning = value.get("error"), value.get("warning")
    if isinstance(error, Mapping):
        origin = error.get("origin", "?")
        return Line(
            "error", stream, source, f"{error.get('code', '?')} ({origin}) {error.get('message', '')}"
        )
    if isinstance(warning, Mapping):
        model = f" {warning['model']}" if warning.get("model") else ""
        return Line(
            "warning", stream, source, f"{warning.get('code', '?')}{model}: {warning.get('message', '')}"
        )
    latency = f" ({_num(value['latency_ms']):.0f} ms)" if "latency_ms" in value else ""
    if value.get("api") == "v1" or "measurement" in value:
        return Line("prediction", stream, source, _v1_measurement(value) + latency)
    if isinstance(value.get("models"), Mapping):
        return Line("prediction", stream, source, _v0_models(value["models"]) + latency)
    return Line("other", stream, source, orjson.dumps(value).decode()[:120])


def describe_bytes(raw: bytes | None) -> Line:
    if raw is None:
        return Line("other", "-", "-", "no value")
    try:
        return describe(orjson.loads(raw))
    except orjson.JSONDecodeError:
        return Line("other", "-", "-", f"not JSON ({len(raw)} bytes)")


def as_json(
    topic: str, partition: int, offset: int, timestamp_ms: int, key: bytes | None, raw: bytes | None
) -> str:
    """The ``--json`` form: where the record is, its key, and its value (parsed when it is JSON)."""
    value: Any
    try:
        value = None if raw is None else orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = raw.decode("utf-8", "replace") if raw is not None else None
    out = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp_ms": timestamp_ms,
        "key": None if key is None else key.decode("utf-8", "replace"),
        "value": value,
    }
    return orjson.dumps(out).decode()


# --------------------------------------------------------------------------------------------------------
# The command.


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Show predictions, errors and warnings from the output topics as they arrive, one line each. "
        "Kafka settings (bootstrap, security, topics) come from the same environment as run."
    )
    parser.add_argument(
        "--topics",
        help="comma-separated topics to read (default: $BRIDGE_PREDICTIONS_TOPIC, $BRIDGE_ERRORS_TOPIC and "
        "$BRIDGE_WARNINGS_TOPIC, i.e. hume.predictions,hume.errors,hume.warnings)",
    )
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (default: $BRIDGE_KAFKA_BOOTSTRAP)")
    parser.add_argument("--json", action="store_true", help="one JSON object per record instead of a line")
    parser.add_argument(
        "--from-beginning", action="store_true", help="start at the oldest records (default: only new ones)"
    )
    parser.add_argument("--count", type=int, default=None, metavar="N", help="exit 0 after N records")
    parser.add_argument(
        "--timeout-s", type=float, default=30.0, metavar="S", help="deadline to connect (default 30)"
    )


def _topics(args: argparse.Namespace, kafka: KafkaConfig) -> list[str]:
    if args.topics:
        return [t.strip() for t in str(args.topics).split(",") if t.strip()]
    return [kafka.predictions_topic, kafka.errors_topic, kafka.warnings_topic]


async def tail(args: argparse.Namespace, kafka: KafkaConfig, out: TextIO, err: TextIO) -> int:
    topics = _topics(args, kafka)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    consumer = AIOKafkaConsumer(**client_options(kafka), group_id=None, enable_auto_commit=False)
    try:
        try:
            async with asyncio.timeout(args.timeout_s):
                await consumer.start()
                tps = await _partitions(consumer, topics, err)
                if tps is None:
                    return 1
                consumer.assign(tps)
                if args.from_beginning:
                    await consumer.seek_to_beginning(*tps)
                else:
                    await consumer.seek_to_end(*tps)
                for tp in tps:  # resolve every position now: records produced from here on are shown
                    await consumer.position(tp)
        except (KafkaError, OSError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            print(f"hume-bridge tail: cannot read from Kafka at {kafka.bootstrap}: {reason}", file=err)
            return 1
        where = "from the beginning" if args.from_beginning else "new records only"
        print(
            f"tailing {', '.join(topics)} on {kafka.bootstrap} ({where}); Ctrl-C to stop",
            file=err,
            flush=True,
        )
        seen = 0
        while not stop.is_set() and (args.count is None or seen < args.count):
            # a short fetch wait, so that a signal is noticed within half a second
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for tp, messages in sorted(batches.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
                for m in messages:
                    if args.count is not None and seen >= args.count:
                        break
                    if args.json:
                        line = as_json(tp.topic, tp.partition, m.offset, m.timestamp, m.key, m.value)
                    else:
                        line = describe_bytes(m.value).render(m.timestamp)
                    print(line, file=out, flush=True)
                    seen += 1
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await consumer.stop()
    return 0


async def _partitions(
    consumer: AIOKafkaConsumer, topics: Sequence[str], err: TextIO
) -> list[TopicPartition] | None:
    tps: list[TopicPartition] = []
    missing: list[str] = []
    for topic in topics:
        parts = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + 5
        while not parts and time.monotonic() < deadline:  # metadata of a topic not asked about yet
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                await asyncio.sleep(0.2)
        if not parts:
            missing.append(topic)
        tps += [TopicPartition(topic, p) for p in sorted(parts or ())]
    if missing:
        print(
            f"hume-bridge tail: no such topic: {', '.join(missing)} (create them first; locally, hume-bridge "
            "broker does)",
            file=err,
        )
        return None
    return tps


def main(args: argparse.Namespace) -> int:
    try:
        kafka = load_kafka()
    except ConfigError as exc:
        print(f"hume-bridge tail: {exc}", file=sys.stderr)
        return 2
    if args.bootstrap:
        kafka = replace(kafka, bootstrap=args.bootstrap)
    return asyncio.run(tail(args, kafka, sys.stdout, sys.stderr))
