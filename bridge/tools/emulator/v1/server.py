"""The v1 shell: an aiohttp application serving the seven v1 endpoints on the emulator's port.

It adds what the pure modules leave out: authentication, handshake refusals, latency, drops, timers
(idle timeout, server shutdown), pacing clocks, statistics and run records. The emulator's listening socket
hands every request for ``/v1/...`` (and every request that is not a GET) to this application; see
:mod:`bridge.tools.emulator.server`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiohttp import WSMsgType, web

from bridge.tools.emulator.faults import HandshakeLimiter, reply_delay_s, should_drop
from bridge.tools.emulator.v1 import limits as L
from bridge.tools.emulator.v1.audio import (
    AudioSession,
    AudioSessionSettings,
    CloseReason,
    Outcome,
    SpeechRules,
)
from bridge.tools.emulator.v1.runs import EVENT_OF_ERROR, QueryError, Run, Runs, RunStatus, user_of
from bridge.tools.emulator.v1.uploads import STATUS_OF, Part, UploadError, audio_upload, video_upload
from bridge.tools.emulator.v1.video import VideoSession, VideoSessionSettings
from bridge.tools.emulator.v1.vocabulary import Vocabulary

if TYPE_CHECKING:
    from bridge.tools.emulator.server import Emulator

Json = dict[str, Any]
PREFIX: Final = "/v1/expression"
AUDIO_REALTIME: Final = f"{PREFIX}/audio/realtime"
VIDEO_REALTIME: Final = f"{PREFIX}/video/realtime"
AUDIO_FILE: Final = f"{PREFIX}/audio/file"
VIDEO_FILE: Final = f"{PREFIX}/video/file"
RUNS: Final = f"{PREFIX}/run"
MAX_WS_MESSAGE_BYTES: Final = 64 * 1024 * 1024  # bigger frames are closed by aiohttp with 1009
MAX_QUEUED_REPLIES: Final = 4096  # beyond, the session stops reading (TCP backpressure)
_WATCHDOG_MAX_SLEEP_S: Final = 1.0


def _matches(offered: str, expected: str | None) -> bool:
    if offered == "\x00":  # an Authorization header that is not a bearer token
        return False
    return expected is None or hmac.compare_digest(offered.encode(), expected.encode())


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


class V1Server:
    """The v1 endpoints of one :class:`~bridge.tools.emulator.server.Emulator`."""

    def __init__(self, emulator: Emulator, *, record_audio: bool = False) -> None:
        self.emu = emulator
        self.record_audio = record_audio
        self.runs = Runs()
        self.vocabulary = Vocabulary()
        self.sessions: set[RealtimeSession] = set()
        self.per_key: Counter[str] = Counter()
        self._limiter = HandshakeLimiter()
        self._session_numbers = itertools.count(1)
        self._request_numbers = itertools.count(1)
        self._runner: web.AppRunner | None = None

    async def start(self) -> Callable[[], asyncio.Protocol]:
        """Set the application up; returns the protocol factory that serves a handed-over connection."""
        app = web.Application(client_max_size=L.MAX_UPLOAD_BYTES)
        app.router.add_route("*", AUDIO_REALTIME, self._audio_realtime)
        app.router.add_route("*", VIDEO_REALTIME, self._video_realtime)
        app.router.add_route("*", AUDIO_FILE, self._audio_file)
        app.router.add_route("*", VIDEO_FILE, self._video_file)
        app.router.add_route("*", RUNS, self._list_runs)
        app.router.add_route("*", RUNS + "/{run_id}", self._get_run)
        app.router.add_route("*", RUNS + "/{run_id}/events", self._run_events)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        server = self._runner.server
        assert server is not None
        return server

    async def close(self) -> None:
        """End every session (``server_shutdown``, close 1001), then stop the application."""
        self.shutdown_sessions(L.CLOSE_GOING_AWAY)
        with contextlib.suppress(TimeoutError):
            await self.emu.wait_until(lambda: not self.sessions, timeout_s=5)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def shutdown_sessions(self, close_code: int | None = None) -> int:
        """``server_shutdown`` now for every open session; returns how many."""
        code = self.emu.faults.server_shutdown_close_code if close_code is None else close_code
        live = [s for s in self.sessions if not s.closing]
        for session in live:
            session.finish(session.core.close(CloseReason.SERVER_SHUTDOWN, code))
        return len(live)

    # --- ids, auth, errors ----------------------------------------------------------------------------

    def new_session_id(self) -> str:
        n = next(self._session_numbers)
        digest = hashlib.blake2b(f"session:{self.emu.faults.seed}:{n}".encode(), digest_size=16).digest()
        return str(uuid.UUID(bytes=digest))

    def new_request_id(self) -> str:
        n = next(self._request_numbers)
        return (
            "req_"
            + hashlib.blake2b(f"request:{self.emu.faults.seed}:{n}".encode(), digest_size=8).hexdigest()
        )

    def _respond(self, status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        self.emu.stats.v1.http_responses[str(status)] += 1
        self.emu._notify()
        return _json(status, body, headers)

    def _error(self, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        body = {"type": "error", "code": code, "message": message, "request_id": self.new_request_id()}
        return self._respond(STATUS_OF[code], body, headers)

    def _authenticate(self, request: web.Request) -> tuple[str, None] | tuple[None, web.Response]:
        """The caller's credential, or the 401 response. Exactly one of ``X-Hume-Api-Key`` and
        ``Authorization: Bearer`` must be sent; with ``api_key`` set it must match."""
        offered = list(request.headers.getall("X-Hume-Api-Key", []))
        for value in request.headers.getall("Authorization", []):
            scheme, _, token = value.partition(" ")
            offered.append(token.strip() if scheme.lower() == "bearer" and token.strip() else "\x00")
        faults, expected = self.emu.faults, self.emu.api_key
        if not offered:
            message = "Missing credentials: send X-Hume-Api-Key or Authorization: Bearer."
        elif len(offered) > 1:
            message = "Send exactly one credential: X-Hume-Api-Key or Authorization: Bearer."
        elif faults.refuse_all_keys or not _matches(offered[0], expected):
            message = "Invalid credentials."
        else:
            return offered[0], None
        return None, self._respond(401, {"message": message, "request_id": self.new_request_id()})

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return self._error("not_found", f"No such endpoint: {request.method} {request.path}.")

    def _method(self, request: web.Request, allowed: str) -> web.Response | None:
        if request.method == allowed:
            return None
        return self._error("method_not_allowed", f"{request.method} is not allowed on {request.path}.")

    # --- realtime -------------------------------------------------------------------------------------

    async def _audio_realtime(self, request: web.Request) -> web.StreamResponse:
        return await self._realtime(request, "audio")

    async def _video_realtime(self, request: web.Request) -> web.StreamResponse:
        return await self._realtime(request, "video")

    def _refuse_handshake(self, status: int, message: str) -> web.Response:
        self.emu.stats.v1.handshakes_refused[str(status)] += 1
        return self._respond(status, {"message": message})

    async def _realtime(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        if (wrong := self._method(request, "GET")) is not None:
            return wrong
        key, refusal = self._authenticate(request)
        if refusal is not None:
            self.emu.stats.v1.handshakes_refused["401"] += 1
            return refusal
        assert key is not None
        faults = self.emu.faults
        if not self._limiter.allow(faults.handshake_rate_per_s, asyncio.get_running_loop().time()):
            return self._refuse_handshake(429, "API rate limit exceeded")
        if faults.v1_handshake_status is not None:
            return self._refuse_handshake(faults.v1_handshake_status, "Service temporarily unavailable")
        cap = faults.max_sessions_per_key
        if cap is not None and self.per_key[key] >= cap:
            return self._refuse_handshake(429, "Too many concurrent sessions for this API key")
        ws = web.WebSocketResponse(max_msg_size=MAX_WS_MESSAGE_BYTES, compress=False, timeout=5.0)
        if not ws.can_prepare(request).ok:
            return self._error("invalid_request", "This endpoint takes a WebSocket upgrade.")
        try:
            await ws.prepare(request)
        except ConnectionResetError:  # the client went away before the upgrade reply: nothing to serve
            return web.Response(status=499)  # never written: the connection is gone
        await RealtimeSession(self, request, ws, endpoint, key).run()
        return ws

    # --- uploads --------------------------------------------------------------------------------------

    async def _read_parts(self, request: web.Request, too_long: str) -> list[Part] | web.Response:
        if request.content_length is not None and request.content_length > L.MAX_UPLOAD_BYTES:
            return self._error(too_long, f"The request body is over {L.MAX_UPLOAD_BYTES} bytes.")
        if request.content_type != "multipart/form-data":
            return self._error("invalid_request", "Uploads must be multipart/form-data.")
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            return self._error(too_long, f"The request body is over {L.MAX_UPLOAD_BYTES} bytes.")
        except (ValueError, UnicodeDecodeError, AssertionError) as exc:
            return self._error(
                "invalid_request", f"The multipart body could not be read: {str(exc).rstrip('.')}."
            )
        parts: list[Part] = []
        for name, value in form.items():
            if isinstance(value, web.FileField):
                parts.append(Part(name, value.content_type, value.file.read()))
            elif isinstance(value, str):
                parts.append(Part(name, None, value.encode()))
            else:
                parts.append(Part(name, None, bytes(value)))
        return parts

    async def _upload_gate(self, request: web.Request, endpoint: str) -> str | web.Response:
        if (wrong := self._method(request, "POST")) is not None:
            return wrong
        key, refusal = self._authenticate(request)
        if refusal is not None:
            return refusal
        assert key is not None
        faults = self.emu.faults
        if request.content_length is not None:
            self.emu.stats.v1.upload_bytes[endpoint] += request.content_length
        if faults.upload_busy:
            self.emu.stats.v1.upload_errors["server_busy"] += 1
            retry = {"Retry-After": str(faults.upload_retry_after_s)}
            return self._error("server_busy", "The server is busy; retry later.", retry)
        delay = reply_delay_s(faults, random.random() if faults.jitter_s else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        return key

    def _upload_failed(self, run: Run, exc: UploadError) -> web.Response:
        run.failed = True
        run.end(RunStatus.ERRORED, time.time(), None, exc.code)
        self.emu.stats.v1.upload_errors[exc.code] += 1
        return self._error(exc.code, exc.message)

    async def _audio_file(self, request: web.Request) -> web.StreamResponse:
        gate = await self._upload_gate(request, "audio")
        if isinstance(gate, web.Response):
            return gate
        parts = await self._read_parts(request, "audio_too_long")
        if isinstance(parts, web.Response):
            return parts
        faults = self.emu.faults
        run_id = self.new_session_id()
        run = self.runs.new(run_id, user_of(gate), "audio", "file", time.time(), {})
        rules = SpeechRules(faults.speech_threshold_dbfs, faults.speech_hangover_ms)
        try:
            result = audio_upload(parts, self.vocabulary, rules)
        except UploadError as exc:
            return self._upload_failed(run, exc)
        run.config = result.config
        run.accept(result.pcm, len(result.pcm) / (1000 * L.BYTES_PER_MS))
        run.end(RunStatus.ENDED, time.time(), None, None)
        self.emu.stats.v1.uploads["audio"] += 1
        return self._respond(200, {"request_id": self.new_request_id(), "run_id": run_id, **result.body})

    async def _video_file(self, request: web.Request) -> web.StreamResponse:
        gate = await self._upload_gate(request, "video")
        if isinstance(gate, web.Response):
            return gate
        parts = await self._read_parts(request, "image_too_large")
        if isinstance(parts, web.Response):
            return parts
        run_id = self.new_session_id()
        run = self.runs.new(run_id, user_of(gate), "video", "file", time.time(), {})
        try:
            result = video_upload(parts, self.vocabulary, time.time())
        except UploadError as exc:
            return self._upload_failed(run, exc)
        run.config = result.config
        run.bytes_received = result.jpeg_bytes
        run.media_seconds = result.frames * L.VIDEO_FRAME_METERED_S
        run.end(RunStatus.ENDED, time.time(), None, None)
        self.emu.stats.v1.uploads["video"] += 1
        return self._respond(200, {"request_id": self.new_request_id(), "run_id": run_id, **result.body})

    # --- runs -----------------------------------------------------------------------------------------

    async def _runs_gate(self, request: web.Request) -> str | web.Response:
        if (wrong := self._method(request, "GET")) is not None:
            return wrong
        key, refusal = self._authenticate(request)
        if refusal is not None:
            return refusal
        assert key is not None
        return key

    def _run(self, request: web.Request) -> Run | web.Response:
        run = self.runs.get(request.match_info["run_id"])
        return self._error("not_found", "No such run.") if run is None else run

    async def _list_runs(self, request: web.Request) -> web.StreamResponse:
        key = await self._runs_gate(request)
        if isinstance(key, web.Response):
            return key
        try:
            return self._respond(200, self.runs.list(dict(request.query)))
        except QueryError as exc:
            return self._error("invalid_request", str(exc))

    async def _get_run(self, request: web.Request) -> web.StreamResponse:
        key = await self._runs_gate(request)
        if isinstance(key, web.Response):
            return key
        run = self._run(request)
        return run if isinstance(run, web.Response) else self._respond(200, run.detail())

    async def _run_events(self, request: web.Request) -> web.StreamResponse:
        key = await self._runs_gate(request)
        if isinstance(key, web.Response):
            return key
        run = self._run(request)
        if isinstance(run, web.Response):
            return run
        try:
            return self._respond(200, Runs.events(run, dict(request.query)))
        except QueryError as exc:
            return self._error("invalid_request", str(exc))


class RealtimeSession:
    """One v1 WebSocket session: the pure session core plus its reader, sender and watchdog."""

    def __init__(
        self, server: V1Server, request: web.Request, ws: web.WebSocketResponse, endpoint: str, key: str
    ):
        self.server = server
        self.emu = server.emu
        self.request = request
        self.ws = ws
        self.endpoint = endpoint
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.opened = self.last_rx = self.loop.time()
        faults = self.emu.faults
        session_id = server.new_session_id()
        self.core: AudioSession | VideoSession
        if endpoint == "audio":
            settings = AudioSessionSettings(
                SpeechRules(faults.speech_threshold_dbfs, faults.speech_hangover_ms),
                faults.audio_burst_ms,
                faults.pace_factor,
            )
            self.core = AudioSession(session_id, settings, server.vocabulary, self.opened)
        else:
            video = VideoSessionSettings(faults.video_burst_frames, faults.pace_factor)
            self.core = VideoSession(session_id, video, server.vocabulary, self.opened)
        self.run_record = server.runs.new(
            session_id, user_of(key), endpoint, "realtime", time.time(), self.core.run_config()
        )
        if server.record_audio and endpoint == "audio":
            self.run_record.accepted_audio = bytearray()
        seed = faults.seed
        self.drop_rng = random.Random(f"v1drop:{seed}:{session_id}")
        self.jitter_rng = random.Random(f"v1jitter:{seed}:{session_id}")
        self.outgoing: deque[tuple[float, bytes | None, int | None, str]] = deque()
        self.wake = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self.closing = False
        self.binary_index = 0

    async def run(self) -> None:
        stats, server = self.emu.stats.v1, self.server
        stats.sessions_opened[self.endpoint] += 1
        stats.sessions_open[self.endpoint] += 1
        server.per_key[self.key] += 1
        server.sessions.add(self)
        self.emu._notify()
        lost = True
        client_code: int | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                sender = tg.create_task(self._send())
                watchdog = tg.create_task(self._watchdog())
                self._emit(Outcome([self.core.created()]), self.opened)
                try:
                    lost, client_code = await self._read()
                finally:
                    watchdog.cancel()
                    if not self.closing or lost:
                        sender.cancel()
        finally:
            stats.sessions_open[self.endpoint] -= 1
            server.per_key[self.key] -= 1
            if server.per_key[self.key] <= 0:
                del server.per_key[self.key]
            server.sessions.discard(self)
            if lost:
                self.run_record.end(RunStatus.ERRORED, time.time(), 1011, "connection lost")
            else:
                self.run_record.end(RunStatus.ENDED, time.time(), client_code, "closed by the client")
            self.emu._notify()

    async def _read(self) -> tuple[bool, int | None]:
        """Read until the connection ends: (lost without a close frame?, the client's close code)."""
        stats = self.emu.stats.v1
        index = 0
        while True:
            try:
                msg = await self.ws.receive()
            except ConnectionResetError:  # a ping's pong written to a connection already gone
                return not self.closing, None
            if msg.type is WSMsgType.CLOSE:
                return False, int(msg.data) if msg.data is not None else None
            if msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return not self.closing, None
            now = self.loop.time()
            self.last_rx = now
            index += 1
            faults = self.emu.faults
            if should_drop(faults, index, self.drop_rng.random()):
                if faults.drop_limit is not None:
                    faults.drop_limit -= 1
                stats.dropped_connections += 1
                transport = self.request.transport
                if transport is not None:
                    transport.abort()
                self.emu._notify()
                return True, None
            if self.closing:
                continue
            if msg.type is WSMsgType.TEXT:
                outcome = self.core.on_text(msg.data)
            elif msg.type is WSMsgType.BINARY:
                stats.frames_received[self.endpoint] += 1
                outcome = self._binary(msg.data, now)
            else:
                continue
            self._emit(outcome, now)
            await self.room.wait()

    def _binary(self, data: bytes, now: float) -> Outcome:
        faults, stats, run = self.emu.faults, self.emu.stats.v1, self.run_record
        self.binary_index += 1
        if isinstance(self.core, AudioSession):
            fail = (
                faults.audio_internal_errors > 0 or faults.audio_internal_error_at_frame == self.binary_index
            )
            outcome = self.core.on_binary(data, now, internal_error=fail)
            failed = any(m.get("code") == "internal_error" for m in outcome.messages)
            if failed and faults.audio_internal_errors > 0:
                faults.audio_internal_errors -= 1
            if outcome.accepted is not None:
                stats.frames_accepted["audio"] += 1
                stats.audio_bytes_received += len(data)
                run.accept(data, len(data) / (1000 * L.BYTES_PER_MS))
        else:
            fail = faults.video_internal_errors > 0
            before = self.core.count.frames
            outcome = self.core.on_binary(
                data, now, internal_error=fail, internal_retryable=faults.video_internal_error_retryable
            )
            if self.core.count.frames > before:
                stats.frames_accepted["video"] += 1
                if fail:
                    faults.video_internal_errors -= 1
            run.bytes_received = self.core.count.bytes_accepted
            run.media_seconds = self.core.count.frames * L.VIDEO_FRAME_METERED_S
        return outcome

    def _emit(self, outcome: Outcome, arrival: float) -> None:
        faults, stats, run = self.emu.faults, self.emu.stats.v1, self.run_record
        due = arrival + reply_delay_s(faults, self.jitter_rng.random() if faults.jitter_s else 0.0)
        wall = time.time()
        for message in outcome.messages:
            kind = message["type"]
            if kind == "error":
                stats.errors_sent[message["code"]] += 1
                if message["code"] == "rate_limited":
                    stats.rate_limited[self.endpoint] += 1
                event = EVENT_OF_ERROR.get(message["code"])
                if event is not None:
                    run.problem(event, wall, {"message": message["message"]})
            self.outgoing.append((due, orjson.dumps(message), None, kind))
        if outcome.close_code is not None:
            self.closing = True
            reason = outcome.reason.value if outcome.reason is not None else None
            failed = outcome.reason is CloseReason.ERROR
            code = faults.error_close_code if failed else outcome.close_code
            run.end(RunStatus.ERRORED if failed else RunStatus.ENDED, wall, code, reason)
            self.outgoing.append((due, None, code, reason or ""))
        if len(self.outgoing) >= MAX_QUEUED_REPLIES:
            self.room.clear()
        if self.outgoing:
            self.wake.set()
        self.emu._notify()

    def finish(self, outcome: Outcome) -> None:
        """End the session from the server's side (a timer or a shutdown), now."""
        if not self.closing:
            self._emit(outcome, self.loop.time())

    async def _send(self) -> None:
        stats = self.emu.stats.v1
        while True:
            while not self.outgoing:
                self.wake.clear()
                await self.wake.wait()
            due, body, close_code, kind = self.outgoing.popleft()
            if len(self.outgoing) < MAX_QUEUED_REPLIES:
                self.room.set()
            wait = due - self.loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if close_code is not None:
                stats.closes[kind] += 1
                self.emu._notify()
                await self.ws.close(code=close_code)
                return
            assert body is not None
            try:
                await self.ws.send_str(body.decode())
            except (ConnectionError, RuntimeError):
                return
            if kind == "measurement.result":
                stats.results_sent[self.endpoint] += 1
                self.emu._notify()

    async def _watchdog(self) -> None:
        while not self.closing:
            faults = self.emu.faults
            now = self.loop.time()
            wait = _WATCHDOG_MAX_SLEEP_S
            shutdown_after = faults.server_shutdown_after_s
            if shutdown_after is not None:
                if now - self.opened >= shutdown_after:
                    code = faults.server_shutdown_close_code
                    self.finish(self.core.close(CloseReason.SERVER_SHUTDOWN, code))
                    return
                wait = min(wait, self.opened + shutdown_after - now)
            idle = faults.idle_timeout_s
            if idle is not None:
                if now - self.last_rx >= idle:
                    self.finish(self.core.close(CloseReason.IDLE_TIMEOUT, faults.idle_close_code))
                    return
                wait = min(wait, self.last_rx + idle - now)
            await asyncio.sleep(max(wait, 0.001))
