"""A small HTTP/1.1 admin endpoint, so that a test can steer an emulator running in another process.

==================  ===========================================================================
``GET /stats``      the statistics (``Stats.snapshot()``)
``POST /reset-stats``  clear the counters; returns the fresh snapshot
``GET /faults``     the faults in force
``POST /faults``    body: a JSON object of fields to change; returns the new faults (400 lists every
                    bad field, nothing is changed)
``GET /requests``   the request log, oldest first; ``?limit=N`` (last N, default 1000),
                    ``?connection_id=C``
``POST /reset-requests``  empty the request log
``GET /v1/stats``   the v1 statistics
``GET /v1/runs``    every v1 run (newest first) with its accepted-media byte count and SHA-256
``POST /v1/shutdown-sessions``  ``server_shutdown`` now for every open v1 session
``GET /vocabulary``   the v1 measurement names
``POST /vocabulary``  body ``{"audio_expressions": [...], ...}``: append names (400 lists every problem)
==================  ===========================================================================

One request per TCP connection (``Connection: close``), JSON in and out.
:func:`route` is the pure part: method, target and body in, status and JSON value out.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlsplit

import orjson

from bridge.tools.emulator.faults import FaultsError
from bridge.tools.emulator.v1.vocabulary import VocabularyError

if TYPE_CHECKING:
    from bridge.tools.emulator.server import Emulator

MAX_BODY_BYTES: Final = 1 << 20
_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Too Large",
}


def route(emulator: Emulator, method: str, target: str, body: bytes) -> tuple[int, Any]:
    url = urlsplit(target)
    path = url.path.rstrip("/")
    routes: dict[str, tuple[str, ...]] = {
        "/stats": ("GET",),
        "/reset-stats": ("POST",),
        "/faults": ("GET", "POST"),
        "/requests": ("GET",),
        "/reset-requests": ("POST",),
        "/v1/stats": ("GET",),
        "/v1/runs": ("GET",),
        "/v1/shutdown-sessions": ("POST",),
        "/vocabulary": ("GET", "POST"),
    }
    if path not in routes:
        return 404, {"error": f"no such endpoint: {path}", "endpoints": sorted(routes)}
    if method not in routes[path]:
        return 405, {"error": f"{method} not allowed on {path}"}
    if path == "/stats":
        return 200, emulator.stats.snapshot()
    if path.startswith("/v1/") or path == "/vocabulary":
        return _v1_route(emulator, method, path, body)
    if path == "/reset-stats":
        emulator.reset_stats()
        return 200, emulator.stats.snapshot()
    if path == "/faults" and method == "POST":
        try:
            changes = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError as exc:
            return 400, {"error": f"body is not JSON: {exc}"}
        if not isinstance(changes, dict):
            return 400, {"error": "body must be a JSON object of fault fields"}
        try:
            emulator.faults.update(changes)
        except FaultsError as exc:
            return 400, {"error": str(exc)}
        return 200, emulator.faults.to_dict()
    if path == "/faults":
        return 200, emulator.faults.to_dict()
    if path == "/reset-requests":
        emulator.requests.clear()
        return 200, {"requests": 0}
    query = parse_qs(url.query)
    try:
        limit = int(query.get("limit", ["1000"])[0])
        connection = int(query["connection_id"][0]) if "connection_id" in query else None
    except ValueError:
        return 400, {"error": "limit and connection_id must be integers"}
    entries = [e for e in emulator.requests if connection is None or e.connection_id == connection]
    return 200, [e.to_dict() for e in entries[-limit:]] if limit > 0 else []


def _v1_route(emulator: Emulator, method: str, path: str, body: bytes) -> tuple[int, Any]:
    if path == "/v1/stats":
        return 200, emulator.stats.v1.snapshot()
    if path == "/v1/runs":
        runs = sorted(emulator.runs, key=lambda r: r.seq, reverse=True)
        return 200, [{**r.detail(), "accepted_sha256": r.accepted_sha256} for r in runs]
    if path == "/v1/shutdown-sessions":
        return 200, {"sessions": emulator.shutdown_sessions()}
    if method == "POST":
        try:
            changes = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError as exc:
            return 400, {"error": f"body is not JSON: {exc}"}
        if not isinstance(changes, dict):
            return 400, {"error": "body must be a JSON object of name lists"}
        try:
            emulator.vocabulary.add(changes)
        except VocabularyError as exc:
            return 400, {"error": str(exc)}
    return 200, emulator.vocabulary.to_dict()


class AdminServer:
    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                status, value = await self._exchange(reader)
                payload = orjson.dumps(value)
                head = (
                    f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\n"
                    "Connection: close\r\n\r\n"
                )
                writer.write(head.encode("latin-1") + payload)
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _exchange(self, reader: asyncio.StreamReader) -> tuple[int, Any]:
        method, target, _version = (await reader.readline()).decode("latin-1").split(" ", 2)
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length > MAX_BODY_BYTES:
            return 413, {"error": "body too large"}
        body = await reader.readexactly(length) if length else b""
        return route(self._emulator, method.upper(), target, body)
