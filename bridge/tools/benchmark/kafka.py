"""The Kafka side of a benchmark: fresh topics, the workload's records, backlogs, a paced producer, and
reading results back (output record timestamps are the clock every pipeline is measured by).

Producers and consumers here use the settings of the bridge's own sink and source at their defaults, so a
reference pipeline talks to the broker exactly as the bridge does.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bridge.tools import samples

Headers = tuple[tuple[str, bytes], ...]

# As bridge.sink builds its producer and bridge.source its consumer (at the default 64 MiB memory cap).
PRODUCER_OPTIONS: Final[dict[str, Any]] = {
    "acks": "all",
    "linger_ms": 5,
    "max_batch_size": 1024 * 1024,
    "max_request_size": 16 * 1024 * 1024,
    "request_timeout_ms": 30_000,
}
CONSUMER_OPTIONS: Final[dict[str, Any]] = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "max_poll_records": 500,
    "fetch_max_wait_ms": 100,
    "fetch_max_bytes": 16 * 1024 * 1024,
    "max_partition_fetch_bytes": 1024 * 1024,
    "isolation_level": "read_committed",
}

# The workload. Text is cheap for the emulator at "passage" granularity (one prediction per payload; at
# the default "word" granularity a 4 KB text is ~700 predictions, and the emulator would be measured).
TEXT_MODELS: Final[dict[str, Any]] = {"language": {"granularity": "passage"}}
AUDIO_MODELS: Final[dict[str, Any]] = {"prosody": {}}
TEXT_BYTES: Final = 4096
AUDIO_SECONDS: Final = 2.0  # 16 kHz mono 16-bit WAV: 64,044 bytes
VARIANTS: Final = 64


@dataclass(frozen=True, slots=True)
class Rec:
    key: bytes
    value: bytes
    headers: Headers


@dataclass(frozen=True, slots=True)
class Out:
    """An output record as read back: its broker timestamp (CreateTime, set by the writer at send)."""

    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: Headers


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    partitions: int

    @property
    def tps(self) -> list[Any]:
        return [TopicPartition(self.name, p) for p in range(self.partitions)]


def text_value(variant: int, size: int = TEXT_BYTES) -> bytes:
    """``size`` bytes of English text (ASCII), one of a few variants so that caches stay warm."""
    words = samples.text(size // 4, seed=variant)
    while len(words) < size:
        words += " " + samples.text(64, seed=variant + len(words))
    return words[:size].rstrip().ljust(size, ".").encode("ascii")


def text_records(count: int, streams: int, start: int = 0) -> Iterator[Rec]:
    """4 KB ``text/plain`` records keyed round-robin over ``streams`` stream ids."""
    values = [text_value(v) for v in range(VARIANTS)]
    headers: Headers = (("content-type", b"text/plain"),)
    for i in range(start, start + count):
        yield Rec(b"stream-%04d" % (i % streams), values[i % VARIANTS], headers)


def audio_records(count: int, streams: int) -> Iterator[Rec]:
    """64 KB ``audio/wav`` records (2 s chunks), keyed round-robin over ``streams`` stream ids."""
    values = [samples.wav(AUDIO_SECONDS, seed=v) for v in range(16)]
    headers: Headers = (("content-type", b"audio/wav"),)
    for i in range(count):
        yield Rec(b"call-%04d" % (i % streams), values[i % len(values)], headers)


def hume_request(value: bytes, headers: Headers, payload_id: str) -> bytes:
    """The v0 request frame a minimal pipeline sends for a workload record (text or WAV)."""
    content_type = dict(headers).get("content-type", b"")
    if content_type.startswith(b"text/"):
        body: dict[str, Any] = {"data": value.decode("utf-8"), "models": TEXT_MODELS, "raw_text": True}
    else:
        body = {"data": samples.b64(value), "models": AUDIO_MODELS}
    body["payload_id"] = payload_id
    return orjson.dumps(body)


class Kafka:
    """One admin client and one producer for the whole benchmark."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._admin: Any = None
        self._producer: Any = None

    async def __aenter__(self) -> Kafka:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self._admin.start()
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, **PRODUCER_OPTIONS)
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._producer is not None:
            await self._producer.stop()
        if self._admin is not None:
            await self._admin.close()

    async def topic(self, prefix: str, partitions: int) -> Topic:
        name = f"bench-{prefix}-{uuid.uuid4().hex[:8]}"
        await self._admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        return Topic(name, partitions)

    async def produce(self, topic: Topic, records: Iterable[Rec], window: int = 2000) -> int:
        """Append ``records`` (acknowledged) and return the bytes of their values."""
        total = 0
        futures: list[asyncio.Future[Any]] = []
        for rec in records:
            futures.append(
                await self._producer.send(topic.name, rec.value, key=rec.key, headers=list(rec.headers))
            )
            total += len(rec.value)
            if len(futures) >= window:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
        return total

    async def paced(self, topic: Topic, records: Iterator[Rec], rate: float, count: int) -> None:
        """Send ``count`` records at ``rate`` per second, evenly spaced."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, **{**PRODUCER_OPTIONS, "linger_ms": 0})
        await producer.start()
        futures: list[asyncio.Future[Any]] = []
        try:
            loop = asyncio.get_running_loop()
            start = loop.time()
            for n in range(count):
                due = start + n / rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                rec = next(records)
                futures.append(
                    await producer.send(topic.name, rec.value, key=rec.key, headers=list(rec.headers))
                )
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    async def read(self, topic: Topic, expected: int, timeout_s: float = 60.0) -> list[Out]:
        """The first ``expected`` records of ``topic`` (fewer if they do not arrive within ``timeout_s``).

        The count comes from the writer: the embedded broker's ListOffsets does not report the end of a
        partition reliably, so end offsets are never used here."""
        out: list[Out] = []
        if expected <= 0:
            return out
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, **CONSUMER_OPTIONS)
        await consumer.start()
        try:
            consumer.assign(topic.tps)
            await consumer.seek_to_beginning(*topic.tps)
            deadline = time.monotonic() + timeout_s
            while len(out) < expected and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                for messages in batch.values():
                    out += [Out(m.timestamp, m.key, m.value, tuple(m.headers or ())) for m in messages]
        finally:
            await consumer.stop()
        return out
