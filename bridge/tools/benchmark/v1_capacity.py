"""How many concurrent paced v1 audio streams one bridge process holds on one core, pacing lag p99 < 20 ms.

    python -m bridge.tools.benchmark.v1_capacity --streams 100,200,400 --seconds 20 [--cpu 1]

For each stream count: fresh topics on the embedded broker, the emulator as its own process, and
``hume-bridge run`` as a child pinned to one core (``taskset -c CPU``). The calls are produced as live calls
arrive: every stream's next 500 ms raw-PCM record each 500 ms, for ``--seconds``. ``/metrics`` is scraped
after a warm-up (``--warmup-s``: sessions opening) and once every record is committed; the difference of
the pacing-lag histograms gives the share of frames sent within 20 ms of their schedule and the bucket
holding the 99th percentile; the bridge's CPU seconds per wall second come from ``/proc``. Heavy: never
part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bridge.tools.benchmark.procs import EmulatorProcess, cpu_seconds
from bridge.tools.embedded import LOCAL_ENV, EmbeddedBroker, free_port
from bridge.tools.emulator.v1.testing import silence, tone

KEY = "capacity"
CHUNK_MS = 500
PARTITIONS = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--streams", default="100,200,400", help="stream counts to try, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="audio per stream, s")
    parser.add_argument("--cpu", type=int, default=1, help="core the bridge is pinned to")
    parser.add_argument("--warmup-s", type=float, default=3.0, help="left out of the lag figures, s")


def _call(seconds: float) -> list[bytes]:
    loop = tone(2500) + silence(1500)
    pcm = (loop * int(seconds / 4 + 1))[: int(seconds * 32_000)]
    step = CHUNK_MS * 32
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


async def _topics(bootstrap: str) -> list[str]:
    names = [f"cap-{kind}-{uuid.uuid4().hex[:8]}" for kind in ("media", "pred", "err", "warn")]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
    finally:
        await admin.close()
    return names


async def _produce(bootstrap: str, topic: str, streams: int, chunks: list[bytes]) -> int:
    """Every stream's records at real time, the streams' starts spread over one record (as calls begin
    at any moment, not all on the same millisecond)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    n = 0
    period = CHUNK_MS / 1000
    begin = time.monotonic()
    try:
        for i, chunk in enumerate(chunks):
            for s in range(streams):
                wait = begin + i * period + period * s / streams - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # records arrive as live calls' do
                headers = [("content-type", b"audio/pcm;rate=16000")]
                if i == len(chunks) - 1:
                    headers.append(("hume-end-of-stream", b"true"))
                await producer.send(topic, chunk, key=f"call-{s}".encode(), headers=headers)
                n += 1
        await producer.flush()
    finally:
        await producer.stop()
    return n


async def _committed(bootstrap: str, group: str, topic: str) -> int:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        total = 0
        for p in range(PARTITIONS):
            total += await c.committed(TopicPartition(topic, p)) or 0
        return total
    finally:
        await c.stop()


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("hume_bridge_v1_pacing_lag_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[f"le:{le}"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("hume_bridge_v1_pacing_lag_seconds_count"):
            out["count"] = float(line.rsplit(" ", 1)[1])
    return out


def _lag(histogram: dict[str, float]) -> tuple[float, str]:
    """(share of frames within 20 ms, the upper bound of the bucket holding p99)."""
    count = histogram.get("count", 0.0)
    if not count:
        return 0.0, "-"
    within = histogram.get("le:0.02", 0.0) / count
    bounds = sorted((float(k[3:]), v) for k, v in histogram.items() if k.startswith("le:") and k != "le:+Inf")
    p99 = next((f"{b * 1000:g} ms" for b, v in bounds if v >= 0.99 * count), "> 2.5 s")
    return within, p99


async def _one(bootstrap: str, http_url: str, streams: int, args: argparse.Namespace) -> dict[str, Any]:
    media, pred, err, warn = await _topics(bootstrap)
    group = f"cap-{uuid.uuid4().hex[:8]}"
    chunks = _call(args.seconds)
    total = len(chunks) * streams
    port = free_port()
    env = {
        **os.environ,
        **LOCAL_ENV,
        "HUME_API_KEY": KEY,
        "BRIDGE_HUME_API": "v1",
        "BRIDGE_HUME_URL": http_url,
        "BRIDGE_KAFKA_BOOTSTRAP": bootstrap,
        "BRIDGE_GROUP_ID": group,
        "BRIDGE_INPUT_TOPICS": media,
        "BRIDGE_PREDICTIONS_TOPIC": pred,
        "BRIDGE_ERRORS_TOPIC": err,
        "BRIDGE_WARNINGS_TOPIC": warn,
        "BRIDGE_HTTP_HOST": "127.0.0.1",
        "BRIDGE_HTTP_PORT": str(port),
        "BRIDGE_LOG_LEVEL": "WARNING",
        "BRIDGE_V1_MAX_SESSIONS": str(streams),
        "BRIDGE_MAX_BUFFERED_RECORDS": str(total + 1000),
        "BRIDGE_MAX_BUFFERED_BYTES": str(2 * 1024**3),
    }
    pin = ["taskset", "-c", str(args.cpu)] if shutil.which("taskset") else []
    proc = await asyncio.create_subprocess_exec(*pin, sys.executable, "-m", "bridge", "run", env=env)
    started = time.monotonic()
    try:
        while time.monotonic() < started + 60:
            await asyncio.sleep(0.5)  # polling a child process's start-up
            try:
                _scrape(port)
                break
            except OSError:
                continue
        await asyncio.sleep(5)  # the consumer joins its group (the embedded broker's settings: ~3 s)
        producing = asyncio.create_task(_produce(bootstrap, media, streams, chunks))
        await asyncio.sleep(args.warmup_s)
        before = _scrape(port)
        cpu0 = (time.monotonic(), cpu_seconds(proc.pid) or 0.0)
        await producing
        deadline = time.monotonic() + args.seconds * 2 + 60
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)  # polling a child process's progress
            if await _committed(bootstrap, group, media) >= total:
                break
        wall = time.monotonic() - cpu0[0]
        cpu = (cpu_seconds(proc.pid) or 0.0) - cpu0[1]
        after = _scrape(port)
        histogram = {k: v - before.get(k, 0.0) for k, v in after.items()}
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    within, p99 = _lag(histogram)
    return {
        "streams": streams,
        "records": total,
        "frames": int(histogram.get("count", 0)),
        "within_20ms": round(within, 5),
        "p99_bucket": p99,
        "bridge_cpu_per_s": round(cpu / wall, 3) if wall > 0 else None,
        "wall_s": round(time.monotonic() - started, 1),
    }


async def _main(args: argparse.Namespace) -> int:
    log_dir = Path(tempfile.mkdtemp(prefix="hume-v1-capacity-"))
    emulator = EmulatorProcess(log_dir, ["--api-key", KEY, "--audio-burst-ms", "5000"])
    try:
        await emulator.start()
        http_url = "http://" + emulator.url.split("ws://", 1)[1].split("/", 1)[0]
        with EmbeddedBroker() as broker:
            for n in (int(x) for x in args.streams.split(",")):
                result = await _one(broker.bootstrap, http_url, n, args)
                print(result, flush=True)
    finally:
        await emulator.stop()
    return 0


def main(args: argparse.Namespace) -> int:
    return asyncio.run(_main(args))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    raise SystemExit(main(parser.parse_args()))
