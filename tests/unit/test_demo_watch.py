"""The demo's view of the bridge's log (pure)."""

from __future__ import annotations

from bridge.tools.demo import LogWatch


def test_demo_log_watch_reads_events_split_across_writes() -> None:
    """The demo reads the bridge's JSON lines as they are written, whole or in pieces, and picks out the
    join and any warning or error."""
    watch = LogWatch()
    watch.write(b'{"event":"bridge_started","level":"info"}\n{"event":"partitions_ass')
    assert watch.first("partitions_assigned") is None
    watch.write('igned","level":"info","partitions":["m/0"]}\n')
    watch.write(b'not json\n{"event":"publish_failed","level":"warning"}\n')
    assigned = watch.first("partitions_assigned")
    assert assigned is not None and assigned["partitions"] == ["m/0"]
    assert [e["event"] for e in watch.problems()] == ["publish_failed"]
