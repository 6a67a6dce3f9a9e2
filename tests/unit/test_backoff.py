"""Backoff schedules and the handshake rate limiter."""

from __future__ import annotations

import random

from bridge.core.backoff import Backoff, RateLimiter


def test_backoff_grows_exponentially_to_its_cap_with_jitter() -> None:
    """Each delay lies in [cap/2, cap] of an exponentially growing, capped ceiling, and they differ."""
    b = Backoff(0.5, 8.0)
    rnd = random.Random(7)
    delays = [b.delay(n, rnd) for n in range(8)]
    for n, d in enumerate(delays):
        cap = min(8.0, 0.5 * 2**n)
        assert cap / 2 <= d <= cap
    assert len({round(d, 6) for d in delays}) == len(delays)


def test_two_sessions_never_retry_at_the_same_instant() -> None:
    """Jitter spreads simultaneous reconnects."""
    b = Backoff(1.0, 30.0)
    a, c = random.Random(1), random.Random(2)
    assert [b.delay(n, a) for n in range(5)] != [b.delay(n, c) for n in range(5)]


def test_rate_limiter_spaces_handshakes() -> None:
    """Past the burst, each handshake waits 1/rate after the previous one."""
    lim = RateLimiter(10.0, burst=2)
    assert lim.take(0.0) == 0.0
    assert lim.take(0.0) == 0.0
    assert abs(lim.take(0.0) - 0.1) < 1e-9
    assert abs(lim.take(0.0) - 0.2) < 1e-9
    assert lim.take(10.0) == 0.0
