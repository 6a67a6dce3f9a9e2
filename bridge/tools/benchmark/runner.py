"""The benchmark run: the broker and the emulator, then every measurement of DESIGN.md's Performance
section, in one run on one machine, so that every figure is a ratio to a reference measured alongside it.

    scenario zero-latency (4 KB text, 32 sessions x 1 in flight, emulator latency 0):
        passthrough, naive, then bare and bridge in turns: throughput on the same backlog
        bridge and bare paced at a light load, then at half the bridge's throughput: added latency
    scenario 100 ms (same kind of records, emulator latency 100 ms):
        naive, bare, bridge throughput; Little's-law bound; paced latency as above
    backlog: 64 KB WAV records, far more bytes than the bridge's 64 MiB buffer cap; peak RSS while draining
    scaling (full run): bridge and bare throughput at 1, 4, 16, 64 sessions, 100 ms
    profile (--profile): the bridge under py-spy on the zero-latency backlog

Throughput is read from the output records' timestamps (set by each pipeline's producer when it hands
the record over), between the 10th and the 90th percentile, so start-up and tail are left out and every
pipeline is timed by the same clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bridge.tools.benchmark import measure
from bridge.tools.benchmark.kafka import (
    AUDIO_SECONDS,
    TEXT_BYTES,
    TEXT_MODELS,
    Kafka,
    Topic,
    audio_records,
    text_records,
)
from bridge.tools.benchmark.procs import (
    BenchError,
    BridgeProcess,
    Child,
    EmulatorProcess,
    RssWatch,
    cpu_seconds,
)
from bridge.tools.benchmark.references import LATENCY_HEADER, SOURCE_TS_HEADER, Settings
from bridge.tools.embedded import EmbeddedBroker

MiB = 1024 * 1024
API_KEY = "bench-key"
# The consumers' fetch_max_wait_ms (the bridge's default): the embedded broker holds a fetch that long when
# no data is there, even if data arrives meanwhile, so records reach a consumer in bursts of this much time.
BROKER_FETCH_WAIT_S = 0.1


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes and time limits of one benchmark run."""

    name: str
    zero_records: int  # backlog of the zero-latency throughput runs
    slow_seconds: float  # 100 ms scenario backlog = Little's-law bound x this
    naive_seconds: float  # the naive bridge is stopped after this long
    half_load_seconds: float
    light_load_seconds: float
    backlog_mb: int
    backlog_deadline_s: float
    scaling: tuple[int, ...] = ()
    scaling_seconds: float = 6.0
    repeats: int = 1  # passes of the bare pipeline and the bridge at zero latency (the best counts)
    sessions: int = 32
    inflight: int = 1
    latency_ms: float = 100.0
    partitions: int = 4
    streams: int = 256
    max_buffered_bytes: int = 64 * MiB
    run_deadline_s: float = 120.0
    # The embedded broker holds a group join for half the session timeout (15 s at the bridge's default):
    # start-up only, excluded from every figure.
    kafka_session_timeout_ms: int = 6000

    @classmethod
    def quick(cls) -> Plan:
        """About a minute and a half on a 2-core machine."""
        return cls(
            name="quick",
            zero_records=12_000,
            slow_seconds=6.0,
            naive_seconds=3.0,
            half_load_seconds=5.0,
            light_load_seconds=3.0,
            backlog_mb=200,
            backlog_deadline_s=60.0,
            repeats=2,
        )

    @classmethod
    def full(cls) -> Plan:
        return cls(
            name="full",
            zero_records=40_000,
            slow_seconds=20.0,
            naive_seconds=10.0,
            half_load_seconds=15.0,
            light_load_seconds=8.0,
            backlog_mb=1024,
            backlog_deadline_s=300.0,
            scaling=(1, 4, 16, 64),
            scaling_seconds=8.0,
            repeats=3,
            run_deadline_s=300.0,
        )

    @classmethod
    def tiny(cls) -> Plan:
        """For the test of the machinery: seconds, not a measurement."""
        return cls(
            name="tiny",
            zero_records=200,
            slow_seconds=0.5,
            naive_seconds=0.5,
            half_load_seconds=0.3,
            light_load_seconds=0.3,
            backlog_mb=2,
            backlog_deadline_s=20.0,
            sessions=8,
            streams=32,
            run_deadline_s=30.0,
            kafka_session_timeout_ms=1500,
        )


