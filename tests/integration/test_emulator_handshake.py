"""The emulator's handshake over real loopback sockets: API keys, paths, refusals before the upgrade."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bridge.tools import samples as S
from bridge.tools.emulator import Emulator

KEY = "secret-key"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_key=KEY) as running:
        yield running


async def refused_status(url: str, **kwargs: object) -> int:
    with pytest.raises(InvalidStatus) as exc:
        async with connect(url, open_timeout=5, **kwargs):  # type: ignore[arg-type]
            pass
    return exc.value.response.status_code


async def answers(url: str, **kwargs: object) -> bool:
    async with connect(url, open_timeout=5, **kwargs) as ws:  # type: ignore[arg-type]
        await ws.send(S.v0_request("hi", {"language": {}}, raw_text=True, payload_id="k"), text=True)
        return bool(orjson.loads(await ws.recv())["payload_id"] == "k")


async def test_key_in_header_is_accepted(emu: Emulator) -> None:
    assert emu.url == f"ws://127.0.0.1:{emu.port}/v0/stream/models"
    assert await answers(emu.url, additional_headers={"X-Hume-Api-Key": KEY})


@pytest.mark.parametrize(
    "query", [f"apikey={KEY}", f"api_key={KEY}", f"fernSdkLanguage=Python&api_key={KEY}&x="]
)
async def test_key_in_query_is_accepted_and_unknown_parameters_ignored(emu: Emulator, query: str) -> None:
    assert await answers(f"{emu.url}?{query}")


async def test_wrong_or_missing_key_is_401_before_the_upgrade(emu: Emulator) -> None:
    assert await refused_status(emu.url) == 401
    assert await refused_status(f"{emu.url}?apikey=wrong") == 401
    assert await refused_status(emu.url, additional_headers={"X-Hume-Api-Key": "wrong"}) == 401
    assert emu.stats.connections_refused == {"401": 3}
    assert emu.stats.connections_opened == 0


async def test_other_paths_are_404(emu: Emulator) -> None:
    url = f"ws://127.0.0.1:{emu.port}/v0/stream/other?apikey={KEY}"
    assert await refused_status(url) == 404


async def test_without_a_configured_key_any_key_or_none_is_accepted() -> None:
    async with Emulator() as open_emu:
        assert await answers(open_emu.url)
        assert await answers(f"{open_emu.url}?apikey=whatever")


async def test_refuse_all_keys_is_401_until_switched_back(emu: Emulator) -> None:
    emu.faults.refuse_all_keys = True
    assert await refused_status(emu.url, additional_headers={"X-Hume-Api-Key": KEY}) == 401
    emu.faults.refuse_all_keys = False
    assert await answers(emu.url, additional_headers={"X-Hume-Api-Key": KEY})


async def test_handshake_rate_limit_is_429(emu: Emulator) -> None:
    """At 2 handshakes per second the third immediate one is refused with 429."""
    emu.faults.handshake_rate_per_s = 2
    url = f"{emu.url}?apikey={KEY}"
    assert await answers(url) and await answers(url)
    assert await refused_status(url) == 429
    assert emu.stats.connections_refused == {"429": 1}


async def test_connection_cap_refuses_beyond_max_connections(emu: Emulator) -> None:
    """With max_connections=2 a third concurrent handshake gets 429; a freed slot can be reused."""
    emu.faults.max_connections = 2
    url = f"{emu.url}?apikey={KEY}"
    async with connect(url) as first, connect(url):
        assert await refused_status(url) == 429
        await first.close()
        await emu.wait_until(lambda: emu.stats.connections_open == 1)
        assert await answers(url)
    emu.faults.max_connections_status = 503
    emu.faults.max_connections = 0
    assert await refused_status(url) == 503
    assert emu.stats.connections_refused == {"429": 1, "503": 1}
