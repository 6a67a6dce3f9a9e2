"""v0 and v1 on one port: each request reaches its API, v0 behaves exactly as before."""

from __future__ import annotations

import asyncio
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
