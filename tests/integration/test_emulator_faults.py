"""Faults over real loopback sockets: latency, pipelining order, drops, closes, idle timeout, statistics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bridge.tools import samples as S
from bridge.tools.emulator import Emulator, Faults


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(faults=Faults(seed=3)) as running:
        yield running


def text_request(payload_id: str) -> bytes:
    return S.v0_request(
        payload_id, {"language": {"granularity": "passage"}}, raw_text=True, payload_id=payload_id
    )


async def receive(ws: ClientConnection, n: int, timeout_s: float = 10.0) -> list[str]:
    """The payload ids of the next ``n`` replies."""
    async with asyncio.timeout(timeout_s):
        return [orjson.loads(await ws.recv())["payload_id"] for _ in range(n)]


async def closed_by_server(ws: ClientConnection, timeout_s: float = 10.0) -> ConnectionClosed:
    """Wait for the server to end the connection; fail if a reply arrives instead."""
    async with asyncio.timeout(timeout_s):
        try:
            message = await ws.recv()
        except ConnectionClosed as exc:
            return exc
    raise AssertionError(f"expected the connection to close, got {message!r}")


async def test_latency_delays_every_reply(emu: Emulator) -> None:
    emu.faults.latency_s = 0.2
    loop = asyncio.get_running_loop()
    async with connect(emu.url) as ws:
        started = loop.time()
        await ws.send(text_request("slow"), text=True)
        assert await receive(ws, 1) == ["slow"]
        assert loop.time() - started >= 0.2


async def test_pipelined_requests_wait_concurrently_and_reply_in_order(emu: Emulator) -> None:
    """With latency and jitter, five pipelined requests are all in flight at once and come back in order."""
    emu.faults.latency_s = 0.2
    emu.faults.jitter_s = 0.1
    ids = [f"p{i}" for i in range(5)]
    async with connect(emu.url) as ws:
        for pid in ids:
            await ws.send(text_request(pid), text=True)
        assert await receive(ws, 5) == ids
    assert emu.stats.max_in_flight_per_connection == 5


async def test_zero_latency_pipelining_keeps_order(emu: Emulator) -> None:
    ids = [f"z{i}" for i in range(50)]
    async with connect(emu.url) as ws:
        for pid in ids:
            await ws.send(text_request(pid), text=True)
        assert await receive(ws, 50) == ids


async def test_out_of_order_replies_when_pipelined(emu: Emulator) -> None:
    """out_of_order: pipelined replies leave pairwise swapped; a lone one after the hold time."""
    emu.faults.out_of_order = True
    async with connect(emu.url) as ws:
        for pid in ("a", "b", "c"):
            await ws.send(text_request(pid), text=True)
        assert await receive(ws, 3) == ["b", "a", "c"]
        await ws.send(text_request("d"), text=True)
        assert await receive(ws, 1) == ["d"]


async def test_drop_at_message_aborts_without_close_frame(emu: Emulator) -> None:
    """The N-th message aborts the TCP connection: no reply, no close frame; logged as dropped."""
    emu.faults.drop_at_message = 2
    async with connect(emu.url) as ws:
        await ws.send(text_request("first"), text=True)
        assert await receive(ws, 1) == ["first"]
        await ws.send(text_request("second"), text=True)
        closed = await closed_by_server(ws)
        assert closed.rcvd is None
    assert [(e.payload_id, e.reply_kind) for e in emu.requests] == [
        ("first", "predictions"),
        ("second", "dropped"),
    ]
    assert emu.stats.dropped_connections == 1


async def test_drop_probability_with_a_drop_limit(emu: Emulator) -> None:
    """Probability 1 drops every connection's first message, until drop_limit is used up."""
    emu.faults.drop_probability = 1.0
    emu.faults.drop_limit = 2
    for _ in range(2):
        async with connect(emu.url) as ws:
            await ws.send(text_request("lost"), text=True)
            assert (await closed_by_server(ws)).rcvd is None
    async with connect(emu.url) as ws:
        await ws.send(text_request("kept"), text=True)
        assert await receive(ws, 1) == ["kept"]
    assert emu.faults.drop_limit == 0
    assert emu.stats.dropped_connections == 2


