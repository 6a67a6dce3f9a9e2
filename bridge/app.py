"""The app: wires source → core → upstream adapter → sink, owns every task, and carries out what the pure
parts decide (docs/ARCHITECTURE.md draws the whole trip).

    Kafka ─▶ _fetch_loop ─▶ decode (+ adapter.prepare) ─▶ Router (per-stream order) ─▶ _dispatch_loop
                                                                          │ Dispatch(lane, work)
    Kafka ◀─ _publish_loop ◀── Output (in stream order) ◀── produced/settled/lost ◀── Upstream adapter
      │ ack ─▶ Router.acked ─▶ done records ─▶ OffsetTracker.finish ─▶ _commit_loop ─▶ consumer.commit

Decisions live in pure parts: flow control (:mod:`bridge.core.flow`), the outage and probe machine
(:mod:`bridge.core.outage`), the publish retry policy (:mod:`bridge.core.publish`), order and settlement
(:mod:`bridge.core.streams`), commit points (:mod:`bridge.core.offsets`).

Start-up: the HTTP endpoint first (``/readyz`` says what the bridge waits for), then Kafka: while the brokers
cannot be reached the bridge waits with backoff, saying once where and why (``kafka_unreachable``) and then
every :data:`SUMMARY_S` (``kafka_still_unreachable``); then it joins the group and says so every
:data:`PROGRESS_S` until partitions arrive. A signal during start-up stops at once (exit 0).

Shutdown: stop fetching → drain under ``shutdown_drain_s`` → final commit → close. A second signal skips
the drain.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import heapq
import random
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from bridge import config as config_mod
from bridge import log as log_mod
from bridge.config import Config
from bridge.core import publish
from bridge.core.backoff import Backoff
from bridge.core.decode import DecodeSettings, decode
from bridge.core.flow import FlowChange, FlowControl
from bridge.core.model import (
    ErrorInfo,
    Evidence,
    InputRecord,
    LaneId,
    LossReason,
    OutageReason,
    Output,
    OutputKind,
    Source,
    Work,
)
from bridge.core.offsets import OffsetTracker
from bridge.core.outage import BrokerHealth, KafkaOp, OutageMachine, Phase, Recurring, Report
from bridge.core.outputs import OutputRecord, Topics, render
from bridge.core.streams import Router
from bridge.errors import ConfigError, KafkaUnavailable, PublishError
from bridge.http import HttpServer
from bridge.metrics import Metrics
from bridge.sink import Sink, largest, publish_error
from bridge.source import (
    STOP_TIMEOUT_S,
    TP,
    describe_kafka_error,
    make_consumer,
    start_consumer,
    stop_consumer,
    to_kafka,
)
from bridge.upstream.adapter import Upstream, UpstreamEvents

log = structlog.get_logger("bridge.app")

PROGRESS_S = 5.0  # how often a start-up that waits says what it waits for
SUMMARY_S = 30.0  # how often a failure that goes on is summarised
COMMIT_TIMEOUT_S = 10.0  # the deadline of one offset commit
FETCH_SILENT_S = 5.0  # no fetch response this long on an unpaused partition counts as fetch failing


def make_upstream(
    config: Config, events: UpstreamEvents, metrics: Metrics, clock: Callable[[], float], rnd: random.Random
) -> Upstream:
    """The adapter for the configured API; the only place that names one. Each is imported only when
    chosen: v1 brings PyAV and FFmpeg's libraries (about 25 MiB of RSS) that a v0 bridge never uses."""
    if config.hume.api == "v1":
        from bridge.upstream.v1.adapter import V1Upstream

        return V1Upstream(config, events, metrics, clock=clock, rnd=rnd)
    if config.hume.api == "v0":
        from bridge.upstream.v0.adapter import V0Upstream

        return V0Upstream(config.hume, config.retry, events, metrics, clock=clock, rnd=rnd)
    raise ConfigError([f"BRIDGE_HUME_API: no upstream adapter for {config.hume.api!r}"])


