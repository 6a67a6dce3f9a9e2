"""Capacity check: N concurrent paced audio sessions (100 ms frames) against one emulator process.

    python -m bridge.tools.emulator.v1.loadcheck --sessions 1000 --seconds 30

Starts ``hume-bridge emulator`` as a child process, opens the sessions (spread over ``--ramp-s``), streams
speech and silence into each at real time for ``--seconds``, and reports the emulator's CPU time per second
of wall time over the steady part (read from ``/proc/<pid>/stat``), per session, and what the sessions got
back (results, rate-limited frames). Heavy: never part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from bridge.tools.benchmark.procs import cpu_seconds
from bridge.tools.emulator.v1.testing import silence, tone

KEY = "load"
FRAME_MS = 100


@dataclass
class Totals:
    opened: int = 0
    frames_sent: int = 0
    results: int = 0
    rate_limited: int = 0
    other_errors: int = 0
    late_frames: int = 0
    closed: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


async def reader(ws: ClientConnection, totals: Totals) -> None:
    with contextlib.suppress(ConnectionClosed):
        await _read(ws, totals)


async def _read(ws: ClientConnection, totals: Totals) -> None:
    async for message in ws:
        body: Any = orjson.loads(message)
        kind = body.get("type")
        if kind == "measurement.result":
            totals.results += 1
        elif kind == "error":
            if body["code"] == "rate_limited":
                totals.rate_limited += 1
            else:
                totals.other_errors += 1
        elif kind == "session.closed":
            totals.closed[body["reason"]] = totals.closed.get(body["reason"], 0) + 1


async def session(url: str, audio: bytes, seconds: float, totals: Totals, start_at: float) -> None:
    try:
        await _session(url, audio, seconds, totals, start_at)
    except (OSError, TimeoutError, WebSocketException) as exc:
        totals.failures.append(repr(exc))


async def _session(url: str, audio: bytes, seconds: float, totals: Totals, start_at: float) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start_at - loop.time()))
    async with connect(url, additional_headers={"X-Hume-Api-Key": KEY}, open_timeout=60) as ws:
        await ws.recv()
        totals.opened += 1
        async with asyncio.TaskGroup() as tg:
            read = tg.create_task(reader(ws, totals))
            t0 = loop.time()
            frames = int(seconds * 1000 / FRAME_MS)
            step = FRAME_MS * 32
            for i in range(frames):
                offset = (i * step) % len(audio)
                await ws.send(audio[offset : offset + step])
                totals.frames_sent += 1
                due = t0 + (i + 1) * FRAME_MS / 1000
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                elif wait < -0.05:
                    totals.late_frames += 1
            await ws.send('{"type": "session.close"}')
            async with asyncio.timeout(30):
                await read


async def main(args: argparse.Namespace) -> int:
    python = os.environ.get("LOADCHECK_PYTHON", sys.executable).split()  # e.g. "python -m cProfile -o f"
    process = await asyncio.create_subprocess_exec(
        *python,
        "-m",
        "bridge",
        "emulator",
        "--port",
        "0",
        "--api-key",
        KEY,
        "--audio-burst-ms",
        str(args.audio_burst_ms),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        base = line.split("ws://", 1)[1].split("/", 1)[0]
        url = f"ws://{base}/v1/expression/audio/realtime"
        audio = (tone(2500) + silence(1500)) * 2  # 8 s loop: utterances, interval and speech_ended results
        totals = Totals()
        loop = asyncio.get_running_loop()
        begin = loop.time()
        async with asyncio.TaskGroup() as tg:
            for i in range(args.sessions):
                tg.create_task(
                    session(url, audio, args.seconds, totals, begin + args.ramp_s * i / args.sessions)
                )
            steady_from = begin + args.ramp_s + 2.0
            await asyncio.sleep(steady_from - loop.time())
            cpu0, wall0, frames0 = cpu_seconds(process.pid) or 0.0, loop.time(), totals.frames_sent
            await asyncio.sleep(args.window_s)
            cpu1, wall1, frames1 = cpu_seconds(process.pid) or 0.0, loop.time(), totals.frames_sent
        failures = totals.failures
        cpu_per_s = (cpu1 - cpu0) / (wall1 - wall0)
        report = {
            "sessions": args.sessions,
            "opened": totals.opened,
            "failed_sessions": len(failures),
            "steady_window_s": round(wall1 - wall0, 2),
            "frames_per_s_in_window": round((frames1 - frames0) / (wall1 - wall0), 1),
            "emulator_cpu_s_per_s": round(cpu_per_s, 3),
            "emulator_cpu_ms_per_session_per_s": round(1000 * cpu_per_s / args.sessions, 3),
            "frames_sent": totals.frames_sent,
            "late_frames": totals.late_frames,
            "results": totals.results,
            "rate_limited": totals.rate_limited,
            "other_errors": totals.other_errors,
            "closed": totals.closed,
            "first_failure": failures[0] if failures else None,
        }
        process.terminate()
        assert process.stderr is not None
        errors = (await process.stderr.read()).decode(errors="replace").strip()
        report["emulator_stderr_lines"] = len(errors.splitlines()) if errors else 0
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return 0 if not failures and totals.opened == args.sessions and not errors else 1
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0, help="audio streamed per session")
    parser.add_argument("--ramp-s", type=float, default=10.0, help="spread the handshakes over this long")
    parser.add_argument("--window-s", type=float, default=10.0, help="CPU measured over this steady window")
    parser.add_argument(
        "--audio-burst-ms",
        type=float,
        default=5000.0,
        help="the emulator's pacing bucket: room for the jitter of a client process as loaded as the server",
    )
    args = parser.parse_args()
    if args.ramp_s + 2 + args.window_s > args.seconds:
        parser.error("--seconds must exceed --ramp-s + 2 + --window-s")
    return asyncio.run(main(args))


if __name__ == "__main__":
    raise SystemExit(cli())
