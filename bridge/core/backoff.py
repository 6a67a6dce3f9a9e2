"""Backoff schedules: pure, with the randomness injected, so tests can pin them down."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with "equal jitter": attempt n waits uniform(0.5, 1.0) × min(max, initial × 2^n).

    Half of the delay is kept so that a storm of reconnects still spreads out but never retries at once.
    """

    initial_s: float
    max_s: float
    factor: float = 2.0

    def ceiling(self, attempt: int) -> float:
        """The un-jittered delay before retry number ``attempt`` (0-based)."""
        return min(self.max_s, self.initial_s * self.factor ** min(attempt, 64))

    def delay(self, attempt: int, rnd: random.Random) -> float:
        cap = self.ceiling(attempt)
        return cap * (0.5 + 0.5 * rnd.random())


class RateLimiter:
    """A token bucket for handshakes: ``take(now)`` returns how long to wait before the next one."""

    def __init__(self, rate_per_s: float, burst: float | None = None) -> None:
        self.rate = rate_per_s
        self.capacity = burst if burst is not None else max(1.0, rate_per_s)
        self.tokens = self.capacity
        self.last = 0.0
        self._started = False

    def take(self, now: float) -> float:
        """Reserve one token; return 0 if it may go now, else the seconds to wait before going."""
        if not self._started:
            self.last, self._started = now, True
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= 1.0
        if self.tokens >= 0:
            return 0.0
        return -self.tokens / self.rate
