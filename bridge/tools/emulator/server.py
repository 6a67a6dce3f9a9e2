"""The asyncio shell: the WebSocket server, per-connection tasks, faults, statistics and the request log.

Per connection::

    reader ──frame──▶ Session.handle (pure) ──reply──▶ wait latency + jitter ──▶ release in order ──▶ send
      │                                                  (one task per request)    (or shuffled when
      └─ idle watchdog: no message for idle_timeout_s → close(idle_close_code)      out_of_order is set)

The handshake is checked in ``process_request`` (path 404, rate 429, key 401) and ``process_response``
(concurrent-connection cap), before the upgrade: a refused client gets a plain HTTP status, no WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import random
from collections import deque
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Final, cast
from urllib.parse import parse_qs

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from bridge.tools.emulator.admin import AdminServer
from bridge.tools.emulator.faults import Faults, HandshakeLimiter, reply_delay_s, should_drop
from bridge.tools.emulator.protocol import Engine, Reply, Session
from bridge.tools.emulator.stats import RequestLogEntry, Stats
from bridge.tools.emulator.v1.runs import Runs
from bridge.tools.emulator.v1.server import V1Server
from bridge.tools.emulator.v1.vocabulary import Vocabulary

PATH: Final = "/v0/stream/models"
API_KEY_HEADER: Final = "X-Hume-Api-Key"
API_KEY_PARAMS: Final = ("apikey", "api_key")
_WATCHDOG_MAX_SLEEP_S: Final = 1.0
MAX_PENDING_PER_CONNECTION: Final = 4096
"""Requests awaiting their reply on one connection; beyond it the server stops reading that connection (TCP
backpressure) until replies go out."""


_SNIFF_LIMIT: Final = 8192
"""Bytes read at most to find a request line before handing a connection to v0's WebSocket server."""


