"""Against a real Kafka cluster only (``BRIDGE_TEST_KAFKA_BOOTSTRAP``; skipped otherwise): the idempotent
producer path, which the embedded broker cannot exercise because it refuses producer ids.

Run with ``BRIDGE_TEST_KAFKA_BOOTSTRAP=host:9092 pytest -m real_kafka tests/integration``. The cluster must
accept PLAINTEXT connections and topic creation; each test uses fresh topics and its own group.
"""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import pytest

from bridge.tools.emulator import Emulator, Faults
from tests.conftest import TopicFactory
from tests.integration.harness import (
    API_KEY,
    BridgeProcess,
    Collector,
    bridge_env,
    make_topics,
    outcome_sources,
    outcomes,
    produce,
    text_records,
)

pytestmark = pytest.mark.real_kafka


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exported")


@pytest.mark.parametrize("mode", ["on", "auto"])
async def test_idempotent_producer_publishes_every_outcome_once(
    real_kafka: str, new_topic: TopicFactory, tmp_path: Path, mode: str
) -> None:
    """With BRIDGE_KAFKA_IDEMPOTENCE=on (or auto) a real cluster grants producer ids: the bridge starts with
    the idempotent producer, never falls back, and publishes exactly one outcome per record through it,
    also while the emulator drops connections (retried requests, same outcome once)."""
    topics = await make_topics(new_topic, partitions=4)
    records = text_records(streams=8, per_stream=25)
    faults = Faults(latency_s=0.01, drop_probability=0.05, seed=7)
    async with Emulator(api_key=API_KEY, faults=faults) as emu:
        env = bridge_env(real_kafka, emu.url, topics, BRIDGE_KAFKA_IDEMPOTENCE=mode)
        proc = BridgeProcess(env, str(tmp_path / "bridge.log")).start()
        try:
            await produce(real_kafka, topics.media, records)
            async with Collector(real_kafka, topics.outputs) as col:
                await col.until(
                    lambda rs: len(set(outcome_sources(rs, topics))) >= len(records), 120, "every outcome"
                )
                disabled = await asyncio.to_thread(
                    _metric, proc.http_port, "hume_bridge_producer_idempotence_disabled"
                )
                assert await proc.stop() == 0
                await col.poll()  # anything published late (a duplicate) is counted too
        finally:
            proc.kill()
    started = [line for line in proc.log_lines() if line.get("event") == "bridge_started"]
    assert started and started[0]["idempotent_producer"] is True
    assert not proc.has_event("producer_idempotence_refused")
    assert disabled == 0
    sources = outcome_sources(col.records, topics)
    assert len(sources) == len(set(sources)) == len(records)
    assert len(outcomes(col.records, topics)) == len(records)
