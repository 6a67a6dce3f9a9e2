"""Start-up and the broker as an operator sees them: Kafka unreachable at start, a slow group join, a
broker that freezes, and normal operation without error-level lines."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import orjson

from bridge.tools.embedded import EmbeddedBroker, free_port
from bridge.tools.emulator import Emulator
from tests.conftest import TopicFactory
from tests.integration.harness import (
    API_KEY,
    BridgeProcess,
    Collector,
    bridge_env,
    make_topics,
    outcomes,
    produce,
    text_records,
    wait_for,
)


async def get(port: int, path: str) -> tuple[int, bytes]:
    """A plain HTTP/1.1 GET against the bridge's operator endpoint; (0, b"") while nothing listens."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return 0, b""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def readyz(port: int) -> tuple[int, dict[str, Any]]:
    status, body = await get(port, "/readyz")
    return status, orjson.loads(body) if body.startswith(b"{") else {}


async def wait_ready(port: int, want: int, timeout_s: float, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = await readyz(port)
        if status == want:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}: last {status} {body}")
        await asyncio.sleep(0.1)


def events(proc: BridgeProcess, name: str) -> list[dict[str, Any]]:
    return [line for line in proc.log_lines() if line.get("event") == name]


def raw_log(proc: BridgeProcess) -> str:
    return Path(proc.log_path).read_text(errors="replace")


async def test_kafka_unreachable_at_start_is_waited_for_in_words_then_joined(
    tmp_path: Path, new_topic: TopicFactory
) -> None:
    """No broker at the address: the bridge neither crashes nor prints a traceback; it says once where and
    why (connection refused by HOST:PORT), /readyz gives the same words, and when a broker appears at that
    address the bridge joins and becomes ready."""
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    async with Emulator(api_key=API_KEY) as emu:
        topics = await make_topics(new_topic, partitions=1)  # names only: this broker gets its own below
        env = bridge_env(bootstrap, emu.url, topics, BRIDGE_KAFKA_IDEMPOTENCE="off")
        proc = BridgeProcess(env, str(tmp_path / "wait.log")).start()
        broker = EmbeddedBroker(port=port)
        try:
            await wait_for(lambda: bool(events(proc, "kafka_unreachable")), 20, "kafka_unreachable")
            line = events(proc, "kafka_unreachable")[0]
            assert line["level"] == "warning" and line["bootstrap"] == bootstrap
            assert line["detail"] == f"connection refused by {bootstrap}"
            assert bootstrap in line["message"] and "timestamp" in line
            status, body = await readyz(proc.http_port)
            assert status == 503
            assert f"cannot reach Kafka at {bootstrap}: connection refused by {bootstrap}" in body["reasons"]
            assert proc.proc is not None and proc.proc.poll() is None, "the bridge gave up"

            await asyncio.to_thread(broker.start)
            await create_topics(bootstrap, [topics.media, *topics.outputs])
            await wait_for(lambda: bool(events(proc, "bridge_started")), 60, "bridge_started")
            reachable = events(proc, "kafka_reachable")
            assert reachable and reachable[0]["attempts"] >= 1
            await wait_ready(proc.http_port, 200, 30, "ready once Kafka answers")
            assert await proc.stop() == 0
        finally:
            proc.kill()
            broker.stop()
    log = raw_log(proc)
    assert "Traceback" not in log
    assert len(events(proc, "kafka_unreachable")) == 1, "one line per outage, not one per attempt"
    assert not [line for line in proc.log_lines() if line.get("level") in ("error", "critical")]


async def create_topics(bootstrap: str, names: list[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, num_partitions=1, replication_factor=1) for n in names])
    finally:
        await admin.close()


async def test_sigterm_while_kafka_is_unreachable_exits_at_once(tmp_path: Path) -> None:
    """A DNS name that does not resolve: the words say so, and SIGTERM during the wait exits 0 at once."""
    env = {
        "HUME_API_KEY": API_KEY,
        "BRIDGE_HUME_API": "v0",
        "BRIDGE_KAFKA_BOOTSTRAP": "kafka.invalid:9092",
        "BRIDGE_HUME_URL": f"ws://127.0.0.1:{free_port()}",
        "BRIDGE_HTTP_HOST": "127.0.0.1",
    }
    proc = BridgeProcess(env, str(tmp_path / "dns.log")).start()
    try:
        await wait_for(lambda: bool(events(proc, "kafka_unreachable")), 20, "kafka_unreachable")
        assert events(proc, "kafka_unreachable")[0]["detail"].startswith("DNS lookup of kafka.invalid failed")
        started = time.monotonic()
        assert await proc.stop(10) == 0
        assert time.monotonic() - started < 2.0
    finally:
        proc.kill()
    assert "Traceback" not in raw_log(proc)


