"""The outage machine: an upstream refusing the account as a whole pauses consumption and is probed.

    healthy ──outage(reason)──▶ out (reason) ──recovered(evidence that ends it)──▶ healthy

Refused keys and an unreachable upstream are probed by the adapter itself (its reconnects) and end when
a session opens. Out of credits is probed by the core, one payload at a time on a jittered backoff, and
ends when a payload is answered. While out, nothing else is dispatched and nothing becomes an error
outcome. Pure: ``now`` and the randomness are passed in.
"""

from __future__ import annotations

import random

from bridge.core.backoff import Backoff
from bridge.core.model import Evidence, OutageReason

ENDED_BY: dict[Evidence, frozenset[OutageReason]] = {
    Evidence.CONNECTED: frozenset({OutageReason.KEY_REFUSED, OutageReason.UNREACHABLE}),
    Evidence.ANSWERED: frozenset({OutageReason.OUT_OF_CREDITS}),
}
PROBED_BY_CORE = frozenset({OutageReason.OUT_OF_CREDITS})


class OutageMachine:
    def __init__(self, probe_backoff: Backoff, rnd: random.Random) -> None:
        self.probe_backoff = probe_backoff
        self.rnd = rnd
        self.reason: OutageReason | None = None
        self.detail = ""
        self.probes = 0
        self.next_probe = 0.0

    def begin(self, reason: OutageReason, detail: str, now: float) -> bool:
        """Enter (or switch to) an outage; False when already in it."""
        if self.reason == reason:
            return False
        self.reason, self.detail = reason, detail
        self.probes = 0
        self.next_probe = now + self.probe_backoff.delay(0, self.rnd)
        return True

    def recovered(self, evidence: Evidence) -> OutageReason | None:
        """Leave the outage if ``evidence`` ends it; returns the reason that ended."""
        reason = self.reason
        if reason is None or reason not in ENDED_BY[evidence]:
            return None
        self.reason, self.detail = None, ""
        return reason

    def dispatch_limit(self, now: float) -> int | None:
        """How many records may be dispatched now: None for no limit, 0 for none, 1 for a probe."""
        if self.reason is None:
            return None
        if self.reason in PROBED_BY_CORE and now >= self.next_probe:
            return 1
        return 0

    def probe_sent(self, now: float) -> None:
        self.next_probe = now + self.probe_backoff.delay(self.probes, self.rnd)
        self.probes += 1

    def wake_at(self) -> float | None:
        """When the dispatcher must look again for a probe, if the core probes this outage."""
        return self.next_probe if self.reason in PROBED_BY_CORE else None
