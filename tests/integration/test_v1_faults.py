"""Hume v1 sessions that Hume ends or refuses mid-stream, end to end: drops, server_shutdown, idle timeouts
and rate limiting lose nothing, keep each stream's order, and resume on new sessions; the emulator's byte
record of every session shows that each one started at the stream's first unsettled record and that
together they carried the whole call. Refused keys and a full session cap pause and resume without error
records for the backlog."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bridge.app import Bridge
from bridge.metrics import Metrics
from bridge.tools.emulator import Emulator, Faults
from tests.integration.harness import (
    API_KEY,
    V1_FAULTS,
    Call,
    Collector,
    Out,
    Topics,
    call_audio,
    interleave,
    make_topics,
    produce,
    running_bridge,
    v1_config,
    wait_committed,
    wait_for,
)

pytestmark = pytest.mark.asyncio

# Two utterances in 2.6 s, sent at real time; the second ends at 2400 ms.
CALL = [("silence", 200), ("speech", 800), ("silence", 600), ("speech", 800), ("silence", 200)]
LAST_SPEECH_END_MS = 2400
REALTIME = {"BRIDGE_V1_PACING_LEAD_S": "0.2", "BRIDGE_V1_IDLE_CLOSE_S": "5"}


def _count(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


def _settled(metrics: Metrics) -> float:
    return sum(
        _count(metrics, "hume_bridge_records_total", {"outcome": o}) for o in ("measured", "silent", "error")
    )


def _assert_resumed_in_order(
    emu: Emulator,
    calls: list[Call],
    preds: list[Out],
    *,
    min_sessions: int,
    speech_end_ms: int = LAST_SPEECH_END_MS,
) -> None:
    """Per call (each has its own tone, so sessions are told apart by their audio): every session that
    carried it received a contiguous run of it, from a record boundary, without gap or repeat; the
    sessions in order start at 0 and each at or before the end of the previous one (every unsettled record
    went again) up to the end of the speech; measurements come in stream order."""
    step = 250 * 32
    for call in calls:
        mine = sorted((p for p in preds if p.key == call.key), key=lambda p: p.offset)
        assert mine, f"{call.key!r} was never measured"
        firsts = [p.value["sources"][0]["offset"] for p in mine]
        assert firsts == sorted(firsts)
        spans: list[tuple[int, int]] = []
        for run in sorted(emu.runs, key=lambda r: r.seq):
            got = bytes(run.accepted_audio or b"")
            if not got.strip(b"\x00"):
                continue  # silence alone could be any call's
            at = call.pcm.find(got)
            while at >= 0 and at % step:
                at = call.pcm.find(got, at + 1)
            if at >= 0:
                spans.append((at, at + len(got)))
        assert len(spans) >= min_sessions
        assert spans[0][0] == 0
        reach = spans[0][1]
        for b0, b1 in spans[1:]:
            assert b0 <= reach, "a session started past the previous one's unsettled audio"
            reach = max(reach, b1)
        assert reach >= speech_end_ms * 32


def _last_measured(records: list[Out], calls: list[Call], end_ms: int = LAST_SPEECH_END_MS) -> bool:
    """Every call has a measurement ending with its last utterance (stream time; Hume's emulator measures
    in 20 ms windows of the session, which may start mid-window of the call after a resend)."""
    ends = {(r.key, r.value.get("stream_ms", {}).get("end")) for r in records}
    return all(any((c.key, end_ms + d) in ends for d in range(20)) for c in calls)


async def _run(
    kafka_bootstrap: str,
    new_topic: Any,
    faults: Faults,
    calls: list[Call],
    during: Callable[[Emulator, Bridge, Collector, Topics], Awaitable[None]] | None = None,
    **env: str,
) -> tuple[Emulator, list[Out], Metrics, Topics]:
    topics: Topics = await make_topics(new_topic)
    total = sum(len(c.records) for c in calls)
    metrics = Metrics()
    async with Emulator(api_key=API_KEY, faults=faults, record_audio=True) as emu:
        config = v1_config(kafka_bootstrap, emu.http_url, topics, **{**REALTIME, **env})
        async with (
            Collector(kafka_bootstrap, topics.outputs) as col,
            running_bridge(config, metrics) as bridge,
        ):
            if during is None:
                await produce(kafka_bootstrap, topics.media, interleave(c.records for c in calls))
            else:
                await during(emu, bridge, col, topics)
            await wait_for(lambda: _settled(metrics) >= total, 60, "every record settled or errored")
            await wait_for(lambda: bridge.tracker.outstanding() == 0, 30, "every record done")
            ends = await wait_committed(kafka_bootstrap, topics.group, topics.media, total, 30)
            await col.until(lambda rs: _last_measured(rs, calls), 30, "each call's last utterance measured")
        assert sum(ends.values()) == total
    return emu, col.records, metrics, topics


async def test_dropped_connections_resume_on_new_sessions(kafka_bootstrap: str, new_topic: Any) -> None:
    """Connections aborted mid-stream (the 12th message of a session, four times): every record is
    settled, none is an error, and each call resumed from its first unsettled record."""
    calls = [call_audio(f"drop-{i}", CALL, hz=300 + 40 * i) for i in range(4)]
    faults = Faults(drop_at_message=12, drop_limit=4)
    emu, records, metrics, topics = await _run(kafka_bootstrap, new_topic, faults, calls)
    assert emu.stats.v1.snapshot()["dropped_connections"] == 4
    assert not [r for r in records if r.topic == topics.errors]
    preds = [r for r in records if r.topic == topics.predictions]
    _assert_resumed_in_order(emu, calls, preds, min_sessions=2)
    assert _count(metrics, "hume_bridge_reconnects_total", {"reason": "dropped"}) >= 4


async def test_server_shutdown_mid_stream_resumes_every_call(kafka_bootstrap: str, new_topic: Any) -> None:
    """Hume shuts every session down once the first measurement is out: each call goes on on a new
    session from its first unsettled record, nothing lost, nothing an error."""
    calls = [call_audio(f"shut-{i}", CALL, hz=300 + 40 * i) for i in range(4)]

    async def during(emu: Emulator, bridge: Bridge, col: Collector, topics: Topics) -> None:
        await produce(kafka_bootstrap, topics.media, interleave(c.records for c in calls))
        await col.until(lambda rs: len(rs) >= 1, 30, "a first measurement")
        assert emu.shutdown_sessions() >= 1

    emu, records, _, topics = await _run(kafka_bootstrap, new_topic, Faults(), calls, during)
    assert emu.stats.v1.snapshot()["closes"].get("server_shutdown", 0) >= 1
    assert not [r for r in records if r.topic == topics.errors]
    _assert_resumed_in_order(
        emu, calls, [r for r in records if r.topic == topics.predictions], min_sessions=2
    )


async def test_idle_timeout_between_parts_of_a_call(kafka_bootstrap: str, new_topic: Any) -> None:
    """The producer pauses mid-call for longer than Hume's idle timeout: Hume closes the sessions, the
    unsettled records go again on new sessions with the rest of the call, nothing lost."""
    calls = [call_audio(f"idle-{i}", CALL, hz=300 + 40 * i) for i in range(3)]
    faults = Faults(idle_timeout_s=0.5)

    async def during(emu: Emulator, bridge: Bridge, col: Collector, topics: Topics) -> None:
        first = [c.records[:6] for c in calls]  # 1.5 s of each call
        rest = [c.records[6:] for c in calls]
        await produce(kafka_bootstrap, topics.media, interleave(first))
        await emu.wait_until(lambda: emu.stats.v1.snapshot()["closes"].get("idle_timeout", 0) >= 3, 30)
        await produce(kafka_bootstrap, topics.media, interleave(rest))

    emu, records, _, topics = await _run(kafka_bootstrap, new_topic, faults, calls, during)
    assert not [r for r in records if r.topic == topics.errors]
    _assert_resumed_in_order(
        emu, calls, [r for r in records if r.topic == topics.predictions], min_sessions=2
    )


async def test_rate_limited_frames_are_sent_again(kafka_bootstrap: str, new_topic: Any) -> None:
    """Hume takes audio slower than real time (pace 0.7): refused frames wait and go again, so each call
    reaches Hume whole on one session, without a gap or a repeat."""
    calls = [call_audio(f"rate-{i}", CALL) for i in range(3)]
    faults = Faults(pace_factor=0.7, audio_burst_ms=300.0)
    emu, records, metrics, topics = await _run(kafka_bootstrap, new_topic, faults, calls)
    assert emu.stats.v1.snapshot()["rate_limited"].get("audio", 0) >= 1
    assert _count(metrics, "hume_bridge_v1_rate_limited_total", {"endpoint": "audio"}) >= 1
    assert not [r for r in records if r.topic == topics.errors]
    preds = [r for r in records if r.topic == topics.predictions]
    for call in calls:
        sids = {p.value["session_id"] for p in preds if p.key == call.key}
        assert len(sids) == 1
        run = emu.runs.get(sids.pop())
        assert run is not None
        assert bytes(run.accepted_audio or b"") == call.pcm


async def _outage(
    kafka_bootstrap: str, new_topic: Any, faults: Faults, heal: Callable[[Emulator], None]
) -> None:
    topics: Topics = await make_topics(new_topic)
    calls = [call_audio(f"out-{i}", CALL[:3]) for i in range(3)]
    total = sum(len(c.records) for c in calls)
    metrics = Metrics()
    async with Emulator(api_key=API_KEY, faults=faults, record_audio=True) as emu:
        config = v1_config(kafka_bootstrap, emu.http_url, topics, BRIDGE_V1_PACING_LEAD_S="10")
        async with (
            Collector(kafka_bootstrap, topics.outputs) as col,
            running_bridge(config, metrics) as bridge,
        ):
            await produce(kafka_bootstrap, topics.media, interleave(c.records for c in calls))
            await wait_for(lambda: bridge.outage is not None, 30, "the bridge paused for the outage")
            ok, detail = bridge.readiness()
            assert not ok
            assert "outage" in detail
            await wait_for(
                lambda: bool(bridge.consumer and bridge.consumer.paused()), 10, "partitions paused"
            )
            heal(emu)
            await wait_for(lambda: _settled(metrics) >= total, 60, "every record settled after the outage")
            await wait_for(lambda: bridge.outage is None, 10, "the outage ended")
            await col.until(lambda rs: _last_measured(rs, calls, 1000), 30, "each call measured")
        assert not col.on(topics.errors)
        assert _count(metrics, "hume_bridge_records_total", {"outcome": "error"}) == 0
        assert len(col.on(topics.predictions)) == 3


async def test_refused_key_pauses_and_resumes_without_error_records(
    kafka_bootstrap: str, new_topic: Any
) -> None:
    """Hume refuses the key (401 at every handshake): the bridge pauses, /readyz says why, and once the
    key is accepted again every record is measured or silent; none becomes an error."""

    def heal(emu: Emulator) -> None:
        emu.faults.refuse_all_keys = False

    await _outage(kafka_bootstrap, new_topic, Faults(**V1_FAULTS, refuse_all_keys=True), heal)


async def test_session_cap_reached_pauses_and_resumes(kafka_bootstrap: str, new_topic: Any) -> None:
    """Hume's sessions-per-key cap is reached (429 at the handshake): pause, then resume once sessions
    are allowed again; no error records for the backlog."""

    def heal(emu: Emulator) -> None:
        emu.faults.max_sessions_per_key = None

    await _outage(kafka_bootstrap, new_topic, Faults(**V1_FAULTS, max_sessions_per_key=0), heal)


async def test_a_stream_failing_while_hume_is_healthy_ends_in_retries_exhausted(
    kafka_bootstrap: str, new_topic: Any
) -> None:
    """Every session of the stream ends in an audio internal_error at its 5th frame: its unsettled records
    go again up to BRIDGE_MAX_ATTEMPTS times, then each becomes a RETRIES_EXHAUSTED error outcome, in
    order; the bridge never pauses (Hume is healthy).

    The silent first record (three 100 ms frames) settles at the utterance.start of the fourth frame;
    each speech record lasts six frames, so every session a speech record starts, however the records
    happen to arrive, reaches the failing frame before that record settles."""
    call = call_audio("failing", [("silence", 300), ("speech", 1800)], chunk_ms=[300, 600, 600])
    total = len(call.records)
    topics: Topics = await make_topics(new_topic)
    metrics = Metrics()
    faults = Faults(**V1_FAULTS, audio_internal_error_at_frame=5)
    async with Emulator(api_key=API_KEY, faults=faults) as emu:
        config = v1_config(kafka_bootstrap, emu.http_url, topics, BRIDGE_MAX_ATTEMPTS="3")
        async with (
            Collector(kafka_bootstrap, topics.outputs) as col,
            running_bridge(config, metrics) as bridge,
        ):
            await produce(kafka_bootstrap, topics.media, call.records)
            await wait_for(lambda: _settled(metrics) >= total, 60, "every record settled or errored")
            assert bridge.outage is None
            await col.until(lambda rs: len(col.on(topics.errors)) >= total - 1, 30, "the error outcomes")
    errors = sorted(col.on(topics.errors), key=lambda r: r.offset)
    assert [e.value["error"]["code"] for e in errors] == ["RETRIES_EXHAUSTED"] * (total - 1)
    assert [e.value["source"]["offset"] for e in errors] == sorted(
        e.value["source"]["offset"] for e in errors
    )
    assert all(e.value["api"] == "v1" for e in errors)
    assert all(e.value["attempts"] == 3 for e in errors)
    assert _count(metrics, "hume_bridge_records_total", {"outcome": "silent"}) == 1
