"""A pool of reconnecting Hume v0 WebSocket sessions.

Each session is one connection with one reader that routes replies by ``payload_id`` and one writer fed
by a bounded queue. A session reconnects with jittered exponential backoff (never all at once: the pool
shares one handshake rate limiter), is recycled before Hume's one-minute close once it has no request in
flight (each session at its own age, :func:`recycle_after`, so that they never recycle together), and
reports its state changes to the pipeline. Refused keys and an unreachable Hume are reported as outages,
not as failures of the requests waiting for them.

A failed connection is mapped once, here, to words (:mod:`bridge.failures`: "DNS lookup of api.hume.ai
failed", "HTTP 401 from Hume: check HUME_API_KEY"), logged once for the pool when connecting starts to fail,
summarised every :data:`SUMMARY_S` while it goes on, and once more when a session opens again; each attempt
is a DEBUG line. Every close is named for what it was (:class:`CloseReason`).

    Pipeline ──send()──▶ writer queue ──▶ socket ──▶ Hume
    Pipeline ◀─reply()── reader ◀───────── socket ◀── Hume
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from bridge.config import HumeConfig, RetryConfig
from bridge.core.backoff import Backoff, RateLimiter
from bridge.core.model import OutageReason, Work
from bridge.core.outage import Phase, Recurring, Report
from bridge.errors import ConnectionLost, SessionClosed, UpstreamError
from bridge.failures import Failure, FailureKind, describe_connect, describe_http
from bridge.metrics import Metrics
from bridge.upstream.v0 import protocol as v0
from bridge.upstream.v0.prepare import V0Request

log = structlog.get_logger("bridge.hume")

SUMMARY_S = 30.0  # how often connection failures that go on are summarised
RECYCLE_SPREAD = 0.2  # sessions recycle between 80% and 100% of BRIDGE_SESSION_MAX_AGE_S


class CloseReason(StrEnum):
    """Why a session ended, as logged (``hume_session_closed``)."""

    RECYCLED = "recycled"  # by us, idle and old, before Hume's one-minute limit
    SHUTDOWN = "shutdown"  # by us, the bridge is stopping
    REPLY_TIMEOUT = "reply_timeout"  # by us, a reply was overdue
    CLOSED_BY_HUME = "closed_by_hume"  # Hume sent a close frame (its code is logged)
    DROPPED = "dropped"  # the connection broke without a close frame

    def metric(self, inflight: bool) -> str:
        """The ``hume_bridge_reconnects_total`` label (a fixed set the alerts know): a close by Hume with
        nothing in flight is its planned idle or one-minute close, ``idle_timeout``; with work in flight
        it cost that work, like a drop."""
        if self is CloseReason.CLOSED_BY_HUME:
            return "dropped" if inflight else "idle_timeout"
        return str(self)


def recycle_after(max_age_s: float, sid: int, pool_size: int, u: float) -> float:
    """The age at which session ``sid`` recycles: each session in a band of its own below ``max_age_s``
    (``u`` in [0, 1) places it inside its band), so sessions opened together never recycle together."""
    band = (sid % pool_size + u) / pool_size
    return max_age_s * (1.0 - RECYCLE_SPREAD * band)


class PoolEvents(Protocol):
    """What the pool tells the v0 adapter. Called on the event loop, never concurrently."""

    def session_up(self, sid: int) -> None: ...

    def session_down(self, sid: int) -> None: ...

    def reply(self, sid: int, work: Work, reply: dict[str, Any]) -> None: ...

    def lost(self, sid: int, works: list[Work], error: UpstreamError) -> None: ...

    def upstream_outage(self, reason: OutageReason, detail: str) -> None: ...

    def upstream_healthy(self) -> None: ...


@dataclass(eq=False)
class _Session:
    sid: int
    state: str = "connecting"  # connecting | idle | busy | backoff | closed
    ws: ClientConnection | None = None
    inflight: dict[str, Work] = field(default_factory=dict)  # by the payload id on the wire
    outbox: asyncio.Queue[bytes] | None = None  # request frames for the writer
    opened_at: float = 0.0
    max_age_s: float = 0.0  # recycle after this long (see recycle_after)
    recycled: bool = False  # its last connection ended in a planned recycle
    draining: bool = False  # no new requests: recycle once the in-flight ones are answered
    closed_by_us: tuple[CloseReason, UpstreamError] | None = None  # why we closed it, when we did
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # wakes the watchdog


class SessionPool:
    """``size`` sessions, each allowing ``requests_per_session`` requests in flight."""

    def __init__(
        self,
        hume: HumeConfig,
        retry: RetryConfig,
        events: PoolEvents,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        rnd: random.Random | None = None,
    ) -> None:
        self.cfg = hume
        self.events = events
        self.metrics = metrics
        self.clock = clock
        self.rnd = rnd or random.Random()
        self.reconnect = Backoff(retry.reconnect_initial_s, retry.reconnect_max_s)
        self.probe = Backoff(retry.outage_probe_initial_s, retry.outage_probe_max_s)
        self.limiter = RateLimiter(hume.handshake_rate_per_s)
        self.sessions = [_Session(i) for i in range(hume.pool_size)]
        for session in self.sessions:  # every session is counted in its state from the start
            metrics.sessions_by_state[session.state].inc()
        self._closing = False
        self._closed = asyncio.Event()
        self._wake: dict[int, asyncio.Event] = {}
        self.failing = Recurring(SUMMARY_S)  # connecting fails, across the pool
        url = urlsplit(hume.url)
        self.host = url.hostname or hume.url
        self.port = url.port or (443 if url.scheme == "wss" else 80)

    # -- what the pipeline calls ----------------------------------------------------------------------
    def free(self) -> dict[int, int]:
        """Session -> free request slots, for usable sessions only."""
        cap = self.cfg.requests_per_session
        return {
            s.sid: cap - len(s.inflight)
            for s in self.sessions
            if s.ws is not None and not s.draining and s.state in ("idle", "busy") and len(s.inflight) < cap
        }

    def usable(self) -> int:
        return sum(1 for s in self.sessions if s.ws is not None and s.state in ("idle", "busy"))

    def send(self, sid: int, work: Work, request: V0Request, reset_stream: bool) -> None:
        """Queue ``work`` on session ``sid`` (which ``free()`` offered).

        The payload id on the wire is the record's own (the producer's, or ``topic/partition/offset``)
        unless another request in flight on this session already uses it: then a suffix makes it unique,
        since replies are matched by it. Outputs always carry the record's own id."""
        session = self.sessions[sid]
        assert session.outbox is not None
        wire_id = work.payload_id
        if wire_id in session.inflight:
            n = 1
            while f"{work.payload_id}#{n}" in session.inflight:
                n += 1
            wire_id = f"{work.payload_id}#{n}"
        frame = v0.encode_request(request.body, wire_id, reset_stream, request.media)
        session.inflight[wire_id] = work
        session.outbox.put_nowait(frame)
        self._set_state(session, "busy")
        self.metrics.usage_bytes_sent_total.inc(len(frame))

    async def close(self) -> None:
        """Close every session (in-flight requests are reported lost as closed by us)."""
        self._closing = True
        self._closed.set()
        for event in self._wake.values():
            event.set()
        for s in self.sessions:
            if s.ws is not None and s.closed_by_us is None:
                s.closed_by_us = (CloseReason.SHUTDOWN, SessionClosed("shutdown"))
        sockets = [s.ws for s in self.sessions if s.ws is not None]
        if sockets:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3.0):
                    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    # -- the sessions ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """Run every session until :meth:`close`."""
        async with asyncio.TaskGroup() as tg:
            for session in self.sessions:
                self._wake[session.sid] = asyncio.Event()
                tg.create_task(self._run_session(session), name=f"hume-session-{session.sid}")
            tg.create_task(self._summaries(), name="hume-summaries")

    async def _summaries(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # a periodic timer that ends at close
                    await self._closed.wait()
            self.summarise()

    async def _run_session(self, s: _Session) -> None:
        structlog.contextvars.bind_contextvars(session=s.sid)  # this task's own context
        failures = 0
        while not self._closing:
            wait = self.limiter.take(self.clock())
            if wait > 0:
                await self._sleep(s, wait)
                if self._closing:
                    break
            self._set_state(s, "connecting")
            outcome = await self._connect(s)
            if outcome is None:
                failures = 0
                self._report(self.failing.ok(self.clock()))
                self.events.upstream_healthy()
                reason, label = await self._serve(s)
                if self._closing:
                    break
                self.metrics.reconnects_total.labels(reason=label).inc()
                if reason is CloseReason.RECYCLED:
                    continue
                delay = self.reconnect.delay(0, self.rnd)
            else:
                failures += 1
                refused = outcome.kind is FailureKind.KEY_REFUSED
                self.metrics.reconnects_total.labels(
                    reason="refused" if refused else "handshake_failed"
                ).inc()
                log.debug("hume_connect_attempt_failed", session=s.sid, detail=outcome.text)
                self._report(self.failing.failed(outcome.text, self.clock()), outcome)
                if refused or outcome.kind.network or outcome.kind is FailureKind.TLS:
                    if self.usable() == 0:
                        outage = OutageReason.KEY_REFUSED if refused else OutageReason.UNREACHABLE
                        self.events.upstream_outage(outage, outcome.text)
                    delay = self.probe.delay(failures - 1, self.rnd)
                else:
                    delay = self.reconnect.delay(failures - 1, self.rnd)
            self._set_state(s, "backoff")
            await self._sleep(s, delay)
        self._set_state(s, "closed")

    def summarise(self) -> None:
        """The periodic summary of connection failures that go on (called from a timer)."""
        self._report(self.failing.due(self.clock()))

    def _report(self, report: Report | None, failure: Failure | None = None) -> None:
        if report is None:
            return
        if report.phase is Phase.BEGAN:
            http = failure is not None and failure.kind in (FailureKind.KEY_REFUSED, FailureKind.HTTP)
            log.warning(
                "hume_handshake_refused" if http else "hume_connect_failed",
                url=self.cfg.url,
                detail=report.detail,
                message=f"cannot open a Hume session: {report.detail}; retrying with backoff",
            )
        elif report.phase is Phase.CONTINUES:
            log.warning(
                "hume_connect_still_failing",
                detail=report.detail,
                for_s=round(report.for_s),
                attempts=report.attempts,
                usable_sessions=self.usable(),
            )
        else:
            log.info("hume_connect_recovered", after_s=round(report.for_s, 1), attempts=report.attempts)

    async def _sleep(self, s: _Session, seconds: float) -> None:
        event = self._wake[s.sid]
        event.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()

    async def _connect(self, s: _Session) -> Failure | None:
        """Open the connection; on failure, what failed, in words."""
        headers = {"X-Hume-Api-Key": self.cfg.api_key.reveal()}
        try:
            async with asyncio.timeout(self.cfg.connect_timeout_s):
                s.ws = await connect(
                    self.cfg.url,
                    additional_headers=headers,
                    max_size=self.cfg.max_frame_bytes,
                    compression=None,
                    open_timeout=None,
                    ping_interval=None,
                    close_timeout=2,
                    max_queue=64,
                )
        except InvalidStatus as exc:
            return describe_http(exc.response.status_code)
        except InvalidURI:
            return Failure(FailureKind.PROTOCOL, f"BRIDGE_HUME_URL {self.cfg.url!r} is not a WebSocket URL")
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            return describe_connect(exc, self.host, self.port, self.cfg.connect_timeout_s)
        s.opened_at = self.clock()
        s.max_age_s = recycle_after(self.cfg.session_max_age_s, s.sid, len(self.sessions), self.rnd.random())
        s.draining = False
        s.outbox = asyncio.Queue(maxsize=max(1, self.cfg.requests_per_session) * 2)
        return None

    async def _serve(self, s: _Session) -> tuple[CloseReason, str]:
        """Carry requests and replies until the connection ends; returns why, and the metric's label."""
        ws = s.ws
        assert ws is not None
        self._set_state(s, "idle")
        self.events.session_up(s.sid)
        # A planned recycle (close and reopen) is routine: DEBUG, so that it costs no INFO lines every minute.
        say = log.debug if s.recycled else log.info
        say("hume_session_open", session=s.sid, recycle_after_s=round(s.max_age_s, 2))
        reason = CloseReason.DROPPED
        code: int | None = None
        error: UpstreamError = ConnectionLost("connection dropped")
        label = str(reason)
        s.closed_by_us = None
        s.settled = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as tg:
                writer = tg.create_task(self._writer(s, ws), name=f"hume-writer-{s.sid}")
                watchdog = tg.create_task(self._watchdog(s, ws), name=f"hume-watchdog-{s.sid}")
                reason, code, error = await self._reader(s, ws)
                label = reason.metric(bool(s.inflight))
                writer.cancel()
                watchdog.cancel()
        finally:
            s.ws = None
            with contextlib.suppress(Exception):
                await ws.close()
            lost = list(s.inflight.values())
            s.inflight.clear()
            s.outbox = None
            self.events.session_down(s.sid)
            if lost:
                self.events.lost(s.sid, lost, error if not self._closing else SessionClosed("closing"))
            if self._closing and reason is not CloseReason.SHUTDOWN and s.closed_by_us is None:
                reason = CloseReason.SHUTDOWN  # ended while the bridge was stopping
            s.recycled = reason is CloseReason.RECYCLED
            (log.debug if s.recycled else log.info)(
                "hume_session_closed",
                session=s.sid,
                reason=reason,
                message=_close_words(reason, code, len(lost)),
                **({"code": code} if code is not None else {}),
                unanswered=len(lost),
            )
        return reason, label

    async def _writer(self, s: _Session, ws: ClientConnection) -> None:
        outbox = s.outbox
        assert outbox is not None
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send(await outbox.get(), text=True)

    async def _reader(
        self, s: _Session, ws: ClientConnection
    ) -> tuple[CloseReason, int | None, UpstreamError]:
        """Route every reply; when the connection ends, say why (ours: recycle, shutdown, reply timeout;
        theirs: a close frame with its code, or a drop)."""
        try:
            while True:
                self._route(s, await ws.recv())
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            if s.closed_by_us is not None:
                reason, error = s.closed_by_us
                return reason, None, error
            if code is not None:
                return CloseReason.CLOSED_BY_HUME, code, ConnectionLost(f"closed by Hume with code {code}")
            return CloseReason.DROPPED, None, ConnectionLost("connection dropped without a close frame")

    async def _watchdog(self, s: _Session, ws: ClientConnection) -> None:
        """Close the connection when a reply is overdue, or to recycle it once it is old and idle.

        A deadline per session, checked at least once a second and whenever the session goes idle, costs
        less than a timeout around every received message."""
        timeout_s = self.cfg.reply_timeout_s
        settled = s.settled
        while True:
            now = self.clock()
            if now - s.opened_at >= s.max_age_s:
                s.draining = True
            if s.inflight:
                oldest = min(w.sent_at for w in s.inflight.values())
                if now - oldest >= timeout_s:
                    s.closed_by_us = (
                        CloseReason.REPLY_TIMEOUT,
                        ConnectionLost(f"no reply within {timeout_s:g}s"),
                    )
                    ws.transport.abort()  # no close handshake with a server that stopped answering
                    return
            elif s.draining:
                s.closed_by_us = (CloseReason.RECYCLED, SessionClosed("recycled"))
                await ws.close()
                return
            settled.clear()
            wait = 1.0 if s.draining else min(1.0, max(0.0, s.opened_at + s.max_age_s - now))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):  # at its own age exactly, so recycles stay staggered
                    await settled.wait()

    def _route(self, s: _Session, message: str | bytes) -> None:
        reply = v0.parse_frame(message)
        if reply is None:
            log.warning("hume_unreadable_reply", session=s.sid)
            return
        pid = v0.reply_payload_id(reply)
        work = s.inflight.pop(pid, None) if pid is not None else None
        if work is None and pid is None and len(s.inflight) == 1:
            work = s.inflight.popitem()[1]
        if work is None:
            log.warning("hume_reply_unmatched", session=s.sid, has_payload_id=pid is not None)
            return
        if not s.inflight:
            self._set_state(s, "idle")
            if s.draining:
                s.settled.set()  # recycle now
        self.events.reply(s.sid, work, reply)

    def _set_state(self, s: _Session, state: str) -> None:
        if s.state == state:
            return
        by_state = self.metrics.sessions_by_state
        by_state[s.state].dec()
        by_state[state].inc()
        s.state = state


def _close_words(reason: CloseReason, code: int | None, resent: int) -> str:
    words = {
        CloseReason.RECYCLED: "recycled before Hume's one-minute limit",
        CloseReason.SHUTDOWN: "closed for shutdown",
        CloseReason.REPLY_TIMEOUT: "closed: a reply was overdue",
        CloseReason.CLOSED_BY_HUME: f"closed by Hume with code {code}",
        CloseReason.DROPPED: "the connection dropped without a close frame",
    }[reason]
    if resent:
        requests = f"{resent} request{'s' if resent != 1 else ''}"
        if reason is CloseReason.SHUTDOWN:
            words += f"; {requests} unanswered, left for the next owner of their partitions"
        else:
            words += f"; {requests} to send again"
    return words
