"""The app: wires source → core → Hume pool → sink, owns every task, and commits offsets.

    Kafka ─▶ _fetch_loop ─▶ decode ─▶ Router (per-stream FIFO) ─▶ _dispatch_loop ─▶ SessionPool ─▶ Hume
                                                  ▲                                     │ reply
    Kafka ◀─ _publish_loop ◀── outcome (in stream order) ◀── PoolEvents (reply/lost) ◀──┘
      │ ack ─▶ OffsetTracker.finish ─▶ _commit_loop ─▶ consumer.commit (only acknowledged outcomes)

Shutdown: stop fetching → drain under ``shutdown_drain_s`` → final commit → close. A second signal skips
the drain.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import random
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from bridge import config as config_mod
from bridge import log as log_mod
from bridge.config import Config
from bridge.core.backoff import Backoff
from bridge.core.decode import DecodeSettings, decode
from bridge.core.model import ErrorInfo, InputRecord, Source, Work
from bridge.core.offsets import OffsetTracker
from bridge.core.outputs import Topics, outcome_records
from bridge.core.streams import Router
from bridge.errors import ConfigError, SessionClosed, UpstreamError
from bridge.http import HttpServer
from bridge.hume import v0_protocol as v0
from bridge.hume.pool import SessionPool
from bridge.metrics import Metrics
from bridge.sink import Sink
from bridge.source import TP, make_consumer, to_kafka

log = structlog.get_logger("bridge.app")


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
        self.router = Router(
            max_attempts=r.max_attempts,
            retry_backoff=Backoff(r.backoff_initial_s, r.backoff_max_s),
            affinity_idle_s=config.hume.audio_affinity_idle_s,
            rnd=self.rnd,
        )
        self.tracker = OffsetTracker()
        self.settings = DecodeSettings(
            max_record_bytes=config.limits.max_record_bytes,
            default_models=config.hume.default_models,
            stream_window_ms=config.hume.stream_window_ms,
            job_details=config.hume.job_details,
        )
        k = config.kafka
        self.topics = Topics(k.predictions_topic, k.errors_topic, k.warnings_topic)
        self.pool = SessionPool(config.hume, config.retry, self, self.metrics, clock=clock, rnd=self.rnd)
        self.sink = Sink(k, self.metrics)
        self.consumer: AIOKafkaConsumer | None = None
        self.http: HttpServer | None = None
        self.buffered_records = 0
        self.buffered_bytes = 0
        self.memory_paused = False
        self.outage: str | None = None
        self.outage_detail = ""
        self._probes = 0
        self._next_probe = 0.0
        self._probe_backoff = Backoff(r.outage_probe_initial_s, r.outage_probe_max_s)
        self.joined = False
        self.stopping = False
        self.hard_stop = False
        self._revoking: set[TP] = set()
        self._publish_q: deque[Work] = deque()
        self._kick = asyncio.Event()
        self._published = asyncio.Event()
        self._settled = asyncio.Event()
        self._commit_lock = asyncio.Lock()

    # -- lifecycle ------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then drain, commit and close."""
        cfg = self.config
        async with contextlib.AsyncExitStack() as stack:
            self.http = HttpServer(cfg.http_host, cfg.http_port, self.metrics.registry, self.readiness)
            await self.http.start()
            stack.push_async_callback(self.http.stop)
            await self.sink.start()
            stack.push_async_callback(self.sink.stop)
            self.consumer = make_consumer(cfg, self._on_revoked, self._on_assigned)
            await self.consumer.start()
            stack.push_async_callback(self.consumer.stop)
            log.info(
                "bridge_started",
                topics=list(cfg.kafka.input_topics),
                group=cfg.kafka.group_id,
                pool_size=cfg.hume.pool_size,
                http_port=self.http.port,
                idempotent_producer=self.sink.idempotent,
            )
            async with asyncio.TaskGroup() as tg:
                loops = [
                    tg.create_task(self.pool.run(), name="pool"),
                    tg.create_task(self._fetch_loop(), name="fetch"),
                    tg.create_task(self._dispatch_loop(), name="dispatch"),
                    tg.create_task(self._publish_loop(), name="publish"),
                    tg.create_task(self._commit_loop(), name="commit"),
                ]
                await stop.wait()
                await self._drain()
                for task in loops[1:]:
                    task.cancel()
                await self.pool.close()
            log.info("bridge_stopped", outstanding=self.tracker.outstanding())

    async def _drain(self) -> None:
        self.stopping = True
        self._apply_pause()
        deadline = self.clock() + (0.0 if self.hard_stop else self.config.shutdown_drain_s)
        log.info(
            "bridge_draining", outstanding=self.tracker.outstanding(), deadline_s=self.config.shutdown_drain_s
        )
        await self._settle(lambda: self.tracker.outstanding() == 0 or self.hard_stop, deadline)
        await self._commit()
        log.info("bridge_drained", outstanding=self.tracker.outstanding())

    async def _settle(self, done: Callable[[], bool], deadline: float) -> None:
        """Wait until ``done()`` or the deadline, waking on each acknowledged outcome (and at least every
        0.2 s, for work that settles by failing rather than by an acknowledgement)."""
        while not done() and self.clock() < deadline:
            self._settled.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(0.2, max(0.0, deadline - self.clock()))):
                    await self._settled.wait()

    def readiness(self) -> tuple[bool, dict[str, object]]:
        reasons: list[str] = []
        if not self.joined:
            reasons.append("consumer has not joined its group")
        if self.pool.usable() == 0:
            reasons.append("no usable Hume session")
        if self.outage is not None:
            reasons.append(f"paused for upstream outage: {self.outage}")
        if self.stopping:
            reasons.append("shutting down")
        ok = not reasons
        self.metrics.ready.set(1 if ok else 0)
        detail: dict[str, object] = {"reasons": reasons}
        if self.outage is not None:
            detail["outage"] = self.outage
            detail["outage_detail"] = self.outage_detail
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
                self._kick.set()

    def _admit(self, m: Any, tp: TP, now: float) -> int:
        """Decode and queue one consumed record; returns its value's size."""
        record = InputRecord(
            Source(tp[0], tp[1], m.offset, m.timestamp), m.key, m.value, tuple(m.headers or ())
        )
        work = decode(record, self.settings, now)
        self.tracker.admit(tp, m.offset)
        self.buffered_records += 1
        self.buffered_bytes += work.size
        self._enqueue(self.router.admit(work, now))
        return work.size

    def _apply_pause(self) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        limits = self.config.limits
        over = (
            self.buffered_records >= limits.max_buffered_records
            or self.buffered_bytes >= limits.max_buffered_bytes
        )
        if over:
            if not self.memory_paused:
                log.info("fetch_paused_memory", records=self.buffered_records, bytes=self.buffered_bytes)
            self.memory_paused = True
        elif self.memory_paused and (
            self.buffered_records <= limits.max_buffered_records * limits.resume_ratio
            and self.buffered_bytes <= limits.max_buffered_bytes * limits.resume_ratio
        ):
            self.memory_paused = False
            log.info("fetch_resumed_memory", records=self.buffered_records, bytes=self.buffered_bytes)
        want = self.memory_paused or self.outage is not None or self.stopping
        assigned = consumer.assignment()
        paused = consumer.paused()
        if want:
            todo = [tp for tp in assigned if tp not in paused]
            if todo:
                consumer.pause(*todo)
        elif paused:
            consumer.resume(*paused)
        self.metrics.paused_partitions.set(len(assigned) if want else 0)
        self.metrics.buffered_records.set(self.buffered_records)
        self.metrics.buffered_bytes.set(self.buffered_bytes)

    # -- dispatching ----------------------------------------------------------------------------------
    async def _dispatch_loop(self) -> None:
        while True:
            wake = self.router.next_wakeup()
            timeout = 0.5 if wake is None else max(0.0, min(0.5, wake - self.clock()))
            if self.outage == "out_of_credits":
                timeout = max(0.0, min(timeout, self._next_probe - self.clock()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._kick.wait()
            self._kick.clear()
            self._dispatch()

    def _dispatch(self) -> None:
        now = self.clock()
        limit: int | None = None
        if self.outage is not None:
            if self.outage != "out_of_credits" or now < self._next_probe:
                return
            limit = 1  # one probe request at a time while out of credits
        free = self.pool.free()
        if not free:
            return
        sent = self.router.dispatch(free, now, limit)
        if limit is not None and sent:
            self._next_probe = now + self._probe_backoff.delay(self._probes, self.rnd)
            self._probes += 1
            log.info("upstream_probe", reason=self.outage, attempt=self._probes)
        m = self.metrics
        for d in sent:
            request = d.work.request
            assert request is not None
            self.pool.send(d.session, d.work, d.reset_stream)
            usage = request.usage
            m.requests_by_kind[usage.kind].inc()
            if usage.audio_s:
                m.usage_audio_seconds_total.inc(usage.audio_s)
            if usage.images:
                m.usage_images_total.inc(usage.images)
            if usage.text_chars:
                m.usage_text_characters_total.inc(usage.text_chars)
        m.inflight_requests.set(self.router.inflight)
        self.router.prune_affinity(now)

    # -- PoolEvents -----------------------------------------------------------------------------------
    def session_up(self, sid: int) -> None:
        self.router.session_up(sid)
        self._kick.set()

    def session_down(self, sid: int) -> None:
        self.router.session_down(sid)
        self._kick.set()

    def reply(self, sid: int, work: Work, reply: dict[str, Any]) -> None:
        now = self.clock()
        m = self.metrics
        m.request_seconds.observe(max(0.0, now - work.sent_at))
        verdict = v0.judge(reply)
        if isinstance(verdict, v0.Final):
            if verdict.outcome.error is not None:
                m.hume_errors_total.labels(code=verdict.outcome.error.code).inc()
            if self.outage == "out_of_credits":
                self._end_outage()
            self._enqueue(self.router.complete(work, verdict.outcome, now))
        elif isinstance(verdict, v0.Retry):
            m.hume_errors_total.labels(code=verdict.error.code).inc()
            m.retries_total.labels(reason="hume_error").inc()
            self._enqueue(self.router.fail(work, verdict.error, now))
        else:
            m.hume_errors_total.labels(code=verdict.error.code).inc()
            self.router.fail(work, verdict.error, now, count_attempt=False)
            self.upstream_outage(verdict.reason, verdict.error.message)
        m.inflight_requests.set(self.router.inflight)
        self._kick.set()

    def lost(self, sid: int, works: list[Work], error: UpstreamError) -> None:
        now = self.clock()
        ours = isinstance(error, SessionClosed)
        info = ErrorInfo("CONNECTION_LOST", str(error), "bridge", True)
        for work in works:
            if not ours:
                self.metrics.retries_total.labels(reason="connection_lost").inc()
            self._enqueue(self.router.fail(work, info, now, count_attempt=not ours))
        self.metrics.inflight_requests.set(self.router.inflight)
        self._kick.set()

    def upstream_outage(self, reason: str, detail: str) -> None:
        if self.outage == reason:
            return
        if self.outage is not None:
            self.metrics.upstream_paused.labels(reason=self.outage).set(0)
        self.outage, self.outage_detail = reason, detail
        self._probes = 0
        self._next_probe = self.clock() + self._probe_backoff.delay(0, self.rnd)
        self.metrics.upstream_paused.labels(reason=reason).set(1)
        log.warning("upstream_outage", reason=reason, detail=detail)
        self._apply_pause()

    def upstream_healthy(self) -> None:
        if self.outage in ("key_refused", "unreachable"):
            self._end_outage()

    def _end_outage(self) -> None:
        if self.outage is None:
            return
        log.info("upstream_recovered", reason=self.outage, probes=self._probes)
        self.metrics.upstream_paused.labels(reason=self.outage).set(0)
        self.outage, self.outage_detail = None, ""
        self._apply_pause()
        self._kick.set()

    # -- publishing -----------------------------------------------------------------------------------
    def _enqueue(self, works: list[Work]) -> None:
        if works:
            self._publish_q.extend(works)
            self._published.set()

    async def _publish_loop(self) -> None:
        queue = self._publish_q
        while True:
            await self._published.wait()
            self._published.clear()
            while queue:
                work = queue.popleft()
                outcome = work.outcome
                assert outcome is not None
                records = outcome_records(work, outcome, self.topics, self.clock())
                try:
                    futures = await self.sink.send(records)
                except KafkaError as exc:
                    log.warning("publish_failed", error=type(exc).__name__, source=work.source.ref)
                    self._enqueue(self.router.publish_failed(work))
                    await asyncio.sleep(0.5)  # the broker refused at once: give it a moment
                    continue
                # one acknowledgement callback per work item, however many records it published
                last = futures[-1] if len(futures) == 1 else asyncio.gather(*futures, return_exceptions=True)
                last.add_done_callback(functools.partial(self._delivered, work))

    def _delivered(self, work: Work, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            self._enqueue(self.router.publish_failed(work))
            return
        result = fut.exception() or fut.result()
        results = result if isinstance(result, list) else [result]
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            log.warning("publish_failed", error=type(errors[0]).__name__, source=work.source.ref)
            self._enqueue(self.router.publish_failed(work))
            return
        now = self.clock()
        outcome = work.outcome
        assert outcome is not None
        m = self.metrics
        if self.tracker.finish(work.source.tp, work.source.offset):
            self.buffered_records -= 1
            self.buffered_bytes -= work.size
        m.records_by_outcome[outcome.kind].inc()
        if outcome.error is not None:
            m.errors_total.labels(code=outcome.error.code, origin=outcome.error.origin).inc()
        for w in outcome.warnings:
            m.warnings_total.labels(code=w.code).inc()
        m.processing_seconds.observe(max(0.0, now - work.consumed_at))
        log.debug("outcome_acknowledged", source=work.source.ref, outcome=outcome.kind)
        self._enqueue(self.router.acked(work, now))
        self._settled.set()

    # -- committing and rebalancing -------------------------------------------------------------------
    async def _commit_loop(self) -> None:
        interval = self.config.kafka.commit_interval_s
        while True:
            await asyncio.sleep(interval)  # a periodic timer, not synchronisation
            await self._commit()
            self._update_lag()
            self._apply_pause()

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
                await consumer.commit(to_kafka(offsets))
            except KafkaError as exc:
                self.metrics.commit_failures_total.inc()
                log.warning("commit_failed", error=type(exc).__name__, partitions=len(offsets))
                return
            self.tracker.committed(offsets)
            self.metrics.commits_total.inc()
            log.debug("offsets_committed", offsets={f"{t}/{p}": o for (t, p), o in offsets.items()})

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
        for tp in tps:
            self.tracker.assign(tp)
        self.metrics.rebalances_total.labels(kind="assigned").inc()
        log.info("partitions_assigned", partitions=[f"{t}/{p}" for t, p in tps])
        self._apply_pause()

    async def _on_revoked(self, tps: list[TP]) -> None:
        owned = [tp for tp in tps if self.tracker.is_assigned(tp)]
        self.metrics.rebalances_total.labels(kind="revoked").inc()
        if not owned:
            return
        self._revoking.update(owned)
        try:
            busy = self.router.freeze(owned)
            budget = 0.0 if self.hard_stop else self.config.revoke_drain_s
            await self._settle(lambda: not any(self.router.is_busy(w) for w in busy), self.clock() + budget)
            busy = [w for w in busy if self.router.is_busy(w)]
            await self._commit(only=set(owned))
            async with self._commit_lock:
                for tp in owned:
                    self.tracker.revoke(tp)
                    with contextlib.suppress(KeyError):
                        self.metrics.consumer_lag.remove(tp[0], str(tp[1]))
                for work in self.router.drop(owned):
                    self.buffered_records -= 1
                    self.buffered_bytes -= work.size
        finally:
            self._revoking.difference_update(owned)
        log.info("partitions_revoked", partitions=[f"{t}/{p}" for t, p in owned], abandoned=len(busy))


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
