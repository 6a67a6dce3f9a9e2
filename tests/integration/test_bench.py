"""The benchmark machinery end to end, at a size that proves it works and measures nothing.

Every pipeline really runs: the embedded broker, the emulator and the bridge as subprocesses, the three
reference pipelines, the paced producer and the backlog. Speed is never asserted (DESIGN.md: performance
is measured by ``hume-bridge bench``, never by timed tests).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest

from bridge.tools import bench
from bridge.tools.benchmark import measure
from bridge.tools.benchmark.report import render
from bridge.tools.benchmark.runner import Plan, run_bench

DESIGN_KEYS = ("throughput_rps", "ratio_to_bare", "ratio_to_passthrough", "ratio_to_naive")
LATENCY_KEYS = ("added_latency_p50_ms", "added_latency_p99_ms")


@pytest.mark.timeout(120)
async def test_tiny_bench_reports_every_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny plan yields every JSON key of DESIGN.md's Performance section for both scenarios, positive
    throughputs for the bridge and every reference, a peak RSS for the backlog drain, and a printable
    report; every record gets its outcome (no error outcomes)."""
    monkeypatch.setenv("BRIDGE_BENCH_LOG_DIR", str(tmp_path / "logs"))
    said: list[str] = []
    results = await run_bench(Plan.tiny(), said.append)

    scenarios = results["scenarios"]
    for name in ("zero_latency", "latency_100ms"):
        sc = scenarios[name]
        for key in (*DESIGN_KEYS, *LATENCY_KEYS, "ratio_to_littles_law", "peak_rss_mb"):
            assert key in sc, f"{name} lacks {key}"
        assert sc["throughput_rps"] > 0
        assert all(sc["references_rps"][r] > 0 for r in ("passthrough", "bare", "naive"))
        assert all(sc[k] > 0 for k in DESIGN_KEYS), {k: sc[k] for k in DESIGN_KEYS}
        assert all(sc[k] is not None for k in LATENCY_KEYS)
        assert sc["bridge_errors"] == 0
        assert sc["half_load_records"] > 0 and sc["light_load_records"] > 0
    assert scenarios["zero_latency"]["ratio_to_littles_law"] is None  # no bound without latency
    assert scenarios["latency_100ms"]["ratio_to_littles_law"] > 0
    backlog = scenarios["backlog"]
    assert backlog["drained"] == backlog["records"]
    assert backlog["throughput_rps"] > 0 and backlog["peak_rss_mb"] > 0
    assert {t["target"] for t in results["targets"]}
    orjson.dumps(results)  # JSON-able as written by --json
    text = render(results)
    assert "bare pipeline" in text and "Little's-law bound" in text and "peak RSS" in text


def test_window_rate_leaves_out_start_and_tail() -> None:
    """The rate counts records between the 10th and 90th percentile of their timestamps, so a slow start
    and a straggler at the end do not change it."""
    steady = list(range(1000, 2000))  # one record per millisecond
    assert measure.window_rate(steady) == pytest.approx(1000.0, rel=0.01)
    with_stragglers = [0] * 20 + steady + [60_000] * 20
    assert measure.window_rate(with_stragglers) == pytest.approx(1000.0, rel=0.1)
    assert measure.window_rate([5]) is None


def test_percentile_and_profile_summary() -> None:
    """Nearest-rank percentiles; py-spy's collapsed stacks are summed by own frame and by asyncio task."""
    assert measure.percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert measure.percentile([float(i) for i in range(1, 101)], 99) == 99.0
    assert measure.percentile([], 50) is None
    prof = measure.collapsed_profile(
        [
            "main (a.py:1);Handle._run (events.py:80);Bridge._publish_loop (app.py:366);send (s.py:1) 3",
            "main (a.py:1);Handle._run (events.py:80);Bridge._fetch_loop (app.py:189) 1",
        ]
    )
    assert prof.total == 4
    assert prof.own["send (s.py:1)"] == 3
    assert prof.tasks["Bridge._publish_loop > send"] == 3
    assert prof.tasks["Bridge._fetch_loop"] == 1


def test_cli_arguments() -> None:
    """``hume-bridge bench`` takes --quick, --json, --profile and --bootstrap."""
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--quick", "--json", "out.json"])
    assert args.quick and args.json == Path("out.json") and args.profile is None and args.bootstrap is None
