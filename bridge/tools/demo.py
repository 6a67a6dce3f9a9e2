"""``hume-bridge demo``: the whole pipeline on this machine, with nothing to set up.

Starts the embedded Kafka-protocol broker and the Hume emulator on free loopback ports, creates the
topics, runs the bridge, feeds it generated sample media (audio chunks, images, text, one deliberately
broken record) with a progress bar, prints a readable summary of predictions, errors and warnings, shuts
everything down and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import time
from collections import Counter
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bridge import log as log_mod
from bridge.app import Bridge
from bridge.config import load
from bridge.tools import samples
from bridge.tools.embedded import LOCAL_ENV, EmbeddedBroker

TOPICS = ("hume.media", "hume.predictions", "hume.errors", "hume.warnings")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--streams", type=int, default=12, help="number of streams (keys) to generate")
    parser.add_argument("--records", type=int, default=10, help="records per stream")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="give up after this long")
    parser.add_argument(
        "--api",
        choices=("v1", "v0"),
        default="v1",
        help="Hume API to demonstrate: v1 (realtime sessions, the default) or v0 (the retired streaming API)",
    )


Records = list[tuple[bytes, bytes, list[tuple[str, bytes]]]]
CHUNK_MS = 250


def v1_sample_records(streams: int, per_stream: int) -> Records:
    """Calls (raw PCM chunks of speech and silence, as a call would send them, the last one saying
    hume-end-of-stream), camera frames and chat lines (which v1 cannot measure: NOT_OFFERED_BY_API), plus
    one broken WAV (an error outcome)."""
    from bridge.tools.emulator.v1 import testing as v1t  # speech the emulator hears as speech

    out: Records = []
    for s in range(streams):
        kind = ("call", "camera", "chat")[s % 3]
        key = f"{kind}-{s:02d}".encode()
        if kind == "call":
            pcm = v1t.silence(500) + v1t.tone(1500, hz=200.0 + 40 * s) + v1t.silence(1000)
            step = CHUNK_MS * 32
            chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)][:per_stream] or [pcm[:step]]
            for i, chunk in enumerate(chunks):
                headers = [
                    ("content-type", b"audio/pcm;rate=16000"),
                    ("hume-stream-offset-ms", str(i * CHUNK_MS).encode()),
                ]
                if i == len(chunks) - 1:
                    headers.append(("hume-end-of-stream", b"true"))
                out.append((key, chunk, headers))
        for i in range(per_stream if kind != "call" else 0):
            if kind == "camera":
                out.append(
                    (
                        key,
                        v1t.jpeg(160, 120, faces=1 + i % 2, seed=s * 100 + i),
                        [("content-type", b"image/jpeg")],
                    )
                )
            else:
                out.append(
                    (key, samples.text(10, seed=s * 1000 + i).encode(), [("content-type", b"text/plain")])
                )
    out.append((b"call-broken", samples.wav(1.0)[:60], [("content-type", b"audio/wav")]))
    return out


def sample_records(streams: int, per_stream: int) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """Audio calls, camera frames and chat lines, plus one silent chunk, one blank frame (warnings) and
    one broken WAV (an error outcome)."""
    out: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []
    for s in range(streams):
        kind = ("call", "camera", "chat")[s % 3]
        key = f"{kind}-{s:02d}".encode()
        for i in range(per_stream):
            seed = s * 1000 + i
            if kind == "call":
                value, ctype = samples.wav(2.0, freq_hz=180.0 + 20 * (i % 7), seed=seed), b"audio/wav"
                headers = [("content-type", ctype), ("hume-models", b'{"prosody": {}, "burst": {}}')]
            elif kind == "camera":
                value, ctype = samples.jpeg(96, 96, seed=seed), b"image/jpeg"
                headers = [("content-type", ctype)]
            else:
                value, ctype = samples.text(10, seed=seed).encode(), b"text/plain"
                headers = [("content-type", ctype)]
            out.append((key, value, headers))
    out.append((b"call-silent", samples.wav(1.0, amplitude=0.0), [("content-type", b"audio/wav")]))
    out.append((b"camera-blank", samples.png(64, 64, uniform=True), [("content-type", b"image/png")]))
    out.append((b"call-broken", samples.wav(1.0)[:60], [("content-type", b"audio/wav")]))
    return out


class LogWatch:
    """The bridge's JSON log lines, read instead of printed: the demo shows the state changes that matter
    (joining the group, partitions assigned) as they happen, and any warning or error at the end."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self._partial = b""

    def write(self, data: bytes | str) -> int:
        chunk = data.encode() if isinstance(data, str) else data
        self._partial += chunk
        *lines, self._partial = self._partial.split(b"\n")
        for line in lines:
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(event, dict):
                self.events.append(event)
                self.changed.set()
        return len(data)

    def flush(self) -> None:
        pass

    def first(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e.get("event") == name), None)

    def problems(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("level") in ("warning", "error", "critical")]


