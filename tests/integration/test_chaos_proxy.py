"""The chaos suite's fault proxy on real loopback sockets: forwarding, latency, bandwidth, blackhole
(nothing forwarded, nothing closed), reset (RST), half-open, refusal, re-targeting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from bridge.tools.chaos.proxy import HOST, FaultProxy


class Echo:
    """An upstream server that echoes and records how each connection ended."""

    def __init__(self, tag: bytes = b"") -> None:
        self.tag = tag
        self.ends: list[str] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while data := await reader.read(65536):
                writer.write(self.tag + data)
                await writer.drain()
            self.ends.append("eof")
        except ConnectionResetError:
            self.ends.append("reset")
        finally:
            writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def echo(tag: bytes = b"") -> AsyncIterator[Echo]:
    e = Echo(tag)
    e.server = await asyncio.start_server(e.serve, HOST, 0)
    try:
        yield e
    finally:
        e.server.close()


@contextlib.asynccontextmanager
async def proxied(tag: bytes = b"") -> AsyncIterator[tuple[Echo, FaultProxy]]:
    async with echo(tag) as e, FaultProxy((HOST, e.port)) as proxy:
        yield e, proxy


async def connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(HOST, proxy.port)


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> bytes:
    writer.write(data)
    await writer.drain()
    async with asyncio.timeout(5):
        return await reader.readexactly(len(data))


async def wait_until(predicate: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_bytes_flow_both_ways_unchanged() -> None:
    """Without faults the proxy is transparent, for small and large payloads."""
    async with proxied() as (_, proxy):
        r, w = await connect(proxy)
        assert await exchange(r, w, b"hello") == b"hello"
        big = bytes(range(256)) * 4096  # 1 MiB
        assert await exchange(r, w, big) == big
        w.close()


async def test_latency_delays_every_chunk_and_keeps_order() -> None:
    """With 150 ms one way (and jitter) a round trip takes at least 300 ms; chunks arrive in order."""
    async with proxied() as (_, proxy):
        proxy.set_latency(0.15, 0.05)
        r, w = await connect(proxy)
        start = time.monotonic()
        assert await exchange(r, w, b"ping") == b"ping"
        assert time.monotonic() - start >= 0.3
        for i in range(20):
            w.write(b"%03d" % i)
        await w.drain()
        async with asyncio.timeout(5):
            got = await r.readexactly(60)
        assert got == b"".join(b"%03d" % i for i in range(20))
        w.close()


async def test_bandwidth_limit_paces_a_transfer() -> None:
    """256 KiB each way at 512 KiB/s takes at least a quarter second per direction."""
    async with proxied() as (_, proxy):
        proxy.bandwidth_bps = 512 * 1024
        r, w = await connect(proxy)
        start = time.monotonic()
        data = b"x" * (256 * 1024)
        assert await exchange(r, w, data) == data
        assert time.monotonic() - start >= 0.45


async def test_blackhole_forwards_nothing_closes_nothing_and_heal_delivers() -> None:
    """During a blackhole nothing arrives and no side sees an end; after heal the held bytes arrive."""
    async with proxied() as (e, proxy):
        r, w = await connect(proxy)
        assert await exchange(r, w, b"before") == b"before"
        proxy.blackhole()
        w.write(b"during")
        await w.drain()
        # a new connection is accepted and held, not forwarded
        r2, w2 = await connect(proxy)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await r.read(100)
        assert e.connections == 1
        assert e.ends == []
        assert not r.at_eof()
        proxy.heal()
        async with asyncio.timeout(5):
            assert await r.readexactly(6) == b"during"
        assert await exchange(r2, w2, b"late") == b"late"
        assert e.connections == 2
        w.close()
        w2.close()


async def test_reset_sends_rst_to_both_sides() -> None:
    """reset_all aborts with RST: the client's next read fails with a reset, the server sees one too."""
    async with proxied() as (e, proxy):
        r, w = await connect(proxy)
        assert await exchange(r, w, b"x") == b"x"
        assert proxy.reset_all() == 1
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(5):
                await r.read(10)
        await wait_until(lambda: e.ends == ["reset"])
        assert proxy.connections == 0


async def test_reset_some_resets_about_that_fraction() -> None:
    """reset_some(0) resets nothing, reset_some(1) every connection."""
    async with proxied() as (_, proxy):
        pairs = [await connect(proxy) for _ in range(4)]
        for r, w in pairs:
            assert await exchange(r, w, b"y") == b"y"
        assert proxy.reset_some(0.0) == 0
        assert proxy.reset_some(1.0) == 4


async def test_half_open_closes_the_server_side_and_keeps_the_client_silent() -> None:
    """The server sees its connection end; the client sees neither data nor an end until healed, then RST."""
    async with proxied() as (e, proxy):
        r, w = await connect(proxy)
        assert await exchange(r, w, b"x") == b"x"
        proxy.half_open()
        await wait_until(lambda: len(e.ends) == 1)
        w.write(b"into the void")
        await w.drain()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await r.read(100)
        assert not r.at_eof()
        proxy.heal()
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(5):
                await r.read(100)


async def test_refuse_resets_new_connections_and_upstream_can_change() -> None:
    """With refuse on a new connection is reset at once; a new upstream takes the next connections."""
    async with proxied(b"A:") as (_, proxy), echo(b"B:") as other:
        proxy.refuse = True
        r, _ = await connect(proxy)
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(5):
                await r.read(10)
        proxy.refuse = False
        r1, w1 = await connect(proxy)
        w1.write(b"1")
        async with asyncio.timeout(5):
            assert await r1.readexactly(3) == b"A:1"
        proxy.upstream = (HOST, other.port)
        r2, w2 = await connect(proxy)
        w2.write(b"2")
        async with asyncio.timeout(5):
            assert await r2.readexactly(3) == b"B:2"
        w1.close()
        w2.close()
