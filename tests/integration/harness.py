"""Helpers for integration tests: configuration, a bridge running in-process or as a subprocess,
producing input records and collecting outcome records from the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bridge.app import Bridge
from bridge.config import Config, load
from bridge.metrics import Metrics
from bridge.tools import samples
from bridge.tools.embedded import free_port

API_KEY = "test-key-0123456789"


@dataclass
class Topics:
    media: str
    predictions: str
    errors: str
    warnings: str
    group: str = field(default_factory=lambda: f"g-{uuid.uuid4().hex[:10]}")

    @property
    def outputs(self) -> list[str]:
        return [self.predictions, self.errors, self.warnings]


async def make_topics(new_topic: Callable[..., Any], partitions: int = 4) -> Topics:
    return Topics(
        media=await new_topic("media", partitions),
        predictions=await new_topic("pred", partitions),
        errors=await new_topic("err", partitions),
        warnings=await new_topic("warn", partitions),
    )


def text_records(
    streams: int, per_stream: int, start: int = 0
) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """``per_stream`` text records for each of ``streams`` keys, interleaved, numbered by a ``seq`` header."""
    return [
        (f"s{s}".encode(), samples.text(6, seed=s * 1000 + i).encode(), [("seq", str(i).encode())])
        for i in range(start, start + per_stream)
        for s in range(streams)
    ]


def bridge_env(bootstrap: str, hume_url: str, topics: Topics, **overrides: str) -> dict[str, str]:
    env = {
        "HUME_API_KEY": API_KEY,
        "BRIDGE_HUME_API": "v0",
        "BRIDGE_HUME_URL": hume_url,
        "BRIDGE_KAFKA_BOOTSTRAP": bootstrap,
        "BRIDGE_GROUP_ID": topics.group,
        "BRIDGE_INPUT_TOPICS": topics.media,
        "BRIDGE_PREDICTIONS_TOPIC": topics.predictions,
        "BRIDGE_ERRORS_TOPIC": topics.errors,
        "BRIDGE_WARNINGS_TOPIC": topics.warnings,
        "BRIDGE_HTTP_HOST": "127.0.0.1",
        "BRIDGE_HTTP_PORT": "0",
        "BRIDGE_POOL_SIZE": "8",
        "BRIDGE_COMMIT_INTERVAL_S": "0.2",
        "BRIDGE_RECONNECT_BACKOFF_INITIAL_S": "0.05",
        "BRIDGE_RECONNECT_BACKOFF_MAX_S": "0.5",
        "BRIDGE_RETRY_BACKOFF_INITIAL_S": "0.02",
        "BRIDGE_RETRY_BACKOFF_MAX_S": "0.2",
        "BRIDGE_OUTAGE_PROBE_INITIAL_S": "0.1",
        "BRIDGE_OUTAGE_PROBE_MAX_S": "0.5",
        "BRIDGE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "BRIDGE_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    }
    env.update(overrides)
    return env


def bridge_config(bootstrap: str, hume_url: str, topics: Topics, **overrides: str) -> Config:
    return load(bridge_env(bootstrap, hume_url, topics, **overrides))


@contextlib.asynccontextmanager
async def running_bridge(config: Config, metrics: Metrics | None = None) -> AsyncIterator[Bridge]:
    """A bridge running in this event loop until the block ends (then drained and stopped)."""
    bridge = Bridge(config, metrics)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(bridge.run(stop))
        try:
            await wait_for(lambda: bridge.http is not None and bridge.joined, 30, "bridge joined its group")
            yield bridge
        finally:
            stop.set()
            async with asyncio.timeout(60):
                await task


async def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Wait for a condition with a deadline (polling: the condition is about another component)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for: {what}")
        await asyncio.sleep(0.02)


async def wait_for_async(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    """As :func:`wait_for`, for a condition that has to ask over the network (a scrape, an HTTP probe)."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for: {what}")
        await asyncio.sleep(0.05)


Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


