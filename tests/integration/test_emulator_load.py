"""Hundreds of concurrent connections on one emulator.

Run as a script to measure the zero-latency request rate of an emulator subprocess::

    .venv/bin/python -m tests.integration.test_emulator_load --connections 400 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import time
from collections.abc import AsyncIterator

import orjson
from websockets.asyncio.client import ClientConnection, connect

from bridge.tools import samples as S
from bridge.tools.emulator import Emulator

CONNECTIONS = 400


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def workload() -> list[bytes]:
    """A mix of small payloads: text, a 1 s WAV, a 64 x 64 JPEG."""
    return [
        S.v0_request(S.text(12), {"language": {"granularity": "sentence"}}, raw_text=True),
        S.v0_request(S.b64(S.wav(1.0)), {"prosody": {}, "burst": {}}, reset_stream=True),
        S.v0_request(S.b64(S.jpeg()), {"face": {}}),
    ]


async def test_hundreds_of_concurrent_connections_are_all_served() -> None:
    """400 connections open at once, each pipelining requests, all answered in order."""
    _raise_fd_limit(4 * CONNECTIONS + 64)
    frames = workload()
    async with Emulator() as emu, contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(connect(emu.url)) for _ in range(CONNECTIONS)]
        assert emu.stats.connections_open == CONNECTIONS

        async def exchange(ws: ClientConnection, n: int) -> list[str]:
            for i, frame in enumerate(frames):
                body = orjson.loads(frame)
                body["payload_id"] = f"{n}-{i}"
                await ws.send(orjson.dumps(body), text=True)
            return [orjson.loads(await ws.recv())["payload_id"] for _ in frames]

        async with asyncio.timeout(60):
            results = await asyncio.gather(*(exchange(ws, n) for n, ws in enumerate(clients)))
        assert results == [[f"{n}-{i}" for i in range(len(frames))] for n in range(CONNECTIONS)]
        assert emu.stats.replies == CONNECTIONS * len(frames)
        assert emu.stats.replies_by_kind == {"predictions": CONNECTIONS * len(frames)}


# --- the measurement ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def emulator_process() -> AsyncIterator[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "emulator", "--port", "0", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = (await process.stdout.readline()).decode().strip()
        yield line.rsplit(" ", 1)[1]
    finally:
        process.terminate()
        await process.wait()


async def measure(url: str, connections: int, seconds: float, frames: list[bytes]) -> tuple[int, float]:
    """Each connection sends, awaits the reply, sends again, for ``seconds``; (replies, elapsed)."""
    _raise_fd_limit(2 * connections + 64)
    done = 0
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(connect(url, compression=None)) for _ in range(connections)
        ]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds

        async def run(ws: ClientConnection, n: int) -> None:
            nonlocal done
            i = n
            while loop.time() < deadline:
                await ws.send(frames[i % len(frames)], text=True)
                await ws.recv(decode=False)
                done += 1
                i += 1

        started = time.perf_counter()
        await asyncio.gather(*(run(ws, n) for n, ws in enumerate(clients)))
        return done, time.perf_counter() - started


async def _main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="zero-latency request rate of one emulator process")
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--url", default=None, help="an emulator already running (default: start one)")
    parser.add_argument("--payload", choices=["mix", "text", "audio", "image"], default="mix")
    args = parser.parse_args(argv)
    frames = workload()
    frames = {"mix": frames, "text": frames[:1], "audio": frames[1:2], "image": frames[2:]}[args.payload]
    async with contextlib.AsyncExitStack() as stack:
        url = args.url or await stack.enter_async_context(emulator_process())
        replies, elapsed = await measure(url, args.connections, args.seconds, frames)
    print(
        f"{args.connections} connections, payload {args.payload}: {replies} replies in {elapsed:.1f} s"
        f" = {replies / elapsed:,.0f} requests/s"
    )


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
