"""The reference pipelines the bridge is compared with, each run in a process of its own like the bridge:

``python -m bridge.tools.benchmark.references '<JSON settings>'``

- **passthrough**: consume → produce the value unchanged; no Hume call (the Kafka ceiling).
- **bare**: consume → send over ``sessions`` WebSocket connections with ``inflight`` requests in flight on
  each (as the bridge's pool) → produce the reply; no ordering, offset bookkeeping, retries or metrics (the
  ceiling of any bridge on this machine).
- **naive**: one record at a time: consume, send, await the reply, produce and await the ack, commit (what
  a user writes first with a Hume SDK).

Each prints ``reference ready`` once its consumer and connections are up, runs until it has produced
``count`` records or ``deadline_s`` passed (or SIGTERM), and exits 0. Every output record carries two
headers: ``bench-latency-ms``, the time from the moment its input record was fetched to the moment its
output was handed to the producer (the span of the bridge's ``latency_ms``), and
``bench-source-timestamp-ms``, the input record's timestamp (the bridge's ``source.timestamp_ms``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bridge.tools.benchmark.kafka import CONSUMER_OPTIONS, PRODUCER_OPTIONS, hume_request

KINDS = ("passthrough", "bare", "naive")
LATENCY_HEADER = "bench-latency-ms"
SOURCE_TS_HEADER = "bench-source-timestamp-ms"
BUFFERED_RECORDS = 10_000
REPLY_TIMEOUT_S = 30.0  # a reply, a produce or a commit that takes longer fails the reference


@dataclass(frozen=True, slots=True)
class Settings:
    kind: str
    bootstrap: str
    input: str
    partitions: int
    output: str
    count: int
    deadline_s: float
    url: str = ""
    api_key: str = "bench"
    sessions: int = 1
    inflight: int = 1
    group: str = ""

    def to_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**orjson.loads(text))


class _Run:
    """What every reference shares: the consumer (assigned every input partition), the producer, the
    stop condition and the count of acknowledged outputs."""

    def __init__(self, s: Settings) -> None:
        self.s = s
        self.done = 0
        self.stop = asyncio.Event()
        self.deadline = time.monotonic() + s.deadline_s
        self.consumer: Any = None
        self.producer: Any = None
        self.first_cpu_s: float | None = None  # process CPU time at the first acknowledged output

    async def start(self) -> None:
        s = self.s
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap, group_id=s.group or None, **CONSUMER_OPTIONS
        )
        await self.consumer.start()
        self.consumer.assign([TopicPartition(s.input, p) for p in range(s.partitions)])
        self.producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap, **PRODUCER_OPTIONS)
        await self.producer.start()

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
        if self.consumer is not None:
            await self.consumer.stop()

    def running(self) -> bool:
        return not self.stop.is_set() and self.done < self.s.count and time.monotonic() < self.deadline

    def acked(self, _: asyncio.Future[Any] | None = None) -> None:
        self.done += 1
        if self.first_cpu_s is None:
            self.first_cpu_s = time.process_time()
        if self.done >= self.s.count:
            self.stop.set()

    def cpu_ms_per_record(self) -> float | None:
        """CPU time per output after the first one (start-up left out), in milliseconds."""
        if self.first_cpu_s is None or self.done < 2:
            return None
        return (time.process_time() - self.first_cpu_s) * 1000.0 / (self.done - 1)

    async def send(self, m: Any, value: bytes, fetched_at: float) -> asyncio.Future[Any]:
        """Hand the output for input message ``m`` to the producer; the future resolves on the ack."""
        headers = [
            (LATENCY_HEADER, f"{(time.monotonic() - fetched_at) * 1000.0:.3f}".encode()),
            (SOURCE_TS_HEADER, str(m.timestamp).encode()),
        ]
        future: asyncio.Future[Any] = await self.producer.send(
            self.s.output, value, key=m.key, headers=headers
        )
        return future


async def _connect(s: Settings) -> ClientConnection:
    return await connect(
        s.url,
        additional_headers={"X-Hume-Api-Key": s.api_key},
        compression=None,
        ping_interval=None,
        max_size=None,
        open_timeout=10,
    )


async def passthrough(run: _Run) -> None:
    print("reference ready", flush=True)
    while run.running():
        batch = await run.consumer.getmany(timeout_ms=100, max_records=500)
        fetched_at = time.monotonic()
        for messages in batch.values():
            for m in messages:
                (await run.send(m, m.value, fetched_at)).add_done_callback(run.acked)


async def bare(run: _Run) -> None:
    s = run.s
    # Buffer as many fetched records as the bridge does at its default cap (BRIDGE_MAX_BUFFERED_RECORDS),
    # so that a record's wait before a free connection counts from its fetch in both.
    queue: asyncio.Queue[tuple[Any, float]] = asyncio.Queue(maxsize=BUFFERED_RECORDS)
    connected: list[ClientConnection] = []

    async def fetch() -> None:
        while True:
            batch = await run.consumer.getmany(timeout_ms=100, max_records=500)
            fetched_at = time.monotonic()
            for messages in batch.values():
                for m in messages:
                    await queue.put((m, fetched_at))

    async def session() -> None:
        ws = await _connect(s)
        connected.append(ws)
        if len(connected) == s.sessions:
            print("reference ready", flush=True)
        waiting: dict[str, asyncio.Future[bytes]] = {}

        async def reader() -> None:
            while True:
                try:
                    raw = await ws.recv(decode=False)
                except ConnectionClosed:
                    return
                pid = orjson.loads(raw).get("payload_id")
                future = waiting.pop(pid, None)
                if future is not None and not future.done():
                    future.set_result(raw)

        async def slot() -> None:
            loop = asyncio.get_running_loop()
            while True:
                m, fetched_at = await queue.get()
                pid = f"{m.topic}/{m.partition}/{m.offset}"
                future: asyncio.Future[bytes] = loop.create_future()
                waiting[pid] = future
                async with asyncio.timeout(REPLY_TIMEOUT_S):
                    await ws.send(hume_request(m.value, tuple(m.headers or ()), pid), text=True)
                    reply = await future
                (await run.send(m, reply, fetched_at)).add_done_callback(run.acked)

        async with ws, asyncio.TaskGroup() as tg:
            tg.create_task(reader())
            for _ in range(s.inflight):
                tg.create_task(slot())

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(session()) for _ in range(s.sessions)]
        tasks.append(tg.create_task(fetch()))
        while run.running():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await run.stop.wait()
        for task in tasks:
            task.cancel()


async def naive(run: _Run) -> None:
    s = run.s
    async with await _connect(s) as ws:
        print("reference ready", flush=True)
        while run.running():
            try:
                async with asyncio.timeout(0.2):
                    m = await run.consumer.getone()
            except TimeoutError:
                continue
            fetched_at = time.monotonic()
            async with asyncio.timeout(REPLY_TIMEOUT_S):
                pid = f"{m.partition}/{m.offset}"
                await ws.send(hume_request(m.value, tuple(m.headers or ()), pid), text=True)
                reply = await ws.recv(decode=False)
                await (await run.send(m, reply, fetched_at))
                run.acked()
                await run.consumer.commit({TopicPartition(m.topic, m.partition): m.offset + 1})


async def run_reference(s: Settings) -> tuple[int, float | None]:
    """Run one reference pipeline: (outputs acknowledged, CPU milliseconds per output)."""
    run = _Run(s)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, run.stop.set)
    try:
        await run.start()
        await {"passthrough": passthrough, "bare": bare, "naive": naive}[s.kind](run)
        await run.producer.flush()
    finally:
        await run.close()
    return run.done, run.cpu_ms_per_record()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bridge.tools.benchmark.references '<JSON settings>'", file=sys.stderr)
        return 2
    settings = Settings.from_json(argv[0])
    if settings.kind not in KINDS:
        print(f"unknown reference {settings.kind!r}; one of {', '.join(KINDS)}", file=sys.stderr)
        return 2
    done, cpu_ms = asyncio.run(run_reference(settings))
    print(f"reference done {done} cpu_ms_per_record {cpu_ms if cpu_ms is not None else 'n/a'}", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
