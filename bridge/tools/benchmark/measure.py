"""Pure arithmetic of the benchmark: rates from output timestamps, percentiles, ratios, profile summaries."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

WINDOW = (0.1, 0.9)
NO_FRAMES = "(no Python frames)"  # py-spy's sample of a thread running without a Python stack


def window_rate(times_ms: Iterable[int], window: tuple[float, float] = WINDOW) -> float | None:
    """Records per second between the 10th and the 90th percentile of the output timestamps: the ramp-up
    (group join, connections) and the tail are left out. None with fewer than two records."""
    t = sorted(times_ms)
    n = len(t)
    if n < 2:
        return None
    lo = min(int(n * window[0]), n - 2)
    hi = max(lo + 1, min(n - 1, math.ceil(n * window[1]) - 1))
    span_s = max(t[hi] - t[lo], 1) / 1000.0  # timestamps are whole milliseconds
    return (hi - lo) / span_s


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, math.ceil(p / 100.0 * len(ordered)) - 1)
    return ordered[k]


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def significant(value: float | None, digits: int = 4) -> float | None:
    """Rounded to significant digits, so a small ratio (0.0004) never reads as zero."""
    return None if value is None else float(f"{value:.{digits}g}")


@dataclass
class Profile:
    """Samples of py-spy's raw (collapsed stack) output, counted three ways."""

    total: int = 0
    own: Counter[str] = field(default_factory=Counter)  # by the innermost frame: self time
    inclusive: Counter[str] = field(default_factory=Counter)  # by every frame on the stack, once per stack
    tasks: Counter[str] = field(default_factory=Counter)  # by the asyncio task or callback running

    def share(self, counter: Counter[str], top: int) -> list[tuple[str, float]]:
        return [(name, round(100.0 * n / max(1, self.total), 1)) for name, n in counter.most_common(top)]


def _function(frame: str) -> str:
    return frame.split(" (", 1)[0]


def collapsed_profile(lines: Iterable[str]) -> Profile:
    """Parse ``frame;frame;... count`` lines. A sample's task is the frame the event loop called
    (the one after ``Handle._run``) and the one it called, e.g. ``Bridge._publish_loop > Sink.send``."""
    p = Profile()
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";") if stack else [NO_FRAMES]
        p.total += count
        p.own[frames[-1]] += count
        for frame in set(frames):
            p.inclusive[frame] += count
        task = "(no task on the sampled stack) " + _function(frames[-1])
        for i, frame in enumerate(frames):
            if _function(frame) == "Handle._run":
                called = [_function(f) for f in frames[i + 1 : i + 3]]
                task = " > ".join(called) if called else "(callback bookkeeping)"
                break
        p.tasks[task] += count
    return p