# The outcome label a done record counts under (hume_bridge_records_total{outcome}): v1 records covered
# by no measurement are silent.
OUTCOME_LABELS: dict[str, dict[OutputKind | None, str | None]] = {
    "v0": {OutputKind.PREDICTION: "prediction", OutputKind.ERROR: "error", None: None},
    "v1": {OutputKind.PREDICTION: "measured", OutputKind.ERROR: "error", None: "silent"},
}


class Bridge:
    """The running service. ``await Bridge(config).run(stop_event)``."""

    def __init__(
        self,
        config: Config,
        metrics: Metrics | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rnd: random.Random | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.rnd = rnd or random.Random()
        r = config.retry
        self.upstream = make_upstream(config, self, self.metrics, clock, self.rnd)
        self.router = Router(
            max_attempts=r.max_attempts,
            retry_backoff=Backoff(r.backoff_initial_s, r.backoff_max_s),
            affinity_idle_s=config.hume.audio_affinity_idle_s,
            window=self.upstream.window,
            rnd=self.rnd,
        )
        self.tracker = OffsetTracker()
        self.settings = DecodeSettings(max_record_bytes=config.limits.max_record_bytes)
        lim = config.limits
        self.flow = FlowControl(lim.max_buffered_records, lim.max_buffered_bytes, lim.resume_ratio)
        self.outages = OutageMachine(Backoff(r.outage_probe_initial_s, r.outage_probe_max_s), self.rnd)
        self.publish_backoff = Backoff(r.backoff_initial_s, r.backoff_max_s)
        k = config.kafka
        self.topics = Topics(k.predictions_topic, k.errors_topic, k.warnings_topic, config.hume.api)
        self._outcome_labels = OUTCOME_LABELS[config.hume.api]
        self.sink = Sink(k, self.metrics)
        self.consumer: AIOKafkaConsumer | None = None
        self.http: HttpServer | None = None
        self.joined = False
        self.started_at = clock()
        self.kafka_wait = Recurring(SUMMARY_S)  # the brokers unreachable at start-up
        self.broker = BrokerHealth(k.unhealthy_after_s)
        self.broker_report = Recurring(SUMMARY_S)  # the broker failing beyond the threshold, as logged
        self._outage_since = self._outage_said = 0.0  # when the upstream outage began, was last summarised
        self._unpaused_wall = time.time()  # since when fetching has been allowed (wall clock, as aiokafka's)
        self.stopping = False
        self.hard_stop = False
        self._revoking: set[TP] = set()
        self._publish_q: deque[Output] = deque()
        self._publish_later: list[tuple[float, int, Output]] = []  # per-output backoff, by due time
        self._seq = 0
        self._unacked = 0  # outputs with the producer, not yet acknowledged or failed
        self._kick = asyncio.Event()
        self._published = asyncio.Event()
        self._settled = asyncio.Event()
        self._commit_lock = asyncio.Lock()

    @property
    def outage(self) -> OutageReason | None:
        return self.outages.reason

    # -- lifecycle ------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then drain, commit and close."""
        cfg = self.config
        async with contextlib.AsyncExitStack() as stack:
            self.http = HttpServer(cfg.http_host, cfg.http_port, self.metrics.registry, self.readiness)
            await self.http.start()
            stack.push_async_callback(self.http.stop)
            log.info("bridge_starting", kafka=cfg.kafka.bootstrap, http_port=self.http.port)
            if not await self._unless_stopped(stop, self._start_kafka(stack)):
                log.info(
                    "bridge_stopped", during="start-up", waited_s=round(self.clock() - self.started_at, 1)
                )
                return
            log.info(
                "bridge_started",
                topics=list(cfg.kafka.input_topics),
                group=cfg.kafka.group_id,
                pool_size=cfg.hume.pool_size,
                http_port=self.http.port,
                idempotent_producer=self.sink.idempotent,
                startup_s=round(self.clock() - self.started_at, 1),
            )
            async with asyncio.TaskGroup() as tg:
                loops = [
                    tg.create_task(self.upstream.run(), name="upstream"),
                    tg.create_task(self._fetch_loop(), name="fetch"),
                    tg.create_task(self._dispatch_loop(), name="dispatch"),
                    tg.create_task(self._publish_loop(), name="publish"),
                    tg.create_task(self._commit_loop(), name="commit"),
                    tg.create_task(self._health_loop(), name="health"),
                ]
                await stop.wait()
                await self._drain()
                for task in loops[1:]:
                    task.cancel()
                await self.upstream.close()
            left = self.tracker.outstanding()
            log.info("bridge_stopped", left_for_next_owner=left)

    # -- start-up -------------------------------------------------------------------------------------
    async def _start_kafka(self, stack: contextlib.AsyncExitStack) -> None:
        """Producer, then consumer (bootstrap, join, first assignment), each waiting for the brokers."""
        cfg = self.config
        await self._wait_for_kafka(self.sink.start)
        stack.push_async_callback(self.sink.stop)

        async def join() -> None:
            consumer = self.consumer = make_consumer(cfg, self._on_revoked, self._on_assigned)
            stack.push_async_callback(self._stop_consumer, consumer)  # also when cancelled half-way
            log.info("kafka_joining_group", group=cfg.kafka.group_id, topics=list(cfg.kafka.input_topics))
            try:
                await start_consumer(consumer, cfg.kafka)
            except KafkaUnavailable:
                await stop_consumer(consumer)
                raise

        await self._wait_for_kafka(join)

    async def _stop_consumer(self, consumer: AIOKafkaConsumer) -> None:
        # A member that never got partitions has nothing to leave or commit: its join is not waited for.
        await stop_consumer(consumer, STOP_TIMEOUT_S if self.joined else 0.2)

    async def _wait_for_kafka(self, start: Callable[[], Awaitable[None]]) -> None:
        """``start()`` again, with backoff, until the brokers answer."""
        r = self.config.retry
        backoff = Backoff(r.reconnect_initial_s, r.reconnect_max_s)
        failures = 0
        while True:
            try:
                await start()
            except KafkaUnavailable as exc:
                self._report_kafka_wait(self.kafka_wait.failed(exc.text, self.clock()))
                await asyncio.sleep(backoff.delay(failures, self.rnd))  # a backoff, not synchronisation
                failures += 1
                continue
            self._report_kafka_wait(self.kafka_wait.ok(self.clock()))
            return

    def _report_kafka_wait(self, report: Report | None) -> None:
        if report is None:
            return
        bootstrap = self.config.kafka.bootstrap
        if report.phase is Phase.BEGAN:
            log.warning(
                "kafka_unreachable",
                bootstrap=bootstrap,
                detail=report.detail,
                message=f"cannot reach Kafka at {bootstrap}: {report.detail}; waiting for it, with backoff",
            )
        elif report.phase is Phase.CONTINUES:
            log.warning(
                "kafka_still_unreachable",
                bootstrap=bootstrap,
                detail=report.detail,
                for_s=round(report.for_s),
                attempts=report.attempts,
            )
        else:
            log.info(
                "kafka_reachable",
                bootstrap=bootstrap,
                after_s=round(report.for_s, 1),
                attempts=report.attempts,
            )

    async def _unless_stopped(self, stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> bool:
        """Run ``work`` unless ``stop`` is set first (then ``work`` is cancelled at once); True when it
        finished. Says every :data:`PROGRESS_S` what the start-up is waiting for."""
        try:
            async with asyncio.TaskGroup() as tg:
                job = tg.create_task(work, name="start-up")
                stopped = tg.create_task(stop.wait(), name="start-up-stop")
                while not job.done():
                    done, _ = await asyncio.wait(
                        {job, stopped}, timeout=PROGRESS_S, return_when="FIRST_COMPLETED"
                    )
                    if stopped in done:
                        job.cancel()
                        break
                    if not done:
                        self._progress()
                stopped.cancel()
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        return not job.cancelled()

    def _progress(self) -> None:
        waited = round(self.clock() - self.started_at)
        if self.kafka_wait.active:
            self._report_kafka_wait(self.kafka_wait.due(self.clock()))
        elif self.consumer is None:
            log.info("kafka_connecting", bootstrap=self.config.kafka.bootstrap, waited_s=waited)
        elif not self.joined:
            log.info(
                "kafka_waiting_for_partitions",
                group=self.config.kafka.group_id,
                waited_s=waited,
                message="connected to the brokers; waiting for the group coordinator to assign partitions",
            )

    async def _drain(self) -> None:
        self.stopping = True
        self._apply_pause()
        self.upstream.drain()
        deadline = self.clock() + (0.0 if self.hard_stop else self.config.shutdown_drain_s)
        log.info(
            "bridge_draining", unfinished=self.tracker.outstanding(), deadline_s=self.config.shutdown_drain_s
        )
        started = self.clock()
        await self._settle(
            lambda: self.tracker.outstanding() == 0 or self.hard_stop or self._nothing_more(), deadline
        )
        await self._commit()
        left = self.tracker.outstanding()
        took = round(self.clock() - started, 1)
        if left == 0:
            log.info("bridge_drained", took_s=took, message="every record finished and committed")
        else:
            if self.hard_stop:
                why = "second signal"
            elif self.clock() < deadline:
                why = "every session closed and every output acknowledged"
            else:
                why = "drain deadline reached"
            log.warning(
                "bridge_drain_incomplete",
                left_for_next_owner=left,
                took_s=took,
                message=f"{why} with {left} records left for the next owner of their partitions "
                "(processed again from the committed offset)",
            )

    def _nothing_more(self) -> bool:
        """Draining: the upstream will settle nothing more (v1: every session closed; the records it was
        not fed stay uncommitted) and every output is acknowledged."""
        return self.upstream.drained() and not (self._publish_q or self._publish_later or self._unacked)

    async def _settle(self, done: Callable[[], bool], deadline: float) -> None:
        """Wait until ``done()`` or the deadline, waking on each finished record (and at least every
        0.2 s, for work that settles by failing rather than by an acknowledgement)."""
        while not done() and self.clock() < deadline:
            self._settled.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(0.2, max(0.0, deadline - self.clock()))):
                    await self._settled.wait()

    def readiness(self) -> tuple[bool, dict[str, object]]:
        reasons: list[str] = []
        if self.kafka_wait.active:
            reasons.append(f"cannot reach Kafka at {self.config.kafka.bootstrap}: {self.kafka_wait.detail}")
        elif not self.joined:
            reasons.append("consumer has not joined its group")
        reasons.extend(self.broker.problems(self.clock()))
        if self.upstream.usable() == 0:
            reasons.append("no usable Hume session")
        outage = self.outages.reason
        if outage is not None:
            reasons.append(f"paused for upstream outage ({outage}): {self.outages.detail}")
        if self.stopping:
            reasons.append("shutting down")
        ok = not reasons
        self.metrics.ready.set(1 if ok else 0)
        detail: dict[str, object] = {"reasons": reasons}
        if outage is not None:
            detail["outage"] = str(outage)
            detail["outage_detail"] = self.outages.detail
        return ok, detail

    # -- fetching -------------------------------------------------------------------------------------
    async def _fetch_loop(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        max_records = self.config.kafka.fetch_max_records
        while not self.stopping:
            self._apply_pause()
            batch = await consumer.getmany(timeout_ms=100, max_records=max_records)
            if not batch or self.stopping:
                continue
            now = self.clock()
            admitted = admitted_bytes = 0
            for tp, messages in batch.items():
                key = (tp.topic, tp.partition)
                if key in self._revoking or not self.tracker.is_assigned(key):
                    continue  # no longer ours: its new owner reads it from the committed offset
                for m in messages:
                    admitted_bytes += self._admit(m, key, now)
                    admitted += 1
            if admitted:
                self.metrics.consumed_total.inc(admitted)
                self.metrics.consumed_bytes_total.inc(admitted_bytes)
                self._flush()
                self._kick.set()

    def _admit(self, m: Any, tp: TP, now: float) -> int:
        """Decode and queue one consumed record; returns its value's size."""
        record = InputRecord(
            Source(tp[0], tp[1], m.offset, m.timestamp), m.key, m.value, tuple(m.headers or ())
        )
        work = decode(record, self.settings, self.upstream.prepare, now)
        self.tracker.admit(tp, m.offset)
        self.flow.admit(work.size)
        self.router.admit(work, now)
        return work.size

    def _apply_pause(self) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        flow = self.flow
        change = flow.update()
        if change is FlowChange.PAUSED:
            log.info("fetch_paused_memory", records=flow.records, bytes=flow.bytes)
        elif change is FlowChange.RESUMED:
            log.info("fetch_resumed_memory", records=flow.records, bytes=flow.bytes)
        want = flow.want_paused(outage=self.outages.reason is not None, stopping=self.stopping)
        assigned = consumer.assignment()
        paused = consumer.paused()
        if want:
            todo = [tp for tp in assigned if tp not in paused]
            if todo:
                consumer.pause(*todo)
        elif paused:
            consumer.resume(*paused)
            self._unpaused_wall = time.time()
        self.metrics.paused_partitions.set(len(assigned) if want else 0)
        self.metrics.buffered_records.set(flow.records)
        self.metrics.buffered_bytes.set(flow.bytes)

    # -- dispatching ----------------------------------------------------------------------------------
    async def _dispatch_loop(self) -> None:
        while True:
            wake = self.router.next_wakeup()
            timeout = 0.5 if wake is None else max(0.0, min(0.5, wake - self.clock()))
            probe = self.outages.wake_at()
            if probe is not None:
                timeout = max(0.0, min(timeout, probe - self.clock()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._kick.wait()
            self._kick.clear()
            self._dispatch()

    def _dispatch(self) -> None:
        now = self.clock()
        outages = self.outages
        limit = outages.dispatch_limit(now)
        if limit == 0:
            return
        free = self.upstream.lanes()
        if not free:
            return
        sent = self.router.dispatch(free, now, limit)
        if limit is not None and sent:
            outages.probe_sent(now)
            log.info("upstream_probe", reason=outages.reason, attempt=outages.probes)
        upstream = self.upstream
        for d in sent:
            upstream.send(d, now)
        self.metrics.inflight_requests.set(self.router.inflight)
        self.router.prune_affinity(now)

    # -- UpstreamEvents: what the adapter reports -----------------------------------------------------
    def lane_up(self, lane: LaneId) -> None:
        self.router.lane_up(lane)
        self._kick.set()

    def lane_down(self, lane: LaneId) -> None:
        self.router.lane_down(lane)
        self._kick.set()

    def produced(self, output: Output) -> None:
        self.router.produced(output)
        self._flush()

    def settled(self, last: Work) -> None:
        self.router.settled(last, self.clock())
        self._flush()
        self._kick.set()  # the dispatcher runs next and updates the in-flight gauge

    def lost(self, works: Sequence[Work], reason: LossReason, error: ErrorInfo) -> None:
        if reason.counts_attempt:
            self.metrics.retries_total.labels(reason=reason.value).inc(len(works))
        self.router.lost(works, reason, error, self.clock())
        self.metrics.inflight_requests.set(self.router.inflight)
        self._flush()
        self._kick.set()

    def outage_began(self, reason: OutageReason, detail: str) -> None:
        previous = self.outages.reason
        now = self.clock()
        if not self.outages.begin(reason, detail, now):
            self._outage_summary(now)
            return
        if previous is not None:
            self.metrics.upstream_paused.labels(reason=previous).set(0)
        self.metrics.upstream_paused.labels(reason=reason).set(1)
        self._outage_since = self._outage_said = now
        log.warning(
            "upstream_outage",
            reason=reason,
            detail=detail,
            message=f"consumption paused: {detail}; probing until Hume answers",
        )
        self._apply_pause()

    def _outage_summary(self, now: float) -> None:
        """Every SUMMARY_S while an outage lasts: that it still does, and the latest words."""
        outages = self.outages
        if outages.reason is None or now - self._outage_said < SUMMARY_S:
            return
        self._outage_said = now
        log.warning(
            "upstream_outage_continues",
            reason=outages.reason,
            detail=outages.detail,
            for_s=round(now - self._outage_since),
            probes=outages.probes,
        )

    def recovered(self, evidence: Evidence) -> None:
        probes = self.outages.probes
        ended = self.outages.recovered(evidence)
        if ended is None:
            return
        log.info(
            "upstream_recovered",
            reason=ended,
            probes=probes,
            after_s=round(self.clock() - self._outage_since, 1),
        )
        self.metrics.upstream_paused.labels(reason=ended).set(0)
        self._apply_pause()
        self._kick.set()

    # -- publishing -----------------------------------------------------------------------------------
    def _flush(self) -> None:
        """Carry out what the router decided: outputs to publish, records done."""
        router = self.router
        if router.to_publish:
            self._publish_q.extend(router.to_publish)
            router.to_publish.clear()
            self._published.set()
        if router.done:
            now = self.clock()
            m = self.metrics
            tracker, flow = self.tracker, self.flow
            for work in router.done:
                if tracker.finish(work.source.tp, work.source.offset):
                    flow.release(work.size)
                label = self._outcome_labels[work.kind]
                if label is not None:
                    m.records_by_outcome[label].inc()
                m.processing_seconds.observe(max(0.0, now - work.consumed_at))
            router.done.clear()
            self._settled.set()

    async def _publish_loop(self) -> None:
        queue, later = self._publish_q, self._publish_later
        router, sink, topics = self.router, self.sink, self.topics
        while True:
            timeout = None if not later else max(0.0, later[0][0] - self.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._published.wait()
            self._published.clear()
            now = self.clock()
            while later and later[0][0] <= now:
                queue.append(heapq.heappop(later)[2])
            while queue:
                output = queue.popleft()
                if not router.is_current(output):
                    continue  # its partition was revoked meanwhile
                records = render(output, topics, self.clock())
                try:
                    futures = await sink.send(records)
                except PublishError as exc:
                    self._publish_failed(output, exc)
                    continue
                self._unacked += 1
                # one acknowledgement callback per output, however many records it published
                last = futures[-1] if len(futures) == 1 else asyncio.gather(*futures, return_exceptions=True)
                last.add_done_callback(functools.partial(self._delivered, output, records))

    def _delivered(self, output: Output, records: list[OutputRecord], fut: asyncio.Future[Any]) -> None:
        self._unacked -= 1
        if fut.cancelled():
            self._publish_failed(output, publish_error(asyncio.CancelledError(), largest(records)))
            return
        result = fut.exception() or fut.result()
        results = result if isinstance(result, list) else [result]
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            self._publish_failed(output, publish_error(errors[0], largest(records)))
            return
        m = self.metrics
        if output.error is not None:
            m.errors_total.labels(code=output.error.code, origin=output.error.origin).inc()
        for w in output.warnings:
            m.warnings_total.labels(code=w.code).inc()
        self.broker.ok(KafkaOp.PRODUCE)
        log.debug("output_acknowledged", source=output.records[0].source.ref, outcome=output.kind)
        self.router.acked(output)
        self._flush()

    def _publish_failed(self, output: Output, failure: PublishError) -> None:
        """Per the publish policy: replace an output refused for good, retry a transient failure after
        a backoff of its own (only its stream waits)."""
        refused = not failure.retriable
        self.metrics.publish_failures_total.labels(reason="refused" if refused else "retriable").inc()
        if not refused:
            detail = f"the broker did not take an output ({failure.reason})"
            self.broker.failed(KafkaOp.PRODUCE, detail, self.clock())
        log.warning(
            "publish_failed",
            error=failure.reason,
            refused=refused,
            size=failure.size,
            source=output.records[0].source.ref,
        )
        verdict = publish.decide(
            output,
            failure,
            self.clock(),
            self.publish_backoff,
            self.rnd,
            self.config.kafka.max_request_bytes,
        )
        if isinstance(verdict, publish.Replace):
            replacement = self.router.replace(output, verdict.error)
            if replacement is not None:
                self._publish_q.append(replacement)
        else:
            self._seq += 1
            heapq.heappush(self._publish_later, (verdict.at, self._seq, output))
        self._published.set()

    # -- committing and rebalancing -------------------------------------------------------------------
    async def _commit_loop(self) -> None:
        interval = self.config.kafka.commit_interval_s
        while True:
            await asyncio.sleep(interval)  # a periodic timer, not synchronisation
            await self._commit()
            self._update_lag()
            self._apply_pause()

    async def _health_loop(self) -> None:
        """Once a second, apart from commits (which may wait for their deadline): is fetching answered,
        does the broker's state make the bridge unready, is an outage summary due."""
        while True:
            await asyncio.sleep(1.0)  # a periodic timer, not synchronisation
            self._check_fetch()
            self._report_broker()
            self._outage_summary(self.clock())

    async def _commit(self, only: set[TP] | None = None) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        async with self._commit_lock:
            offsets = self.tracker.to_commit()
            if only is not None:
                offsets = {tp: o for tp, o in offsets.items() if tp in only}
            if not offsets:
                return
            try:
                async with asyncio.timeout(COMMIT_TIMEOUT_S):
                    await consumer.commit(to_kafka(offsets))
            except (KafkaError, TimeoutError) as exc:
                self.metrics.commit_failures_total.inc()
                detail = describe_kafka_error(exc)
                self.broker.failed(KafkaOp.COMMIT, detail, self.clock())
                log.warning("commit_failed", error=detail, partitions=len(offsets))
                return
            self.broker.ok(KafkaOp.COMMIT)
            self.tracker.committed(offsets)
            self.metrics.commits_total.inc()
            log.debug("offsets_committed", offsets={f"{t}/{p}": o for (t, p), o in offsets.items()})

    def _check_fetch(self) -> None:
        """Fetch is failing when an unpaused partition has had no fetch response for a while (aiokafka
        keeps fetching unpaused partitions and retries a broker that is away without raising)."""
        consumer = self.consumer
        if consumer is None or not self.joined:
            return
        paused = consumer.paused()
        now_wall = time.time()
        silent = 0.0
        for tp in consumer.assignment():
            if tp in paused:
                continue
            ms = consumer.last_poll_timestamp(tp)
            last = max(self._unpaused_wall, ms / 1000 if ms else 0.0)
            silent = max(silent, now_wall - last)
        if silent >= FETCH_SILENT_S:
            detail = "no fetch response from the brokers"
            self.broker.failed(KafkaOp.FETCH, detail, self.clock() - silent)
        else:
            self.broker.ok(KafkaOp.FETCH)

    def _report_broker(self) -> None:
        """Log when the broker's failures make the bridge unready, a summary while they last, the end."""
        now = self.clock()
        problems = self.broker.problems(now)
        rec = self.broker_report
        report = rec.failed("; ".join(problems), now) if problems else rec.ok(now)
        if report is None:
            return
        if report.phase is Phase.BEGAN:
            log.warning("kafka_unhealthy", detail=report.detail, message=f"not ready: {report.detail}")
        elif report.phase is Phase.CONTINUES:
            log.warning("kafka_still_unhealthy", detail=report.detail, for_s=round(report.for_s))
        else:
            log.info("kafka_healthy", after_s=round(report.for_s, 1))

    def _update_lag(self) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        for tp in consumer.assignment():
            key = (tp.topic, tp.partition)
            high = consumer.highwater(tp)
            point = self.tracker.lag_base(key)
            if high is None or point is None:
                continue
            lag = max(0, high - point)
            self.metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(lag)

    async def _on_assigned(self, tps: list[TP]) -> None:
        self.joined = True
        self._unpaused_wall = time.time()  # fetching these partitions starts now
        for tp in tps:
            self.tracker.assign(tp)
        self.metrics.rebalances_total.labels(kind="assigned").inc()
        log.info("partitions_assigned", partitions=[f"{t}/{p}" for t, p in tps])
        self._apply_pause()

    def _revoked_done(self, owned: list[TP]) -> bool:
        """Revoking: nothing of these partitions is at the upstream or the producer, or the upstream
        will settle nothing more of them (v1: their sessions closed) and every output is acknowledged."""
        router = self.router
        if router.busy(owned) == 0:
            return True
        return self.upstream.released(owned) and router.unacknowledged(owned) == 0

    async def _on_revoked(self, tps: list[TP]) -> None:
        owned = [tp for tp in tps if self.tracker.is_assigned(tp)]
        if not owned:
            return  # nothing of ours (the empty revocation before a first assignment): no rebalance
        self.metrics.rebalances_total.labels(kind="revoked").inc()
        self._revoking.update(owned)
        router = self.router
        try:
            router.freeze(owned)
            self.upstream.release(owned)
            budget = 0.0 if self.hard_stop else self.config.revoke_drain_s
            await self._settle(lambda: self._revoked_done(owned), self.clock() + budget)
            left = router.busy(owned)
            await self._commit(only=set(owned))
            async with self._commit_lock:
                for tp in owned:
                    self.tracker.revoke(tp)
                    with contextlib.suppress(KeyError):
                        self.metrics.consumer_lag.remove(tp[0], str(tp[1]))
                for work in router.drop(owned):
                    self.flow.release(work.size)
        finally:
            self._revoking.difference_update(owned)
        log.info(
            "partitions_revoked",
            partitions=[f"{t}/{p}" for t, p in owned],
            left_for_next_owner=left,  # streams with records not settled: processed again by the next owner
        )


# -- the command --------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "Configuration comes from the environment; see the README for every variable."


async def serve(config: Config) -> None:
    """Run the bridge until SIGTERM/SIGINT; a second signal skips the drain."""
    bridge = Bridge(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()

    def on_signal(signame: str) -> None:
        if stop.is_set():
            log.warning("second_signal", signal=signame)
            bridge.hard_stop = True
            if main_task is not None:
                main_task.cancel()
            return
        log.info("signal_received", signal=signame)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    await bridge.run(stop)


def tune_gc() -> None:
    """Long-lived start-up objects leave the collector's view, and young collections run less often:
    thousands of buffered records are alive at once, and full passes over them cost more CPU than the
    records themselves. The bridge's own objects are acyclic, so memory is freed by reference counting."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def main(args: argparse.Namespace) -> int:
    tune_gc()
    try:
        config = config_mod.load()
    except ConfigError as exc:
        print(f"hume-bridge: {exc}", file=sys.stderr)
        return 2
    log_mod.configure(config.log_level)
    try:
        asyncio.run(serve(config))
    except asyncio.CancelledError:
        return 1
    return 0


__all__ = ["Bridge", "add_arguments", "main", "serve"]