@dataclass
class Run:
    """One pipeline's pass over a backlog."""

    rate: float | None
    records: int
    errors: int = 0
    peak_rss_mb: float | None = None
    seconds: float = 0.0
    complete: bool = True
    cpu_ms_per_record: float | None = None  # the pipeline's own process, after its first output
    emulator_cpu_ms_per_record: float | None = None


@dataclass
class Progress:
    """Where a bridge run stands: outcomes acknowledged, errors among them, CPU time per outcome."""

    have: int = 0
    errors: int = 0
    complete: bool = False
    cpu_ms_per_record: float | None = None


@dataclass
class Latency:
    """Per-record latency of one pipeline at a paced load (milliseconds)."""

    rate: float
    records: int
    rows: list[tuple[int, float, float]] = field(default_factory=list)  # (output ts, pipeline, e2e)

    def add(self, output_ts: int, pipeline_ms: float, e2e_ms: float) -> None:
        self.rows.append((output_ts, pipeline_ms, e2e_ms))
        self.records = len(self.rows)

    def after_warmup(self) -> Latency:
        """Without the first tenth of the records (by output time): connections and caches warm up."""
        rows = sorted(self.rows)
        return Latency(self.rate, len(rows) - len(rows) // 10, rows[len(rows) // 10 :])

    @property
    def pipeline_ms(self) -> list[float]:
        """Fetched -> output handed to the producer."""
        return [r[1] for r in self.rows]

    @property
    def e2e_ms(self) -> list[float]:
        """Input record timestamp -> output record timestamp."""
        return [float(r[2]) for r in self.rows]


Say = Callable[[str], None]


class Bench:
    """The measurements, each on fresh topics and a fresh consumer group, one process at a time."""

    def __init__(
        self, plan: Plan, kafka: Kafka, emulator: EmulatorProcess, log_dir: Path, say: Say, *, embedded: bool
    ) -> None:
        self.plan = plan
        self.embedded = embedded
        self.kafka = kafka
        self.emu = emulator
        self.log_dir = log_dir
        self.say = say
        self._n = itertools.count(1)

    # -- pipelines ------------------------------------------------------------------------------------
    def _log(self, what: str) -> Path:
        return self.log_dir / f"{next(self._n):02d}-{what}.log"

    async def _outputs(self) -> tuple[Topic, Topic, Topic]:
        p = self.plan.partitions
        return (
            await self.kafka.topic("pred", p),
            await self.kafka.topic("err", p),
            await self.kafka.topic("warn", p),
        )

    def bridge_env(
        self, inp: Topic, outs: tuple[Topic, Topic, Topic], sessions: int, **extra: str
    ) -> dict[str, str]:
        pred, err, warn = outs
        env = {
            "HUME_API_KEY": API_KEY,
            "BRIDGE_HUME_API": "v0",
            "BRIDGE_HUME_URL": self.emu.url,
            "BRIDGE_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "BRIDGE_GROUP_ID": f"bench-{uuid.uuid4().hex[:10]}",
            "BRIDGE_INPUT_TOPICS": inp.name,
            "BRIDGE_PREDICTIONS_TOPIC": pred.name,
            "BRIDGE_ERRORS_TOPIC": err.name,
            "BRIDGE_WARNINGS_TOPIC": warn.name,
            "BRIDGE_POOL_SIZE": str(sessions),
            "BRIDGE_REQUESTS_PER_SESSION": str(self.plan.inflight),
            "BRIDGE_DEFAULT_MODELS_TEXT": orjson.dumps(TEXT_MODELS).decode(),
            "BRIDGE_MAX_BUFFERED_BYTES": str(self.plan.max_buffered_bytes),
            "BRIDGE_KAFKA_SESSION_TIMEOUT_MS": str(self.plan.kafka_session_timeout_ms),
            "BRIDGE_KAFKA_HEARTBEAT_INTERVAL_MS": str(max(100, self.plan.kafka_session_timeout_ms // 10)),
            "BRIDGE_SHUTDOWN_DRAIN_S": "5",
        }
        if self.embedded:
            # The embedded broker refuses producer ids; "auto" would ask, log a warning and fall back to this.
            env["BRIDGE_KAFKA_IDEMPOTENCE"] = "off"
        env.update(extra)
        return env

    async def _await_bridge(
        self, proc: BridgeProcess, want: int, deadline_s: float, rss: RssWatch | None
    ) -> Progress:
        """Scrape the bridge's metrics until ``want`` outcomes are acknowledged."""
        deadline = time.monotonic() + deadline_s
        p = Progress()
        pid = proc.target_pid()
        first: tuple[int, float] | None = None  # (outcomes, CPU seconds) when the first outcomes were seen
        while True:
            proc.check_alive()
            with contextlib.suppress(OSError, TimeoutError, BenchError):
                p.have, p.errors = await proc.outcomes()
            cpu = cpu_seconds(pid) if pid is not None else None
            if first is None and p.have > 0 and cpu is not None:
                first = (p.have, cpu)
            elif first is not None and cpu is not None and p.have > first[0]:
                p.cpu_ms_per_record = (cpu - first[1]) * 1000.0 / (p.have - first[0])
            if rss is not None:
                rss.sample()
            if p.have >= want:
                p.complete = True
                return p
            if time.monotonic() > deadline:
                return p
            await asyncio.sleep(0.25)

    async def _await_reference(self, proc: Child, deadline_s: float) -> int:
        """Wait for a reference to stop by itself (it stops at its count or its deadline); its count."""
        assert proc.proc is not None
        try:
            async with asyncio.timeout(deadline_s):
                await proc.proc.wait()
        except TimeoutError:
            await proc.stop()
        if proc.proc.returncode != 0:
            proc.check_alive()
            raise BenchError(f"{proc.name} was stopped after {deadline_s:g}s:\n{proc.tail()}")
        done = re.search(r"reference done (\d+)", proc.tail())
        if done is None:
            raise BenchError(f"{proc.name} did not report its count:\n{proc.tail()}")
        return int(done.group(1))

    @staticmethod
    def _reference_cpu(proc: Child) -> float | None:
        m = re.search(r"cpu_ms_per_record ([0-9.]+)", proc.tail())
        return float(m.group(1)) if m else None

    async def bridge_throughput(
        self,
        inp: Topic,
        count: int,
        sessions: int,
        *,
        deadline_s: float | None = None,
        wrap: Sequence[str] = (),
        **extra_env: str,
    ) -> Run:
        outs = await self._outputs()
        proc = BridgeProcess(self.bridge_env(inp, outs, sessions, **extra_env), self._log("bridge"), wrap)
        started = time.monotonic()
        emulator_cpu = cpu_seconds(self.emu.pid)
        await proc.start()
        rss: RssWatch | None = None
        try:
            if proc.profiled:
                await proc.wait_for_log(r"bridge_started", 30)
            pid = proc.target_pid()
            rss = RssWatch(pid) if pid is not None else None
            p = await self._await_bridge(proc, count, deadline_s or self.plan.run_deadline_s, rss)
        finally:
            await proc.stop()
        seconds = time.monotonic() - started
        stamps = [o.timestamp_ms for o in await self.kafka.read(outs[0], p.have - p.errors)]
        return Run(
            measure.window_rate(stamps),
            p.have,
            p.errors,
            rss.peak_mb if rss is not None and rss.peak_mb > 0 else None,
            seconds,
            p.complete,
            p.cpu_ms_per_record,
            self._emulator_cpu(emulator_cpu, p.have),
        )

    def _emulator_cpu(self, before: float | None, records: int) -> float | None:
        after = cpu_seconds(self.emu.pid)
        if before is None or after is None or records <= 0:
            return None
        return (after - before) * 1000.0 / records

    def _reference(
        self, kind: str, inp: Topic, out: Topic, count: int, deadline_s: float, sessions: int
    ) -> Child:
        settings = Settings(
            kind=kind,
            bootstrap=self.kafka.bootstrap,
            input=inp.name,
            partitions=inp.partitions,
            output=out.name,
            count=count,
            deadline_s=deadline_s,
            url=self.emu.url,
            api_key=API_KEY,
            sessions=sessions,
            inflight=self.plan.inflight,
            group=f"bench-{uuid.uuid4().hex[:10]}" if kind == "naive" else "",
        )
        argv = [sys.executable, "-m", "bridge.tools.benchmark.references", settings.to_json()]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        return Child(f"the {kind} reference", argv, env, self._log(kind))

    async def reference_throughput(
        self, kind: str, inp: Topic, count: int, sessions: int, deadline_s: float | None = None
    ) -> Run:
        out = await self.kafka.topic(kind, self.plan.partitions)
        limit = deadline_s or self.plan.run_deadline_s
        proc = self._reference(kind, inp, out, count, limit, sessions)
        started = time.monotonic()
        emulator_cpu = cpu_seconds(self.emu.pid)
        await proc.start()
        try:
            have = await self._await_reference(proc, limit + 30)
        finally:
            await proc.stop()
        seconds = time.monotonic() - started
        stamps = [o.timestamp_ms for o in await self.kafka.read(out, have)]
        return Run(
            measure.window_rate(stamps),
            have,
            seconds=seconds,
            complete=have >= count,
            cpu_ms_per_record=self._reference_cpu(proc),
            emulator_cpu_ms_per_record=self._emulator_cpu(emulator_cpu, have)
            if kind != "passthrough"
            else None,
        )

    # -- latency at a paced load ----------------------------------------------------------------------
    def phases(self, half_rate: float, sessions: int) -> list[tuple[float, int]]:
        """(rate, records) of the paced phases: a light load whose bursts fit in half the pool, then half
        of the maximum load."""
        light = min(half_rate, sessions * self.plan.inflight / 2 / BROKER_FETCH_WAIT_S)
        return [
            (light, max(5, math.ceil(light * self.plan.light_load_seconds))),
            (half_rate, max(5, math.ceil(half_rate * self.plan.half_load_seconds))),
        ]

    async def bridge_latency(self, phases: Sequence[tuple[float, int]], sessions: int) -> list[Latency]:
        inp = await self.kafka.topic("paced", self.plan.partitions)
        outs = await self._outputs()
        proc = BridgeProcess(self.bridge_env(inp, outs, sessions), self._log("bridge-paced"))
        await proc.start()
        starts: list[int] = []
        sent = 0
        p = Progress()
        try:
            await proc.wait_ready(sessions, 60)
            for rate, count in phases:
                starts.append(_now_ms())
                await self.kafka.paced(inp, text_records(count, self.plan.streams, sent), rate, count)
                sent += count
                p = await self._await_bridge(proc, sent, 60, None)
        finally:
            await proc.stop()
        results = [Latency(rate, 0) for rate, _ in phases]
        for out in await self.kafka.read(outs[0], p.have - p.errors):
            value = orjson.loads(out.value)
            source_ts = int(value["source"]["timestamp_ms"])
            results[_phase(starts, source_ts)].add(
                out.timestamp_ms, float(value["latency_ms"]), out.timestamp_ms - source_ts
            )
        return [r.after_warmup() for r in results]

    async def bare_latency(self, phases: Sequence[tuple[float, int]], sessions: int) -> list[Latency]:
        inp = await self.kafka.topic("paced", self.plan.partitions)
        out = await self.kafka.topic("bare", self.plan.partitions)
        total = sum(count for _, count in phases)
        proc = self._reference("bare", inp, out, total, 120, sessions)
        await proc.start()
        starts: list[int] = []
        sent = 0
        try:
            await proc.wait_for_log(r"reference ready", 30)
            for rate, count in phases:
                starts.append(_now_ms())
                await self.kafka.paced(inp, text_records(count, self.plan.streams, sent), rate, count)
                sent += count
                if sent < total:  # let the phase finish before the next one starts
                    await self.kafka.read(out, sent, 60)
            have = await self._await_reference(proc, 150)
        finally:
            await proc.stop()
        results = [Latency(rate, 0) for rate, _ in phases]
        for o in await self.kafka.read(out, have):
            headers = dict(o.headers)
            source_ts = int(headers[SOURCE_TS_HEADER])
            results[_phase(starts, source_ts)].add(
                o.timestamp_ms, float(headers[LATENCY_HEADER]), o.timestamp_ms - source_ts
            )
        return [r.after_warmup() for r in results]

    # -- scenarios ------------------------------------------------------------------------------------
    async def throughput_scenario(
        self, name: str, latency_ms: float, count: int, passthrough: Run | None
    ) -> tuple[dict[str, Any], Run]:
        plan, say = self.plan, self.say
        sessions = plan.sessions
        await self.emu.set_faults(latency_s=latency_ms / 1000.0)
        inp = await self.kafka.topic("media", plan.partitions)
        await self.kafka.produce(inp, text_records(count, plan.streams))
        say(
            f"{name}: {count} records of {TEXT_BYTES} bytes on {plan.streams} streams, "
            f"emulator {latency_ms:g} ms"
        )
        if passthrough is None:
            passthrough = await self.reference_throughput("passthrough", inp, count, sessions)
            say(f"  passthrough   {_rps(passthrough.rate)}{_cpu(passthrough)}")
        naive = await self.reference_throughput("naive", inp, count, 1, plan.naive_seconds)
        say(f"  naive bridge  {_rps(naive.rate)}  ({naive.records} records in {plan.naive_seconds:g} s)")
        # With no emulator latency the figures are CPU- and scheduling-bound and vary from pass to pass on
        # a small shared machine: the bare pipeline and the bridge take turns and the best pass of each
        # counts (noise only ever slows a pass down).
        bares: list[Run] = []
        bridges: list[Run] = []
        for _ in range(plan.repeats if latency_ms == 0 else 1):
            bares.append(await self.reference_throughput("bare", inp, count, sessions))
            say(f"  bare pipeline {_rps(bares[-1].rate)}{_cpu(bares[-1])}")
            bridges.append(await self.bridge_throughput(inp, count, sessions))
            b = bridges[-1]
            say(f"  bridge        {_rps(b.rate)}{_cpu(b)}, peak RSS {_mb(b.peak_rss_mb)}")
            if b.errors:
                say(f"  ! the bridge published {b.errors} error outcomes")
        bare, bridge = _best(bares), _best(bridges)
        littles = sessions * plan.inflight / (latency_ms / 1000.0) if latency_ms > 0 else None
        half = 0.5 * (bridge.rate or 0.0)
        lat: list[Latency | None] = [None, None]
        bare_lat: list[Latency | None] = [None, None]
        if half > 0:
            phases = self.phases(half, sessions)
            lat = list(await self.bridge_latency(phases, sessions))
            bare_lat = list(await self.bare_latency(phases, sessions))
        result: dict[str, Any] = {
            "emulator_latency_ms": latency_ms,
            "sessions": sessions,
            "inflight_per_session": plan.inflight,
            "record_bytes": TEXT_BYTES,
            "records": count,
            "throughput_rps": measure.rounded(bridge.rate, 1),
            "references_rps": {
                "passthrough": measure.rounded(passthrough.rate, 1),
                "bare": measure.rounded(bare.rate, 1),
                "naive": measure.rounded(naive.rate, 1),
                "littles_law": measure.rounded(littles, 1),
            },
            "ratio_to_bare": measure.significant(measure.ratio(bridge.rate, bare.rate)),
            "ratio_to_passthrough": measure.significant(measure.ratio(bridge.rate, passthrough.rate)),
            "ratio_to_naive": measure.significant(measure.ratio(bridge.rate, naive.rate)),
            "ratio_to_littles_law": measure.significant(measure.ratio(bridge.rate, littles)),
            "peak_rss_mb": measure.rounded(bridge.peak_rss_mb, 1),
            "cpu_ms_per_record": {
                "bridge": measure.rounded(bridge.cpu_ms_per_record, 3),
                "passthrough": measure.rounded(passthrough.cpu_ms_per_record, 3),
                "bare": measure.rounded(bare.cpu_ms_per_record, 3),
                "naive": measure.rounded(naive.cpu_ms_per_record, 3),
            },
            "emulator_cpu_ms_per_record": {
                "bridge": measure.rounded(bridge.emulator_cpu_ms_per_record, 3),
                "bare": measure.rounded(bare.emulator_cpu_ms_per_record, 3),
            },
            "passes_rps": {
                "bridge": [measure.rounded(r.rate, 1) for r in bridges],
                "bare": [measure.rounded(r.rate, 1) for r in bares],
            },
            "bridge_errors": sum(r.errors for r in bridges),
            "complete": all(r.complete for r in (*bridges, *bares, passthrough)),
        }
        result.update(_latency_fields("", lat[1], bare_lat[1], latency_ms))
        result.update(_latency_fields("light_load_", lat[0], bare_lat[0], latency_ms))
        for prefix, what in (("light_load_", "light load"), ("", "half load")):
            r = {k.removeprefix(prefix): v for k, v in result.items() if k.startswith(prefix)}
            if r.get("added_latency_p50_ms") is None:
                continue
            say(
                f"  {what} {result[(prefix or 'half_load_') + 'rps']:.0f}/s: bridge adds p50 "
                f"{_ms(r['added_latency_p50_ms'])}, p99 {_ms(r['added_latency_p99_ms'])} over the emulator "
                f"(bare pipeline: p50 {_ms(r['bare_added_latency_p50_ms'])}, "
                f"p99 {_ms(r['bare_added_latency_p99_ms'])})"
            )
        return result, passthrough

    async def backlog_scenario(self) -> dict[str, Any]:
        plan = self.plan
        await self.emu.set_faults(latency_s=0.0)
        inp = await self.kafka.topic("backlog", plan.partitions)
        per = len(next(audio_records(1, 1)).value)
        count = max(1, plan.backlog_mb * MiB // per)
        self.say(
            f"backlog: producing {count} records of {per} bytes ({plan.backlog_mb} MiB of "
            f"{AUDIO_SECONDS:g} s WAV chunks; the bridge buffers at most "
            f"{plan.max_buffered_bytes // MiB} MiB)"
        )
        started = time.monotonic()
        total = await self.kafka.produce(inp, audio_records(count, plan.streams), window=256)
        produce_s = time.monotonic() - started
        run = await self.bridge_throughput(inp, count, plan.sessions, deadline_s=plan.backlog_deadline_s)
        self.say(
            f"  drained {run.records}/{count} records in {run.seconds:.1f} s "
            f"({_rps(run.rate)}); bridge peak RSS {_mb(run.peak_rss_mb)}"
        )
        return {
            "backlog_mb": round(total / MiB, 1),
            "record_bytes": per,
            "records": count,
            "drained": run.records,
            "complete": run.complete,
            "bridge_seconds": round(run.seconds, 1),
            "produce_seconds": round(produce_s, 1),
            "throughput_rps": measure.rounded(run.rate, 1),
            "max_buffered_bytes": plan.max_buffered_bytes,
            "peak_rss_mb": measure.rounded(run.peak_rss_mb, 1),
            "bridge_errors": run.errors,
            "reduced_backlog": plan.backlog_mb < 1024,
        }

    async def scaling_scenario(self) -> list[dict[str, Any]]:
        plan = self.plan
        await self.emu.set_faults(latency_s=plan.latency_ms / 1000.0)
        rows: list[dict[str, Any]] = []
        for sessions in plan.scaling:
            bound = sessions * plan.inflight / (plan.latency_ms / 1000.0)
            count = max(20, int(bound * plan.scaling_seconds))
            inp = await self.kafka.topic("scaling", plan.partitions)
            await self.kafka.produce(inp, text_records(count, plan.streams))
            bare = await self.reference_throughput("bare", inp, count, sessions)
            bridge = await self.bridge_throughput(inp, count, sessions)
            row = {
                "sessions": sessions,
                "littles_law_rps": round(bound, 1),
                "bare_rps": measure.rounded(bare.rate, 1),
                "throughput_rps": measure.rounded(bridge.rate, 1),
                "ratio_to_littles_law": measure.significant(measure.ratio(bridge.rate, bound)),
                "ratio_to_bare": measure.significant(measure.ratio(bridge.rate, bare.rate)),
                "records": count,
            }
            rows.append(row)
            self.say(
                f"scaling: {sessions:>2} sessions: bridge {_rps(bridge.rate)}, bare {_rps(bare.rate)}, "
                f"Little's law {bound:.0f}/s"
            )
        return rows

    async def profile(self, path: Path, count: int) -> dict[str, Any]:
        """The bridge under py-spy on a zero-latency backlog; a summary of where its time went.

        ``--gil`` keeps only samples where the bridge holds the GIL, i.e. runs Python or C code rather than
        waiting in a system call or for a CPU: on a machine this small, the processes preempt each other
        at every loopback write, and without it those waits would look like work."""
        spy = find_py_spy()
        if spy is None:
            raise BenchError("--profile needs py-spy: pip install py-spy")
        await self.emu.set_faults(latency_s=0.0)
        inp = await self.kafka.topic("profile", self.plan.partitions)
        await self.kafka.produce(inp, text_records(count, self.plan.streams))
        options = ["--format", "raw", "--rate", "200", "--nonblocking", "--gil"]
        wrap = [spy, "record", *options, "--output", str(path), "--"]
        run = await self.bridge_throughput(inp, count, self.plan.sessions, wrap=wrap)
        prof = measure.collapsed_profile(_read_lines(path))
        self.say(f"profile: {prof.total} samples in {path} (bridge at {_rps(run.rate)} under the profiler)")
        return {
            "path": str(path),
            "py_spy_options": options,
            "samples": prof.total,
            "records": count,
            "throughput_rps_under_profiler": measure.rounded(run.rate, 1),
            "cpu_ms_per_record_under_profiler": measure.rounded(run.cpu_ms_per_record, 3),
            "self": prof.share(prof.own, 15),
            "tasks": prof.share(prof.tasks, 15),
            "inclusive": prof.share(prof.inclusive, 30),
        }


def _best(runs: Sequence[Run]) -> Run:
    return max(runs, key=lambda r: r.rate or 0.0)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _phase(starts: Sequence[int], source_ts: int) -> int:
    """Which paced phase a record was produced in, from its timestamp and the phases' start times."""
    index = 0
    for i, start in enumerate(starts):
        if source_ts >= start:
            index = i
    return index


def _latency_fields(
    prefix: str, lat: Latency | None, bare: Latency | None, emulator_ms: float
) -> dict[str, Any]:
    """``<prefix>added_latency_p50_ms`` and friends: pipeline latency minus the emulator's, and e2e."""

    def pct(values: list[float] | None, p: float, minus: float = 0.0) -> float | None:
        v = measure.percentile(values or [], p)
        return None if v is None else round(v - minus, 2)

    load = prefix or "half_load_"
    return {
        f"{load}rps": measure.rounded(lat.rate if lat else None, 1),
        f"{load}records": lat.records if lat else 0,
        f"{prefix}added_latency_p50_ms": pct(lat.pipeline_ms if lat else None, 50, emulator_ms),
        f"{prefix}added_latency_p99_ms": pct(lat.pipeline_ms if lat else None, 99, emulator_ms),
        f"{prefix}bare_added_latency_p50_ms": pct(bare.pipeline_ms if bare else None, 50, emulator_ms),
        f"{prefix}bare_added_latency_p99_ms": pct(bare.pipeline_ms if bare else None, 99, emulator_ms),
        f"{prefix}e2e_latency_p50_ms": pct(lat.e2e_ms if lat else None, 50),
        f"{prefix}e2e_latency_p99_ms": pct(lat.e2e_ms if lat else None, 99),
        f"{prefix}bare_e2e_latency_p50_ms": pct(bare.e2e_ms if bare else None, 50),
        f"{prefix}bare_e2e_latency_p99_ms": pct(bare.e2e_ms if bare else None, 99),
    }


def _rps(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:,.1f} records/s"


def _cpu(run: Run) -> str:
    if run.cpu_ms_per_record is None:
        return ""
    return f"  ({run.cpu_ms_per_record:.3f} CPU ms/record)"


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} MiB"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


async def run_bench(
    plan: Plan, say: Say, *, profile: Path | None = None, bootstrap: str | None = None
) -> dict[str, Any]:
    """Run every measurement of ``plan``; the results as DESIGN.md's JSON. ``bootstrap`` names a Kafka
    cluster to use instead of the embedded broker."""
    started = time.monotonic()
    log_dir = _log_dir()
    say(f"hume-bridge bench ({plan.name}): logs in {log_dir}")
    results: dict[str, Any] = {
        "mode": plan.name,
        "machine": machine(),
        "broker": bootstrap or "embedded (Tansu, memory storage)",
        "plan": _plan_dict(plan),
    }
    async with contextlib.AsyncExitStack() as stack:
        if bootstrap is None:
            broker = EmbeddedBroker().start()
            stack.callback(broker.stop)
            bootstrap = broker.bootstrap
        emulator = EmulatorProcess(log_dir)
        stack.push_async_callback(emulator.stop)
        await emulator.start()
        kafka = await stack.enter_async_context(Kafka(bootstrap))
        bench = Bench(plan, kafka, emulator, log_dir, say, embedded=results["broker"].startswith("embedded"))
        scenarios: dict[str, Any] = {}
        results["scenarios"] = scenarios
        scenarios["zero_latency"], passthrough = await bench.throughput_scenario(
            "zero-latency", 0.0, plan.zero_records, None
        )
        bound = plan.sessions * plan.inflight / (plan.latency_ms / 1000.0)
        scenarios["latency_100ms"], _ = await bench.throughput_scenario(
            f"{plan.latency_ms:g} ms", plan.latency_ms, max(20, int(bound * plan.slow_seconds)), passthrough
        )
        scenarios["backlog"] = await bench.backlog_scenario()
        if plan.scaling:
            results["scaling"] = await bench.scaling_scenario()
        if profile is not None:
            # Long enough that start-up (imports, group join) is a small part of the samples.
            results["profile"] = await bench.profile(profile, 4 * plan.zero_records)
        results["emulator_stats"] = await emulator.stats()
    results["targets"] = targets(results)
    results["seconds"] = round(time.monotonic() - started, 1)
    return results


def _log_dir() -> Path:
    """``$BRIDGE_BENCH_LOG_DIR`` or a fresh temporary directory: every process's output is kept there."""
    named = os.environ.get("BRIDGE_BENCH_LOG_DIR")
    if named:
        Path(named).mkdir(parents=True, exist_ok=True)
        return Path(named)
    return Path(tempfile.mkdtemp(prefix="hume-bench-"))


def find_py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else None


def _read_lines(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines()


def _plan_dict(plan: Plan) -> dict[str, Any]:
    return {k: getattr(plan, k) for k in plan.__dataclass_fields__}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it was met (reported, not asserted)."""
    s = results["scenarios"]
    zero, slow, backlog = s["zero_latency"], s["latency_100ms"], s["backlog"]

    def row(what: str, value: float | None, op: str, goal: float) -> dict[str, Any]:
        met = None if value is None else (value >= goal if op == ">=" else value <= goal)
        return {"target": what, "value": value, "goal": f"{op} {goal:g}", "met": met}

    slow_name = f"{slow['emulator_latency_ms']:g} ms, {slow['sessions']} sessions"
    return [
        row("zero latency: throughput / bare pipeline", zero["ratio_to_bare"], ">=", 0.8),
        row(f"{slow_name}: throughput / Little's-law bound", slow["ratio_to_littles_law"], ">=", 0.95),
        row(f"{slow_name}: throughput / naive bridge", slow["ratio_to_naive"], ">=", 25),
        row("half load, zero latency: added latency p99, ms", zero["added_latency_p99_ms"], "<=", 5),
        row(f"half load, {slow_name}: added latency p99, ms", slow["added_latency_p99_ms"], "<=", 5),
        row(f"backlog of {backlog['backlog_mb']:g} MiB: peak RSS, MiB", backlog["peak_rss_mb"], "<=", 256),
    ]
