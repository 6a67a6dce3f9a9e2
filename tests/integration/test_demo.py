"""``hume-bridge demo`` as a user runs it: it says when the bridge has joined its group before the progress
starts, every record gets its outcome, the bridge logs no warning or error, and it exits 0."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_shows_the_join_and_ends_clean() -> None:
    """v0 (``--api v0``): the join line comes before the records are produced; the summary counts every
    outcome; no warning or error line from the bridge (the embedded broker's settings avoid the idempotent
    producer's refusal)."""
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "demo", "--api", "v0", "--streams", "3", "--records", "2"],
        capture_output=True,
        text=True,
        timeout=150,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    joined = out.index("joined group hume-bridge in ")
    assert "partitions hume.media/0" in out[joined:]
    assert joined < out.index("produced 9 records")
    assert "summary 8 predictions, 1 errors" in out
    assert "no warnings or errors from the bridge" in out


def test_demo_runs_v1_by_default() -> None:
    """Without --api the demo runs Hume v1: a call of speech and silence is measured per utterance, camera
    frames one measurement each, chat lines and a broken WAV are error outcomes, every record accounted
    for, and no warning or error from the bridge."""
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "demo", "--streams", "3", "--records", "12"],
        capture_output=True,
        text=True,
        timeout=150,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Hume v1 realtime" in out
    assert "produced 37 records" in out
    # 12 call chunks (6 measured by the one utterance, 6 silent), 12 frames, 12 chat lines, 1 broken WAV
    assert "summary 13 measurements; records: 18 measured, 6 silent, 13 error." in out
    assert "NOT_OFFERED_BY_API" in out
    assert "no warnings or errors from the bridge" in out
