"""The processes a benchmark starts: the emulator, the bridge under test and the reference pipelines, each
``python -m ...`` in a process of its own (so each one's CPU time and memory are its own), with its output
in a log file, steered over HTTP (the emulator's admin endpoint, the bridge's ``/readyz`` and ``/metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from bridge.tools.embedded import free_port

HOST = "127.0.0.1"
_METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


class BenchError(RuntimeError):
    """A benchmark step failed (a process died, a deadline passed); the message says which and why."""


async def http(
    port: int, method: str, path: str, body: Any = None, *, timeout_s: float = 5.0
) -> tuple[int, bytes]:
    """One HTTP/1.1 exchange with ``Connection: close`` on the loopback interface: (status, body)."""
    payload = b"" if body is None else orjson.dumps(body)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(head.encode("latin-1") + payload)
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    status_line, _, rest = data.partition(b"\r\n")
    _, _, content = rest.partition(b"\r\n\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise BenchError(f"unreadable HTTP reply from port {port}: {status_line!r}")
    return int(parts[1]), content


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus exposition text as ``{'name{labels}': value}`` (labels exactly as written)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _METRIC_LINE.match(line)
        if m is None:
            continue
        with contextlib.suppress(ValueError):
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


class Child:
    """A subprocess with its stdout and stderr in ``log_path``; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    def _open_log(self) -> BinaryIO:
        return open(self.log_path, "wb")

    async def start(self) -> None:
        with self._open_log() as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.returncode is not None:
            raise BenchError(
                f"{self.name} exited with code {self.proc.returncode}; the end of {self.log_path}:\n"
                + self.tail()
            )

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_for_log(self, pattern: str, timeout_s: float) -> re.Match[str]:
        """The first match of ``pattern`` in the log, waiting for it (the child writes it when ready)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(OSError):
                m = regex.search(self.log_path.read_text("utf-8", "replace"))
                if m is not None:
                    return m
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name} did not log {pattern!r} within {timeout_s:g}s:\n{self.tail()}")
            await asyncio.sleep(0.05)

    async def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL; returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(timeout_s):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        return proc.returncode


def memory_mb(pid: int) -> tuple[float, float] | None:
    """(current RSS, peak RSS) of ``pid`` in MiB from ``/proc/PID/status`` (VmRSS, VmHWM); None elsewhere."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = float(value.split()[0]) / 1024.0  # kB
    if "VmRSS" not in fields or "VmHWM" not in fields:
        return None
    return fields["VmRSS"], fields["VmHWM"]


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of ``pid`` so far (Linux ``/proc/PID/stat``); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux ``/proc``), for a process started under a profiler."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out += [int(c) for c in (task / "children").read_text().split()]
    return out


class RssWatch:
    """The peak resident memory of a process: the kernel's high-water mark (VmHWM), read while the process
    lives, or the largest of periodic samples where that is not available."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_mb = 0.0
        self.current_mb = 0.0
        self.exact = False

    def sample(self) -> None:
        mem = memory_mb(self.pid)
        if mem is not None:
            self.current_mb, hwm = mem
            self.peak_mb = max(self.peak_mb, hwm)
            self.exact = True
            return
        with contextlib.suppress(Exception):
            import psutil

            rss = float(psutil.Process(self.pid).memory_info().rss) / (1024 * 1024)
            self.current_mb = rss
            self.peak_mb = max(self.peak_mb, rss)


class EmulatorProcess(Child):
    """``hume-bridge emulator`` with its admin endpoint, idle timeout off; ``extra``: more of its options."""

    def __init__(self, log_dir: Path, extra: Sequence[str] = ()) -> None:
        argv = [
            sys.executable,
            "-m",
            "bridge",
            "emulator",
            "--host",
            HOST,
            "--port",
            "0",
            "--admin-port",
            "0",
            "--idle-timeout-s",
            "0",
            *extra,
        ]
        super().__init__("the emulator", argv, _env(), log_dir / "emulator.log")
        self.url = ""
        self.admin_port = 0

    async def start(self) -> None:
        await super().start()
        self.url = (await self.wait_for_log(r"emulator listening on (ws://\S+)", 30)).group(1)
        self.admin_port = int((await self.wait_for_log(r"emulator admin on http://\S+:(\d+)", 10)).group(1))

    async def set_faults(self, **changes: Any) -> dict[str, Any]:
        status, body = await http(self.admin_port, "POST", "/faults", changes)
        if status != 200:
            raise BenchError(f"the emulator refused the faults {changes}: {body.decode(errors='replace')}")
        result: dict[str, Any] = orjson.loads(body)
        return result

    async def stats(self) -> dict[str, Any]:
        status, body = await http(self.admin_port, "GET", "/stats")
        if status != 200:
            raise BenchError(f"GET /stats on the emulator answered {status}")
        result: dict[str, Any] = orjson.loads(body)
        return result


class BridgeProcess(Child):
    """``hume-bridge run`` configured by ``env``; optionally under a profiler command (``wrap``)."""

    def __init__(
        self, env: Mapping[str, str], log_path: Path, wrap: Sequence[str] = (), name: str = "the bridge"
    ) -> None:
        self.http_port = free_port(HOST)
        full = {**_env(), **env, "BRIDGE_HTTP_HOST": HOST, "BRIDGE_HTTP_PORT": str(self.http_port)}
        super().__init__(name, [*wrap, sys.executable, "-m", "bridge", "run"], full, log_path)
        self.profiled = bool(wrap)

    def target_pid(self) -> int | None:
        """The bridge's own process id (under a profiler: the profiler's child)."""
        if not self.profiled:
            return self.pid
        kids = children_of(self.pid)
        return kids[0] if kids else None

    async def metrics(self) -> dict[str, float]:
        status, body = await http(self.http_port, "GET", "/metrics")
        if status != 200:
            raise BenchError(f"GET /metrics on the bridge answered {status}")
        return parse_metrics(body.decode("utf-8", "replace"))

    async def outcomes(self) -> tuple[int, int]:
        """(outcomes acknowledged, of which errors) from ``hume_bridge_records_total``."""
        m = await self.metrics()
        predictions = int(m.get('hume_bridge_records_total{outcome="prediction"}', 0))
        errors = int(m.get('hume_bridge_records_total{outcome="error"}', 0))
        return predictions + errors, errors

    async def wait_ready(self, sessions: int, timeout_s: float) -> None:
        """Until ``/readyz`` says ready and ``sessions`` Hume sessions are open (idle or busy)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            with contextlib.suppress(OSError, TimeoutError, BenchError):
                status, _ = await http(self.http_port, "GET", "/readyz", timeout_s=2)
                if status == 200:
                    m = await self.metrics()
                    open_ = m.get('hume_bridge_sessions{state="idle"}', 0) + m.get(
                        'hume_bridge_sessions{state="busy"}', 0
                    )
                    if open_ >= sessions:
                        return
            if time.monotonic() > deadline:
                raise BenchError(f"the bridge was not ready within {timeout_s:g}s:\n{self.tail()}")
            await asyncio.sleep(0.1)

    async def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.profiled and self.alive():
            # Stop the bridge itself; the profiler writes its output and exits after its child.
            for child in children_of(self.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGTERM)
            proc = self.proc
            assert proc is not None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await proc.wait()
        return await super().stop(timeout_s)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
