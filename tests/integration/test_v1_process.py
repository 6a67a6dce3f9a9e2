"""The v1 bridge as a real process, killed mid-run and restarted: every record is settled or errored after
the restart, and only records above the offset committed at the kill are measured twice."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from bridge.tools.emulator import Emulator, Faults
from tests.conftest import TopicFactory
from tests.integration.harness import (
    API_KEY,
    BridgeProcess,
    Collector,
    Topics,
    call_audio,
    committed,
    interleave,
    make_topics,
    produce,
    v1_env,
    wait_committed,
)

# One measurement per utterance (each under the 3 s timer): a record is covered twice only if measured again.
CALL = [("silence", 300), ("speech", 1200), ("silence", 700), ("speech", 1200), ("silence", 600)]


async def test_sigkill_and_restart_settles_everything_with_duplicates_only_above_the_commit(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """SIGKILL once the first measurements are out, restart with the same group: the committed offsets
    reach the end of every partition (every record done), and every record measured twice lies at or above
    its partition's committed offset at the time of the kill."""
    topics: Topics = await make_topics(new_topic)
    calls = [call_audio(f"kill-{i}", CALL, hz=300 + 30 * i) for i in range(6)]
    total = sum(len(c.records) for c in calls)
    async with Emulator(api_key=API_KEY, faults=Faults()) as emu:
        env = v1_env(
            kafka_bootstrap, emu.http_url, topics, BRIDGE_V1_PACING_LEAD_S="0.2", BRIDGE_V1_IDLE_CLOSE_S="5"
        )
        first = BridgeProcess(env, str(tmp_path / "first.log")).start()
        try:
            await produce(kafka_bootstrap, topics.media, interleave(c.records for c in calls))
            async with Collector(kafka_bootstrap, topics.outputs) as col:
                await col.until(lambda rs: len(rs) >= 6, 60, "the first measurements")
                first.kill()
                at_kill = await committed(kafka_bootstrap, topics.group, topics.media)
                assert sum(at_kill.values()) < total
                second = BridgeProcess(env, str(tmp_path / "second.log")).start()
                try:
                    ends = await wait_committed(kafka_bootstrap, topics.group, topics.media, total, 90)
                    await col.until(lambda rs: len(rs) >= 12, 30, "a measurement per utterance")
                finally:
                    assert await second.stop() == 0
        finally:
            first.kill()
    assert sum(ends.values()) == total
    assert not [r for r in col.records if r.topic == topics.errors]
    covered = Counter(
        (s["partition"], s["offset"])
        for r in col.records
        if r.topic == topics.predictions
        for s in r.value["sources"]
    )
    twice = [(p, o) for (p, o), n in covered.items() if n > 1]
    assert all(o >= at_kill[p] for p, o in twice)
    for call in calls:
        assert any(r.key == call.key for r in col.records)


async def test_sigterm_mid_call_closes_sessions_commits_what_settled_and_exits(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """SIGTERM while calls are being paced: the bridge stops feeding, closes its sessions so due results
    arrive, commits what settled and exits 0 long before the drain deadline (the records it had not fed
    wait for the next owner); a restart finishes every record, nothing lost."""
    topics: Topics = await make_topics(new_topic)
    calls = [call_audio(f"term-{i}", CALL, hz=300 + 30 * i) for i in range(4)]
    total = sum(len(c.records) for c in calls)
    async with Emulator(api_key=API_KEY, faults=Faults()) as emu:
        env = v1_env(
            kafka_bootstrap,
            emu.http_url,
            topics,
            BRIDGE_V1_PACING_LEAD_S="0.2",
            BRIDGE_V1_IDLE_CLOSE_S="5",
            BRIDGE_SHUTDOWN_DRAIN_S="60",
        )
        first = BridgeProcess(env, str(tmp_path / "first.log")).start()
        try:
            await produce(kafka_bootstrap, topics.media, interleave(c.records for c in calls))
            async with Collector(kafka_bootstrap, topics.outputs) as col:
                await col.until(lambda rs: len(rs) >= 4, 60, "the first measurements")
                started = time.monotonic()
                assert await first.stop(60) == 0
                assert (
                    time.monotonic() - started < 30
                )  # far below the 60 s deadline: nothing left to wait for
                at_stop = await committed(kafka_bootstrap, topics.group, topics.media)
                assert 0 < sum(at_stop.values()) < total
                assert emu.stats.v1.snapshot()["closes"].get("client_request", 0) >= 4
                second = BridgeProcess(env, str(tmp_path / "second.log")).start()
                try:
                    ends = await wait_committed(kafka_bootstrap, topics.group, topics.media, total, 90)
                finally:
                    assert await second.stop() == 0
        finally:
            first.kill()
    assert sum(ends.values()) == total
    assert not [r for r in col.records if r.topic == topics.errors]
