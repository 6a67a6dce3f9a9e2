"""A v1 session over a network that goes silent: found lost by the keepalive ping, not left hanging.

Hume sends nothing while a stream is silent, so the session shell has no read deadline of its own; the
WebSocket ping (``BRIDGE_V1_KEEPALIVE_S``) is what notices packets that vanish without an RST or FIN.
The fault proxy between the shell and the emulator makes that blackhole over real sockets.
"""

from __future__ import annotations

import asyncio

from bridge.tools.chaos.proxy import FaultProxy
from bridge.tools.emulator import Emulator, Faults
from bridge.upstream.v1.protocol import AudioSettings, CloseVerdict, Endpoint, audio_session_update
from bridge.upstream.v1.session import RealtimeSession
from tests.integration.harness import API_KEY, wait_for

KEEPALIVE_S = 0.3


async def _open(proxy: FaultProxy) -> RealtimeSession:
    return await RealtimeSession.open(
        f"ws://127.0.0.1:{proxy.port}/v1/expression/audio/realtime",
        API_KEY,
        Endpoint.AUDIO,
        audio_session_update(AudioSettings()),
        timeout_s=5,
        keepalive_s=KEEPALIVE_S,
    )


async def _read(rt: RealtimeSession) -> None:
    async for _ in rt.events():
        pass


async def test_a_silent_network_ends_the_session_as_lost_within_three_keepalives() -> None:
    async with (
        Emulator(api_key=API_KEY, faults=Faults(idle_timeout_s=60)) as emu,
        FaultProxy((emu.host, emu.port)) as proxy,
    ):
        rt = await _open(proxy)
        reader = asyncio.create_task(_read(rt))
        # Healthy first: pongs come back (websockets measures their latency) and the session stays open.
        await wait_for(lambda: rt.latency_s > 0, 10, "a first pong")
        assert not reader.done()
        proxy.blackhole()
        await wait_for(reader.done, 10 * KEEPALIVE_S + 5, "the reader ends in the blackhole")
        await reader
        assert rt.ended is not None
        assert rt.ended.close_code is None  # no close frame: the connection was lost
        assert rt.ended.verdict is CloseVerdict.RECONNECT
        proxy.heal()
