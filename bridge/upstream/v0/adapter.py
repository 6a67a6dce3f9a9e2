"""The v0 adapter: the core's :class:`~bridge.upstream.adapter.Upstream` over a pool of v0 sessions.

Each session is a lane with ``requests_per_session`` slots; a stream has one record at Hume at a time.
One reply settles its record: predictions or a final Hume error become one output covering it, a
transient error or a lost connection sends it again, E0300 is an outage.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from bridge.config import HumeConfig, RetryConfig
from bridge.core.decode import Decoded
from bridge.core.model import (
    Dispatch,
    ErrorInfo,
    Evidence,
    LaneId,
    LossReason,
    OutageReason,
    Output,
    Prepared,
    Work,
)
from bridge.errors import SessionClosed, UpstreamError
from bridge.metrics import Metrics
from bridge.upstream.adapter import UpstreamEvents
from bridge.upstream.v0 import protocol as v0
from bridge.upstream.v0.pool import SessionPool
from bridge.upstream.v0.prepare import V0Request, V0Settings, prepare


class V0Upstream:
    window = 1

    def __init__(
        self,
        hume: HumeConfig,
        retry: RetryConfig,
        events: UpstreamEvents,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        rnd: random.Random | None = None,
    ) -> None:
        self.events = events
        self.metrics = metrics
        self.clock = clock
        self.settings = V0Settings(hume.default_models, hume.stream_window_ms, hume.job_details)
        self.pool = SessionPool(hume, retry, self, metrics, clock=clock, rnd=rnd)

    # -- Upstream -------------------------------------------------------------------------------------
    def prepare(self, record: Decoded) -> Prepared:
        return prepare(record, self.settings)

    def lanes(self) -> dict[LaneId, int]:
        return self.pool.free()

    def usable(self) -> int:
        return self.pool.usable()

    def send(self, dispatch: Dispatch, now: float) -> None:
        work = dispatch.work
        assert work.prepared is not None
        request: V0Request = work.prepared.payload
        self.pool.send(dispatch.lane, work, request, dispatch.switched)
        m = self.metrics
        usage = request.usage
        m.requests_by_kind[usage.kind].inc()
        if usage.audio_s:
            m.usage_audio_seconds_total.inc(usage.audio_s)
        if usage.images:
            m.usage_images_total.inc(usage.images)
        if usage.text_chars:
            m.usage_text_characters_total.inc(usage.text_chars)

    def drain(self) -> None:
        """Nothing to ask for: every v0 request gets its own reply."""

    def release(self, tps: Iterable[tuple[str, int]]) -> None:
        """As :meth:`drain`."""

    def drained(self) -> bool:
        """Never early: v0 keeps answering what it was sent until the drain deadline."""
        return False

    def released(self, tps: Iterable[tuple[str, int]]) -> bool:
        """Never early, as :meth:`drained`."""
        return False

    async def run(self) -> None:
        await self.pool.run()

    async def close(self) -> None:
        await self.pool.close()

    # -- PoolEvents: v0 in, the core's vocabulary out -------------------------------------------------
    def session_up(self, sid: int) -> None:
        self.events.lane_up(sid)

    def session_down(self, sid: int) -> None:
        self.events.lane_down(sid)

    def reply(self, sid: int, work: Work, reply: dict[str, Any]) -> None:
        m = self.metrics
        m.request_seconds.observe(max(0.0, self.clock() - work.sent_at))
        verdict = v0.judge(reply)
        events = self.events
        if isinstance(verdict, v0.Final):
            outcome = verdict.outcome
            warnings = tuple(outcome.warnings) if outcome.warnings else ()
            if outcome.error is not None:
                m.hume_errors_total.labels(code=outcome.error.code).inc()
                output = Output(work.stream, (work,), error=outcome.error, warnings=warnings)
            else:
                fields: dict[str, Any] = {"models": outcome.models or {}}
                if outcome.job_details is not None:
                    fields["job_details"] = outcome.job_details
                output = Output(work.stream, (work,), fields, warnings=warnings)
            events.recovered(Evidence.ANSWERED)
            events.produced(output)
            events.settled(work)
        elif isinstance(verdict, v0.Retry):
            m.hume_errors_total.labels(code=verdict.error.code).inc()
            events.lost((work,), LossReason.HUME_ERROR, verdict.error)
        else:
            m.hume_errors_total.labels(code=verdict.error.code).inc()
            events.lost((work,), LossReason.OUTAGE, verdict.error)
            events.outage_began(verdict.reason, verdict.error.message)

    def lost(self, sid: int, works: list[Work], error: UpstreamError) -> None:
        ours = isinstance(error, SessionClosed)
        reason = LossReason.CLOSED_BY_US if ours else LossReason.CONNECTION_LOST
        self.events.lost(works, reason, ErrorInfo("CONNECTION_LOST", str(error), "bridge", True))

    def upstream_outage(self, reason: OutageReason, detail: str) -> None:
        self.events.outage_began(reason, detail)

    def upstream_healthy(self) -> None:
        self.events.recovered(Evidence.CONNECTED)
