"""``hume-bridge demo`` as a user runs it: it says when the bridge has joined its group before the progress
starts, every record gets its outcome, the bridge logs no warning or error, and it exits 0."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_shows_the_join_and_ends_clean() -> None:
    """The join line comes before the records are produced; the summary counts every outcome; no warning or
    error line from the bridge (the embedded broker's settings avoid the idempotent producer's refusal)."""
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "demo", "--streams", "3", "--records", "2"],
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
