"""The emulator as a subprocess (``hume-bridge emulator``), steered over its HTTP admin endpoint."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from bridge.cli import main as cli_main
from bridge.tools import samples as S
from bridge.tools.emulator import Emulator


async def http(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One HTTP/1.1 request to the admin endpoint; (status, decoded JSON body)."""
    host, port = base.removeprefix("http://").split(":")
    payload = b"" if body is None else orjson.dumps(body)
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        raw = await reader.read()
        writer.close()
        await writer.wait_closed()
    head, _, content = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), orjson.loads(content)


@dataclass
class Running:
    process: asyncio.subprocess.Process
    url: str
    admin_url: str


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "emulator",
        "--port",
        "0",
        "--admin-port",
        "0",
        "--api-key",
        "k",
        "--out-of-credits",
        "--latency-ms",
        "1",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            first = (await process.stdout.readline()).decode().strip()
            second = (await process.stdout.readline()).decode().strip()
        assert first.startswith("emulator listening on ws://127.0.0.1:") and first.endswith(
            "/v0/stream/models"
        )
        assert second.startswith("emulator admin on http://127.0.0.1:")
        yield Running(process, first.rsplit(" ", 1)[1], second.rsplit(" ", 1)[1])
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def ask(url: str, frame: bytes) -> Any:
    async with connect(url, additional_headers={"X-Hume-Api-Key": "k"}) as ws:
        await ws.send(frame, text=True)
        async with asyncio.timeout(10):
            return orjson.loads(await ws.recv())


async def test_subprocess_serves_and_is_steered_over_http(running: Running) -> None:
    """Flags set the faults; POST /faults changes them live; /stats and /requests report; SIGTERM exits 0."""
    frame = S.v0_request("hello", {"language": {}}, raw_text=True, payload_id="p")
    assert (await ask(running.url, frame))["code"] == "E0300"

    status, faults = await http(running.admin_url, "GET", "/faults")
    assert status == 200 and faults["out_of_credits"] is True and faults["latency_s"] == 0.001
    status, faults = await http(running.admin_url, "POST", "/faults", {"out_of_credits": False})
    assert status == 200 and faults["out_of_credits"] is False
    assert (await ask(running.url, frame))["language"]["predictions"][0]["text"] == "hello"

    status, bad = await http(running.admin_url, "POST", "/faults", {"latency_s": -1, "nope": True})
    assert status == 400 and bad == {"error": "latency_s: must be at least 0; nope: unknown fault"}

    status, stats = await http(running.admin_url, "GET", "/stats")
    assert status == 200
    assert (stats["requests"], stats["replies_by_code"], stats["connections_opened"]) == (2, {"E0300": 1}, 2)
    status, log = await http(running.admin_url, "GET", "/requests?limit=10")
    assert [(e["payload_id"], e["reply_kind"], e["code"]) for e in log] == [
        ("p", "error", "E0300"),
        ("p", "predictions", None),
    ]
    status, stats = await http(running.admin_url, "POST", "/reset-stats")
    assert status == 200 and stats["requests"] == 0
    assert (await http(running.admin_url, "GET", "/nope"))[0] == 404

    running.process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(15):
        assert await running.process.wait() == 0


async def test_sigint_also_exits_cleanly(running: Running) -> None:
    running.process.send_signal(signal.SIGINT)
    async with asyncio.timeout(15):
        assert await running.process.wait() == 0


def test_invalid_flags_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["emulator", "--drop-probability", "1.5", "--idle-close-code", "1006"]) == 2
    err = capsys.readouterr().err
    assert "drop_probability: must be at most 1" in err and "idle_close_code" in err


async def test_admin_endpoint_in_process() -> None:
    """admin_port=0 picks a free port and serves the same endpoint for an in-process emulator."""
    async with Emulator(admin_port=0) as emu:
        assert emu.admin_url is not None and emu.admin_url.startswith("http://127.0.0.1:")
        status, faults = await http(emu.admin_url, "POST", "/faults", {"latency_s": 0.5})
        assert status == 200 and emu.faults.latency_s == 0.5 == faults["latency_s"]
