"""Hume v1 realtime audio end to end: the real broker, the bridge in-process, the v1 emulator over real
sockets. Every record ends measured, silent or error; measurements per stream in order; offsets committed
only behind settled records; Hume received each stream's audio continuously (the emulator's byte record)."""

from __future__ import annotations

from collections import defaultdict

import pytest

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

# Half a second of silence, 1.5 s of speech, a second of silence: one utterance, one measurement.
CALL = [("silence", 500), ("speech", 1500), ("silence", 1000)]


def _outcome_count(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value("hume_bridge_records_total", {"outcome": outcome})
    return value or 0.0


def _by_stream(records: list[Out]) -> dict[bytes, list[Out]]:
    out: dict[bytes, list[Out]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert r.key is not None
        out[r.key].append(r)
    return out


def _assert_continuous(emu: Emulator, call: Call, preds: list[Out]) -> None:
    """Each session of the stream received a contiguous run of the call's audio, starting at a record
    boundary; together they cover the call (a session after a loss starts again at its first unsettled
    record)."""
    sessions = list(dict.fromkeys(p.value["session_id"] for p in preds))
    assert sessions, "no session measured the call"
    for sid in sessions:
        run = emu.runs.get(sid)
        assert run is not None
        assert run.accepted_audio is not None
        got = bytes(run.accepted_audio)
        at = call.pcm.find(got[:64_000]) if got else -1
        assert at >= 0
        assert at % (250 * 32) == 0
        assert call.pcm[at : at + len(got)] == got


async def test_fifty_calls_are_measured_in_order_and_arrive_continuously(
    kafka_bootstrap: str, new_topic: object
) -> None:
    """50 calls of speech and silence as 250 ms records (raw PCM and WAV): each record settles measured or
    silent, one measurement per utterance with its sources and stream_ms, offsets committed to the end,
    and the emulator received each call's audio whole, in order, without gap or repeat."""
    topics: Topics = await make_topics(new_topic)  # type: ignore[arg-type]
    calls = [call_audio(f"call-{i}", CALL, wav=i % 2 == 1) for i in range(50)]
    total = sum(len(c.records) for c in calls)
    metrics = Metrics()
    async with Emulator(api_key=API_KEY, faults=Faults(**V1_FAULTS), record_audio=True) as emu:
        # Every call ends with hume-end-of-stream, which closes its session; a long idle close keeps a
        # call whose records reach the bridge in several fetches (a loaded machine) on one session, so that
        # it is measured as one utterance.
        config = v1_config(kafka_bootstrap, emu.http_url, topics, BRIDGE_V1_IDLE_CLOSE_S="10")
        async with (
            Collector(kafka_bootstrap, topics.outputs) as col,
            running_bridge(config, metrics) as bridge,
        ):
            await produce(kafka_bootstrap, topics.media, interleave(c.records for c in calls))
            await col.until(lambda rs: len(rs) >= 50, 60, "one measurement per call")
            await wait_for(
                lambda: _outcome_count(metrics, "measured") + _outcome_count(metrics, "silent") >= total,
                60,
                "every record settled",
            )
            await wait_for(lambda: bridge.tracker.outstanding() == 0, 30, "every record done")
            ends = await wait_committed(kafka_bootstrap, topics.group, topics.media, total, 30)
        assert not col.on(topics.errors)
        preds = col.on(topics.predictions)

        assert len(preds) == 50
        assert sum(ends.values()) == total
        by_stream = _by_stream(preds)
        assert len(by_stream) == 50
        measured_records: set[tuple[int, int]] = set()
        for call in calls:
            mine = by_stream[call.key]
            assert len(mine) == 1
            value = mine[0].value
            assert value["api"] == "v1"
            assert value["endpoint"] == "audio"
            assert value["mode"] == "realtime"
            assert value["stream_id"] == call.key.decode()
            m = value["measurement"]
            assert (m["audio_start_ms"], m["audio_end_ms"]) == (500, 2000)
            assert value["stream_ms"] == {"begin": 500, "end": 2000}
            spans = [(s["begin_ms"], s["end_ms"]) for s in value["sources"]]
            assert spans == [(0, 250)] * 6
            offsets = [s["offset"] for s in value["sources"]]
            assert offsets == sorted(offsets)
            measured_records |= {(s["partition"], s["offset"]) for s in value["sources"]}
            _assert_continuous(emu, call, mine)
        assert _outcome_count(metrics, "measured") == len(measured_records) == 6 * 50
        assert _outcome_count(metrics, "silent") == total - 6 * 50
        assert _outcome_count(metrics, "error") == 0
