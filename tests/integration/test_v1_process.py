"""The v1 bridge as a real process: killed mid-run and restarted (every record is settled or errored after
the restart, and only records above the offset committed at the kill are measured twice), stopped with
SIGTERM mid-call, and giving up partitions to a second bridge that joins its group mid-call."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from pathlib import Path

import aiohttp

from bridge.tools.emulator import Emulator, Faults
from tests.conftest import TopicFactory
from tests.integration.harness import (
    API_KEY,
    BridgeProcess,
    Collector,
    Topics,
    assert_no_commit_after_revoke,
    assigned_nonempty,
    call_audio,
    committed,
    interleave,
    make_topics,
    produce,
    revoked_ever,
    v1_env,
    wait_committed,
    wait_for,
    wait_for_async,
)


async def _until_metric(port: int, line: str, timeout_s: float) -> None:
    """Poll the process's /metrics until it shows ``line`` (a sample, as Prometheus renders it)."""
    async with aiohttp.ClientSession() as http:

        async def shown() -> bool:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    return line in (await response.text()).splitlines()
            return False

        await wait_for_async(shown, timeout_s, f"/metrics to show {line}")


def paced_env(bootstrap: str, emu: Emulator, topics: Topics, **overrides: str) -> dict[str, str]:
    """A v1 bridge pacing at real time (a 0.2 s lead), its sessions closed after 5 s without records."""
    return v1_env(
        bootstrap,
        emu.http_url,
        topics,
        BRIDGE_V1_PACING_LEAD_S="0.2",
        BRIDGE_V1_IDLE_CLOSE_S="5",
        **overrides,
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
        env = paced_env(kafka_bootstrap, emu, topics)
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
        env = paced_env(kafka_bootstrap, emu, topics, BRIDGE_SHUTDOWN_DRAIN_S="60")
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


async def test_a_second_bridge_joining_mid_call_takes_partitions_without_loss_or_late_commits(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """Calls paced at real time; a second bridge joins the group while they are under way, so the first
    gives up partitions mid-call (stop feeding, close the sessions, publish, commit) and the second goes on
    from the committed offsets: every record is settled, none is an error, each call's last utterance is
    measured, and neither bridge commits a partition it no longer owns. The first bridge gives the
    partitions up once its sessions for them have closed and their outputs are acknowledged: the records
    it had not fed yet are the next owner's, so the group does not wait for the revocation deadline."""
    topics: Topics = await make_topics(new_topic)
    calls = [call_audio(f"move-{i}", CALL * 3, hz=300 + 30 * i) for i in range(8)]
    total = sum(len(c.records) for c in calls)
    async with Emulator(api_key=API_KEY, faults=Faults()) as emu:
        env = paced_env(
            kafka_bootstrap,
            emu,
            topics,
            BRIDGE_LOG_LEVEL="DEBUG",
            BRIDGE_REVOKE_DRAIN_S="120",  # the move must end when the sessions have closed, not at this
        )
        first = BridgeProcess(env, str(tmp_path / "first.log")).start()
        second = BridgeProcess(env, str(tmp_path / "second.log"))
        try:
            await produce(kafka_bootstrap, topics.media, interleave(c.records for c in calls))
            async with Collector(kafka_bootstrap, topics.outputs) as col:
                await col.until(lambda rs: len(rs) >= 4, 60, "the first measurements")
                second.start()
                await wait_for(lambda: assigned_nonempty(second), 60, "the second bridge owns partitions")
                ends = await wait_committed(kafka_bootstrap, topics.group, topics.media, total, 120)
                last_ms = {c.key: len(c.pcm) // 32 for c in calls}
                await col.until(
                    lambda rs: all(
                        any(r.key == k and r.value.get("stream_ms", {}).get("end", 0) > ms - 1000 for r in rs)
                        for k, ms in last_ms.items()
                    ),
                    30,
                    "each call's last utterance measured",
                )
            assert await second.stop() == 0
            assert await first.stop() == 0
        finally:
            first.kill()
            second.kill()
    assert sum(ends.values()) == total
    assert not [r for r in col.records if r.topic == topics.errors]
    assert revoked_ever(first), "the first bridge never gave up a partition"
    for proc in (first, second):
        assert_no_commit_after_revoke(proc)
    begins: dict[bytes, list[int]] = {}
    for r in col.records:
        if r.topic == topics.predictions:
            begins.setdefault(r.key, []).append(r.value["stream_ms"]["begin"])
    assert set(begins) == {c.key for c in calls}
    # The first bridge committed what it had settled before giving a partition up, so the second began
    # after it: each stream's measurements stay in stream order across the move.
    assert all(b == sorted(b) for b in begins.values()), begins


async def test_sigterm_while_a_stream_waits_out_its_reconnect_backoff_exits_at_once(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """A call's session is dropped and the stream waits a long reconnect backoff (60 s); SIGTERM then
    ends the wait instead of sitting it out: the bridge exits 0 well within the test's deadline (the drain
    deadline is 120 s), leaving the call's unsettled records to the next owner."""
    topics: Topics = await make_topics(new_topic)
    call = call_audio("backoff", CALL)
    faults = Faults(drop_at_message=6, drop_limit=1)
    async with Emulator(api_key=API_KEY, faults=faults) as emu:
        env = paced_env(
            kafka_bootstrap,
            emu,
            topics,
            BRIDGE_SHUTDOWN_DRAIN_S="120",
            BRIDGE_RECONNECT_BACKOFF_INITIAL_S="60",
            BRIDGE_RECONNECT_BACKOFF_MAX_S="60",
        )
        bridge = BridgeProcess(env, str(tmp_path / "bridge.log")).start()
        try:
            await produce(kafka_bootstrap, topics.media, call.records)
            await emu.wait_until(lambda: emu.stats.v1.snapshot()["dropped_connections"] >= 1, 60)
            await _until_metric(bridge.http_port, 'hume_bridge_sessions{state="backoff"} 1.0', 30)
            assert await bridge.stop(30) == 0
        finally:
            bridge.kill()
    stopped = [line for line in bridge.log_lines() if line.get("event") == "bridge_stopped"]
    assert stopped and stopped[0]["left_for_next_owner"] > 0
