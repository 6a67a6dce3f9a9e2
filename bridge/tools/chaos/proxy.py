"""A fault-injecting TCP proxy on the loopback interface, switchable at run time.

The chaos scenarios put one between a bridge and the broker and one between a bridge and the Hume
emulator. Every connection accepted on ``port`` is forwarded to ``upstream`` (which can be changed while
the proxy runs: the next connection goes to the new address). Faults, read live by the forwarding tasks:

=============  =============================================================================================
``latency_s``  each chunk is delivered this long after it was read, plus a uniform extra in
               ``[0, jitter_s)``; order is kept (a chunk never overtakes an earlier one)
``bandwidth``  ``bandwidth_bps`` bytes per second per direction per connection (``None``: unlimited)
blackhole      :meth:`blackhole`: nothing is forwarded in either direction and no socket is closed; new
               connections are accepted and held without an upstream (a network partition: no RST, no
               FIN). :meth:`heal` resumes forwarding; held bytes are then delivered, as TCP would after
               retransmitting.
reset          :meth:`reset_all` aborts every connection with a TCP RST (``SO_LINGER`` 0) on both sides;
               :meth:`reset_some` a random fraction of them; ``refuse`` resets new connections at once
half-open      :meth:`half_open`: every upstream socket is closed (the server sees the connection end) while
               the client's socket stays open and silent; what the client sends is read and dropped
=============  =============================================================================================

The decisions (when a chunk is due, how long a bandwidth limit holds a chunk) are the pure functions
:func:`due_time` and :func:`transmit_time`; the rest is asyncio plumbing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

HOST: Final = "127.0.0.1"
CHUNK_BYTES: Final = 64 * 1024
QUEUE_CHUNKS: Final = 64  # chunks read ahead per direction while latency holds them (bounded)
CONNECT_TIMEOUT_S: Final = 5.0


class Mode(StrEnum):
    FORWARD = "forward"
    BLACKHOLE = "blackhole"
    HALF_OPEN = "half_open"


def due_time(read_at: float, latency_s: float, jitter_draw: float, previous_due: float) -> float:
    """When a chunk read at ``read_at`` may be written: after its latency, never before an earlier chunk."""
    return max(read_at + latency_s + jitter_draw, previous_due)


def transmit_time(size: int, bandwidth_bps: float | None) -> float:
    """Seconds ``size`` bytes occupy a link of ``bandwidth_bps`` bytes per second (0 when unlimited)."""
    if bandwidth_bps is None or bandwidth_bps <= 0:
        return 0.0
    return size / bandwidth_bps


def abort_with_rst(writer: asyncio.StreamWriter) -> None:
    """Close a connection with a TCP RST instead of a FIN: ``SO_LINGER`` on with a zero timeout."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closed: bool = False


@dataclass
class ProxyStats:
    accepted: int = 0
    forwarded_bytes: int = 0
    resets: int = 0
    refused: int = 0


class FaultProxy:
    """``async with FaultProxy(upstream=(host, port)) as proxy``: listens on ``proxy.port``."""

    def __init__(self, upstream: tuple[str, int], *, port: int = 0, seed: int = 0) -> None:
        self.upstream = upstream
        self.port = port
        self.latency_s = 0.0
        self.jitter_s = 0.0
        self.bandwidth_bps: float | None = None
        self.refuse = False
        self.mode = Mode.FORWARD
        self.stats = ProxyStats()
        self._rng = random.Random(seed)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def connections(self) -> int:
        return sum(1 for link in self._links if not link.closed)

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, HOST, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        # Handlers are not cancelled (asyncio logs a cancelled connection callback as an error): their
        # links are closed, which ends their pumps, and anything held by a blackhole is let go.
        self._closing = True
        if self._server is not None:
            self._server.close()
        self._flowing.set()
        for link in list(self._links):
            self._drop(link, rst=False)
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=5)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
            self._server = None

    # -- switching faults -------------------------------------------------------------------------------

    def set_latency(self, latency_s: float, jitter_s: float = 0.0) -> None:
        self.latency_s, self.jitter_s = latency_s, jitter_s

    def blackhole(self) -> None:
        self.mode = Mode.BLACKHOLE
        self._flowing.clear()

    def half_open(self) -> None:
        """Close every upstream socket, keep the clients' sockets open and silent, hold new connections."""
        self.mode = Mode.HALF_OPEN
        self._flowing.clear()
        for link in self._links:
            if link.upstream is not None:
                link.upstream.transport.abort()
                link.upstream = None

    def heal(self) -> None:
        """Forward again. Connections made half-open stay dead: their clients find out when they write."""
        if self.mode is Mode.HALF_OPEN:
            for link in list(self._links):
                if link.upstream is None:
                    self._drop(link, rst=True)
        self.mode = Mode.FORWARD
        self._flowing.set()

    def reset_all(self) -> int:
        return self.reset_some(1.0)

    def reset_some(self, fraction: float) -> int:
        """RST a random ``fraction`` of the open connections (each independently); returns how many."""
        n = 0
        for link in list(self._links):
            if not link.closed and self._rng.random() < fraction:
                self._drop(link, rst=True)
                n += 1
        self.stats.resets += n
        return n

    # -- plumbing ---------------------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        if self.refuse or self._closing:
            self.stats.refused += 1
            abort_with_rst(writer)
            return
        link = _Link(client=writer)
        self._links.add(link)
        try:
            await self._flowing.wait()  # a blackhole holds a new connection without an upstream
            if link.closed:
                return
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except (OSError, TimeoutError):
                self._drop(link, rst=True)
                return
            if link.closed:
                up_writer.transport.abort()
                return
            link.upstream = up_writer
            async with asyncio.TaskGroup() as tg:
                link.tasks = [
                    tg.create_task(self._pump(link, reader, up_writer, upstream_side=False)),
                    tg.create_task(self._pump(link, up_reader, writer, upstream_side=True)),
                ]
        except* OSError:
            pass
        finally:
            self._drop(link, rst=False)

    async def _pump(
        self, link: _Link, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, upstream_side: bool
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUE_CHUNKS)

        async def read() -> None:
            previous_due = 0.0
            while True:
                await self._flowing.wait()
                data = await src.read(CHUNK_BYTES)
                if not data and self.mode is Mode.HALF_OPEN:
                    await asyncio.Event().wait()  # keep the client's side open; dropped on heal or close
                if not data:
                    await queue.put((0.0, b""))
                    return
                if self.mode is Mode.HALF_OPEN and not upstream_side:
                    continue  # the client writes into a connection whose other end is gone
                jitter = self._rng.uniform(0.0, self.jitter_s) if self.jitter_s > 0 else 0.0
                previous_due = due_time(time.monotonic(), self.latency_s, jitter, previous_due)
                await queue.put((previous_due, data))

        async def write() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    with contextlib.suppress(OSError):
                        if dst.can_write_eof():
                            dst.write_eof()
                    return
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._flowing.wait()
                dst.write(data)
                await dst.drain()
                self.stats.forwarded_bytes += len(data)
                hold = transmit_time(len(data), self.bandwidth_bps)
                if hold > 0:
                    await asyncio.sleep(hold)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(read())
            tg.create_task(write())

    def _drop(self, link: _Link, *, rst: bool) -> None:
        if link.closed:
            return
        link.closed = True
        for w in (link.client, link.upstream):
            if w is None:
                continue
            if rst:
                abort_with_rst(w)
            else:
                w.close()
        for task in link.tasks:
            task.cancel()
        self._links.discard(link)
