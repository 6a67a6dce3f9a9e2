"""v0 and v1 on one port: each request reaches its API, v0 behaves exactly as before."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bridge.tools.emulator import Emulator

KEY = "one-port"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_key=KEY) as running:
        yield running


async def test_v0_and_v1_share_the_port(emu: Emulator) -> None:
    assert emu.url == f"ws://127.0.0.1:{emu.port}/v0/stream/models"
    assert emu.ws_base_url == f"ws://127.0.0.1:{emu.port}" and emu.http_url == f"http://127.0.0.1:{emu.port}"
    v1_url = emu.ws_base_url + "/v1/expression/audio/realtime"
    async with (
        connect(emu.url, additional_headers={"X-Hume-Api-Key": KEY}) as v0,
        connect(v1_url, additional_headers={"X-Hume-Api-Key": KEY}) as v1,
    ):
        async with asyncio.timeout(5):
            assert orjson.loads(await v1.recv())["type"] == "session.created"
            await v0.send('{"job_details": true}')
            job = orjson.loads(await v0.recv())
            await v0.send('{"job_details": true, "payload_id": "p"}')
            again = orjson.loads(await v0.recv())
        assert list(job) == ["job_details"] and len(job["job_details"]["job_id"]) == 32
        assert again == {"payload_id": "p", "job_details": job["job_details"]}
    assert emu.stats.connections_opened == 1 and emu.stats.v1.sessions_opened == {"audio": 1}
    with pytest.raises(InvalidStatus) as exc:
        async with connect(emu.ws_base_url + "/elsewhere", additional_headers={"X-Hume-Api-Key": KEY}):
            pass
    assert exc.value.response.status_code == 404  # a GET outside /v1 is v0's, which answers 404 as before
    async with aiohttp.ClientSession() as http:
        async with http.post(emu.url.replace("ws://", "http://"), data=b"x") as response:
            assert response.status == 404 and (await response.json())["code"] == "not_found"
        async with http.get(emu.http_url + "/v1/expression/run") as response:
            assert response.status == 401


async def test_a_client_that_vanishes_leaves_no_traceback(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Clients that reset the connection (a ping just before, or right after the upgrade request) are
    connections lost, as a network blackhole or a killed bridge leaves them: no request errors."""
    v1_url = emu.ws_base_url + "/v1/expression/audio/realtime"
    request = (
        f"GET /v1/expression/audio/realtime HTTP/1.1\r\nHost: 127.0.0.1:{emu.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\nX-Hume-Api-Key: {KEY}\r\n\r\n"
    ).encode()
    for _ in range(10):
        async with connect(v1_url, additional_headers={"X-Hume-Api-Key": KEY}) as ws:
            async with asyncio.timeout(5):
                await ws.recv()
            await ws.ping()
            ws.transport.abort()
        _, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        writer.write(request)
        writer.transport.abort()
    await emu.wait_until(lambda: emu.stats.v1.sessions_open.get("audio", 0) == 0, 10)
    await emu.wait_until(lambda: sum(emu.stats.v1.sessions_opened.values()) >= 10, 10)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records
    ]