async def wait_joined(console: Console, watch: LogWatch, group: str, timeout_s: float) -> bool:
    """Show what the bridge is doing until it owns partitions (True), or the deadline passes (False)."""
    started = time.monotonic()
    with console.status("starting the bridge: HTTP endpoint, producer, consumer") as status:
        while (assigned := watch.first("partitions_assigned")) is None:
            if watch.first("bridge_started") is not None:
                status.update(f"joining consumer group {group}, waiting for partitions")
            left = timeout_s - (time.monotonic() - started)
            if left <= 0:
                return False
            watch.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, 0.5)):
                    await watch.changed.wait()
    names: list[str] = list(assigned.get("partitions") or [])
    names.sort(key=lambda tp: (tp.rpartition("/")[0], int(tp.rpartition("/")[2] or 0)))
    parts = ", ".join(names) or "none"
    took = time.monotonic() - started
    console.print(f"[bold]bridge[/bold]   joined group {group} in {took:.1f} s; partitions {parts}")
    return True


def top_emotion(models: dict[str, Any]) -> str:
    best: tuple[float, str, str] | None = None
    for name, obj in models.items():
        if not isinstance(obj, dict):
            continue
        for pred in obj.get("predictions") or []:
            for emo in pred.get("emotions") or []:
                score = float(emo.get("score", 0.0))
                if best is None or score > best[0]:
                    best = (score, emo.get("name", "?"), name)
    return "-" if best is None else f"{best[1]} ({best[2]}, {best[0]:.2f})"


async def run_demo(args: argparse.Namespace, console: Console, watch: LogWatch) -> int:
    from bridge.tools.emulator import Emulator  # the demo, not the bridge, needs the emulator

    api_key = secrets.token_hex(16)
    v1 = args.api == "v1"
    records = (
        v1_sample_records(args.streams, args.records) if v1 else sample_records(args.streams, args.records)
    )
    total = len(records)
    with EmbeddedBroker() as broker:
        console.print(f"[bold]broker[/bold]   embedded Kafka protocol on {broker.bootstrap}")
        async with Emulator(api_key=api_key) as emu:
            if v1:
                console.print(f"[bold]emulator[/bold] Hume v1 realtime on {emu.ws_base_url}/v1/expression")
            else:
                console.print(f"[bold]emulator[/bold] Hume v0 streaming on {emu.url}")
            admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
            await admin.start()
            await admin.create_topics([NewTopic(t, num_partitions=4, replication_factor=1) for t in TOPICS])
            await admin.close()
            config = load(
                {
                    **LOCAL_ENV,  # idempotence off and a short session timeout: a fast start on this broker
                    "HUME_API_KEY": api_key,
                    "BRIDGE_HUME_API": args.api,
                    "BRIDGE_HUME_URL": emu.http_url if v1 else emu.url,
                    "BRIDGE_V1_IDLE_CLOSE_S": "1",
                    "BRIDGE_KAFKA_BOOTSTRAP": broker.bootstrap,
                    "BRIDGE_HTTP_HOST": "127.0.0.1",
                    "BRIDGE_HTTP_PORT": "0",
                    "BRIDGE_POOL_SIZE": "4",
                    "BRIDGE_COMMIT_INTERVAL_S": "0.2",
                }
            )
            bridge = Bridge(config)
            stop = asyncio.Event()
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(bridge.run(stop))
                try:
                    if not await wait_joined(console, watch, config.kafka.group_id, args.timeout_s):
                        console.print("[red]the bridge did not join its consumer group in time[/red]")
                        return 1
                    code = await _feed_and_watch(console, broker.bootstrap, bridge, records, total, args)
                    _log_summary(console, watch)
                    return code
                finally:
                    stop.set()
                    await task


