"""The emulator as a subprocess: v1 flags set the v1 faults, the admin endpoint steers and reads v1."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import sys
from typing import Any

import aiohttp
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bridge.tools.emulator.v1.testing import tone


async def http(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request to the admin endpoint: (status, decoded JSON body)."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.request(method, base + path, data=None if body is None else orjson.dumps(body)) as response,
    ):
        return response.status, orjson.loads(await response.read())


async def test_v1_flags_admin_endpoint_and_shutdown_on_demand() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "emulator",
        "--admin-port",
        "0",
        "--api-key",
        "k",
        "--pace-factor",
        "50",
        "--audio-burst-ms",
        "20000",
        "--server-shutdown-close-code",
        "1001",
        "--record-audio",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            lines = [(await process.stdout.readline()).decode().strip() for _ in range(3)]
        admin = lines[1].rsplit(" ", 1)[1]
        base = lines[2].split(" and ")[1].removesuffix("/v1/expression")
        assert (
            lines[2]
            == f"emulator v1 on {base.replace('ws://', 'http://')}/v1/expression and {base}/v1/expression"
        )
        status, faults = await http(admin, "GET", "/faults")
        assert (faults["pace_factor"], faults["audio_burst_ms"], faults["server_shutdown_close_code"]) == (
            50.0,
            20000.0,
            1001,
        )
        status, vocab = await http(admin, "POST", "/vocabulary", {"voice_attributes": ["brand new"]})
        assert status == 200 and vocab["voice_attributes"][-1] == "brand new"
        status, bad = await http(
            admin, "POST", "/vocabulary", {"nope": ["x"], "audio_expressions": ["Upper"]}
        )
        assert status == 400 and "nope: unknown vocabulary" in bad["error"] and "'Upper'" in bad["error"]
        audio = tone(2000)
        async with connect(
            base + "/v1/expression/audio/realtime", additional_headers={"X-Hume-Api-Key": "k"}
        ) as ws:
            session_id = orjson.loads(await ws.recv())["session_id"]
            for i in range(0, len(audio), 3200):
                await ws.send(audio[i : i + 3200])
            await ws.send(b"")  # its reply proves that every earlier frame was taken in
            async with asyncio.timeout(10):
                assert orjson.loads(await ws.recv())["type"] == "utterance.start"
                assert orjson.loads(await ws.recv())["code"] == "invalid_audio_frame"
            assert (await http(admin, "GET", "/v1/stats"))[1]["frames_accepted"] == {"audio": 20}
            assert await http(admin, "POST", "/v1/shutdown-sessions") == (200, {"sessions": 1})
            messages = []
            try:
                async with asyncio.timeout(10):
                    while True:
                        messages.append(orjson.loads(await ws.recv()))
            except ConnectionClosed:
                pass
            assert messages[-1]["reason"] == "server_shutdown" and ws.close_code == 1001
        status, runs = await http(admin, "GET", "/v1/runs")
        assert [(r["run_id"], r["bytes_received"], r["accepted_sha256"]) for r in runs] == [
            (session_id, len(audio), hashlib.sha256(audio).hexdigest())
        ]
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