async def produce(bootstrap: str, topic: str, records: Iterable[Record]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    n = 0
    try:
        futures = []
        for key, value, headers in records:
            futures.append(await producer.send(topic, value, key=key, headers=headers))
            n += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return n


@dataclass
class Out:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: dict[str, Any]
    headers: dict[str, bytes]
    timestamp_ms: int = 0  # the broker record's timestamp (set by the bridge's producer)


class Collector:
    """Reads output topics from the beginning with an assign-based consumer."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.records: list[Out] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Collector:
        c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None)
        await c.start()
        tps = []
        for t in self.topics:
            parts = c.partitions_for_topic(t)
            if parts is None:
                await c._client.force_metadata_update()
                parts = c.partitions_for_topic(t) or set()
            tps += [TopicPartition(t, p) for p in parts]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        self._consumer = c
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def poll(self) -> None:
        assert self._consumer is not None
        batch = await self._consumer.getmany(timeout_ms=100, max_records=5000)
        for tp, msgs in batch.items():
            for m in msgs:
                self.records.append(
                    Out(
                        tp.topic,
                        tp.partition,
                        m.offset,
                        m.key,
                        orjson.loads(m.value),
                        dict(m.headers),
                        m.timestamp,
                    )
                )

    async def until(self, predicate: Callable[[list[Out]], bool], timeout_s: float, what: str) -> list[Out]:
        deadline = time.monotonic() + timeout_s
        while not predicate(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout_s}s waiting for: {what} (have {len(self.records)})"
                )
            await self.poll()
        return self.records

    def on(self, topic: str) -> list[Out]:
        return [r for r in self.records if r.topic == topic]


def outcomes(records: list[Out], topics: Topics) -> list[Out]:
    return [r for r in records if r.topic in (topics.predictions, topics.errors)]


def outcome_sources(records: list[Out], topics: Topics) -> list[str]:
    return [r.headers["hume-source"].decode() for r in outcomes(records, topics)]


class BridgeProcess:
    """``hume-bridge run`` as a subprocess with its output captured to a file."""

    def __init__(self, env: Mapping[str, str], log_path: str) -> None:
        self.env = {**os.environ, **env}
        self.http_port = free_port()
        self.env["BRIDGE_HTTP_PORT"] = str(self.http_port)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BridgeProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", "run"], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        return self

    def log_lines(self) -> list[dict[str, Any]]:
        out = []
        with open(self.log_path, "rb") as fh:
            for line in fh:
                with contextlib.suppress(orjson.JSONDecodeError):
                    obj = orjson.loads(line)
                    if isinstance(obj, dict):
                        out.append(obj)
        return out

    def has_event(self, event: str) -> bool:
        return any(line.get("event") == event for line in self.log_lines())

    async def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, then wait for the exit code without blocking the event loop."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.proc.wait, timeout_s)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


# -- Hume v1 ---------------------------------------------------------------------------------------------


def v1_env(bootstrap: str, http_url: str, topics: Topics, **overrides: str) -> dict[str, str]:
    """A v1 bridge against the emulator at ``http_url``: short idle close, a pacing lead that sends a
    test's few seconds of audio at once (the emulator is told to take them: see V1_FAULTS)."""
    env = bridge_env(bootstrap, http_url, topics)
    env.update(
        {
            "BRIDGE_HUME_API": "v1",
            "BRIDGE_V1_PACING_LEAD_S": "10",
            "BRIDGE_V1_IDLE_CLOSE_S": "0.3",
            "BRIDGE_V1_CLOSE_TIMEOUT_S": "10",
        }
    )
    env.update(overrides)
    return env


def v1_config(bootstrap: str, http_url: str, topics: Topics, **overrides: str) -> Config:
    return load(v1_env(bootstrap, http_url, topics, **overrides))


# The emulator's pacing bucket matches the bridge's 10 s lead (a test stream's audio goes out at once).
V1_FAULTS = {"audio_burst_ms": 12_000.0, "pace_factor": 40.0, "idle_timeout_s": 60.0}


@dataclass
class Call:
    """One stream of call audio: PCM pieces (speech or silence), cut into records."""

    key: bytes
    records: list[Record]
    pcm: bytes  # the whole call, 16 kHz mono s16le, as Hume must receive it


def call_audio(
    key: str,
    pieces: list[tuple[str, int]],
    chunk_ms: int | Sequence[int] = 250,
    *,
    wav: bool = False,
    end: bool = True,
    hz: float = 440.0,
) -> Call:
    """A call of ``pieces`` (("speech"|"silence", ms)), in records of ``chunk_ms`` (or of each length in
    turn, the last taking the rest) with offsets; raw PCM
    (audio/pcm) or WAV chunks; the last record says hume-end-of-stream."""
    from bridge.tools.emulator.v1 import testing as v1t

    pcm = b""
    at = 0
    for kind, ms in pieces:
        pcm += v1t.tone(ms, hz=hz, start_ms=at) if kind == "speech" else v1t.silence(ms)
        at += ms
    if isinstance(chunk_ms, int):
        cuts = list(range(0, len(pcm), chunk_ms * 32))
    else:
        cuts = [sum(chunk_ms[:n]) * 32 for n in range(len(chunk_ms))]
    records: list[Record] = []
    for seq, i in enumerate(cuts):
        step = (cuts[seq + 1] if seq + 1 < len(cuts) else len(pcm)) - i
        chunk = pcm[i : i + step]
        headers = [("hume-stream-offset-ms", str(i // 32).encode()), ("seq", str(seq).encode())]
        if wav:
            value = v1t.wav(chunk)
            headers.append(("content-type", b"audio/wav"))
        else:
            value = chunk
            headers.append(("content-type", b"audio/pcm;rate=16000"))
        if end and i + step >= len(pcm):
            headers.append(("hume-end-of-stream", b"true"))
        records.append((key.encode(), value, headers))
    return Call(key.encode(), records, pcm)


def interleave(lists: Iterable[list[Record]]) -> list[Record]:
    """Records of several streams, round robin (as calls arrive together)."""
    out: list[Record] = []
    pending = [list(x) for x in lists]
    while any(pending):
        for lst in pending:
            if lst:
                out.append(lst.pop(0))
    return out


async def committed(bootstrap: str, group: str, topic: str, partitions: int = 4) -> dict[int, int]:
    """The group's committed offset per partition of ``topic`` (0 where nothing is committed)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        out = {}
        for p in range(partitions):
            off = await c.committed(TopicPartition(topic, p))
            out[p] = off if off is not None else 0
        return out
    finally:
        await c.stop()


async def wait_committed(
    bootstrap: str, group: str, topic: str, total: int, timeout_s: float
) -> dict[int, int]:
    """Poll the group's committed offsets of ``topic`` until they add up to ``total`` (every record)."""
    deadline = time.monotonic() + timeout_s
    while True:
        ends = await committed(bootstrap, group, topic)
        if sum(ends.values()) >= total or time.monotonic() > deadline:
            return ends
        await asyncio.sleep(0.1)


def assigned_nonempty(proc: BridgeProcess) -> bool:
    """The process logged an assignment of at least one partition."""
    return any(
        line.get("event") == "partitions_assigned" and line.get("partitions") for line in proc.log_lines()
    )


def revoked_ever(proc: BridgeProcess) -> bool:
    """The process logged giving up partitions at least once."""
    return any(line.get("event") == "partitions_revoked" for line in proc.log_lines())


def assert_no_commit_after_revoke(proc: BridgeProcess) -> None:
    """From its DEBUG log: the process committed only partitions it owned at the time."""
    owned: set[str] = set()
    for line in proc.log_lines():
        event = line.get("event")
        if event == "partitions_assigned":
            owned |= set(line["partitions"])
        elif event == "partitions_revoked":
            owned -= set(line["partitions"])
        elif event == "offsets_committed":
            stray = set(line["offsets"]) - owned
            assert not stray, f"committed {stray} while not owning them"