@pytest.mark.parametrize("latency_s", [0.0, 0.1])
async def test_close_after_messages_answers_then_closes(emu: Emulator, latency_s: float) -> None:
    """After N messages the server answers them, closes with the code, and reads nothing more."""
    emu.faults.latency_s = latency_s
    emu.faults.close_after_messages = 2
    emu.faults.close_after_code = 4002
    async with connect(emu.url) as ws:
        for pid in ("one", "two", "three"):
            await ws.send(text_request(pid), text=True)
        assert await receive(ws, 2) == ["one", "two"]
        closed = await closed_by_server(ws)
        assert closed.rcvd is not None and closed.rcvd.code == 4002
    assert [e.payload_id for e in emu.requests] == ["one", "two"]
    assert emu.stats.message_limit_closes == 1


async def test_close_after_messages_does_not_outlive_the_client(emu: Emulator) -> None:
    """A client that leaves while its last replies wait out a long latency frees the connection at once."""
    emu.faults.latency_s = 30.0
    emu.faults.close_after_messages = 1
    async with connect(emu.url) as ws:
        await ws.send(text_request("never-answered"), text=True)
        await emu.wait_until(lambda: emu.stats.in_flight == 1)
    await emu.wait_until(lambda: emu.stats.connections_open == 0, timeout_s=5)
    assert emu.stats.in_flight == 0 and emu.stats.replies == 0


async def test_idle_timeout_closes_with_the_configured_code(emu: Emulator) -> None:
    emu.faults.idle_timeout_s = 0.6
    emu.faults.idle_close_code = 4008
    loop = asyncio.get_running_loop()
    async with connect(emu.url) as ws:
        started = loop.time()
        await asyncio.sleep(0.2)  # the scenario: a message part-way through the idle period
        await ws.send(text_request("keepalive"), text=True)
        assert await receive(ws, 1) == ["keepalive"]
        closed = await closed_by_server(ws)
        assert closed.rcvd is not None and (closed.rcvd.code, closed.rcvd.reason) == (4008, "idle timeout")
        assert loop.time() - started >= 0.8
    assert emu.stats.idle_closes == 1


async def test_idle_timeout_change_applies_to_open_connections(emu: Emulator) -> None:
    async with connect(emu.url) as ws:
        await ws.send(text_request("x"), text=True)
        assert await receive(ws, 1) == ["x"]
        emu.faults.idle_timeout_s = 0.05
        closed = await closed_by_server(ws, timeout_s=5)
        assert closed.rcvd is not None and closed.rcvd.code == 1000


async def test_closing_the_emulator_closes_connections_with_1001(emu: Emulator) -> None:
    async with connect(emu.url) as ws:
        await emu.close()
        closed = await closed_by_server(ws)
        assert closed.rcvd is not None and closed.rcvd.code == 1001


async def test_statistics_count_connections_requests_replies_and_bytes(emu: Emulator) -> None:
    frames = [
        text_request("t1"),
        S.v0_request(S.b64(S.png(uniform=True)), {"face": {}}, payload_id="w1"),
        b"nope",
        b'{"reset_stream": true}',
    ]
    received: list[bytes] = []
    async with connect(emu.url) as ws:
        for frame in frames:
            await ws.send(frame, text=True)
            received.append(await ws.recv(decode=False))
        await emu.wait_until(lambda: emu.stats.replies == 4)
        snapshot: dict[str, Any] = emu.stats.snapshot()
        assert snapshot == {
            "connections_opened": 1,
            "connections_open": 1,
            "connections_refused": {},
            "requests": 4,
            "replies": 4,
            "replies_by_kind": {"predictions": 1, "warning": 1, "error": 1, "reset": 1},
            "replies_by_code": {"W0103": 1, "E0100": 1},
            "bytes_in": sum(len(f) for f in frames),
            "bytes_out": sum(len(r) for r in received),
            "dropped_connections": 0,
            "idle_closes": 0,
            "message_limit_closes": 0,
            "in_flight": 0,
            "max_in_flight_per_connection": 1,
        }
    await emu.wait_until(lambda: emu.stats.connections_open == 0)
    emu.reset_stats()
    assert emu.stats.snapshot()["requests"] == 0
