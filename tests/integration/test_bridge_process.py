"""The bridge as a real process: crash and restart, graceful shutdown, rebalances, bounded memory."""

from __future__ import annotations

import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from bridge.tools import samples
from bridge.tools.emulator import Emulator, Faults
from tests.conftest import TopicFactory
from tests.integration.harness import (
    API_KEY,
    BridgeProcess,
    Collector,
    Record,
    Topics,
    assert_no_commit_after_revoke,
    assigned_nonempty,
    bridge_env,
    make_topics,
    outcome_sources,
    outcomes,
    produce,
    revoked_ever,
    text_records,
    wait_for,
)


async def committed_offsets(bootstrap: str, topics: Topics, partitions: int) -> dict[int, int]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=topics.group, enable_auto_commit=False)
    await c.start()
    try:
        out = {}
        for p in range(partitions):
            off = await c.committed(TopicPartition(topics.media, p))
            out[p] = off if off is not None else 0
        return out
    finally:
        await c.stop()


def source_offsets(sources: list[str]) -> list[tuple[int, int]]:
    return [(int(s.split("/")[-2]), int(s.split("/")[-1])) for s in sources]


async def test_sigkill_then_restart_leaves_no_record_without_outcome(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """Killed with SIGKILL mid-run and restarted: every record has an outcome; duplicates only for
    records above the committed offset at the time of the crash (in flight or unfinished)."""
    topics = await make_topics(new_topic, partitions=4)
    total = 600
    async with Emulator(api_key=API_KEY, faults=Faults(latency_s=0.03)) as emu:
        env = bridge_env(kafka_bootstrap, emu.url, topics)
        first = BridgeProcess(env, str(tmp_path / "first.log")).start()
        try:
            await produce(kafka_bootstrap, topics.media, text_records(30, 20))
            async with Collector(kafka_bootstrap, topics.outputs) as col:
                await col.until(lambda rs: len(outcomes(rs, topics)) >= 150, 60, "150 outcomes")
                first.kill()
                committed = await committed_offsets(kafka_bootstrap, topics, 4)
                second = BridgeProcess(env, str(tmp_path / "second.log")).start()
                try:
                    await col.until(
                        lambda rs: len(set(outcome_sources(rs, topics))) >= total, 120, "every outcome"
                    )
                finally:
                    await second.stop()
        finally:
            first.kill()
    sources = outcome_sources(col.records, topics)
    assert len(set(sources)) == total
    seen: set[str] = set()
    for src, (partition, offset) in zip(sources, source_offsets(sources), strict=True):
        if src in seen:
            assert offset >= committed[partition], f"{src} was committed before the crash but repeated"
        seen.add(src)
    assert col.on(topics.errors) == []


async def test_sigterm_drains_commits_and_exits_zero(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """SIGTERM: exit 0 within the drain deadline, everything acknowledged committed, and a restart
    repeats nothing that was finished."""
    topics = await make_topics(new_topic, partitions=4)
    total = 800
    async with Emulator(api_key=API_KEY, faults=Faults(latency_s=0.1)) as emu:
        env = bridge_env(kafka_bootstrap, emu.url, topics, BRIDGE_SHUTDOWN_DRAIN_S="2")
        proc = BridgeProcess(env, str(tmp_path / "a.log")).start()
        assert proc.proc is not None
        await produce(kafka_bootstrap, topics.media, text_records(20, 40))
        async with Collector(kafka_bootstrap, topics.outputs) as col:
            await col.until(lambda rs: len(outcomes(rs, topics)) >= 60, 60, "60 outcomes")
            started = time.monotonic()
            code = await proc.stop()
            elapsed = time.monotonic() - started
            assert code == 0
            assert elapsed < 2 + 5
            committed = await committed_offsets(kafka_bootstrap, topics, 4)
            below = {f"{topics.media}/{p}/{o}" for p, off in committed.items() for o in range(off)}
            assert len(below) >= 60
            # every record below each committed offset has an outcome on the output topics
            await col.until(lambda rs: below <= set(outcome_sources(rs, topics)), 30, "committed outcomes")
            done_before = set(outcome_sources(col.records, topics))
            restart = BridgeProcess(env, str(tmp_path / "b.log")).start()
            try:
                await col.until(lambda rs: len(set(outcome_sources(rs, topics))) >= total, 120, "all")
            finally:
                assert await restart.stop() == 0
    sources = outcome_sources(col.records, topics)
    repeated = [s for s in set(sources) if sources.count(s) > 1]
    assert all(
        s not in done_before or int(s.split("/")[-1]) >= committed[int(s.split("/")[-2])] for s in repeated
    )
    assert len(set(sources)) == total


async def test_rebalance_moves_partitions_without_loss_or_late_commits(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """A second bridge joins mid-run and later leaves: nothing lost, and neither bridge commits a
    partition after it was revoked from it (until assigned again)."""
    topics = await make_topics(new_topic, partitions=4)
    total = 800
    async with Emulator(api_key=API_KEY, faults=Faults(latency_s=0.05)) as emu:
        env = bridge_env(kafka_bootstrap, emu.url, topics, BRIDGE_LOG_LEVEL="DEBUG", BRIDGE_POOL_SIZE="4")
        a = BridgeProcess(env, str(tmp_path / "a.log")).start()
        b = BridgeProcess(env, str(tmp_path / "b.log"))
        try:
            await produce(kafka_bootstrap, topics.media, text_records(40, 20))
            async with Collector(kafka_bootstrap, topics.outputs) as col:
                await col.until(lambda rs: len(outcomes(rs, topics)) >= 100, 60, "100 outcomes")
                b.start()
                await wait_for(lambda: assigned_nonempty(b), 60, "second bridge owns partitions")
                await col.until(lambda rs: len(outcomes(rs, topics)) >= 400, 120, "400 outcomes")
                assert await b.stop() == 0
                await col.until(lambda rs: len(set(outcome_sources(rs, topics))) >= total, 120, "all")
        finally:
            for p in (a, b):
                if p.proc is not None:
                    await p.stop()
    assert len(set(outcome_sources(col.records, topics))) == total
    assert revoked_ever(a), "the first bridge never gave up a partition"
    for proc in (a, b):
        assert_no_commit_after_revoke(proc)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def test_memory_stays_bounded_while_a_large_backlog_drains(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """A backlog of 5,000 records of 64 KB (about 320 MB) behind a slow (300 ms) Hume: the bridge's RSS
    stays under 224 MB while it works through it."""
    topics = await make_topics(new_topic, partitions=4)
    image = samples.png(150, 150, seed=3)
    pad = 64 * 1024 - len(image)
    value = image + b"\x00" * max(0, pad)  # trailing bytes after IEND are ignored by PNG readers
    records: list[Record] = [
        (f"k{i % 200}".encode(), value, [("content-type", b"image/png")]) for i in range(5000)
    ]
    await produce(kafka_bootstrap, topics.media, records)
    cap_mb = 224.0
    async with Emulator(api_key=API_KEY, faults=Faults(latency_s=0.3)) as emu:
        env = bridge_env(
            kafka_bootstrap,
            emu.url,
            topics,
            BRIDGE_POOL_SIZE="96",
            BRIDGE_MAX_BUFFERED_BYTES=str(16 * 1024 * 1024),
            BRIDGE_MAX_BUFFERED_RECORDS="2000",
        )
        proc = BridgeProcess(env, str(tmp_path / "m.log")).start()
        assert proc.proc is not None
        peak = 0.0
        try:
            async with Collector(kafka_bootstrap, [topics.predictions, topics.errors]) as col:
                deadline = time.monotonic() + 240
                while len(outcomes(col.records, topics)) < 5000:
                    assert time.monotonic() < deadline, f"drained only {len(outcomes(col.records, topics))}"
                    peak = max(peak, _rss_mb(proc.proc.pid))
                    await col.poll()
        finally:
            await proc.stop()
    print(f"peak RSS while draining 5000 x 64 KB: {peak:.1f} MB")
    assert 0 < peak < cap_mb
    assert col.on(topics.errors) == []