async def test_slow_group_join_is_narrated_and_sigterm_during_it_is_prompt(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """With the default 30 s session timeout the embedded broker holds the first join for about 15 s: the
    bridge says it is joining and, every few seconds, that it waits for partitions; a SIGTERM then exits 0
    at once instead of after the join (12.7 s before)."""
    topics = await make_topics(new_topic, partitions=1)
    async with Emulator(api_key=API_KEY) as emu:
        env = bridge_env(
            kafka_bootstrap,
            emu.url,
            topics,
            BRIDGE_KAFKA_SESSION_TIMEOUT_MS="30000",
            BRIDGE_KAFKA_HEARTBEAT_INTERVAL_MS="3000",
        )
        proc = BridgeProcess(env, str(tmp_path / "join.log")).start()
        try:
            await wait_for(lambda: bool(events(proc, "kafka_waiting_for_partitions")), 20, "waiting line")
            assert not events(proc, "bridge_started"), "the join was not slow: nothing to interrupt"
            assert events(proc, "kafka_joining_group")[0]["group"] == topics.group
            started = time.monotonic()
            assert await proc.stop(30) == 0
            elapsed = time.monotonic() - started
        finally:
            proc.kill()
    print(f"SIGTERM during the group join: exit after {elapsed:.2f} s")
    assert elapsed < 2.0
    assert events(proc, "bridge_stopped")[0]["during"] == "start-up"


async def test_normal_operation_logs_no_error_line_and_counts_no_empty_revocation(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """Against the embedded broker with idempotence auto (it refuses producer ids): records flow, not one
    line at error level, and the start's empty revocation is not counted as a rebalance."""
    topics = await make_topics(new_topic, partitions=2)
    async with Emulator(api_key=API_KEY) as emu:
        env = bridge_env(kafka_bootstrap, emu.url, topics, BRIDGE_KAFKA_IDEMPOTENCE="auto")
        proc = BridgeProcess(env, str(tmp_path / "normal.log")).start()
        try:
            await produce(kafka_bootstrap, topics.media, text_records(4, 5))
            async with Collector(kafka_bootstrap, topics.outputs) as col:
                await col.until(lambda rs: len(outcomes(rs, topics)) >= 20, 60, "20 outcomes")
            _, metrics = await get(proc.http_port, "/metrics")
            assert await proc.stop() == 0
        finally:
            proc.kill()
    errors = [line for line in proc.log_lines() if line.get("level") in ("error", "critical")]
    assert errors == []
    assert events(proc, "producer_idempotence_refused")[0]["level"] == "warning"
    text = metrics.decode()
    assert 'hume_bridge_rebalances_total{kind="assigned"} 1.0' in text
    assert 'hume_bridge_rebalances_total{kind="revoked"}' not in text


async def test_a_frozen_broker_makes_the_bridge_unready_with_the_reason_and_few_library_lines(
    tmp_path: Path,
) -> None:
    """The broker process stopped (SIGSTOP) for 12 s: /readyz turns 503 naming the failing Kafka operation,
    the library's lines stay few and timestamped; after SIGCONT the bridge is ready again."""
    with EmbeddedBroker() as broker:
        await create_topics(broker.bootstrap, ["m", "p", "e", "w"])
        async with Emulator(api_key=API_KEY) as emu:
            env = {
                "HUME_API_KEY": API_KEY,
                "BRIDGE_HUME_API": "v0",
                "BRIDGE_HUME_URL": emu.url,
                "BRIDGE_KAFKA_BOOTSTRAP": broker.bootstrap,
                "BRIDGE_INPUT_TOPICS": "m",
                "BRIDGE_PREDICTIONS_TOPIC": "p",
                "BRIDGE_ERRORS_TOPIC": "e",
                "BRIDGE_WARNINGS_TOPIC": "w",
                "BRIDGE_HTTP_HOST": "127.0.0.1",
                "BRIDGE_KAFKA_IDEMPOTENCE": "off",
                "BRIDGE_KAFKA_SESSION_TIMEOUT_MS": "6000",
                "BRIDGE_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
                "BRIDGE_COMMIT_INTERVAL_S": "0.2",
                "BRIDGE_KAFKA_UNHEALTHY_AFTER_S": "3",
            }
            proc = BridgeProcess(env, str(tmp_path / "freeze.log")).start()
            pid = broker._proc.pid if broker._proc is not None else 0
            try:
                await wait_ready(proc.http_port, 200, 60, "ready")
                os.kill(pid, signal.SIGSTOP)
                frozen_at = time.monotonic()
                try:
                    body = await wait_ready(proc.http_port, 503, 20, "unready while the broker is frozen")
                    assert time.monotonic() - frozen_at >= 3, body
                    kafka = [r for r in body["reasons"] if r.startswith("Kafka ")]
                    assert kafka, body
                    assert "failing for" in kafka[0]
                    await asyncio.sleep(12 - (time.monotonic() - frozen_at))  # the freeze itself
                finally:
                    os.kill(pid, signal.SIGCONT)
                await wait_ready(proc.http_port, 200, 60, "ready after the broker thawed")
                assert await proc.stop() == 0
            finally:
                proc.kill()
    unhealthy = events(proc, "kafka_unhealthy")
    assert len(unhealthy) == 1 and unhealthy[0]["level"] == "warning", "said once, in words"
    assert events(proc, "kafka_healthy")
    library = [line for line in proc.log_lines() if line.get("event") == "library_log"]
    assert all("timestamp" in line and "level" in line for line in library)
    assert len(library) < 60, f"{len(library)} library lines over a 12 s freeze"
    assert "Traceback" not in raw_log(proc)
