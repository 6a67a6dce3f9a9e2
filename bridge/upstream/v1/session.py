"""One Hume v1 realtime session over ``websockets``: the thin asyncio shell around the sans-I/O protocol.

Boundary: this is the only v1 module that touches a socket. It opens the connection (``X-Hume-Api-Key``
on the upgrade, the whole opening under one deadline), waits for ``session.created``, sends the
``session.update`` it is given and waits for ``session.updated``, then sends media and ``session.close``
and reads server messages into :mod:`bridge.upstream.v1.protocol` events. It decides nothing: which
frames go when is :mod:`bridge.upstream.v1.pacing`'s, what the events settle is
:mod:`bridge.upstream.v1.ledger`'s, and what a finished session means is the :class:`SessionEnded` verdict,
computed by :func:`bridge.upstream.v1.protocol.judge_close`.

Library errors are mapped once, here, to the bridge's own (:func:`map_connect_error`):

    UpstreamError
    ├── HandshakeRefused   Hume answered the upgrade with an HTTP status; ``verdict`` says
    │                      key refused (outage) / transient (outage, retry) / final (configuration)
    └── ConnectionLost
        ├── ConnectFailed  no session: unreachable, timed out, not a WebSocket server, or no
        │                  session.created / session.updated within the deadline
        └── SessionLost    the connection went away while sending

The API key is sent only as a header and never appears in an exception, a log or a repr.
Liveness is websockets' keepalive ping every ``keepalive_s`` (``BRIDGE_V1_KEEPALIVE_S``), its pong due
within as long, and the closing handshake after a missed pong cut off after as long again. Hume sends
nothing during silence and results arrive on its own schedule, so the reader has no deadline of its
own; a network that drops packets silently is found by the ping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import Close

from bridge.errors import ConnectionLost, UpstreamError
from bridge.upstream.v1.protocol import (
    SESSION_CLOSE,
    CloseVerdict,
    Endpoint,
    ErrorScope,
    Event,
    HandshakeVerdict,
    ServerError,
    ServerMessages,
    SessionClosed,
    SessionCreated,
    SessionUpdated,
    judge_close,
    judge_handshake,
)

API_KEY_HEADER = "X-Hume-Api-Key"
MAX_SERVER_MESSAGE_BYTES = 4 * 1024 * 1024  # video results list up to 32 faces; far below this


class HandshakeRefused(UpstreamError):
    """Hume refused the upgrade with an HTTP status."""

    def __init__(self, status: int, verdict: HandshakeVerdict) -> None:
        self.status = status
        self.verdict = verdict
        self.retriable = verdict is not HandshakeVerdict.FINAL
        super().__init__(f"Hume refused the session: HTTP {status} ({verdict})")


class ConnectFailed(ConnectionLost):
    """No session came about (network, deadline, protocol); worth retrying with backoff."""


class SessionLost(ConnectionLost):
    """The connection went away while the bridge was sending on it."""


def connect_headers(api_key: str) -> dict[str, str]:
    return {API_KEY_HEADER: api_key}


def map_connect_error(exc: BaseException) -> UpstreamError:
    """The bridge's error for whatever opening a session raised (never quoting the key or the URL's query)."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return HandshakeRefused(status, judge_handshake(status))
    if isinstance(exc, InvalidURI):
        return HandshakeRefused(0, HandshakeVerdict.FINAL)
    if isinstance(exc, TimeoutError):
        return ConnectFailed("no session within the connect deadline")
    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd is not None else None
        return ConnectFailed(f"the connection closed while opening the session (close code {code})")
    if isinstance(exc, InvalidHandshake):
        return ConnectFailed(f"the WebSocket handshake failed: {type(exc).__name__}")
    if isinstance(exc, OSError):
        return ConnectFailed(f"cannot reach Hume: {type(exc).__name__} {exc.errno or ''}".rstrip())
    return ConnectFailed(f"cannot open the session: {type(exc).__name__}")


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """How a session ended and what that means for the stream's unsettled work."""

    close_code: int | None  # None: the connection was lost without a close frame
    close_reason: str
    closed: SessionClosed | None  # Hume's session.closed, if it came
    last_error: ServerError | None  # the last session-ending error, if one came
    verdict: CloseVerdict


def session_ended(
    close: Close | None, closed: SessionClosed | None, last_error: ServerError | None
) -> SessionEnded:
    """The end of a session from the close frame Hume sent (None: none came, the connection was lost)."""
    code = close.code if close is not None else None
    reason = close.reason if close is not None else ""
    return SessionEnded(code, reason, closed, last_error, judge_close(code, closed, last_error))


