"""One scenario's processes and plumbing: the broker behind a fault proxy, the emulator (a subprocess)
behind another, one or more bridges (``hume-bridge run`` subprocesses), fresh topics, the independent
Kafka client, memory sampling, and the final settle-and-account step.

::

    scenario client ──┐
                      ├─> broker proxy ─> Tansu (SIGSTOP-able)
    bridge 1..n ──────┘
    bridge 1..n ─────────> Hume proxy ──> emulator (killable, restartable)
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from bridge.tools.benchmark.procs import BenchError, BridgeProcess, EmulatorProcess, RssWatch, http
from bridge.tools.chaos import kafka
from bridge.tools.chaos.accounting import (
    Accounts,
    Input,
    Measurement,
    Outcome,
    account,
    account_v1,
    slope_per_minute,
)
from bridge.tools.chaos.proxy import HOST, FaultProxy
from bridge.tools.embedded import EmbeddedBroker

API_KEY: Final = "chaos-key-0123456789"
SEQ_HEADER: Final = "chaos-seq"
_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):", re.MULTILINE)
# Where each upstream API lives on the emulator: v0 a WebSocket path, v1 the HTTP base (the bridge derives
# the realtime WebSocket URL from it).
API_PATHS: Final = {"v0": "ws://{address}/v0/stream/models", "v1": "http://{address}"}
# v1 defaults: the bridge may lead real time by 10 s and the emulator takes such bursts (pacing 40 times
# real time), so a scenario's audio is not held to the wall clock; sessions idle 1 s are closed.
V1_BRIDGE_ENV: Final = {
    "BRIDGE_V1_PACING_LEAD_S": "10",
    "BRIDGE_V1_IDLE_CLOSE_S": "1",
    "BRIDGE_V1_CLOSE_TIMEOUT_S": "10",
}
V1_EMULATOR_FAULTS: Final = {"audio_burst_ms": 12_000.0, "pace_factor": 40.0}

Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


class ChaosError(RuntimeError):
    """A scenario could not be carried out (a process did not start, a deadline passed)."""


@dataclass
class ProcessRecord:
    name: str
    expected: tuple[int, ...]
    exit_code: int | None = None
    tracebacks: int = 0
    error_lines: int = 0  # reported, not judged: a chaos run provokes error logs on purpose
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code in self.expected and self.tracebacks == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "exit_code": self.exit_code,
            "expected": list(self.expected),
            "tracebacks": self.tracebacks,
            "error_log_lines": self.error_lines,
            "log": self.log,
        }


@dataclass
class _Bridge:
    proc: BridgeProcess
    record: ProcessRecord
    rss: RssWatch | None = None


def count_tracebacks(path: Path) -> int:
    try:
        return len(_TRACEBACK.findall(path.read_text("utf-8", "replace")))
    except OSError:
        return 0


def count_error_lines(path: Path) -> int:
    """JSON log lines at level error (the bridge's own and its libraries'), for the report."""
    n = 0
    with contextlib.suppress(OSError), open(path, "rb") as fh:
        for line in fh:
            if b'"level":"error"' in line or b'"level": "error"' in line:
                n += 1
    return n


def log_events(path: Path, event: str) -> int:
    """How many JSON log lines in ``path`` have ``"event": event``."""
    n = 0
    with contextlib.suppress(OSError), open(path, "rb") as fh:
        for line in fh:
            if event.encode() not in line:
                continue
            with contextlib.suppress(orjson.JSONDecodeError):
                obj = orjson.loads(line)
                if isinstance(obj, dict) and obj.get("event") == event:
                    n += 1
    return n


@dataclass
class Rig:
    name: str
    api: str
    workdir: Path
    partitions: int = 4
    bridge_overrides: dict[str, str] = field(default_factory=dict)
    emulator_faults: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.media = f"chaos-{self.name}-media-{tag}"
        self.predictions = f"chaos-{self.name}-pred-{tag}"
        self.errors = f"chaos-{self.name}-err-{tag}"
        self.warnings = f"chaos-{self.name}-warn-{tag}"
        self.group = f"chaos-{self.name}-{tag}"
        self.broker_proxy = FaultProxy((HOST, 1), seed=1)
        self.hume_proxy = FaultProxy((HOST, 1), seed=2)
        self.broker: EmbeddedBroker | None = None
        self.emulator: EmulatorProcess | None = None
        self.emulators: list[ProcessRecord] = []
        self.bridges: list[_Bridge] = []
        self.producer: kafka.InputProducer | None = None
        self.reader: kafka.Reader | None = None
        self.rss_samples: list[tuple[float, float]] = []  # (seconds since start, MiB) of the first bridge
        self.peak_rss_mb = 0.0
        self._started = time.monotonic()
        self._sampler: asyncio.Task[None] | None = None
        self._stack = contextlib.AsyncExitStack()  # owns the task group of the memory sampler
        self._seq: dict[bytes | None, int] = {}
        self.notes: dict[str, Any] = {}
        self.workload: Any = None  # the scenario's stateful workload (v1 calls), see scenarios.workload
        if self.api == "v1":
            self.emulator_faults = {**V1_EMULATOR_FAULTS, **self.emulator_faults}

    @property
    def bootstrap(self) -> str:
        return self.broker_proxy.address

    @property
    def hume_url(self) -> str:
        return API_PATHS[self.api].format(address=self.hume_proxy.address)

    # -- set-up and tear-down ---------------------------------------------------------------------------

    async def __aenter__(self) -> Rig:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        await self.broker_proxy.start()
        self.broker = await asyncio.to_thread(
            EmbeddedBroker(HOST, advertised_port=self.broker_proxy.port).start
        )
        self.broker_proxy.upstream = (HOST, self.broker.port)
        await self.hume_proxy.start()
        await self.start_emulator()
        await asyncio.to_thread(
            kafka.create_topics,
            self.bootstrap,
            [self.media, self.predictions, self.errors, self.warnings],
            self.partitions,
        )
        self.producer = kafka.InputProducer(self.bootstrap, self.media)
        tasks = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._sampler = tasks.create_task(self._sample_memory())

    async def __aexit__(self, *exc: object) -> None:
        for b in self.bridges:
            if b.proc.alive() and b.proc.proc is not None:
                b.proc.proc.kill()
                await b.proc.stop(5)
        if self._sampler is not None:
            self._sampler.cancel()
        await self._stack.aclose()
        if self.emulator is not None:
            await self.stop_emulator(expected=(0,))
        if self.reader is not None:
            await asyncio.to_thread(self.reader.close)
        await self.hume_proxy.close()
        await self.broker_proxy.close()
        if self.broker is not None:
            await asyncio.to_thread(self.broker.stop)

    # -- the emulator -----------------------------------------------------------------------------------

    async def start_emulator(self) -> None:
        log_dir = self.workdir / f"emulator-{len(self.emulators) + 1}"
        log_dir.mkdir(exist_ok=True)
        emu = EmulatorProcess(log_dir)
        await emu.start()
        if self.emulator_faults:
            await emu.set_faults(**self.emulator_faults)
        port = int(emu.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        self.hume_proxy.upstream = (HOST, port)
        self.emulator = emu
        self.emulators.append(ProcessRecord(f"emulator-{len(self.emulators) + 1}", (0,), log=str(log_dir)))

    async def stop_emulator(self, *, kill: bool = False, expected: tuple[int, ...] = (0,)) -> None:
        emu, self.emulator = self.emulator, None
        if emu is None:
            return
        if kill and emu.proc is not None and emu.alive():
            emu.proc.kill()
        record = self.emulators[-1]
        record.expected = expected
        record.exit_code = await emu.stop(10)
        record.tracebacks = count_tracebacks(emu.log_path)
        record.log = str(emu.log_path)

    async def note_faults(self) -> None:
        """What the faults did, for the report: the emulator's counters (this incarnation) and the
        proxies'."""
        if self.emulator is not None and self.emulator.alive():
            with contextlib.suppress(Exception):
                if self.api == "v1":
                    status, body = await http(self.emulator.admin_port, "GET", "/v1/stats")
                    v1 = orjson.loads(body) if status == 200 else {}
                    self.notes["hume_sessions_opened"] = v1.get("sessions_opened")
                    self.notes["hume_session_closes"] = v1.get("closes")
                    self.notes["hume_dropped_connections"] = v1.get("dropped_connections")
                else:
                    st = await self.emulator.stats()
                    self.notes["hume_requests"] = st["requests"]
                    self.notes["hume_dropped_connections"] = st["dropped_connections"]
        self.notes["hume_connections"] = self.hume_proxy.stats.accepted
        self.notes["broker_connections"] = self.broker_proxy.stats.accepted
        self.notes["broker_resets"] = self.broker_proxy.stats.resets

    async def shutdown_sessions(self) -> int:
        """v1: ``session.closed{server_shutdown}`` to every open session at once (a deployment of Hume's
        side); returns how many sessions were told."""
        assert self.emulator is not None
        status, body = await http(self.emulator.admin_port, "POST", "/v1/shutdown-sessions")
        if status != 200:
            raise ChaosError(f"POST /v1/shutdown-sessions answered {status}")
        sessions: int = orjson.loads(body)["sessions"]
        return sessions

    async def set_emulator_faults(self, **changes: Any) -> None:
        self.emulator_faults.update(changes)
        assert self.emulator is not None
        await self.emulator.set_faults(**changes)

    # -- bridges ----------------------------------------------------------------------------------------

    def bridge_env(self, **overrides: str) -> dict[str, str]:
        env = {
            "HUME_API_KEY": API_KEY,
            "BRIDGE_HUME_URL": self.hume_url,
            "BRIDGE_HUME_API": self.api,
            "BRIDGE_KAFKA_BOOTSTRAP": self.bootstrap,
            "BRIDGE_GROUP_ID": self.group,
            "BRIDGE_INPUT_TOPICS": self.media,
            "BRIDGE_PREDICTIONS_TOPIC": self.predictions,
            "BRIDGE_ERRORS_TOPIC": self.errors,
            "BRIDGE_WARNINGS_TOPIC": self.warnings,
            "BRIDGE_POOL_SIZE": "4",
            "BRIDGE_COMMIT_INTERVAL_S": "0.5",
            "BRIDGE_RECONNECT_BACKOFF_INITIAL_S": "0.1",
            "BRIDGE_RECONNECT_BACKOFF_MAX_S": "1",
            "BRIDGE_RETRY_BACKOFF_INITIAL_S": "0.05",
            "BRIDGE_RETRY_BACKOFF_MAX_S": "0.5",
            "BRIDGE_OUTAGE_PROBE_INITIAL_S": "0.2",
            "BRIDGE_OUTAGE_PROBE_MAX_S": "1",
            "BRIDGE_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "BRIDGE_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "BRIDGE_SHUTDOWN_DRAIN_S": "10",
        }
        if self.api == "v1":
            env.update(V1_BRIDGE_ENV)
        env.update(self.bridge_overrides)
        env.update(overrides)
        return env

    async def start_bridge(self, *, wait: bool = True, **overrides: str) -> int:
        """Start one more bridge; returns its index. Waits until it is ready unless ``wait`` is false."""
        i = len(self.bridges)
        name = f"bridge-{i + 1}"
        proc = BridgeProcess(self.bridge_env(**overrides), self.workdir / f"{name}.log", name=name)
        await proc.start()
        b = _Bridge(proc, ProcessRecord(name, (0,), log=str(proc.log_path)), RssWatch(proc.pid))
        self.bridges.append(b)
        if wait:
            await self.wait_ready(i)
        return i

    async def wait_ready(self, i: int, timeout_s: float = 60.0) -> None:
        # v0 keeps a pool of sessions open; v1 opens one per stream when its first record comes
        await self.bridges[i].proc.wait_ready(0 if self.api == "v1" else 1, timeout_s)

    def alive_bridges(self) -> list[int]:
        return [i for i, b in enumerate(self.bridges) if b.proc.alive()]

    async def kill_bridge(self, i: int) -> None:
        b = self.bridges[i]
        self._sample(b)
        assert b.proc.proc is not None
        b.proc.proc.kill()
        b.record.expected = (-signal.SIGKILL,)
        await self._finish(b, 10)

    async def stop_bridge(self, i: int, timeout_s: float = 30.0) -> None:
        b = self.bridges[i]
        self._sample(b)
        await self._finish(b, timeout_s)

    async def _finish(self, b: _Bridge, timeout_s: float) -> None:
        b.record.exit_code = await b.proc.stop(timeout_s)
        b.record.tracebacks = count_tracebacks(b.proc.log_path)
        b.record.error_lines = count_error_lines(b.proc.log_path)

    def bridge_log_events(self, event: str) -> int:
        return sum(log_events(b.proc.log_path, event) for b in self.bridges)

    async def readyz(self, i: int) -> int | None:
        """The status ``/readyz`` of bridge ``i`` answers (None when it does not answer in 2 s)."""
        try:
            status, _ = await http(self.bridges[i].proc.http_port, "GET", "/readyz", timeout_s=2)
        except (OSError, TimeoutError, BenchError):
            return None
        return status

    async def bridge_metrics(self, i: int) -> dict[str, float]:
        return await self.bridges[i].proc.metrics()

    # -- inputs -----------------------------------------------------------------------------------------

    def numbered(self, records: Iterable[Record]) -> list[Record]:
        """Records with a per-key sequence number header, so a reader can follow each stream."""
        out: list[Record] = []
        for key, value, headers in records:
            seq = self._seq.get(key, 0)
            self._seq[key] = seq + 1
            out.append((key, value, [*headers, (SEQ_HEADER, str(seq).encode())]))
        return out

    async def produce(self, records: Iterable[Record]) -> int:
        assert self.producer is not None
        return await asyncio.to_thread(self.producer.send, self.numbered(records))

    async def flush(self, timeout_s: float = 60.0) -> None:
        assert self.producer is not None
        left = await asyncio.to_thread(self.producer.flush, timeout_s)
        if left:
            raise ChaosError(f"{left} input record(s) were not acknowledged by the broker in {timeout_s:g}s")

    async def feed(self, make: Callable[[int], Record], rate_per_s: float, duration_s: float) -> int:
        """Produce ``make(i)`` records at ``rate_per_s`` for ``duration_s`` seconds; returns how many."""
        start = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - start) < duration_s:
            due = int(elapsed * rate_per_s) + 1
            if due > sent:
                sent += await self.produce(make(i) for i in range(sent, due))
            await asyncio.sleep(0.05)
        return sent

    # -- memory -----------------------------------------------------------------------------------------

    def _sample(self, b: _Bridge) -> None:
        if b.rss is None:
            return
        b.rss.sample()
        self.peak_rss_mb = max(self.peak_rss_mb, b.rss.peak_mb)

    async def _sample_memory(self) -> None:
        while True:
            for i, b in enumerate(self.bridges):
                if b.proc.alive():
                    self._sample(b)
                    if i == 0 and b.rss is not None and b.rss.current_mb:
                        self.rss_samples.append((time.monotonic() - self._started, b.rss.current_mb))
            await asyncio.sleep(0.5)

    def rss_slope_mb_per_min(self, skip_s: float = 0.0) -> float | None:
        if not self.rss_samples:
            return None
        t0 = self.rss_samples[0][0] + skip_s
        return slope_per_minute([s for s in self.rss_samples if s[0] >= t0])

    # -- the end: settle and account ---------------------------------------------------------------------

    def _read(self, seconds: float) -> None:
        if self.reader is None:
            self.reader = kafka.Reader(
                self.bootstrap,
                [self.media, self.predictions, self.errors],
                self.partitions,
                drop_values=[self.media],
            )
        self.reader.poll(seconds)

    def inputs(self) -> list[Input]:
        assert self.reader is not None
        return [
            Input(r.topic, r.partition, r.offset, r.key) for r in self.reader.records if r.topic == self.media
        ]

    def outcomes(self) -> list[Outcome]:
        assert self.reader is not None
        out: list[Outcome] = []
        for r in self.reader.records:
            if r.topic not in (self.predictions, self.errors):
                continue
            headers = dict(r.headers)
            code = None
            if r.topic == self.errors and r.value:
                with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError):
                    code = orjson.loads(r.value)["error"]["code"]
            source = headers.get("hume-source", b"").decode("utf-8", "replace")
            out.append(Outcome(r.topic, r.partition, r.offset, source, r.key, code))
        return out

    def measurements(self) -> list[Measurement]:
        """v1: every record of the predictions topic with the inputs its ``sources`` name."""
        assert self.reader is not None
        out: list[Measurement] = []
        for r in self.reader.records:
            if r.topic != self.predictions or not r.value:
                continue
            sources: tuple[str, ...] = ()
            with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError):
                sources = tuple(
                    f"{s['topic']}/{s['partition']}/{s['offset']}" for s in orjson.loads(r.value)["sources"]
                )
            out.append(Measurement(r.topic, r.partition, r.offset, r.key, sources))
        return out

    async def account(self) -> Accounts:
        committed = await self.committed()
        if self.api == "v1":
            errors = [o for o in self.outcomes() if o.topic == self.errors]
            return account_v1(self.inputs(), self.measurements(), errors, committed)
        return account(self.inputs(), self.outcomes(), committed)

    def output_values(self, topic: str) -> list[dict[str, Any]]:
        assert self.reader is not None
        return [orjson.loads(r.value) for r in self.reader.records if r.topic == topic and r.value]

    async def committed(self) -> dict[tuple[str, int], int | None]:
        return await asyncio.to_thread(
            kafka.committed, self.bootstrap, self.group, self.media, self.partitions
        )

    async def settle(self, timeout_s: float) -> Accounts:
        """Read inputs and outcomes until every input has an outcome and every partition's commit reached
        its end, or until ``timeout_s``; then account (whatever the state: the accounts say what is wrong)."""
        assert self.producer is not None
        await self.flush()
        deadline = time.monotonic() + timeout_s
        while True:
            await asyncio.to_thread(self._read, 1.0)
            acc = await self.account()
            enough = acc.inputs >= self.producer.delivered
            if enough and acc.lost == 0 and not acc.stuck_partitions:
                return acc
            if time.monotonic() > deadline:
                return acc
            if not self.alive_bridges():
                # nobody left to make progress: read what is there and stop waiting
                await asyncio.to_thread(self._read, 1.0)
                return await self.account()

    async def stop_all(self) -> None:
        for i in self.alive_bridges():
            await self.stop_bridge(i)

    def processes(self) -> list[ProcessRecord]:
        return [*(b.record for b in self.bridges), *self.emulators]
