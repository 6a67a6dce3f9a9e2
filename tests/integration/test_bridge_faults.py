"""Faults upstream: dropped connections, idle closes, refused keys, no credits, shared sessions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from bridge.metrics import Metrics
from bridge.tools import samples
from bridge.tools.embedded import free_port
from bridge.tools.emulator import Emulator, Faults
from tests.conftest import TopicFactory
from tests.integration.harness import (
    API_KEY,
    BridgeProcess,
    Collector,
    Out,
    Record,
    Topics,
    bridge_config,
    bridge_env,
    make_topics,
    outcome_sources,
    outcomes,
    produce,
    running_bridge,
    text_records,
    wait_for,
    wait_for_async,
)


async def http_get_raw(port: int, path: str) -> tuple[int, bytes]:
    """A plain HTTP/1.1 GET against the bridge's operator endpoint."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def http_get(port: int, path: str) -> tuple[int, dict[str, object]]:
    status, body = await http_get_raw(port, path)
    return status, orjson.loads(body) if body.startswith(b"{") else {}


def counter(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def assert_in_stream_order(records: list[Out], topics: Topics) -> None:
    """Each stream's outcomes carry increasing ``seq`` headers."""
    seen: dict[bytes | None, list[int]] = {}
    for r in outcomes(records, topics):
        seen.setdefault(r.key, []).append(int(r.headers["seq"]))
    for seqs in seen.values():
        assert seqs == sorted(seqs), f"out of order: {seqs}"


async def test_flaky_upstream_loses_and_reorders_nothing(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """5% of requests see their connection dropped and idle connections are closed by Hume: every record
    still gets one prediction, in stream order, and the reconnects show in the metrics."""
    topics = await make_topics(new_topic, partitions=4)
    faults = Faults(drop_probability=0.05, idle_timeout_s=1.0, seed=11)
    metrics = Metrics()
    async with Emulator(api_key=API_KEY, faults=faults) as emu:
        config = bridge_config(kafka_bootstrap, emu.url, topics, BRIDGE_MAX_ATTEMPTS="8")
        async with running_bridge(config, metrics):
            await produce(kafka_bootstrap, topics.media, text_records(40, 10))
            async with Collector(kafka_bootstrap, topics.outputs) as col:
                await col.until(lambda rs: len(outcomes(rs, topics)) >= 400, 120, "400 outcomes")
                # let Hume close idle sessions, then send more: they must flow through fresh sessions
                await wait_for(
                    lambda: counter(metrics, "hume_bridge_reconnects_total", reason="idle_timeout") > 0,
                    20,
                    "an idle close",
                )
                await produce(kafka_bootstrap, topics.media, text_records(40, 5, start=10))
                await col.until(lambda rs: len(outcomes(rs, topics)) >= 600, 120, "600 outcomes")
        assert emu.stats.snapshot()["dropped_connections"] > 0
    sources = outcome_sources(col.records, topics)
    assert len(sources) == len(set(sources)) == 600
    assert col.on(topics.errors) == []
    assert_in_stream_order(col.records, topics)
    assert counter(metrics, "hume_bridge_reconnects_total", reason="dropped") > 0
    assert counter(metrics, "hume_bridge_retries_total", reason="connection_lost") > 0
    attempts = [r.value["attempts"] for r in col.on(topics.predictions)]
    assert max(attempts) >= 2


async def test_refused_key_pauses_without_error_outcomes_and_resumes(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """With every key refused, the bridge pauses, /readyz says why, the backlog produces no error records;
    when keys are accepted again everything flows."""
    topics = await make_topics(new_topic, partitions=2)
    faults = Faults(refuse_all_keys=True)
    metrics = Metrics()
    async with Emulator(api_key=API_KEY, faults=faults) as emu:
        config = bridge_config(kafka_bootstrap, emu.url, topics)
        async with running_bridge(config, metrics) as bridge:
            await produce(kafka_bootstrap, topics.media, text_records(5, 4))
            assert bridge.http is not None
            port = bridge.http.port
            await wait_for(lambda: bridge.outage == "key_refused", 20, "outage detected")
            status, body = await http_get(port, "/readyz")
            assert status == 503
            assert body["outage"] == "key_refused"
            assert body["outage_detail"] == "HTTP 401 from Hume: check HUME_API_KEY"
            assert (
                "paused for upstream outage (key_refused): HTTP 401 from Hume: check HUME_API_KEY"
                in (
                    body["reasons"]  # type: ignore[operator]
                )
            )
            refused_before = sum(emu.stats.snapshot()["connections_refused"].values())
            await wait_for(
                lambda: sum(emu.stats.snapshot()["connections_refused"].values()) >= refused_before + 3,
                20,
                "probing handshakes",
            )
            async with Collector(kafka_bootstrap, topics.outputs) as col:
                await col.poll()
                assert outcomes(col.records, topics) == []
                assert counter(metrics, "hume_bridge_upstream_paused", reason="key_refused") == 1
                emu.faults.refuse_all_keys = False
                await col.until(lambda rs: len(outcomes(rs, topics)) >= 20, 60, "20 outcomes")
            status, _ = await http_get(port, "/readyz")
            assert status == 200
    assert col.on(topics.errors) == []


async def test_out_of_credits_pauses_probes_and_resumes(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """E0300 pauses consumption and readiness; probes continue with backoff; no error outcomes; when
    credits return, the backlog flows."""
    topics = await make_topics(new_topic, partitions=2)
    metrics = Metrics()
    async with Emulator(api_key=API_KEY) as emu:
        config = bridge_config(kafka_bootstrap, emu.url, topics)
        async with running_bridge(config, metrics) as bridge:
            emu.faults.out_of_credits = True
            await produce(kafka_bootstrap, topics.media, text_records(6, 5))
            await wait_for(lambda: bridge.outage == "out_of_credits", 20, "outage detected")
            assert bridge.http is not None
            status, body = await http_get(bridge.http.port, "/readyz")
            assert (status, body["outage"]) == (503, "out_of_credits")
            await wait_for(
                lambda: emu.stats.snapshot()["replies_by_code"].get("E0300", 0) >= 3, 20, "probe requests"
            )
            async with Collector(kafka_bootstrap, topics.outputs) as col:
                await col.poll()
                assert outcomes(col.records, topics) == []
                emu.faults.out_of_credits = False
                await col.until(lambda rs: len(outcomes(rs, topics)) >= 30, 60, "30 outcomes")
            await wait_for(lambda: bridge.readiness()[0], 10, "ready again")
    assert col.on(topics.errors) == []
    assert_in_stream_order(col.records, topics)


async def test_audio_context_never_leaks_between_streams_sharing_a_session(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """Two audio streams on a single session: neither's window ever holds the other's audio; a stream
    alone on its session keeps its context."""
    topics = await make_topics(new_topic, partitions=1)

    def chunk(stream: str, i: int) -> Record:
        headers = [
            ("content-type", b"audio/wav"),
            ("hume-payload-id", f"{stream}-{i}".encode()),
            ("hume-stream-window-ms", b"5000"),
        ]
        return (stream.encode(), samples.wav(0.5, seed=i), headers)

    async with Emulator(api_key=API_KEY) as emu:
        config = bridge_config(kafka_bootstrap, emu.url, topics, BRIDGE_POOL_SIZE="1")
        async with running_bridge(config), Collector(kafka_bootstrap, topics.outputs) as col:
            await produce(kafka_bootstrap, topics.media, [chunk("A", i) for i in range(3)])
            await col.until(lambda rs: len(outcomes(rs, topics)) >= 3, 60, "A alone")
            mixed = [chunk(s, i) for i in range(3, 9) for s in ("A", "B")]
            await produce(kafka_bootstrap, topics.media, mixed)
            await col.until(lambda rs: len(outcomes(rs, topics)) >= 15, 60, "A and B")
    log = {e.payload_id: e for e in emu.requests if e.payload_id}
    assert log["A-1"].window_payload_ids == ("A-0",)
    assert log["A-2"].window_payload_ids == ("A-0", "A-1")
    for pid, entry in log.items():
        own = pid.split("-")[0]
        assert all(w.startswith(own + "-") for w in entry.window_payload_ids), (pid, entry.window_payload_ids)
    assert any(e.reset_stream for e in log.values())


async def test_overdue_reply_reopens_the_session_and_gives_up_after_max_attempts(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """A Hume that answers after the reply deadline: the session is reopened, the request retried with the
    same payload id, and after BRIDGE_MAX_ATTEMPTS the record gets RETRIES_EXHAUSTED."""
    topics = await make_topics(new_topic, partitions=1)
    metrics = Metrics()
    async with Emulator(api_key=API_KEY, faults=Faults(latency_s=3.0)) as emu:
        config = bridge_config(
            kafka_bootstrap, emu.url, topics, BRIDGE_REPLY_TIMEOUT_S="0.3", BRIDGE_MAX_ATTEMPTS="2"
        )
        async with running_bridge(config, metrics):
            await produce(kafka_bootstrap, topics.media, [(b"slow", b"hello there", [])])
            async with Collector(kafka_bootstrap, topics.outputs) as col:
                await col.until(lambda rs: len(outcomes(rs, topics)) >= 1, 60, "the outcome")
    (err,) = col.on(topics.errors)
    assert err.value["error"]["code"] == "RETRIES_EXHAUSTED"
    assert err.value["attempts"] == 2
    assert counter(metrics, "hume_bridge_reconnects_total", reason="reply_timeout") >= 2
    pids = [e.payload_id for e in emu.requests]
    assert pids == [err.value["payload_id"]] * 2


async def test_sessions_are_recycled_when_old_without_failing_requests(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """Sessions past their maximum age are closed once idle and reopened: records keep flowing with one
    attempt each and no retries."""
    topics = await make_topics(new_topic, partitions=2)
    metrics = Metrics()
    async with Emulator(api_key=API_KEY, faults=Faults(latency_s=0.02)) as emu:
        config = bridge_config(
            kafka_bootstrap, emu.url, topics, BRIDGE_SESSION_MAX_AGE_S="1", BRIDGE_POOL_SIZE="2"
        )
        async with running_bridge(config, metrics), Collector(kafka_bootstrap, topics.outputs) as col:
            for batch in range(3):
                await produce(kafka_bootstrap, topics.media, text_records(4, 5, start=batch * 5))
                await col.until(lambda rs, n=(batch + 1) * 20: len(outcomes(rs, topics)) >= n, 60, "a batch")
                await wait_for(
                    lambda n=batch: counter(metrics, "hume_bridge_reconnects_total", reason="recycled") > n,
                    20,
                    "a recycle",
                )
        assert emu.stats.snapshot()["connections_opened"] >= 4
    assert col.on(topics.errors) == []
    assert {r.value["attempts"] for r in col.on(topics.predictions)} == {1}
    assert counter(metrics, "hume_bridge_retries_total", reason="connection_lost") == 0


def _raw(proc: BridgeProcess) -> str:
    return Path(proc.log_path).read_text(errors="replace")


def _events(proc: BridgeProcess, name: str) -> list[dict[str, Any]]:
    return [line for line in proc.log_lines() if line.get("event") == name]


async def test_unreachable_hume_is_said_once_in_words_for_the_whole_pool(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """Nothing listens at BRIDGE_HUME_URL: eight sessions retrying, each more than twice, give one warning
    that names the address and the cause (not one per session per retry, not an exception's class name),
    one upstream_outage, and /readyz in the same words."""
    topics = await make_topics(new_topic, partitions=1)
    port = free_port()
    env = bridge_env(kafka_bootstrap, f"ws://127.0.0.1:{port}", topics)
    proc = BridgeProcess(env, str(tmp_path / "unreachable.log")).start()
    words = f"connection refused by 127.0.0.1:{port}"
    try:
        await wait_for(lambda: proc.has_event("upstream_outage"), 30, "the outage is noticed")
        status, body = await http_get(proc.http_port, "/readyz")
        assert status == 503 and body["outage"] == "unreachable"
        assert body["outage_detail"] == words

        async def retried() -> bool:
            return await _failed_handshakes(proc.http_port) >= 24

        await wait_for_async(retried, 30, "the sessions retrying")
    finally:
        assert await proc.stop() == 0
    failed = _events(proc, "hume_connect_failed")
    assert len(failed) == 1, failed
    assert failed[0]["detail"] == words and failed[0]["level"] == "warning"
    assert "ConnectionRefusedError" not in _raw(proc)
    outages = _events(proc, "upstream_outage")
    assert len(outages) == 1 and outages[0]["detail"] == words


async def _failed_handshakes(port: int) -> float:
    _, text = await http_get_raw(port, "/metrics")
    for line in text.decode().splitlines():
        if line.startswith('hume_bridge_reconnects_total{reason="handshake_failed"}'):
            return float(line.split()[-1])
    return 0.0


async def test_closes_are_named_for_what_they_were(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """Hume closing idle sessions (code 1001) reads "closed by Hume with code 1001"; the bridge's own
    shutdown with requests in flight reads "shutdown" with how many were left unanswered, and a drain cut
    short says how many records are left for the next owner (not "idle_timeout", "dropped" or
    "outstanding")."""
    topics = await make_topics(new_topic, partitions=1)
    faults = Faults(idle_timeout_s=0.5, idle_close_code=1001)
    async with Emulator(api_key=API_KEY, faults=faults) as emu:
        env = bridge_env(
            kafka_bootstrap, emu.url, topics, BRIDGE_POOL_SIZE="2", BRIDGE_SHUTDOWN_DRAIN_S="0.5"
        )
        proc = BridgeProcess(env, str(tmp_path / "closes.log")).start()
        try:
            await wait_for(
                lambda: any(
                    e.get("reason") == "closed_by_hume" for e in _events(proc, "hume_session_closed")
                ),
                30,
                "an idle close by Hume",
            )
            emu.faults.idle_timeout_s = None
            emu.faults.latency_s = 30.0
            await produce(kafka_bootstrap, topics.media, text_records(3, 2))
            await wait_for(lambda: emu.stats.snapshot()["in_flight"] >= 2, 30, "requests in flight")
        finally:
            assert await proc.stop() == 0
    closed = _events(proc, "hume_session_closed")
    by_hume = [e for e in closed if e["reason"] == "closed_by_hume"]
    assert by_hume[0]["code"] == 1001 and by_hume[0]["message"] == "closed by Hume with code 1001"
    shutdown = [e for e in closed if e["reason"] == "shutdown"]
    assert len(shutdown) == 2, closed
    assert sum(e["unanswered"] for e in shutdown) == 2
    assert any("left for the next owner of their partitions" in e["message"] for e in shutdown)
    assert not [e for e in closed if e["reason"] in ("idle_timeout", "dropped")]
    incomplete = _events(proc, "bridge_drain_incomplete")
    assert len(incomplete) == 1 and incomplete[0]["left_for_next_owner"] == 6
    assert incomplete[0]["message"].startswith(
        "drain deadline reached with 6 records left for the next owner of their partitions"
    )
    assert _events(proc, "bridge_stopped")[0]["left_for_next_owner"] == 6


async def test_recycling_is_staggered_and_costs_no_info_lines(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """Four sessions with a 2 s maximum age: each opens with an age of its own (so they never recycle
    together), they recycle again and again, and at INFO level the log shows only the first opens."""
    topics = await make_topics(new_topic, partitions=1)
    async with Emulator(api_key=API_KEY) as emu:
        env = bridge_env(kafka_bootstrap, emu.url, topics, BRIDGE_POOL_SIZE="4", BRIDGE_SESSION_MAX_AGE_S="2")
        proc = BridgeProcess(env, str(tmp_path / "recycle.log")).start()
        try:
            await wait_for(lambda: proc.has_event("bridge_started"), 60, "bridge_started")

            async def recycled() -> bool:
                return await _reconnects(proc.http_port, "recycled") >= 8

            await wait_for_async(recycled, 60, "the sessions recycling")
        finally:
            assert await proc.stop() == 0
    opens = _events(proc, "hume_session_open")
    assert len(opens) == 4, opens
    for e in opens:  # session i recycles in its own band: 2 s x (1 - 0.2 x [i, i + 1) / 4)
        low, high = 2.0 * (1 - 0.2 * (e["session"] + 1) / 4), 2.0 * (1 - 0.2 * e["session"] / 4)
        assert low - 0.005 <= e["recycle_after_s"] <= high + 0.005, opens
    assert not [e for e in _events(proc, "hume_session_closed") if e["reason"] == "recycled"]


async def _reconnects(port: int, reason: str) -> float:
    _, text = await http_get_raw(port, "/metrics")
    for line in text.decode().splitlines():
        if line.startswith(f'hume_bridge_reconnects_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0