class RealtimeSession:
    """One open session. Create with :meth:`open`; read with :meth:`events`; end with :meth:`close`."""

    def __init__(
        self, ws: ClientConnection, endpoint: Endpoint, messages: ServerMessages, created: SessionCreated
    ):
        self._ws = ws
        self.endpoint = endpoint
        self.messages = messages
        self.created = created
        self.session_id = created.session_id
        self.ended: SessionEnded | None = None
        self.ignored_binary = 0
        self._closed: SessionClosed | None = None
        self._last_error: ServerError | None = None

    def __repr__(self) -> str:
        return f"RealtimeSession({self.endpoint}, {self.session_id!r})"

    @classmethod
    async def open(
        cls,
        url: str,
        api_key: str,
        endpoint: Endpoint,
        update: str,
        *,
        timeout_s: float,
        keepalive_s: float = 20.0,
    ) -> RealtimeSession:
        """Connect, read ``session.created``, send ``update``, read ``session.updated``: all within
        ``timeout_s``. Raises :class:`HandshakeRefused` or :class:`ConnectFailed`, nothing else."""
        messages = ServerMessages(endpoint)
        ws: ClientConnection | None = None
        try:
            async with asyncio.timeout(timeout_s):
                ws = await connect(
                    url,
                    additional_headers=connect_headers(api_key),
                    max_size=MAX_SERVER_MESSAGE_BYTES,
                    compression=None,
                    open_timeout=None,  # the scope above is the deadline
                    ping_interval=keepalive_s,
                    ping_timeout=keepalive_s,
                    close_timeout=keepalive_s,  # a peer that misses its pong will not answer a close
                )
                created = await cls._expect(ws, messages, SessionCreated)
                await ws.send(update)
                await cls._expect(ws, messages, SessionUpdated)
        except BaseException as exc:
            if ws is not None:
                await _abort(ws)
            if isinstance(exc, asyncio.CancelledError):
                raise
            if isinstance(exc, Exception):
                raise map_connect_error(exc) from exc
            raise
        assert isinstance(created, SessionCreated)
        return cls(ws, endpoint, messages, created)

    @staticmethod
    async def _expect(
        ws: ClientConnection, messages: ServerMessages, kind: type[SessionCreated] | type[SessionUpdated]
    ) -> SessionCreated | SessionUpdated:
        while True:
            data = await ws.recv()
            if isinstance(data, bytes):
                continue
            event = messages.parse(data)
            if isinstance(event, kind):
                return event
            if isinstance(event, ServerError) and event.scope is ErrorScope.SESSION:
                raise ConnectFailed(f"Hume ended the session while opening it: {event.code}")
            if isinstance(event, SessionClosed):
                raise ConnectFailed(f"Hume closed the session while opening it: {event.reason_text}")

    async def send_media(self, data: bytes, *, timeout_s: float) -> None:
        """One binary message (an audio frame or a JPEG)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._ws.send(data)
        except TimeoutError as exc:
            raise SessionLost("sending a frame took longer than its deadline") from exc
        except ConnectionClosed as exc:
            raise SessionLost("the session's connection closed") from exc

    async def close(self, *, timeout_s: float) -> None:
        """Ask Hume to finish (due results, then session.closed); the reader sees the rest."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._ws.send(SESSION_CLOSE)
        except (TimeoutError, ConnectionClosed):
            await _abort(self._ws)

    @property
    def latency_s(self) -> float:
        """The last keepalive ping's round trip, s (0 until the first pong)."""
        return float(self._ws.latency)

    async def abort(self) -> None:
        """Drop the connection now (shutdown after the drain deadline, or a stream given up)."""
        await _abort(self._ws)

    async def events(self) -> AsyncIterator[Event]:
        """Every event Hume sends, until the connection ends; then :attr:`ended` holds the verdict."""
        try:
            async for data in self._ws:  # ends quietly on a normal close, raises on an abnormal one
                if isinstance(data, bytes):
                    self.ignored_binary += 1
                    continue
                event = self.messages.parse(data)
                if event is None:
                    continue
                if isinstance(event, SessionClosed):
                    self._closed = event
                elif isinstance(event, ServerError) and event.scope is ErrorScope.SESSION:
                    self._last_error = event
                yield event
        except ConnectionClosed:
            pass
        self.ended = session_ended(self._ws.protocol.close_rcvd, self._closed, self._last_error)


async def _abort(ws: ClientConnection) -> None:
    try:
        async with asyncio.timeout(1.0):
            await ws.close()
    except (TimeoutError, ConnectionClosed, OSError):
        ws.transport.abort()