async def _feed_and_watch(
    console: Console,
    bootstrap: str,
    bridge: Bridge,
    records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]],
    total: int,
    args: argparse.Namespace,
) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send("hume.media", value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()
    console.print(f"[bold]produced[/bold] {total} records on hume.media ({args.streams} streams)")
    if bridge.config.hume.api == "v1":
        return await _watch_v1(console, bootstrap, bridge, total, args)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    tps = [TopicPartition(t, p) for t in TOPICS[1:] for p in range(4)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    got: dict[str, list[dict[str, Any]]] = {t: [] for t in TOPICS[1:]}
    deadline = time.monotonic() + args.timeout_s
    try:
        with Progress(
            TextColumn("[bold]outcomes"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            bar = progress.add_task("outcomes", total=total)
            while len(got["hume.predictions"]) + len(got["hume.errors"]) < total:
                if time.monotonic() > deadline:
                    console.print("[red]timed out waiting for outcomes[/red]")
                    return 1
                batch = await consumer.getmany(timeout_ms=200)
                for tp, msgs in batch.items():
                    got[tp.topic].extend(orjson.loads(m.value) for m in msgs)
                progress.update(bar, completed=len(got["hume.predictions"]) + len(got["hume.errors"]))
    finally:
        await consumer.stop()
    _summary(console, got, bridge)
    return 0


def _settled(bridge: Bridge) -> dict[str, int]:
    out = {}
    for outcome in ("measured", "silent", "error"):
        value = bridge.metrics.registry.get_sample_value("hume_bridge_records_total", {"outcome": outcome})
        out[outcome] = int(value or 0)
    return out


async def _watch_v1(
    console: Console, bootstrap: str, bridge: Bridge, total: int, args: argparse.Namespace
) -> int:
    """v1: measurements arrive per utterance and per frame, not per record; progress is records settled
    (measured, silent or error), then the outputs are read."""
    deadline = time.monotonic() + args.timeout_s
    with Progress(
        TextColumn("[bold]settled"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        bar = progress.add_task("settled", total=total)
        while (done := sum(_settled(bridge).values())) < total or bridge.tracker.outstanding():
            if time.monotonic() > deadline:
                console.print("[red]timed out waiting for records to settle[/red]")
                return 1
            progress.update(bar, completed=done)
            await asyncio.sleep(0.1)  # a progress display, not synchronisation
        progress.update(bar, completed=total)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    tps = [TopicPartition(t, p) for t in TOPICS[1:] for p in range(4)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    got: dict[str, list[dict[str, Any]]] = {t: [] for t in TOPICS[1:]}
    try:
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=200)
            for tp, msgs in batch.items():
                got[tp.topic].extend(orjson.loads(m.value) for m in msgs)
    finally:
        await consumer.stop()
    _summary_v1(console, got, _settled(bridge))
    return 0


def _strongest(measurement: dict[str, Any]) -> str:
    scores = list(measurement.get("expressions") or [])
    for face in measurement.get("faces") or []:
        scores += face.get("expressions") or []
    best = max(scores, key=lambda e: float(e.get("probability", 0.0)), default=None)
    return "-" if best is None else f"{best['name']} ({float(best['probability']):.2f})"


def _summary_v1(console: Console, got: dict[str, list[dict[str, Any]]], settled: dict[str, int]) -> None:
    preds, errors = got["hume.predictions"], got["hume.errors"]
    table = Table(title="Hume v1 measurements by stream")
    for col in ("stream", "endpoint", "measurements", "spans (ms of the call)", "strongest expression"):
        table.add_column(col)
    by_stream: dict[str, list[dict[str, Any]]] = {}
    for p in preds:
        by_stream.setdefault(str(p["stream_id"]), []).append(p)
    for sid in sorted(by_stream):
        items = by_stream[sid]
        spans = ", ".join(
            f"{p['stream_ms']['begin']}-{p['stream_ms']['end']}" for p in items if "stream_ms" in p
        )
        table.add_row(
            sid, items[0]["endpoint"], str(len(items)), spans or "-", _strongest(items[-1]["measurement"])
        )
    console.print(table)
    if errors:
        codes = Counter((e["error"]["code"], str(e["stream_id"])) for e in errors)
        et = Table(title="Errors")
        for col in ("code", "stream", "records"):
            et.add_column(col)
        for (code, sid), n in sorted(codes.items()):
            et.add_row(code, sid, str(n))
        console.print(et)
    console.print(
        f"[bold]summary[/bold] {len(preds)} measurements; records: {settled['measured']} measured, "
        f"{settled['silent']} silent, {settled['error']} error. Every input record is accounted for."
    )


def _summary(console: Console, got: dict[str, list[dict[str, Any]]], bridge: Bridge) -> None:
    preds, errors, warnings = got["hume.predictions"], got["hume.errors"], got["hume.warnings"]
    table = Table(title="Predictions by stream (first record's strongest expression)")
    table.add_column("stream")
    table.add_column("outcomes", justify="right")
    table.add_column("models")
    table.add_column("strongest expression")
    table.add_column("mean latency", justify="right")
    by_stream: dict[str, list[dict[str, Any]]] = {}
    for p in preds:
        by_stream.setdefault(str(p["stream_id"]), []).append(p)
    for sid in sorted(by_stream):
        items = by_stream[sid]
        mean = sum(float(p["latency_ms"]) for p in items) / len(items)
        models = ", ".join(sorted(items[0]["models"]))
        table.add_row(sid, str(len(items)), models, top_emotion(items[0]["models"]), f"{mean:.0f} ms")
    console.print(table)
    if errors:
        et = Table(title="Errors")
        for col in ("stream", "source", "code", "origin", "message"):
            et.add_column(col)
        for e in errors:
            src = e["source"]
            err = e["error"]
            et.add_row(
                str(e["stream_id"]),
                f"{src['topic']}/{src['partition']}/{src['offset']}",
                err["code"],
                err["origin"],
                err["message"],
            )
        console.print(et)
    if warnings:
        codes = Counter((w["warning"]["code"], w["warning"]["message"], w["stream_id"]) for w in warnings)
        wt = Table(title="Warnings")
        for col in ("code", "message", "stream", "count"):
            wt.add_column(col)
        for (code, msg, sid), n in sorted(codes.items()):
            wt.add_row(code, msg, str(sid), str(n))
        console.print(wt)
    reconnects = bridge.metrics.retries_total.labels(reason="connection_lost")._value.get()
    console.print(
        f"[bold]summary[/bold] {len(preds)} predictions, {len(errors)} errors, {len(warnings)} warnings; "
        f"requests retried after a lost connection: {int(reconnects)}. "
        "Every input record has exactly one outcome."
    )


def _log_summary(console: Console, watch: LogWatch) -> None:
    problems = watch.problems()
    if not problems:
        console.print("[bold]log[/bold]      no warnings or errors from the bridge")
        return
    console.print(f"[bold]log[/bold]      {len(problems)} warning or error line(s) from the bridge:")
    for event in problems[:5]:
        detail = {k: v for k, v in event.items() if k not in ("event", "level", "timestamp")}
        console.print(
            f"  {event.get('level')} {event.get('event')} {orjson.dumps(detail).decode()}", markup=False
        )


def main(args: argparse.Namespace) -> int:
    watch = LogWatch()
    log_mod.configure("INFO", stream=watch)
    console = Console()
    return asyncio.run(run_demo(args, console, watch))