class _Detached:
    """Stands in for the transport of a connection handed over to the v1 application, so that the v0
    server's clean-up after its (skipped) handshake cannot abort the connection it no longer owns."""

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def _dispatching(v1_factory: Callable[[], asyncio.Protocol]) -> type[ServerConnection]:
    """A v0 connection class that first reads the request line: ``GET`` of anything but ``/v1/...`` stays
    with v0's WebSocket server (which answers its own 404s); everything else (every ``/v1/...`` request, every
    other method) is handed, with the bytes read so far, to the v1 aiohttp application."""

    class DispatchingConnection(ServerConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self._sniffed = bytearray()
            self._decided: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._handed_over = False
            super().connection_made(transport)

        def data_received(self, data: bytes) -> None:
            if self._decided.done():
                super().data_received(data)
                return
            self._sniffed += data
            end = self._sniffed.find(b"\r\n")
            if end < 0 and len(self._sniffed) < _SNIFF_LIMIT:
                return
            method, _, rest = bytes(self._sniffed[: end if end >= 0 else None]).partition(b" ")
            target = rest.partition(b" ")[0]
            buffered = bytes(self._sniffed)
            self._sniffed.clear()
            self._decided.set_result(None)
            if method == b"GET" and not (target == b"/v1" or target.startswith((b"/v1/", b"/v1?"))):
                super().data_received(buffered)
                return
            self._handed_over = True
            transport = self.transport
            protocol = v1_factory()
            transport.set_protocol(protocol)
            self.transport = cast(asyncio.Transport, _Detached())
            protocol.connection_made(transport)
            protocol.data_received(buffered)

        def connection_lost(self, exc: Exception | None) -> None:
            if not self._decided.done():
                self._decided.set_result(None)
            super().connection_lost(exc)

        async def handshake(self, *args: Any, **kwargs: Any) -> None:
            await self._decided
            if not self._handed_over:
                await super().handshake(*args, **kwargs)

    return DispatchingConnection


class Emulator:
    """A local Hume server: v0 ``/v0/stream/models`` and the seven v1 endpoints on one port. Use as
    ``async with Emulator(...) as emu:``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        faults: Faults | None = None,
        admin_port: int | None = None,
        *,
        request_log_size: int = 100_000,
        max_message_bytes: int = 64 * 1024 * 1024,
        media_cache_size: int = 2048,
        record_audio: bool = False,
    ) -> None:
        self.host = host
        self.api_key = api_key
        self.faults = faults if faults is not None else Faults()
        self.stats = Stats()
        self.requests: deque[RequestLogEntry] = deque(maxlen=request_log_size)
        self._requested_port = port
        self._admin_port = admin_port
        self._max_message_bytes = max_message_bytes
        self._engine = Engine(media_cache_size=media_cache_size)
        self._limiter = HandshakeLimiter()
        self._ids = itertools.count(1)
        self._accepted: set[ServerConnection] = set()
        self._waiters: set[asyncio.Future[None]] = set()
        self._server: Server | None = None
        self._admin: AdminServer | None = None
        self.port = 0
        self.admin_url: str | None = None
        self.v1 = V1Server(self, record_audio=record_audio)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{PATH}"

    @property
    def http_url(self) -> str:
        """``http://H:P``: the base of the v1 HTTP endpoints (Hume's ``base`` environment)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def ws_base_url(self) -> str:
        """``ws://H:P``: the base of the v1 realtime endpoints (Hume's ``production`` environment)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    @property
    def runs(self) -> Runs:
        """Every v1 session and upload; ``emu.runs.get(session_id).accepted_sha256`` etc."""
        return self.v1.runs

    @property
    def vocabulary(self) -> Vocabulary:
        """The v1 measurement names; ``emu.vocabulary.add({"audio_expressions": ["new name"]})``."""
        return self.v1.vocabulary

    def shutdown_sessions(self) -> int:
        """``server_shutdown`` now for every open v1 session; returns how many."""
        return self.v1.shutdown_sessions()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        v1_factory = await self.v1.start()
        self._server = await serve(
            self._handle,
            self.host,
            self._requested_port,
            process_request=self._process_request,
            process_response=self._process_response,
            compression=None,
            ping_interval=None,
            max_size=self._max_message_bytes,
            server_header="hume-emulator",
            create_connection=_dispatching(v1_factory),
        )
        self.port = self._server.sockets[0].getsockname()[1] if self._server.sockets else 0
        if self._admin_port is not None:
            self._admin = AdminServer(self)
            admin_port = await self._admin.start(self.host, self._admin_port)
            host = f"[{self.host}]" if ":" in self.host else self.host
            self.admin_url = f"http://{host}:{admin_port}"

    async def close(self) -> None:
        """Stop accepting, close every connection (1001; v1 sessions get ``server_shutdown`` first) and wait
        for their handlers."""
        with contextlib.suppress(Exception):
            await self.v1.close()
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def reset_stats(self) -> None:
        self.stats.reset()

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Return once ``predicate()`` holds; raise ``TimeoutError`` after ``timeout_s``. The predicate is
        re-evaluated whenever the statistics or the request log change."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                changed = asyncio.get_running_loop().create_future()
                self._waiters.add(changed)
                try:
                    await changed
                finally:
                    self._waiters.discard(changed)

    def _notify(self) -> None:
        """Wake :meth:`wait_until`: statistics, the request log or connection state changed."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    # --- handshake ------------------------------------------------------------------------------------

    def _refuse(self, connection: ServerConnection, status: int, text: str) -> Response:
        self.stats.connections_refused[str(status)] += 1
        self._notify()
        return connection.respond(status, text)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if path.rstrip("/") != PATH:
            return self._refuse(connection, 404, "Not Found\n")
        if not self._limiter.allow(self.faults.handshake_rate_per_s, asyncio.get_running_loop().time()):
            return self._refuse(connection, 429, "Too Many Requests: handshake rate limit\n")
        if self.faults.refuse_all_keys or not self._key_ok(request, query):
            return self._refuse(connection, 401, "Unauthorized: invalid or missing API key\n")
        return None

    def _key_ok(self, request: Request, query: str) -> bool:
        if self.api_key is None:
            return True
        offered = request.headers.get_all(API_KEY_HEADER)
        params = parse_qs(query, keep_blank_values=True)
        offered += [value for name in API_KEY_PARAMS for value in params.get(name, ())]
        expected = self.api_key.encode()
        return any(hmac.compare_digest(key.encode(), expected) for key in offered)

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        if response.status_code != 101:
            return None
        cap = self.faults.max_connections
        if cap is not None:
            # a connection whose handshake failed after this point never reached the handler: forget it
            self._accepted = {c for c in self._accepted if c.state is not State.CLOSED}
            if len(self._accepted) >= cap:
                status = self.faults.max_connections_status
                return self._refuse(connection, status, "Too Many Connections\n")
        self._accepted.add(connection)
        return None

    # --- connections ----------------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        connection_id = next(self._ids)
        self.stats.connections_opened += 1
        self.stats.connections_open += 1
        self._notify()
        try:
            await _Connection(self, ws, connection_id, self._engine).run()
        finally:
            self.stats.connections_open -= 1
            self._accepted.discard(ws)
            self._notify()


class _Connection:
    """One client connection: its session, its pending replies and its fault state."""

    def __init__(self, emulator: Emulator, ws: ServerConnection, connection_id: int, engine: Engine) -> None:
        self.emu = emulator
        self.ws = ws
        self.id = connection_id
        seed = emulator.faults.seed
        self.session = Session(engine, Session.job_id_for(seed, connection_id))
        self.drop_rng = random.Random(f"drop:{seed}:{connection_id}")
        self.jitter_rng = random.Random(f"jitter:{seed}:{connection_id}")
        self.loop = asyncio.get_running_loop()
        self.last_rx = self.loop.time()
        self.outstanding = 0  # received and not yet sent
        self.drained = asyncio.Event()
        self.drained.set()
        self.room = asyncio.Event()  # fewer than MAX_PENDING_PER_CONNECTION outstanding
        self.room.set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.tg: asyncio.TaskGroup | None = None
        # reply ordering: requests are numbered 1, 2, ...; in order means by number
        self.next_seq = 1
        self.ready: dict[int, Reply] = {}
        self.bypassed: set[int] = set()
        self.held: list[Reply] = []
        self.outgoing: deque[Reply] = deque()
        self.flushing = False
        self.broken = False

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                self.tg = tg
                watchdog = tg.create_task(self._idle_watchdog())
                try:
                    await self._read()
                finally:
                    watchdog.cancel()
                    for task in list(self.tasks):
                        task.cancel()
        finally:
            self.emu.stats.in_flight -= self.outstanding

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self.tg is not None
        task = self.tg.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _read(self) -> None:
        emu, stats = self.emu, self.emu.stats
        index = 0
        while True:
            await self.room.wait()
            try:
                frame = await self.ws.recv(decode=False)
            except ConnectionClosed:
                return
            self.last_rx = self.loop.time()
            index += 1
            stats.requests += 1
            stats.bytes_in += len(frame)
            faults = emu.faults
            reply = self.session.handle(
                frame, out_of_credits=faults.out_of_credits, top_level_warnings=faults.top_level_warnings
            )
            dropped = should_drop(faults, index, self.drop_rng.random())
            emu.requests.append(
                RequestLogEntry(
                    self.id,
                    reply.payload_id,
                    reply.models,
                    reply.reset_stream,
                    reply.window_payload_ids,
                    "dropped" if dropped else reply.kind,
                    None if dropped else reply.code,
                )
            )
            if dropped:
                if faults.drop_limit is not None:
                    faults.drop_limit -= 1
                stats.dropped_connections += 1
                self.ws.transport.abort()
                emu._notify()
                return
            emu._notify()
            self.outstanding += 1
            self.drained.clear()
            if self.outstanding >= MAX_PENDING_PER_CONNECTION:
                self.room.clear()
            stats.in_flight += 1
            stats.max_in_flight_per_connection = max(stats.max_in_flight_per_connection, self.outstanding)
            delay = reply_delay_s(faults, self.jitter_rng.random() if faults.jitter_s else 0.0)
            ordered = not faults.out_of_order
            if delay <= 0 and ordered and self.outstanding == 1:
                self._complete(index, reply, ordered=True)
                await self._flush()
            else:
                self._spawn(self._reply_later(index, reply, delay, ordered))
            limit = faults.close_after_messages
            if limit is not None and index >= limit:
                self._spawn(self._watch_closed())  # do not wait for replies that can no longer be sent
                await self.drained.wait()
                if not self.broken:
                    stats.message_limit_closes += 1
                    emu._notify()
                    await self.ws.close(faults.close_after_code, "message limit reached")
                return

    async def _watch_closed(self) -> None:
        await self.ws.wait_closed()
        self.broken = True
        self.drained.set()
        self.room.set()

    async def _reply_later(self, seq: int, reply: Reply, delay: float, ordered: bool) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        self._complete(seq, reply, ordered=ordered)
        await self._flush()

    def _complete(self, seq: int, reply: Reply, *, ordered: bool) -> None:
        """A reply finished its wait: queue it for sending in request order, or shuffled."""
        if ordered:
            self.ready[seq] = reply
        else:
            self.bypassed.add(seq)
            self.held.append(reply)
            if len(self.held) >= 2:
                self.outgoing.extend(reversed(self.held))
                self.held.clear()
            else:
                self._spawn(self._release_held(reply))
        while True:
            if self.next_seq in self.ready:
                self.outgoing.append(self.ready.pop(self.next_seq))
            elif self.next_seq in self.bypassed:
                self.bypassed.discard(self.next_seq)
            else:
                break
            self.next_seq += 1

    async def _release_held(self, reply: Reply) -> None:
        await asyncio.sleep(self.emu.faults.out_of_order_hold_s)
        if any(held is reply for held in self.held):  # not yet released together with a later one
            self.held = [held for held in self.held if held is not reply]
            self.outgoing.append(reply)
            await self._flush()

    async def _flush(self) -> None:
        if self.flushing:
            return  # the running flush picks up what was just queued
        self.flushing = True
        stats = self.emu.stats
        try:
            while self.outgoing and not self.broken:
                reply = self.outgoing.popleft()
                try:
                    await self.ws.send(reply.body, text=True)
                except ConnectionClosed:
                    self.broken = True
                    self.drained.set()
                    self.room.set()
                    return
                self.outstanding -= 1
                stats.in_flight -= 1
                stats.replies += 1
                stats.bytes_out += len(reply.body)
                stats.replies_by_kind[reply.kind] += 1
                if reply.code is not None:
                    stats.replies_by_code[reply.code] += 1
                if self.outstanding < MAX_PENDING_PER_CONNECTION:
                    self.room.set()
                if self.outstanding == 0:
                    self.drained.set()
                self.emu._notify()
        finally:
            self.flushing = False

    async def _idle_watchdog(self) -> None:
        while True:
            faults = self.emu.faults
            timeout = faults.idle_timeout_s
            now = self.loop.time()
            if timeout is not None and now - self.last_rx >= timeout:
                self.emu.stats.idle_closes += 1
                self.emu._notify()
                await self.ws.close(faults.idle_close_code, "idle timeout")
                return
            wait = _WATCHDOG_MAX_SLEEP_S
            if timeout is not None:
                wait = min(wait, self.last_rx + timeout - now)
            await asyncio.sleep(wait)
